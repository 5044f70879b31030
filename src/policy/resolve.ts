/**
 * Effective policy per MX host: the configured level (table entry or global default) combined with
 * the DNS facts the caller gathered, as Postfix `smtp_tls_policy.c` (`policy_create`, `dane_init`,
 * `dane_incompat`) computes it, with RFC 7672 §2 as the normative reference.
 */
import { coded } from '../args.js'
import type { TlsaLookupStatus } from '../dns/types.js'
import { SmtpTlsError, type ErrorCode, type TlsRptResultType } from '../errors.js'
import type { PinDigest } from '../pin/fingerprint.js'
import { parsePins } from '../pin/match.js'
import { formatTlsaRecord } from '../tlsa/format.js'
import type { TlsaDigest, TlsaRecord } from '../tlsa/types.js'
import { checkTlsaUsability } from '../tlsa/usability.js'
import { isSecurityLevel, minLevel, mustEncrypt, type EffectiveLevel, type SecurityLevel } from './levels.js'
import type { CipherGrade, ExternalPolicyInfo, ProtocolPolicy, TlsPolicy } from './table.js'
import type { TraceStep } from './trace.js'

/**
 * The next-hop destination as the policy engine needs it. A `DestinationFacts` from the resolver
 * (src/dns/types.ts) fits as is.
 * @public
 */
export interface PolicyDestinationFacts {
  /** The next-hop domain (or host for `[host]`), lower case, no brackets or port. */
  domain: string
  /** Default 25. */
  port?: number
  /** `false` for `[host]` next hops (no MX lookup). Default `true`. */
  mxLookup?: boolean
  /** No MX records: the domain itself is the host (RFC 5321 §5.1). Default `false`. */
  implicitMx?: boolean
  /** The MX RRset and every CNAME leading to it were validated (RFC 7672 §2.2.1). */
  mxSecure: boolean
  /** The next-hop domain after CNAME expansion of the MX lookup. */
  canonicalDomain?: string
}

/** TLSA facts for one host (a `TlsaFacts` from the resolver fits). @public */
export interface PolicyTlsaFacts {
  status: TlsaLookupStatus
  /** The TLSA RRset as received (all records; usability is judged here). */
  records: readonly TlsaRecord[]
  /** The TLSA base domain (RFC 7672 §2.2.2); default: the host name. */
  base?: string
  /** `_25._tcp.<base>`. */
  qname?: string
  /** Records of the RRset too short to decode (RFC 6698 §2.1), with the reason: unusable, and they keep the RRset non-empty. */
  undecodable?: readonly { reason: string }[]
  error?: { message: string }
}

/** One SMTP server host (an `MxHostFacts` from the resolver fits). @public */
export interface PolicyHostFacts {
  /** The MX exchange as published (or the `[host]` / implicit-MX name). */
  host: string
  /** The host name after CNAME expansion. */
  canonicalHost?: string
  /** Every address response was validated (RFC 7672 §2.2.2). */
  addressSecure: boolean
  tlsa: PolicyTlsaFacts
  /** DANE-TA reference identifiers (RFC 7672 §3.2.2); computed here when absent. */
  referenceNames?: readonly string[]
}

/** Options a sender sets per message (RFC 8689). @public */
export interface MessageTlsOptions {
  /** RFC 8689 REQUIRETLS MAIL FROM parameter. Overrides `tlsRequiredNo`. */
  requireTls?: boolean
  /** RFC 8689 §4.2.2 `TLS-Required: No` header: ignore DANE and the policy table, cap at `may`. */
  tlsRequiredNo?: boolean
}

