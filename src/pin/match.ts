/**
 * Pin matching for Postfix's `fingerprint` security level: each pin is compared with the leaf
 * certificate's digest and with its public key's digest, as Postfix does (a pin acts like the
 * TLSA records `3 0 255` and `3 1 255`). No name or expiry checks at this level.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { bytesEqual, hexValue, toHexSeparated } from '../bytes.js'
import { sliceCertificate } from '../x509/der.js'
import { toDer } from '../x509/pem.js'
import { checkDigest, fingerprintBytes, PIN_DIGEST_LENGTH, type PinDigest, type PinSubject } from './fingerprint.js'

/** Options of {@link parsePins} and {@link matchPins}. @public */
export interface PinOptions {
  /** Default `sha256` (Postfix ≥ 3.6 default `smtp_tls_fingerprint_digest`). */
  digest?: PinDigest
}

/** A pin that matched. @public */
export interface PinMatch {
  ok: true
  /** The matching pin, formatted `AB:CD:…`. */
  pin: string
  /** Position of the pin in the parsed list. */
  index: number
  /** Whether the certificate or its public key matched. */
  of: PinSubject
}

/** No pin matched, or the leaf is not a certificate. @public */
export interface PinMismatch {
  ok: false
  code: 'ERR_PIN_MISMATCH' | 'ERR_CERT_PARSE'
  detail: string
}

/** Result of {@link matchPins}. @public */
export type PinResult = PinMatch | PinMismatch

function syntax(message: string, position: number): never {
  throw new SmtpTlsError('ERR_PIN_SYNTAX', message, { position, temporary: false })
}

/**
 * Parse pins: `AB:CD:…` or `abcd…` (any case), several separated by `|` (Postfix `match=` syntax)
 * or given as a list (whose items may contain `|` too). Every pin must be exactly one digest of
 * the chosen algorithm; colons, when used, separate every octet.
 *
 * @throws {@link SmtpTlsError} `ERR_PIN_SYNTAX` (with `position` = index of the offending pin in
 * the flattened list) for a malformed or empty pin, or an empty string. An empty list gives no
 * pins (and {@link matchPins} then reports `ERR_PIN_MISMATCH`).
 * @example
 * ```ts
 * parsePins('AB:CD:…|ef01…') // two 32-byte digests
 * ```
 * @public
 */
export function parsePins(pins: string | readonly string[], opts: PinOptions = {}): Uint8Array[] {
  try {
    return parsePinsChecked(pins, opts)
  } catch (e) {
    throw coded(e, 'parsePins')
  }
}

function parsePinsChecked(pins: string | readonly string[], opts: PinOptions = {}): Uint8Array[] {
  const digest = checkDigest(opts?.digest)
  const want = PIN_DIGEST_LENGTH[digest]
  let items: string[]
  if (typeof pins === 'string') items = pins.split('|')
  else if (Array.isArray(pins) && pins.every((p) => typeof p === 'string')) items = pins.flatMap((p: string) => p.split('|'))
  else throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'pins must be a string or a list of strings')
  const out: Uint8Array[] = []
  for (let k = 0; k < items.length; k++) {
    const text = items[k]!.trim()
    if (text.length === 0) {
      if (items.length === 1) syntax('no pin given', 0)
      syntax(`pin ${k + 1} is empty`, k)
    }
    const colons = text.includes(':')
    const bytes: number[] = []
    let i = 0
    while (i < text.length) {
      const hi = hexValue(text.charCodeAt(i))
      const lo = i + 1 < text.length ? hexValue(text.charCodeAt(i + 1)) : -1
      if (hi < 0 || lo < 0) syntax(`pin ${k + 1} is not hexadecimal octets (near character ${i + 1}: "${text}")`, k)
      bytes.push((hi << 4) | lo)
      i += 2
      if (colons && i < text.length) {
        if (text[i] !== ':' || i + 1 >= text.length) syntax(`pin ${k + 1} must separate every octet with one colon ("${text}")`, k)
        i++
      }
    }
    if (bytes.length !== want) syntax(`pin ${k + 1} has ${bytes.length} octets; a ${digest} digest has ${want}`, k)
    out.push(new Uint8Array(bytes))
  }
  return out
}

/**
 * Match the peer's leaf certificate (DER bytes as sent, or PEM) against pins. Each pin may match
 * the certificate or its public key (Postfix `fingerprint` level). Leaf only; no name or expiry
 * checks. Hostile leaf bytes give `{ ok: false, code: 'ERR_CERT_PARSE' }`, never an exception.
 *
 * @throws {@link SmtpTlsError} `ERR_PIN_SYNTAX` for malformed pins, `ERR_INVALID_ARGUMENT` for bad options.
 * @example
 * ```ts
 * const res = matchPins(leafDer, 'AB:CD:…|EF:01:…')
 * if (!res.ok) console.log(res.code, res.detail) // ERR_PIN_MISMATCH
 * ```
 * @public
 */
export function matchPins(cert: Uint8Array | string, pins: string | readonly string[], opts: PinOptions = {}): PinResult {
  try {
    return matchPinsChecked(cert, pins, opts)
  } catch (e) {
    throw coded(e, 'matchPins')
  }
}

function matchPinsChecked(cert: Uint8Array | string, pins: string | readonly string[], opts: PinOptions = {}): PinResult {
  const digest = checkDigest(opts?.digest)
  const list = parsePins(pins, { digest })
  let der: Uint8Array
  try {
    der = toDer(cert)
    sliceCertificate(der)
  } catch (e) {
    if (e instanceof SmtpTlsError && (e.code === 'ERR_CERT_PARSE' || (e.code === 'ERR_PEM_SYNTAX' && cert instanceof Uint8Array))) {
      return { ok: false, code: 'ERR_CERT_PARSE', detail: `the peer certificate does not parse: ${e.message}` }
    }
    throw e
  }
  const ofCert = fingerprintBytes(der, digest, 'certificate')
  const ofKey = fingerprintBytes(der, digest, 'publicKey')
  for (let i = 0; i < list.length; i++) {
    const p = list[i]!
    if (bytesEqual(p, ofCert)) return { ok: true, pin: toHexSeparated(p, ':'), index: i, of: 'certificate' }
    if (bytesEqual(p, ofKey)) return { ok: true, pin: toHexSeparated(p, ':'), index: i, of: 'publicKey' }
  }
  return {
    ok: false,
    code: 'ERR_PIN_MISMATCH',
    detail: `none of ${list.length} ${digest} pin(s) matches the certificate (${toHexSeparated(ofCert, ':')}) or its public key (${toHexSeparated(ofKey, ':')})`,
  }
}
