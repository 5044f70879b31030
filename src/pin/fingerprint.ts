/** Certificate and public-key fingerprints in Postfix's `AB:CD:…` form (Postfix `fingerprint` level). */
import { coded } from '../args.js'
import { createHash } from 'node:crypto'
import { SmtpTlsError } from '../errors.js'
import { toHexSeparated } from '../bytes.js'
import { sliceCertificate } from '../x509/der.js'
import { toDer } from '../x509/pem.js'

/** Digest algorithms of pins (Postfix `smtp_tls_fingerprint_digest`). @public */
export type PinDigest = 'sha256' | 'sha512' | 'sha1' | 'md5'

/** What a fingerprint covers: the whole DER certificate or its SubjectPublicKeyInfo. @public */
export type PinSubject = 'certificate' | 'publicKey'

/** Options of {@link certificateFingerprint}. @public */
export interface FingerprintOptions {
  /** Default `sha256`. */
  digest?: PinDigest
  /** Default `certificate`. */
  of?: PinSubject
}

/** Digest output lengths in octets. */
export const PIN_DIGEST_LENGTH: Readonly<Record<PinDigest, number>> = { sha256: 32, sha512: 64, sha1: 20, md5: 16 }

export function checkDigest(d: unknown): PinDigest {
  if (d === undefined) return 'sha256'
  if (d === 'sha256' || d === 'sha512' || d === 'sha1' || d === 'md5') return d
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `digest must be sha256, sha512, sha1 or md5, got ${String(d)}`)
}

export function checkSubject(o: unknown): PinSubject {
  if (o === undefined) return 'certificate'
  if (o === 'certificate' || o === 'publicKey') return o
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `of must be "certificate" or "publicKey", got ${String(o)}`)
}

/** The digest bytes a pin is compared with. `der` must be a well-formed certificate. */
export function fingerprintBytes(der: Uint8Array, digest: PinDigest, of: PinSubject): Uint8Array {
  const s = sliceCertificate(der)
  const input = of === 'certificate' ? der : der.subarray(s.spkiStart, s.spkiEnd)
  return createHash(digest).update(input).digest()
}

/**
 * The fingerprint of a certificate (DER or PEM) or of its public key, as Postfix prints it:
 * upper-case hex octets separated by colons.
 *
 * @throws {@link SmtpTlsError} `ERR_CERT_PARSE`/`ERR_PEM_SYNTAX` for a bad certificate,
 * `ERR_INVALID_ARGUMENT` for bad options.
 * @example
 * ```ts
 * certificateFingerprint(pem) // 'A1:B2:…' (SHA-256 of the certificate)
 * certificateFingerprint(pem, { digest: 'sha256', of: 'publicKey' }) // for smtp_tls_fingerprint_cert_match
 * ```
 * @public
 */
export function certificateFingerprint(cert: Uint8Array | string, opts: FingerprintOptions = {}): string {
  try {
    return certificateFingerprintChecked(cert, opts)
  } catch (e) {
    throw coded(e, 'certificateFingerprint')
  }
}

function certificateFingerprintChecked(cert: Uint8Array | string, opts: FingerprintOptions = {}): string {
  if (opts === null || typeof opts !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'options must be an object')
  const digest = checkDigest(opts.digest)
  const of = checkSubject(opts.of)
  return toHexSeparated(fingerprintBytes(toDer(cert), digest, of), ':')
}