/** Configuration that Postfix keeps in main.cf. @public */
export interface PolicyOptions {
  /** `smtp_tls_security_level`, used when no table entry applies. Default `may` (see docs/policy.md). */
  defaultLevel?: SecurityLevel
  /** `smtp_tls_dane_insecure_mx_policy`: `may` | `encrypt` | `dane` (default, "half-dane"). */
  insecureMxPolicy?: 'may' | 'encrypt' | 'dane'
  /** `smtp_tls_fingerprint_digest`. Default `sha256`. */
  fingerprintDigest?: PinDigest
  /** `smtp_tls_fingerprint_cert_match`: pins used when the policy has no `match=`. */
  fingerprintMatch?: readonly string[]
  /** `smtp_tls_verify_cert_match`. Default `['hostname']`. */
  verifyMatch?: readonly string[]
  /** `smtp_tls_secure_cert_match`. Default `['nexthop', 'dot-nexthop']`. */
  secureMatch?: readonly string[]
  /** `tls_dane_digests`, strongest first. Default `['sha512', 'sha256']`. */
  daneDigests?: readonly TlsaDigest[]
  /** SASL credentials are configured for this destination: Postfix then never retries in plaintext. */
  saslConfigured?: boolean
  /**
   * An MTA-STS policy in `enforce` mode lists this MX (RFC 8461 §4.1): with REQUIRETLS, delivery may
   * then rely on PKIX validation of the MX host name (RFC 8689 §4.2.1).
   */
  mtaStsEnforced?: boolean
}

/** Input of {@link resolvePolicy}. @public */
export interface ResolvePolicyInput {
  /** The table entry ({@link lookupPolicy}); `undefined` → `options.defaultLevel`. */
  policy?: TlsPolicy | undefined
  destination: PolicyDestinationFacts
  host: PolicyHostFacts
  options?: PolicyOptions
  message?: MessageTlsOptions
}

/** TLSA material of an effective DANE policy. @public */
export interface EffectiveTlsa {
  base: string
  qname?: string
  records: readonly TlsaRecord[]
  usable: TlsaRecord[]
}

/**
 * The policy to apply to one connection to one host. When `error` is set, do not connect: delivery
 * through this host is deferred (or, for REQUIRETLS, fails permanently).
 * @public
 */
export interface EffectivePolicy {
  configuredLevel: SecurityLevel
  level: EffectiveLevel
  /** The next hop and host this applies to. */
  nexthop: string
  host: string
  port: number
  /** Set when the policy cannot be met before connecting (TLSA lookup failure, defective entry…). */
  error?: SmtpTlsError
  /** Names the peer certificate must match: `verify`/`secure` reference names, or DANE-TA reference names. */
  matchNames: string[]
  /** `fingerprint`: the pins (as configured) and digest. */
  pins?: string[]
  fingerprintDigest: PinDigest
  tlsa?: EffectiveTlsa
  daneDigests: readonly TlsaDigest[]
  /** SNI to send, when any (RFC 7672 §8.1: the TLSA base domain at DANE levels; `servername=`). */
  servername?: string
  /** Allowed protocols (policy `protocols=`; default Postfix `>=TLSv1`). */
  protocols: ProtocolPolicy
  ciphers?: CipherGrade
  exclude?: string
  tafile?: string[]
  connectionReuse?: boolean
  enableRpk?: boolean
  /** TLS-RPT facts from an external policy source (carried through for reports; no effect on the verdict). */
  external?: ExternalPolicyInfo
  requireTls: boolean
  tlsRequiredNo: boolean
  mtaStsEnforced: boolean
  /** A failed STARTTLS handshake may be followed by a plaintext retry on a new connection (only `may`). */
  plaintextFallback: boolean
  trace: TraceStep[]
}

const DEFAULT_PROTOCOLS: ProtocolPolicy = Object.freeze({ text: '>=TLSv1', min: 'TLSv1', include: [], exclude: [] }) as ProtocolPolicy

/** Build a deferral error (every policy failure is temporary, 4.7.x; REQUIRETLS's 5.7.30 is the exception). */
export function policyError(
  code: ErrorCode,
  message: string,
  enhancedStatus: string,
  tlsrpt?: TlsRptResultType,
  temporary = true,
): SmtpTlsError {
  return new SmtpTlsError(code, message, tlsrpt === undefined ? { temporary, enhancedStatus } : { temporary, enhancedStatus, tlsrpt })
}

