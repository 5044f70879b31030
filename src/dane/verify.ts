/** DANE verification of a peer chain against a TLSA RRset (RFC 6698 §2.1, RFC 7671 §5, RFC 7672 §3). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { bytesEqual, toHex } from '../bytes.js'
import type { TlsaDigest, TlsaRecord } from '../tlsa/types.js'
import { checkTlsaUsability, type DaneProfile } from '../tlsa/usability.js'
import { CertView } from '../x509/certificate.js'
import { buildPath, validatePath, type Anchor, type PathFailure } from '../x509/chain.js'
import { matchPresentedNames } from '../x509/names.js'
import { publicKeyFromSpki, verifySignature } from '../x509/signature.js'

/** Input of {@link verifyDane}. @public */
export interface DaneVerifyInput {
  /** The TLSA RRset as published; usability and digest agility are applied inside (RFC 7671 §9). */
  records: readonly TlsaRecord[]
  /** The peer chain as the server sent it: DER, leaf first. */
  chain: readonly Uint8Array[]
  /** Reference identifiers for DANE-TA (RFC 7672 §3.2.2); `.example.com` matches any subdomain. */
  names: readonly string[]
  /** Time for validity checks of DANE-TA paths. Default: the current time. DANE-EE ignores it. */
  now?: Date
  /** `smtp` (default, RFC 7672: usages 2 and 3) or `generic` (RFC 6698: all four usages). */
  profile?: DaneProfile
  /** Supported digests, strongest first (RFC 7671 §9). Default `['sha512', 'sha256']`. */
  digests?: readonly TlsaDigest[]
  /**
   * Generic profile only: the TLS stack's PKIX verdict for the chain (trusted root, name, dates).
   * PKIX-TA(0) and PKIX-EE(1) records authenticate only when this is `true` (RFC 6698 §2.1.1).
   */
  pkixValid?: boolean
  /**
   * Generic profile only: the certification path the TLS stack validated, leaf first, including
   * the trust anchor from its local store (which servers do not send). PKIX-TA(0) records are
   * matched against it (RFC 6698 §2.1.1: "found in any of the PKIX certification paths"); when
   * absent they are matched against the path built from `chain`.
   */
  pkixChain?: readonly Uint8Array[]
}

/** RFC 7218 names of the certificate usages. @public */
export type DaneUsageName = 'PKIX-TA' | 'PKIX-EE' | 'DANE-TA' | 'DANE-EE'

/** Where the trust anchor of a TA match came from. @public */
export type DaneAnchorSource = 'chain' | 'dns-certificate' | 'dns-public-key'

/** A successful DANE authentication. @public */
export interface DaneSuccess {
  ok: true
  /** The TLSA record that authenticated the peer. */
  record: TlsaRecord
  /**
   * Depth of the matched certificate (0 = leaf). A `2 0 0` anchor from DNS sits just above the
   * top of the path; a `2 1 0` bare key reports the depth of the certificate it signed (both
   * OpenSSL's convention).
   */
  depth: number
  usage: DaneUsageName
  /** The reference name that matched the leaf (not set for DANE-EE, which checks no names). */
  name?: string
  /** For TA usages: where the trust anchor came from. */
  anchor?: DaneAnchorSource
}

/** Failure codes of {@link verifyDane}. @public */
export type DaneFailureCode =
  'ERR_DANE_NO_USABLE_RECORDS' | 'ERR_DANE_NO_MATCH' | 'ERR_DANE_NAME_MISMATCH' | 'ERR_DANE_CHAIN_INVALID' | 'ERR_DANE_EXPIRED'

/** A failed DANE authentication; `detail` names the records tried. @public */
export interface DaneFailure {
  ok: false
  code: DaneFailureCode
  detail: string
}

/** Result of {@link verifyDane}. @public */
export type DaneResult = DaneSuccess | DaneFailure

const USAGE: readonly DaneUsageName[] = ['PKIX-TA', 'PKIX-EE', 'DANE-TA', 'DANE-EE']

/** `3 1 1 0a1b2c3d4e5f6a7b…` for details. */
function brief(r: TlsaRecord): string {
  const hex = toHex(r.data)
  return `${r.usage} ${r.selector} ${r.matchingType} ${hex.length > 16 ? hex.slice(0, 16) + '…' : hex}`
}

function fail(code: DaneFailureCode, detail: string): DaneFailure {
  return { ok: false, code, detail }
}

function checkInput(input: DaneVerifyInput): void {
  if (input === null || typeof input !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'verifyDane input must be an object')
  if (!Array.isArray(input.chain) || !input.chain.every((c) => c instanceof Uint8Array)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'chain must be an array of DER certificates (Uint8Array), leaf first')
  }
  if (!Array.isArray(input.names) || !input.names.every((n) => typeof n === 'string')) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'names must be an array of strings')
  }
  if (input.now !== undefined && !(input.now instanceof Date && Number.isFinite(input.now.getTime()))) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'now must be a valid Date')
  }
  if (input.pkixValid !== undefined && typeof input.pkixValid !== 'boolean') {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'pkixValid must be a boolean')
  }
  if (input.pkixChain !== undefined) {
    const p = input.pkixChain
    if (!Array.isArray(p) || p.length === 0 || !p.every((c) => c instanceof Uint8Array)) {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'pkixChain must be a non-empty array of DER certificates, leaf first')
    }
    const leaf = input.chain[0]
    if (leaf === undefined || !bytesEqual(p[0]!, leaf)) {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'pkixChain must start with the leaf of chain')
    }
  }
}

