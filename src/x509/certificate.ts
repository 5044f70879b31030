/**
 * A certificate as the verifier sees it during one call: sliced once, with every derived value
 * (digests per selector and matching type, extensions, public key, validity) computed lazily and
 * cached, so no certificate is parsed or hashed twice whatever the number of TLSA records.
 */
import * as nodeCrypto from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { SmtpTlsError } from '../errors.js'
import { bytesEqual } from '../bytes.js'
import { decodeTime, sliceCertificate, type CertificateSlices } from './der.js'
import { readExtensions, type ExtensionInfo } from './extensions.js'
import { presentedNames } from './names.js'
import { publicKeyFromSpki, signatureMethod, type SignatureMethod } from './signature.js'

// Digests are kept as latin1 ('binary') strings, one char per octet: a digest returned as a string costs a
// fraction of one returned as a Buffer (no native backing store to allocate and collect), and
// one-shot crypto.hash (node ≥ 20.12) skips the Hash object.
const oneShot = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined
function digest(alg: 'sha256' | 'sha512', data: Uint8Array): string {
  return oneShot !== undefined ? oneShot(alg, data, 'binary') : nodeCrypto.createHash(alg).update(data).digest('binary')
}

/** Compare a latin1 digest string with digest bytes (lengths first, then every octet). */
function digestEquals(d: string, data: Uint8Array): boolean {
  if (d.length !== data.length) return false
  let x = 0
  for (let i = 0; i < data.length; i++) x |= d.charCodeAt(i) ^ data[i]!
  return x === 0
}

export class CertView {
  readonly der: Uint8Array
  private sl: CertificateSlices | undefined
  private parseError: string | undefined
  /** SHA2-256/512 digests as latin1 strings; index = selector * 2 + (matchingType - 1) */
  private digests: (string | undefined)[] | undefined
  private ext: ExtensionInfo | undefined
  private key: KeyObject | string | undefined
  private method: SignatureMethod | undefined
  private times: [number, number] | undefined
  private names: string[] | undefined

  constructor(der: Uint8Array) {
    this.der = der
  }

  /** The slices, or `undefined` when the certificate does not parse (see {@link error}). */
  slices(): CertificateSlices | undefined {
    if (this.sl === undefined && this.parseError === undefined) {
      try {
        this.sl = sliceCertificate(this.der)
      } catch (e) {
        this.parseError = e instanceof SmtpTlsError ? e.message : String(e)
      }
    }
    return this.sl
  }

  /** Why the certificate does not parse, or `undefined`. */
  error(): string | undefined {
    this.slices()
    return this.parseError
  }

  /** RFC 6698 §2.1.2: the selector input (a view, no copy); undefined if unparsable. */
  selectorInput(selector: number): Uint8Array | undefined {
    const s = this.slices()
    if (s === undefined) return undefined
    // Cert(0) is the DER as sent (it still has to be a certificate); SPKI(1) its public key.
    if (selector === 0) return this.der
    // A plain Uint8Array view: Buffer#subarray would go through Buffer's species constructor.
    return new Uint8Array(this.der.buffer, this.der.byteOffset + s.spkiStart, s.spkiEnd - s.spkiStart)
  }

  /**
   * Does this certificate match the TLSA record's selector, matching type and data
   * (RFC 6698 §2.1.2-2.1.3)? Each digest is computed at most once per certificate.
   */
  matches(selector: number, matchingType: number, data: Uint8Array): boolean {
    if (matchingType === 0) {
      const input = this.selectorInput(selector)
      return input !== undefined && bytesEqual(input, data)
    }
    const i = selector * 2 + matchingType - 1
    let d = this.digests?.[i]
    if (d === undefined) {
      const input = this.selectorInput(selector)
      if (input === undefined) return false
      d = digest(matchingType === 1 ? 'sha256' : 'sha512', input)
      ;(this.digests ??= [])[i] = d
    }
    return digestEquals(d, data)
  }

  spki(): Uint8Array {
    const s = this.slices()!
    return this.der.subarray(s.spkiStart, s.spkiEnd)
  }

  subject(): Uint8Array {
    const s = this.slices()!
    return this.der.subarray(s.subjectStart, s.subjectEnd)
  }

  issuer(): Uint8Array {
    const s = this.slices()!
    return this.der.subarray(s.issuerStart, s.issuerEnd)
  }

  /** Issuer and subject Names are byte-equal (self-issued, RFC 5280 §3.2). */
  selfIssued(): boolean {
    return bytesEqual(this.issuer(), this.subject())
  }

  /** Extensions; throws `ERR_CERT_PARSE` when they are malformed. */
  extensions(): ExtensionInfo {
    if (this.ext === undefined) this.ext = readExtensions(this.der, this.slices()!)
    return this.ext
  }

  /** DNS-IDs, or the CN-IDs when there are none (RFC 6125 §6.4.4). */
  dnsNames(): string[] {
    if (this.names === undefined) this.names = presentedNames(this.der, this.slices()!, this.extensions())
    return this.names
  }

  /** The public key as a node KeyObject, or the reason it cannot be used. */
  publicKey(): KeyObject | string {
    if (this.key === undefined) this.key = publicKeyFromSpki(this.spki())
    return this.key
  }

  /** How this certificate's own signature is verified (RFC 5280 §4.1.1.2). */
  signatureMethod(): SignatureMethod {
    if (this.method === undefined) {
      const s = this.slices()!
      // RFC 5280 §4.1.2.3: the inner signature field MUST equal the outer signatureAlgorithm.
      if (!bytesEqual(this.der.subarray(s.tbsSigAlgStart, s.tbsSigAlgEnd), this.der.subarray(s.sigAlgStart, s.sigAlgEnd))) {
        this.method = { ok: false, reason: 'signature algorithm inside and outside TBSCertificate differ (RFC 5280 §4.1.2.3)' }
      } else this.method = signatureMethod(this.der, s.sigAlgStart, s.sigAlgEnd)
    }
    return this.method
  }

  tbs(): Uint8Array {
    const s = this.slices()!
    return this.der.subarray(s.tbsStart, s.tbsEnd)
  }

  signature(): Uint8Array {
    const s = this.slices()!
    return this.der.subarray(s.signatureStart, s.signatureEnd)
  }

  /** [notBefore, notAfter] in ms since the epoch; throws `ERR_CERT_PARSE` for a bad time. */
  validity(): [number, number] {
    if (this.times === undefined) {
      const s = this.slices()!
      this.times = [decodeTime(this.der, s.notBeforeStart, s.notBeforeEnd), decodeTime(this.der, s.notAfterStart, s.notAfterEnd)]
    }
    return this.times
  }
}