function checkInput(input: ResolvePolicyInput): void {
  if (input === null || typeof input !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'resolvePolicy input must be an object')
  const d = input.destination
  if (d === null || typeof d !== 'object' || typeof d.domain !== 'string' || typeof d.mxSecure !== 'boolean') {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'destination must be { domain: string; mxSecure: boolean; … }')
  }
  const h = input.host
  if (h === null || typeof h !== 'object' || typeof h.host !== 'string' || typeof h.addressSecure !== 'boolean') {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'host must be { host: string; addressSecure: boolean; tlsa: {…} }')
  }
  if (h.tlsa === null || typeof h.tlsa !== 'object' || !Array.isArray(h.tlsa.records)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'host.tlsa must be { status, records: TlsaRecord[] }')
  }
  const und: unknown = h.tlsa.undecodable
  if (und !== undefined && (!Array.isArray(und) || und.some((u) => u === null || typeof u !== 'object' || typeof u.reason !== 'string'))) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'host.tlsa.undecodable must be { reason: string }[]')
  }
  if (input.policy !== undefined && (input.policy === null || !isSecurityLevel(input.policy.level))) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'policy.level must be a security level')
  }
  const o = input.options
  if (o?.defaultLevel !== undefined && !isSecurityLevel(o.defaultLevel)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `defaultLevel must be a security level, got ${String(o.defaultLevel)}`)
  }
  if (o?.insecureMxPolicy !== undefined && !['may', 'encrypt', 'dane'].includes(o.insecureMxPolicy)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'insecureMxPolicy must be may, encrypt or dane')
  }
}

/** RFC 7672 §3.2.2 reference identifiers: the TLSA base domain; with a secure MX RRset also the next-hop domain (original and expanded). */
function daneNames(d: PolicyDestinationFacts, h: PolicyHostFacts, base: string): string[] {
  if (h.referenceNames !== undefined && h.referenceNames.length > 0) return h.referenceNames.map((n) => n.toLowerCase())
  const names = [base]
  const add = (n: string | undefined): void => {
    if (n !== undefined && n.length > 0 && !names.includes(n.toLowerCase())) names.push(n.toLowerCase())
  }
  if (d.mxLookup !== false && d.mxSecure) {
    add(d.canonicalDomain)
    add(d.domain)
  }
  return names
}

/** Postfix match strategies (TLS_README "Mandatory server certificate verification"). */
function pkixNames(strategies: readonly string[], d: PolicyDestinationFacts, h: PolicyHostFacts): string[] {
  const out: string[] = []
  const add = (n: string): void => {
    const l = n.toLowerCase()
    if (!out.includes(l)) out.push(l)
  }
  for (const s of strategies) {
    if (s === 'hostname') add(h.host)
    else if (s === 'nexthop') add(d.domain)
    else if (s === 'dot-nexthop') add('.' + d.domain)
    else add(s) // a literal name, or ".domain" for any subdomain
  }
  return out
}

/**
 * Compute the effective policy for one MX host from the configured level and the DNS facts,
 * exactly as Postfix does:
 *
 * - `TLS-Required: No` (RFC 8689 §4.2.2): skip the table and DANE, cap the default level at `may`.
 * - A defective table entry defers (Postfix "client TLS configuration problem", 4.7.5).
 * - `dane`: insecure MX RRset → the insecure-MX policy (`may`, `encrypt`, or `dane` = half-dane);
 *   TLSA lookup failure → defer 4.7.5; no secure TLSA records (insecure, secure denial, not looked up
 *   after an insecure address lookup) → `may`; every record unusable → `encrypt` (RFC 7672 §2.2).
 * - `dane-only`: each of those degradations is a deferral instead (RFC 7672 §6).
 * - `fingerprint` without pins defers; `verify`/`secure` get their match names.
 * - REQUIRETLS (RFC 8689 §4.2.1) needs DANE with a secure MX RRset, or an enforced MTA-STS policy.
 *
 * @example
 * ```ts
 * const eff = resolvePolicy({
 *   policy: lookupPolicy(table, 'example.com'),
 *   destination: { domain: 'example.com', mxSecure: true },
 *   host: { host: 'mx1.example.com', addressSecure: true,
 *           tlsa: { status: 'secure', records: [parseTlsaRecord('3 1 1 …')], base: 'mx1.example.com' } },
 * })
 * if (eff.error) defer(eff.error) // e.g. 4.7.5 TLSA lookup error
 * ```
 * @public
 */
