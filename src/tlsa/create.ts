/** Create a TLSA record for a certificate (RFC 6698 §2.1, RFC 7671 §5). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { toDer } from '../x509/pem.js'
import { applyMatchingType, selectorInput } from './match.js'
import type { TlsaRecord } from './types.js'

/** Parameters of {@link createTlsaRecord}. @public */
export interface TlsaParameters {
  usage: number
  selector: number
  matchingType: number
}

/**
 * Compute the TLSA record that matches `cert` with the given usage, selector and matching type.
 *
 * `cert` is DER bytes or PEM text (the first certificate is used). Selector 0/1 × matching type 0/1/2.
 *
 * @throws {@link SmtpTlsError} `ERR_CERT_PARSE`/`ERR_PEM_SYNTAX` for a bad certificate,
 * `ERR_INVALID_ARGUMENT` for parameters that cannot be computed.
 * @example
 * ```ts
 * const rr = createTlsaRecord(pem, { usage: 3, selector: 1, matchingType: 1 })
 * formatTlsaRecord(rr) // '3 1 1 …'
 * ```
 * @public
 */
export function createTlsaRecord(cert: Uint8Array | string, params: TlsaParameters): TlsaRecord {
  try {
    return createTlsaRecordChecked(cert, params)
  } catch (e) {
    throw coded(e, 'createTlsaRecord')
  }
}

function createTlsaRecordChecked(cert: Uint8Array | string, params: TlsaParameters): TlsaRecord {
  if (params === null || typeof params !== 'object') {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'TLSA parameters must be an object { usage, selector, matchingType }')
  }
  const { usage, selector, matchingType } = params
  if (!Number.isInteger(usage) || usage < 0 || usage > 255) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `usage must be an integer 0-255, got ${String(usage)}`)
  }
  const der = toDer(cert)
  const data = applyMatchingType(selectorInput(der, selector), matchingType)
  return { usage, selector, matchingType, data: new Uint8Array(data) }
}
