/** PEM (RFC 7468) to DER for certificates, and the `cert: Uint8Array | string` input convention. */
import { coded, describeValue, invalidArgument, isBytes } from '../args.js'
import { SmtpTlsError } from '../errors.js'

const BEGIN = '-----BEGIN CERTIFICATE-----'
const END = '-----END CERTIFICATE-----'
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Decode every `CERTIFICATE` block of a PEM text, in order (RFC 7468 §5). Text outside the blocks
 * (such as OpenSSL's `subject=` lines) is ignored.
 * Throws `ERR_PEM_SYNTAX` when there is no block or a block is malformed.
 * @public
 */
export function pemToDerAll(pem: string): Uint8Array[] {
  try {
    return pemToDerAllChecked(pem)
  } catch (e) {
    throw coded(e, 'pemToDerAll')
  }
}

function pemToDerAllChecked(pem: string): Uint8Array[] {
  if (typeof pem !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'PEM input must be a string')
  const out: Uint8Array[] = []
  let from = 0
  for (;;) {
    const b = pem.indexOf(BEGIN, from)
    if (b < 0) break
    const e = pem.indexOf(END, b + BEGIN.length)
    if (e < 0) {
      throw new SmtpTlsError('ERR_PEM_SYNTAX', `PEM block at offset ${b} has no END line`, { position: b })
    }
    const body = pem.slice(b + BEGIN.length, e).replace(/[\r\n\t ]+/g, '')
    if (body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body)) {
      throw new SmtpTlsError('ERR_PEM_SYNTAX', `PEM block at offset ${b} is not valid base64`, { position: b })
    }
    out.push(new Uint8Array(Buffer.from(body, 'base64')))
    from = e + END.length
  }
  if (out.length === 0) throw new SmtpTlsError('ERR_PEM_SYNTAX', 'no "-----BEGIN CERTIFICATE-----" block found')
  return out
}

/** Decode the first certificate of a PEM text. @public */
export function pemToDer(pem: string): Uint8Array {
  return pemToDerAll(pem)[0]!
}

/** Encode DER as a PEM `CERTIFICATE` block with 64-column lines. @public */
export function derToPem(der: Uint8Array): string {
  try {
    return derToPemChecked(der)
  } catch (e) {
    throw coded(e, 'derToPem')
  }
}

function derToPemChecked(der: Uint8Array): string {
  if (!isBytes(der)) throw invalidArgument(`derToPem needs DER bytes (a Uint8Array), got ${describeValue(der)}`)
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64')
  let s = BEGIN + '\n'
  for (let i = 0; i < b64.length; i += 64) s += b64.slice(i, i + 64) + '\n'
  return s + END + '\n'
}

const DASHES = 0x2d // '-'

/**
 * Accept a certificate as DER bytes, PEM text, or PEM bytes; return DER (a view, not a copy, for DER input).
 */
export function toDer(cert: Uint8Array | string): Uint8Array {
  if (typeof cert === 'string') return pemToDer(cert)
  if (!(cert instanceof Uint8Array)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'certificate must be DER bytes (Uint8Array) or PEM text')
  }
  // A PEM file read as bytes starts with dashes (or text before them); DER starts with 0x30.
  if (cert.length > 0 && cert[0] !== 0x30) {
    const text = Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength).toString('latin1')
    if (text.includes(BEGIN) || cert[0] === DASHES) return pemToDer(text)
  }
  return cert
}