export function resolvePolicy(input: ResolvePolicyInput): EffectivePolicy {
  try {
    return resolvePolicyChecked(input)
  } catch (e) {
    throw coded(e, 'resolvePolicy')
  }
}

function resolvePolicyChecked(input: ResolvePolicyInput): EffectivePolicy {
  checkInput(input)
  const d = input.destination
  const h = input.host
  const o = input.options ?? {}
  const msg = input.message ?? {}
  const trace: TraceStep[] = []
  const requireTls = msg.requireTls === true
  // RFC 8689 §4.2.2: "If the REQUIRETLS MAIL FROM parameter is specified, the TLS-Required header field MUST be ignored".
  const tlsRequiredNo = msg.tlsRequiredNo === true && !requireTls
  const port = d.port ?? 25
  const defaultLevel = o.defaultLevel ?? 'may'
  const fingerprintDigest = o.fingerprintDigest ?? 'sha256'
  const daneDigests = o.daneDigests ?? ['sha512', 'sha256']
  const mtaStsEnforced = o.mtaStsEnforced === true && !tlsRequiredNo

  let policy: TlsPolicy
  if (tlsRequiredNo) {
    // Postfix policy_create: iter->tlsreqno → no policy lookup, level capped at may.
    policy = { level: minLevel(defaultLevel, 'may') }
    trace.push({ rule: `TLS-Required: No → no table lookup, level ${policy.level}`, ref: 'RFC 8689 §4.2.2' })
  } else if (input.policy !== undefined) {
    policy = input.policy
    const src = policy.source
    trace.push({
      rule: src
        ? `table match ${src.key} (line ${src.line}) → ${policy.defect ? 'invalid entry' : policy.level}`
        : `policy → ${policy.level}`,
      ref: 'postconf(5) smtp_tls_policy_maps',
    })
  } else {
    policy = { level: defaultLevel }
    trace.push({ rule: `no table entry → default ${defaultLevel}`, ref: 'postconf(5) smtp_tls_security_level' })
  }

  const eff: EffectivePolicy = {
    configuredLevel: policy.level,
    level: policy.level,
    nexthop: d.domain,
    host: h.host,
    port,
    matchNames: [],
    fingerprintDigest,
    daneDigests,
    protocols: policy.protocols ?? DEFAULT_PROTOCOLS,
    requireTls,
    tlsRequiredNo,
    mtaStsEnforced,
    plaintextFallback: false,
    trace,
  }
  if (policy.ciphers !== undefined) eff.ciphers = policy.ciphers
  if (policy.exclude !== undefined) eff.exclude = policy.exclude
  if (policy.tafile !== undefined) eff.tafile = policy.tafile.slice()
  if (policy.connectionReuse !== undefined) eff.connectionReuse = policy.connectionReuse
  if (policy.enableRpk !== undefined) eff.enableRpk = policy.enableRpk
  if (policy.external !== undefined) eff.external = policy.external

  const defer = (code: ErrorCode, message: string, tlsrpt?: TlsRptResultType, status = '4.7.5'): EffectivePolicy => {
    eff.error = policyError(code, message, status, tlsrpt)
    trace.push({ rule: `defer ${status}: ${message}`, ref: tlsrpt === undefined ? 'Postfix smtp_tls_policy.c' : 'RFC 8460 §4.3' })
    return eff
  }

  if (policy.defect !== undefined) {
    // Postfix MARK_INVALID: "client TLS configuration problem", never the default level.
    return defer('ERR_POLICY_SYNTAX', `client TLS configuration problem: ${policy.defect.message}`)
  }

  const mxMatters = d.mxLookup !== false && d.implicitMx !== true
  const level = policy.level

  if (level === 'dane' || level === 'dane-only') {
    const only = level === 'dane-only'
    // Postfix dane_incompat(): dane degrades, dane-only defers with 4.7.5.
    const degrade = (to: 'may' | 'encrypt', why: string, ref: string, tlsrpt: TlsRptResultType, code: ErrorCode): boolean => {
      if (only) {
        defer(code, `${why} for ${h.host} (level dane-only)`, tlsrpt)
        return false
      }
      eff.level = to
      trace.push({ rule: `${why} → ${to}`, ref })
      return true
    }
    const insecureMxPolicy = o.insecureMxPolicy ?? 'dane'
    if (mxMatters && !d.mxSecure && (only || insecureMxPolicy === 'may')) {
      // Postfix: "non DNSSEC destination"; RFC 7672 §2.2.1.
      if (!degrade('may', 'MX RRset insecure (non DNSSEC destination)', 'RFC 7672 §2.2.1', 'dane-required', 'ERR_DANE_REQUIRED')) return eff
    } else {
      const t = h.tlsa
      const base = (t.base ?? h.host).toLowerCase()
      if (t.status === 'lookup-failed') {
        // RFC 7672 §2.1.2: treat the host as unreachable, no fallback; Postfix "TLSA lookup error for host:port".
        const why = t.error?.message ? `: ${t.error.message}` : ''
        return defer('ERR_DANE_TLSA_LOOKUP', `TLSA lookup error for ${h.host}:${port}${why}`, 'dnssec-invalid')
      }
      const undecodable = t.undecodable ?? []
      if (t.status !== 'secure' || (t.records.length === 0 && undecodable.length === 0)) {
        const why =
          t.status === 'not-looked-up' || !h.addressSecure
            ? 'address records insecure, TLSA not looked up (no TLSA records found)'
            : t.status === 'insecure'
              ? 'TLSA records insecure (no TLSA records found)'
              : 'no TLSA records found'
        const ref = t.status === 'not-looked-up' ? 'RFC 7672 §2.2.2' : 'RFC 7672 §2.2'
        if (!degrade('may', why, ref, 'dane-required', 'ERR_DANE_REQUIRED')) return eff
      } else {
        const u = checkTlsaUsability(t.records, { profile: 'smtp', digests: daneDigests })
        if (u.usable.length === 0) {
          // RFC 7672 §2.2: secure, non-empty, all unusable → TLS mandatory, no authentication.
          const reasons = [
            ...u.unusable.map((x) => `${formatTlsaRecord(x.record).slice(0, 24)}…: ${x.reason}`),
            ...undecodable.map((x) => x.reason), // RFC 6698 §2.1: too short to decode
          ].join('; ')
          if (!degrade('encrypt', `TLSA records unusable (${reasons})`, 'RFC 7672 §2.2', 'tlsa-invalid', 'ERR_DANE_NO_USABLE_RECORDS'))
            return eff
        } else if (mxMatters && !d.mxSecure && insecureMxPolicy === 'encrypt') {
          eff.level = 'encrypt'
          trace.push({ rule: 'MX insecure, insecure-MX policy encrypt → encrypt', ref: 'postconf(5) smtp_tls_dane_insecure_mx_policy' })
        } else {
          eff.tlsa = { base, records: t.records, usable: u.usable }
          if (t.qname !== undefined) eff.tlsa.qname = t.qname
          eff.matchNames = daneNames(d, h, base)
          // RFC 7672 §8.1: SNI = TLSA base domain.
          eff.servername = base
          if (mxMatters && !d.mxSecure) {
            eff.level = 'half-dane'
            trace.push({
              rule: 'MX insecure → half-dane (authenticate, report trusted)',
              ref: 'postconf(5) smtp_tls_dane_insecure_mx_policy',
            })
          } else {
            eff.level = level
          }
          trace.push({ rule: `${u.usable.length} usable TLSA record(s) at ${t.qname ?? base} → authenticate`, ref: 'RFC 7672 §2.2, §3' })
        }
      }
    }
  } else if (level === 'fingerprint') {
    const pins = policy.match ?? (o.fingerprintMatch ? o.fingerprintMatch.slice() : [])
    if (pins.length === 0) {
      return defer('ERR_POLICY_CONFIG', `configured at fingerprint security level, but with no fingerprints to match (nexthop ${d.domain})`)
    }
    try {
      parsePins(pins, { digest: fingerprintDigest })
    } catch (e) {
      if (e instanceof SmtpTlsError && e.code === 'ERR_PIN_SYNTAX') {
        return defer('ERR_POLICY_CONFIG', `client TLS configuration problem: ${e.message} (digest ${fingerprintDigest})`)
      }
      throw e
    }
    eff.pins = pins
    trace.push({
      rule: `${pins.length} ${fingerprintDigest} pin(s) → match leaf certificate or key`,
      ref: 'postconf(5) smtp_tls_fingerprint_digest',
    })
  } else if (level === 'verify' || level === 'secure') {
    const strategies =
      policy.match ?? (level === 'verify' ? (o.verifyMatch ?? ['hostname']) : (o.secureMatch ?? ['nexthop', 'dot-nexthop']))
    eff.matchNames = pkixNames(strategies, d, h)
    trace.push({ rule: `match ${strategies.join(':')} → ${eff.matchNames.join(', ')}`, ref: `postconf(5) smtp_tls_${level}_cert_match` })
  }

  // REQUIRETLS (RFC 8689 §4.2.1): the MX must be DNSSEC- or MTA-STS-validated and the certificate
  // must validate via DANE or PKIX under MTA-STS.
  if (requireTls) {
    const daneOk = (eff.level === 'dane' || eff.level === 'dane-only') && eff.tlsa !== undefined
    if (!daneOk && !mtaStsEnforced) {
      eff.error = policyError(
        'ERR_REQUIRETLS',
        `REQUIRETLS: ${h.host} is protected by neither DANE (secure MX and TLSA records) nor an enforced MTA-STS policy`,
        '5.7.30',
        undefined,
        false,
      )
      trace.push({ rule: 'REQUIRETLS without DANE or MTA-STS → fail 5.7.30', ref: 'RFC 8689 §4.2.1' })
      return eff
    }
    if (!daneOk && mtaStsEnforced && eff.level !== 'secure' && eff.level !== 'verify') {
      // Authenticate the MX host name under PKIX (RFC 8461 §4.2).
      eff.level = 'verify'
      eff.matchNames = [h.host.toLowerCase()]
      trace.push({ rule: 'REQUIRETLS with MTA-STS → PKIX, match MX host name', ref: 'RFC 8689 §4.2.1, RFC 8461 §4.2' })
    }
  }

  // servername= applies where DANE does not fix the SNI (RFC 7672 §8.1, Postfix tls_dane: SNI = base domain).
  const sni = servernameOf(policy, h)
  if (sni !== undefined && eff.tlsa === undefined) eff.servername = sni
  // Postfix PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE: only at may, no REQUIRETLS, no SASL.
  eff.plaintextFallback = eff.level === 'may' && !requireTls && o.saslConfigured !== true
  if (!mustEncrypt(eff.level)) {
    trace.push({ rule: `effective level ${eff.level}`, ref: 'Postfix TLS_README "Opportunistic TLS"' })
  } else if (eff.level !== level) {
    trace.push({ rule: `effective level ${eff.level}`, ref: 'Postfix smtp_tls_policy.c dane_init' })
  }
  return eff
}

function servernameOf(policy: TlsPolicy, h: PolicyHostFacts): string | undefined {
  if (policy.servername === undefined) return undefined
  return policy.servername === 'hostname' ? h.host.toLowerCase() : policy.servername
}
