/**
 * Which policy governs an MX host (DANE or MTA-STS, RFC 8461 §2), and the MTA-STS verdict for a
 * connection to it (RFC 8461 §4-§5). Pure: the DNS, policy and TLS facts come in as input.
 */
import { coded } from '../args.js'
import { SmtpTlsError, type TlsRptResultType } from '../errors.js'
import type { TlsaLookupStatus, DnsFailure } from '../dns/types.js'
import type { TlsaRecord } from '../tlsa/types.js'
import { checkTlsaUsability } from '../tlsa/usability.js'
import type { TraceStep } from '../policy/trace.js'
import type { MtaStsPolicy } from './policy.js'
import { mtaStsMatchingPattern } from './match.js'

/** The DANE facts of one MX host (a `TlsaFacts` from the resolver fits). @public */
export interface PrecedenceTlsaFacts {
  status: TlsaLookupStatus
  /** The TLSA RRset; usability (RFC 7672 §3.1) is judged here unless `usable` is given. */
  records?: readonly TlsaRecord[]
  /** Whether the RRset has at least one usable record, when the caller already knows. */
  usable?: boolean
  error?: Pick<DnsFailure, 'code'>
}

/** Input of {@link selectTransportPolicy}. @public */
export interface TransportPolicyInput {
  tlsa: PrecedenceTlsaFacts
  /** The recipient domain's MTA-STS policy in force (unexpired), or `undefined`. */
  sts?: Pick<MtaStsPolicy, 'mode' | 'mx'> | undefined
}

/** What governs delivery to the host. @public */
export type TransportPolicyKind = 'dane' | 'sts-enforce' | 'sts-testing' | 'none' | 'defer'

/** Result of {@link selectTransportPolicy}. @public */
export interface TransportPolicyChoice {
  applies: TransportPolicyKind
  /** RFC 8460 §4.4 policy type to record the session under. */
  policyType: 'tlsa' | 'sts' | 'no-policy-found'
  /** For `defer`: the TLS-RPT result type when one fits (`dnssec-invalid` for a bogus TLSA answer). */
  tlsrpt?: TlsRptResultType
  trace: TraceStep[]
}

function stsChoice(sts: TransportPolicyInput['sts'], trace: TraceStep[]): TransportPolicyChoice {
  if (sts === undefined) {
    trace.push({ rule: 'no MTA-STS policy → opportunistic', ref: 'RFC 8461 §5' })
    return { applies: 'none', policyType: 'no-policy-found', trace }
  }
  if (sts.mode === 'enforce' || sts.mode === 'testing') {
    trace.push({ rule: `MTA-STS mode ${sts.mode}`, ref: 'RFC 8461 §5' })
    return { applies: sts.mode === 'enforce' ? 'sts-enforce' : 'sts-testing', policyType: 'sts', trace }
  }
  if (sts.mode !== 'none') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'sts.mode must be enforce, testing or none')
  trace.push({ rule: 'MTA-STS mode none → as without a policy', ref: 'RFC 8461 §5' })
  return { applies: 'none', policyType: 'sts', trace }
}

/**
 * DANE or MTA-STS for one MX host (RFC 8461 §2: MTA-STS never overrides DANE).
 *
 * - TLSA lookup failed (`lookup-failed`): `defer`. A DANE temporary failure never falls back to MTA-STS
 *   (RFC 8461 §2; RFC 7672 §2.1.2: the host is unreachable).
 * - A validated (`secure`) RRset with a usable record: `dane`.
 * - A validated RRset whose records are all unusable: MTA-STS when a policy is in force (it authenticates
 *   the host; DANE would only require TLS), otherwise `dane`, which the DANE engine carries out as
 *   mandatory unauthenticated TLS (RFC 7672 §2.2).
 * - `secure-denial`, `insecure`, `not-looked-up`: the MTA-STS policy's mode, or `none`.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for malformed input.
 * @public
 */
export function selectTransportPolicy(input: TransportPolicyInput): TransportPolicyChoice {
  try {
    return selectTransportPolicyChecked(input)
  } catch (e) {
    throw coded(e, 'selectTransportPolicy')
  }
}

function selectTransportPolicyChecked(input: TransportPolicyInput): TransportPolicyChoice {
  const tlsa = (input as Partial<TransportPolicyInput> | null)?.tlsa
  if (typeof tlsa !== 'object' || tlsa === null) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'tlsa facts are required')
  const trace: TraceStep[] = []
  switch (tlsa.status) {
    case 'lookup-failed': {
      trace.push({ rule: 'TLSA lookup failed → defer (never MTA-STS instead)', ref: 'RFC 7672 §2.1.2; RFC 8461 §2' })
      const choice: TransportPolicyChoice = { applies: 'defer', policyType: 'tlsa', trace }
      if (tlsa.error?.code === 'ERR_DNS_BOGUS') choice.tlsrpt = 'dnssec-invalid' // RFC 8460 §4.3.2.1 (DANE-specific)
      return choice
    }
    case 'secure': {
      let usable = tlsa.usable
      if (usable === undefined) {
        if (!Array.isArray(tlsa.records)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'tlsa.records or tlsa.usable is required')
        usable = checkTlsaUsability(tlsa.records).usable.length > 0
      }
      if (usable) {
        trace.push({ rule: 'validated TLSA RRset with a usable record → DANE', ref: 'RFC 7672 §2.2; RFC 8461 §2' })
        return { applies: 'dane', policyType: 'tlsa', trace }
      }
      trace.push({ rule: 'validated TLSA RRset, every record unusable', ref: 'RFC 7672 §2.2' })
      if (input.sts !== undefined && input.sts.mode !== 'none') return stsChoice(input.sts, trace)
      trace.push({ rule: 'no MTA-STS policy → DANE: mandatory TLS without authentication', ref: 'RFC 7672 §2.2' })
      return { applies: 'dane', policyType: 'tlsa', trace }
    }
    case 'secure-denial':
    case 'insecure':
    case 'not-looked-up':
      trace.push({ rule: `TLSA ${tlsa.status} → no DANE`, ref: 'RFC 7672 §2.2' })
      return stsChoice(input.sts, trace)
    default:
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `unknown TLSA status ${String((tlsa as { status: unknown }).status)}`)
  }
}

