/**
 * Certification path building and validation up to a DANE-TA(2) trust anchor (RFC 7671 §5.2,
 * RFC 5280 §6.1 without policy processing). Pure: `now` is a parameter.
 */
import type { KeyObject } from 'node:crypto'
import { SmtpTlsError } from '../errors.js'
import { bytesEqual } from '../bytes.js'
import type { CertView } from './certificate.js'
import { EKU_SERVER_AUTH, KU } from './extensions.js'
import { normalizePresentedName } from './names.js'
import { verifySignature } from './signature.js'

/**
 * Order the sent certificates into a path leaf → issuer → … by issuer/subject Name byte equality
 * (RFC 5280 §6.1, as OpenSSL's chain builder does with the untrusted certificates). Each
 * certificate is used at most once; the adjacent one is preferred; unparsable ones are skipped.
 * `certs[0]` must parse.
 */
export function buildPath(certs: readonly CertView[]): CertView[] {
  const path: CertView[] = [certs[0]!]
  const used = new Uint8Array(certs.length)
  used[0] = 1
  let last = 0
  for (;;) {
    const cur = path[path.length - 1]!
    if (cur.selfIssued()) break
    const want = cur.issuer()
    let next = -1
    const adjacent = last + 1
    if (adjacent < certs.length && used[adjacent] === 0 && fits(certs[adjacent]!, want)) next = adjacent
    else {
      for (let i = 1; i < certs.length; i++) {
        if (used[i] === 0 && fits(certs[i]!, want)) {
          next = i
          break
        }
      }
    }
    if (next < 0) break
    used[next] = 1
    last = next
    path.push(certs[next]!)
  }
  return path
}

function fits(c: CertView, issuerName: Uint8Array): boolean {
  return c.slices() !== undefined && bytesEqual(c.subject(), issuerName)
}

/** The trust anchor that signs the top of the validated part of the path. */
export type Anchor =
  | { kind: 'certificate'; cert: CertView } // in the chain, or a "2 0 0" record (RFC 7671 §5.2.3)
  | { kind: 'key'; key: KeyObject } // a "2 1 0" bare public key (RFC 7671 §5.2.3)

export type PathFailure = { code: 'ERR_DANE_CHAIN_INVALID' | 'ERR_DANE_EXPIRED'; detail: string }

function where(depth: number): string {
  return depth === 0 ? 'leaf (depth 0)' : `certificate at depth ${depth}`
}

/**
 * Validate `below` (leaf first: every certificate under the anchor) against `anchor` at `now`.
 * Checks, RFC 5280 §6.1 minus policies: each signature with the next certificate's key (the last
 * with the anchor's); issuer Name = next subject Name; no unknown critical extension; issuers are
 * CAs (basicConstraints cA, keyUsage keyCertSign where present, pathLenConstraint); name
 * constraints (dNSName) of the issuers and a certificate anchor; the leaf's extended key usage
 * (serverAuth, when present) and key usage, as OpenSSL's TLS client purpose does; and the
 * validity of every certificate below the anchor (RFC 7671 §5.2: not of the anchor itself).
 * Structural and signature defects win over expiry.
 */
export function validatePath(below: readonly CertView[], anchor: Anchor, now: number): PathFailure | undefined {
  try {
    return validate(below, anchor, now)
  } catch (e) {
    if (e instanceof SmtpTlsError) return { code: 'ERR_DANE_CHAIN_INVALID', detail: e.message }
    throw e
  }
}