/**
 * Authenticate a peer chain with a TLSA RRset: DANE-EE(3), DANE-TA(2) (in the chain or, RFC 7671
 * §5.2.3, a `2 0 0` certificate or `2 1 0` key from DNS) and, under the generic profile, PKIX-TA(0)
 * and PKIX-EE(1) with the caller's PKIX verdict. Returns the verdict; throws only
 * `ERR_INVALID_ARGUMENT` for malformed caller input (hostile chain bytes are a verdict, never an
 * exception). Priority as OpenSSL: DANE-EE at the leaf, then DANE-TA from the lowest depth up,
 * then anchors from DNS, then PKIX-EE and PKIX-TA.
 *
 * @example
 * ```ts
 * const res = verifyDane({ records: [parseTlsaRecord('3 1 1 8cb0…')], chain: [leafDer], names: ['mx.example.com'] })
 * if (res.ok) console.log(`verified by ${res.usage} at depth ${res.depth}`)
 * else console.log(res.code, res.detail) // e.g. ERR_DANE_NO_MATCH
 * ```
 * @public
 */
export function verifyDane(input: DaneVerifyInput): DaneResult {
  try {
    return verifyDaneChecked(input)
  } catch (e) {
    throw coded(e, 'verifyDane')
  }
}

function verifyDaneChecked(input: DaneVerifyInput): DaneResult {
  checkInput(input)
  const opts: { profile?: DaneProfile; digests?: readonly TlsaDigest[] } = {}
  if (input.profile !== undefined) opts.profile = input.profile
  if (input.digests !== undefined) opts.digests = input.digests
  const { usable, unusable } = checkTlsaUsability(input.records, opts)
  if (usable.length === 0) {
    // RFC 7672 §2.2: no usable records means opportunistic TLS (`encrypt`), not a failed match.
    const why = unusable.map((u) => `${u.record?.data instanceof Uint8Array ? brief(u.record) : 'record'}: ${u.reason}`).join('; ')
    return fail('ERR_DANE_NO_USABLE_RECORDS', input.records.length === 0 ? 'the TLSA RRset is empty' : `no usable TLSA records (${why})`)
  }
  const chain = input.chain
  if (chain.length === 0) return fail('ERR_DANE_NO_MATCH', `the server sent no certificate; tried ${usable.map(brief).join(', ')}`)
  // Certificates above the leaf are looked at only when a TA usage needs them.
  const leaf = new CertView(chain[0]!)
  const leafError = leaf.error()
  if (leafError !== undefined) return fail('ERR_DANE_CHAIN_INVALID', `the leaf certificate does not parse: ${leafError}`)

  // RFC 7672 §3.1.1, RFC 7671 §5.1: DANE-EE matches the leaf only; no name, expiry or chain checks.
  for (const r of usable) {
    if (r.usage === 3 && leaf.matches(r.selector, r.matchingType, r.data)) return { ok: true, record: r, depth: 0, usage: 'DANE-EE' }
  }

  const ta = usable.filter((r) => r.usage === 2)
  const pkixEe = usable.filter((r) => r.usage === 1)
  const pkixTa = usable.filter((r) => r.usage === 0)
  const tried = (list: readonly TlsaRecord[]) => list.map(brief).join(', ')
  if (ta.length === 0 && pkixEe.length === 0 && pkixTa.length === 0) {
    return fail('ERR_DANE_NO_MATCH', `the leaf certificate matches no DANE-EE record; tried ${tried(usable)}`)
  }

  // TA usages look at issuers: every certificate the peer sent has to be one (a TLS stack would
  // have rejected the handshake otherwise).
  const certs = [leaf]
  for (let i = 1; i < chain.length; i++) certs.push(new CertView(chain[i]!))
  for (let i = 1; i < certs.length; i++) {
    const e = certs[i]!.error()
    if (e !== undefined) return fail('ERR_DANE_CHAIN_INVALID', `the certificate at position ${i} of the chain does not parse: ${e}`)
  }
  const path = buildPath(certs)
  const now = input.now === undefined ? Date.now() : input.now.getTime()
  const names = input.names

  const authenticate = (r: TlsaRecord, depth: number, below: readonly CertView[], anchor: Anchor, source: DaneAnchorSource): DaneResult => {
    const what = `${brief(r)} matched ${source === 'chain' ? `the certificate at depth ${depth}` : source === 'dns-certificate' ? 'a trust-anchor certificate from DNS' : 'a trust-anchor key from DNS'}`
    const f: PathFailure | undefined = validatePath(below, anchor, now)
    if (f !== undefined) return fail(f.code, `${what}, but ${f.detail}`)
    return checkNames(r, depth, source, what)
  }
  const checkNames = (r: TlsaRecord, depth: number, source: DaneAnchorSource | undefined, what: string): DaneResult => {
    // RFC 7672 §3.2.2-3.2.3: the leaf must carry one of the reference identifiers.
    if (names.length === 0) return fail('ERR_DANE_NAME_MISMATCH', `${what}, but no reference names were given`)
    let presented: string[]
    try {
      presented = leaf.dnsNames()
    } catch (e) {
      return fail('ERR_DANE_CHAIN_INVALID', `${what}, but the leaf names cannot be read: ${e instanceof Error ? e.message : String(e)}`)
    }
    const name = matchPresentedNames(presented, names)
    if (name === undefined) {
      const shown = presented.length > 0 ? presented.slice(0, 8).join(', ') : 'none'
      return fail('ERR_DANE_NAME_MISMATCH', `${what}, but the leaf names (${shown}) match none of ${names.join(', ')}`)
    }
    const ok: DaneSuccess = { ok: true, record: r, depth, usage: USAGE[r.usage]!, name }
    if (source !== undefined) ok.anchor = source
    return ok
  }

  if (ta.length > 0) {
    // RFC 7672 §3.1.2, RFC 7671 §5.2: a DANE-TA record matches an issuer (depth ≥ 1) on the path;
    // a TA record that matches only the leaf does not authenticate. Lowest depth first.
    for (let d = 1; d < path.length; d++) {
      const c = path[d]!
      for (const r of ta) {
        if (c.matches(r.selector, r.matchingType, r.data))
          return authenticate(r, d, path.slice(0, d), { kind: 'certificate', cert: c }, 'chain')
      }
    }
    // RFC 7671 §5.2.3: anchors from DNS. "2 0 0" carries the anchor certificate (depth just above
    // the path), "2 1 0" its bare public key (depth of the certificate it signs, as OpenSSL).
    const top = path[path.length - 1]!
    let firstFailure: DaneFailure | undefined
    for (const r of ta) {
      if (r.matchingType !== 0) continue
      if (r.selector === 0) {
        const a = new CertView(r.data)
        // A copy of the leaf itself is a TA record that matches only the leaf.
        if (a.slices() === undefined || bytesEqual(a.der, leaf.der)) continue
        if (!bytesEqual(top.issuer(), a.subject())) continue
        const res = authenticate(r, path.length, path, { kind: 'certificate', cert: a }, 'dns-certificate')
        if (res.ok) return res
        firstFailure ??= res
      } else {
        const key = publicKeyFromSpki(r.data)
        if (typeof key === 'string') continue
        if (verifySignature(top.signatureMethod(), top.tbs(), top.signature(), key) !== undefined) continue
        const res = authenticate(r, path.length - 1, path, { kind: 'key', key }, 'dns-public-key')
        if (res.ok) return res
        firstFailure ??= res
      }
    }
    if (firstFailure !== undefined) return firstFailure
  }

  // RFC 6698 §2.1.1 (generic profile): PKIX usages add a constraint to PKIX validation, which is
  // the TLS stack's job: its verdict comes in as `pkixValid`.
  const pkixVerdict = (r: TlsaRecord, depth: number, what: string): DaneResult => {
    if (input.pkixValid !== true) {
      return fail(
        'ERR_DANE_CHAIN_INVALID',
        `${what}, but ${input.pkixValid === false ? 'PKIX validation failed' : 'no PKIX verdict (pkixValid) was supplied'} (RFC 6698 §2.1.1)`,
      )
    }
    return checkNames(r, depth, depth === 0 ? undefined : 'chain', what)
  }
  for (const r of pkixEe) {
    if (leaf.matches(r.selector, r.matchingType, r.data)) return pkixVerdict(r, 0, `${brief(r)} matched the leaf`)
  }
  // The TLS stack's validated path when given (its anchor comes from the local store), else ours.
  const fromStack = input.pkixChain !== undefined
  const pkixPath = fromStack ? input.pkixChain!.map((d, i) => (i < certs.length && d === chain[i] ? certs[i]! : new CertView(d))) : path
  for (let d = 1; d < pkixPath.length; d++) {
    const c = pkixPath[d]!
    for (const r of pkixTa) {
      if (!c.matches(r.selector, r.matchingType, r.data)) continue
      const what = `${brief(r)} matched the certificate at depth ${d}${fromStack ? ' of the PKIX path' : ''}`
      if (!fromStack) {
        // Our own path: make sure the matched certificate really issued the leaf.
        const f = validatePath(path.slice(0, d), { kind: 'certificate', cert: c }, now)
        if (f !== undefined) return fail(f.code, `${what}, but ${f.detail}`)
      }
      return pkixVerdict(r, d, what)
    }
  }

  const depths = path.length === 1 ? 'the leaf' : `a path of ${path.length} certificates`
  return fail('ERR_DANE_NO_MATCH', `no usable TLSA record matched ${depths}; tried ${tried(usable)}`)
}