/** What a connection to an MX host showed, for {@link mtaStsVerdict}. @public */
export interface MtaStsConnectionFacts {
  /** The MX host name as selected (RFC 8461 §4.1 matches it against the policy). */
  mxHost: string
  /** STARTTLS in the EHLO reply and the server's answer; omit to judge the MX name only (before connecting). */
  starttls?: 'offered' | 'not-offered' | 'refused'
  /** The TLS handshake completed. */
  handshake?: 'ok' | 'failed'
  /** The PKIX verdict on the server's chain (RFC 8461 §4.2). */
  pkix?: {
    /** The chain leads to a trusted root. */
    trusted: boolean
    /** The leaf (or a chain certificate) is expired or not yet valid. */
    expired?: boolean
    /** A DNS-ID of the leaf matches the MX host name (RFC 8461 §4.2, RFC 6125). */
    nameMatches: boolean
    /** The TLS stack's reason, carried to `failureReasonCode`. */
    error?: string
  }
}

/** Result of {@link mtaStsVerdict}. @public */
export type MtaStsVerdict =
  | { ok: true; pattern?: string; trace: TraceStep[] }
  | {
      ok: false
      /** RFC 8460 §4.3 result type. */
      result: TlsRptResultType
      /** RFC 8460 §4.4 `failure-reason-code`. */
      failureReasonCode?: string
      /** `testing`: deliver anyway and report; `enforce`: do not deliver via this host (RFC 8461 §5). */
      deliver: boolean
      /** RFC 3463 status for a deferral: always temporary. */
      enhancedStatus: '4.7.5'
      detail: string
      trace: TraceStep[]
    }

/**
 * Evaluate one MX host and connection against an MTA-STS policy (RFC 8461 §4.1, §4.2, §5).
 * Mode `none` accepts everything. Otherwise the MX must match a pattern, STARTTLS must be offered and
 * succeed, and the certificate must be PKIX-valid for the MX host name; a failure carries its TLS-RPT
 * result type and whether delivery may go on (`testing`).
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for malformed input.
 * @public
 */
export function mtaStsVerdict(policy: Pick<MtaStsPolicy, 'mode' | 'mx'>, facts: MtaStsConnectionFacts): MtaStsVerdict {
  try {
    return mtaStsVerdictChecked(policy, facts)
  } catch (e) {
    throw coded(e, 'mtaStsVerdict')
  }
}

function mtaStsVerdictChecked(policy: Pick<MtaStsPolicy, 'mode' | 'mx'>, facts: MtaStsConnectionFacts): MtaStsVerdict {
  if (typeof facts !== 'object' || facts === null || typeof facts.mxHost !== 'string') {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'facts.mxHost must be a string')
  }
  const mode = (policy as Partial<MtaStsPolicy> | null)?.mode
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'policy.mode must be enforce, testing or none')
  }
  const trace: TraceStep[] = []
  if (mode === 'none') {
    trace.push({ rule: 'MTA-STS mode none → no checks', ref: 'RFC 8461 §5' })
    return { ok: true, trace }
  }
  const deliver = mode === 'testing'
  const fail = (result: TlsRptResultType, detail: string, ref: string, failureReasonCode?: string): MtaStsVerdict => {
    trace.push({ rule: `${detail} → ${deliver ? 'deliver and report (testing)' : 'do not deliver via this host'}`, ref })
    const v: MtaStsVerdict = { ok: false, result, deliver, enhancedStatus: '4.7.5', detail, trace }
    if (failureReasonCode !== undefined) v.failureReasonCode = failureReasonCode
    return v
  }
  const pattern = mtaStsMatchingPattern(policy, facts.mxHost)
  if (pattern === undefined) {
    return fail('validation-failure', `MX ${facts.mxHost} matches no mx pattern of the policy`, 'RFC 8461 §4.1', 'mx-not-in-policy')
  }
  trace.push({ rule: `MX ${facts.mxHost} matches ${pattern}`, ref: 'RFC 8461 §4.1' })
  if (facts.starttls === undefined) return { ok: true, pattern, trace }
  if (facts.starttls !== 'offered') {
    return fail('starttls-not-supported', `STARTTLS ${facts.starttls}`, 'RFC 8461 §5; RFC 8460 §4.3.1')
  }
  if (facts.handshake !== 'ok') return fail('validation-failure', 'TLS handshake failed', 'RFC 8461 §5', 'tls-handshake-failed')
  const pkix = facts.pkix
  if (pkix === undefined) return fail('certificate-not-trusted', 'no PKIX result for the certificate', 'RFC 8461 §4.2')
  if (pkix.expired === true) return fail('certificate-expired', 'certificate expired', 'RFC 8461 §4.2; RFC 8460 §4.3.1', pkix.error)
  if (!pkix.trusted) return fail('certificate-not-trusted', 'certificate chain not trusted', 'RFC 8461 §4.2; RFC 8460 §4.3.1', pkix.error)
  if (!pkix.nameMatches) {
    return fail('certificate-host-mismatch', `certificate does not name ${facts.mxHost}`, 'RFC 8461 §4.2; RFC 8460 §4.3.1')
  }
  trace.push({ rule: 'certificate PKIX-valid for the MX host', ref: 'RFC 8461 §4.2' })
  return { ok: true, pattern, trace }
}
