/** Selector and matching-type primitives (RFC 6698 §2.1.2-2.1.3): the hot path of TLSA matching. */
import { createHash } from 'node:crypto'
import { SmtpTlsError } from '../errors.js'
import { sliceCertificate } from '../x509/der.js'

/**
 * The selector input of a DER certificate: the whole certificate (0, Cert) or its
 * SubjectPublicKeyInfo (1, SPKI). A view into `der`, never a copy.
 */
export function selectorInput(der: Uint8Array, selector: number): Uint8Array {
  if (selector === 0) {
    sliceCertificate(der)
    return der
  }
  if (selector === 1) {
    const s = sliceCertificate(der)
    return der.subarray(s.spkiStart, s.spkiEnd)
  }
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `selector ${selector} cannot be computed (RFC 6698 §2.1.2 defines 0 and 1)`)
}

/** Apply a matching type to selector input: 0 Full (the input itself), 1 SHA2-256, 2 SHA2-512. */
export function applyMatchingType(input: Uint8Array, matchingType: number): Uint8Array {
  if (matchingType === 0) return input
  if (matchingType === 1) return createHash('sha256').update(input).digest()
  if (matchingType === 2) return createHash('sha512').update(input).digest()
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `matching type ${matchingType} cannot be computed (RFC 6698 §2.1.3 defines 0, 1 and 2)`)
}