function validate(below: readonly CertView[], anchor: Anchor, now: number): PathFailure | undefined {
  const invalid = (detail: string): PathFailure => ({ code: 'ERR_DANE_CHAIN_INVALID', detail })
  const n = below.length
  let nonSelfIssuedBelow = 0 // intermediates (depth ≥ 1) under the current certificate, for pathLen
  for (let i = 0; i < n; i++) {
    const c = below[i]!
    const ext = c.extensions()
    if (ext.unknownCritical.length > 0) {
      return invalid(`${where(i)} has unsupported critical extension ${ext.unknownCritical.join(', ')} (RFC 5280 §4.2)`)
    }
    if (i === 0) {
      // OpenSSL's TLS server purpose (check_purpose_ssl_server): EKU, when present, lists serverAuth;
      // keyUsage, when present, allows a TLS key exchange or signature.
      if (ext.extKeyUsage !== undefined && !ext.extKeyUsage.includes(EKU_SERVER_AUTH)) {
        return invalid('leaf (depth 0) extendedKeyUsage does not include serverAuth (RFC 5280 §4.2.1.12)')
      }
      if (ext.keyUsage >= 0 && (ext.keyUsage & (KU.digitalSignature | KU.keyEncipherment | KU.keyAgreement)) === 0) {
        return invalid('leaf (depth 0) keyUsage allows neither digitalSignature, keyEncipherment nor keyAgreement')
      }
    } else {
      const f = issuerConstraints(c, i, nonSelfIssuedBelow, false)
      if (f !== undefined) return invalid(f)
      if (!c.selfIssued()) nonSelfIssuedBelow++
    }
    // Name and signature link to the next certificate up, or to the anchor.
    const up = i + 1 < n ? below[i + 1]! : anchor.kind === 'certificate' ? anchor.cert : undefined
    if (up !== undefined && !bytesEqual(c.issuer(), up.subject())) {
      return invalid(`${where(i)} issuer Name differs from the subject of its issuer (RFC 5280 §6.1.3 (a)(4))`)
    }
    const key = up !== undefined ? up.publicKey() : anchor.kind === 'key' ? anchor.key : 'no key'
    if (typeof key === 'string') return invalid(`issuer of ${where(i)}: ${key}`)
    const bad = verifySignature(c.signatureMethod(), c.tbs(), c.signature(), key)
    if (bad !== undefined) return invalid(`${where(i)}: ${bad} (RFC 5280 §6.1.3 (a)(1))`)
  }
  // The anchor, when it is a certificate, constrains what it issues like any CA above the leaf
  // (OpenSSL checks a DANE-TA certificate's CA flag, key usage, purpose and path length too; it
  // does not check its dates).
  if (anchor.kind === 'certificate' && n > 0) {
    const ext = anchor.cert.extensions()
    if (ext.unknownCritical.length > 0) {
      return invalid(`the trust anchor (depth ${n}) has unsupported critical extension ${ext.unknownCritical.join(', ')} (RFC 5280 §4.2)`)
    }
    const f = issuerConstraints(anchor.cert, n, nonSelfIssuedBelow, true)
    if (f !== undefined) return invalid(f)
    if (ext.nameConstraints !== undefined) {
      const f = checkNameConstraints(below[0]!, ext.nameConstraints, n)
      if (f !== undefined) return invalid(f)
    }
  }
  for (let i = 1; i < n; i++) {
    const nc = below[i]!.extensions().nameConstraints
    if (nc !== undefined) {
      const f = checkNameConstraints(below[0]!, nc, i)
      if (f !== undefined) return invalid(f)
    }
  }
  // RFC 5280 §6.1.3 (a)(2): validity of each certificate below the anchor (RFC 7671 §5.2.2, Postfix
  // tafile: the anchor's own dates are not checked).
  for (let i = 0; i < n; i++) {
    const [nb, na] = below[i]!.validity()
    if (now < nb) return { code: 'ERR_DANE_EXPIRED', detail: `${where(i)} is not yet valid (notBefore ${iso(nb)})` }
    if (now > na) return { code: 'ERR_DANE_EXPIRED', detail: `${where(i)} has expired (notAfter ${iso(na)})` }
  }
  return undefined
}

function iso(ms: number): string {
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString()
}

/**
 * RFC 5280 §6.1.4 (k), (l), (m), (n) for an issuer at `depth`. Intermediates need basicConstraints
 * cA; a trust-anchor certificate may also be a v1 self-issued root or carry keyCertSign without
 * basicConstraints (OpenSSL's X509_check_ca, not strict).
 */
function issuerConstraints(c: CertView, depth: number, intermediatesBelow: number, isAnchor: boolean): string | undefined {
  const ext = c.extensions()
  const label = isAnchor ? `the trust anchor (depth ${depth})` : where(depth)
  if (
    ext.hasBasicConstraints
      ? !ext.ca
      : !(isAnchor && ((c.slices()!.version === 0 && c.selfIssued()) || (ext.keyUsage >= 0 && (ext.keyUsage & KU.keyCertSign) !== 0)))
  ) {
    return `${label} is not a CA (basicConstraints cA, RFC 5280 §6.1.4 (k))`
  }
  if (ext.keyUsage >= 0 && (ext.keyUsage & KU.keyCertSign) === 0) {
    return `${label} keyUsage lacks keyCertSign (RFC 5280 §6.1.4 (n))`
  }
  if (ext.pathLen >= 0 && intermediatesBelow > ext.pathLen) {
    return `${label} pathLenConstraint ${ext.pathLen} exceeded by ${intermediatesBelow} intermediate(s) below it (RFC 5280 §4.2.1.9)`
  }
  if (ext.extKeyUsage !== undefined && !ext.extKeyUsage.includes(EKU_SERVER_AUTH)) {
    return `${label} extendedKeyUsage does not include serverAuth`
  }
  return undefined
}

/** dNSName name constraints (RFC 5280 §4.2.1.10) applied to the leaf's DNS names. */
function checkNameConstraints(
  leaf: CertView,
  nc: { permittedDns: string[]; excludedDns: string[]; otherForms: string[] },
  depth: number,
): string | undefined {
  if (nc.otherForms.length > 0) {
    return `${where(depth)} has name constraints of forms this library does not check (${[...new Set(nc.otherForms)].join(', ')})`
  }
  for (const raw of leaf.dnsNames()) {
    // The form the name check compares (names.ts, the same function), or for a name that is no valid
    // DNS name (it matches nothing) its raw lower-case bytes, as OpenSSL compares them.
    const raws = raw.toLowerCase()
    const name = normalizePresentedName(raw) ?? raws
    for (const ex of nc.excludedDns) {
      if (withinSubtree(name, ex) || withinSubtree(raws, ex))
        return `leaf name ${name} is excluded by the name constraints of the ${where(depth)}`
    }
    if (nc.permittedDns.length > 0 && !nc.permittedDns.some((p) => withinSubtree(name, p))) {
      return `leaf name ${name} is outside the permitted name constraints of the ${where(depth)}`
    }
  }
  return undefined
}

/** RFC 5280 §4.2.1.10: `example.com` covers itself and every name below it; `.example.com` only below. */
function withinSubtree(name: string, base: string): boolean {
  let b = base.toLowerCase()
  if (b.length === 0) return true
  if (b.startsWith('.')) return name.endsWith(b)
  if (b.endsWith('.')) b = b.slice(0, -1)
  return name === b || name.endsWith('.' + b)
}
