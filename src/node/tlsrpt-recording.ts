/**
 * TLS-RPT recording in the driver (RFC 8460 §4): which policy a connection attempt was judged under,
 * and its one result (success, or the failure with its §4.3 result type), written to the store
 * fire-and-forget. The recording never waits for the store and never changes a verdict.
 */
import { SmtpTlsError, type TlsRptResultType } from '../errors.js'
import type { MxHostFacts } from '../dns/types.js'
import { mtaStsVerdict } from '../mta-sts/apply.js'
import type { MtaStsPolicy } from '../mta-sts/policy.js'
import type { ConnectionFacts, Verdict } from '../policy/decide.js'
import type { EffectivePolicy } from '../policy/resolve.js'
import type { PolicyStore } from '../store/types.js'
import { formatTlsaRecord } from '../tlsa/format.js'
import { recordTlsRptSession, type TlsRptFailure, type TlsRptRecorderOptions } from '../tlsrpt/recorder.js'
import type { TlsRptPolicyRef, TlsRptPolicyType } from '../tlsrpt/report.js'
import { matchCertificateName } from '../x509/names.js'
import { storeErrorChannel } from './mta-sts.js'

/**
 * The `tlsRpt` option of `connect()`, `probe()`, `deliver()` and the Nodemailer transport: record one
 * TLS-RPT session result per connection attempt in `store` (RFC 8460 §4), for `sendTlsRptReports`.
 * @public
 */
export interface TlsRptRecordingOptions extends TlsRptRecorderOptions {
  /** Where the counters go: `createMemoryStore()`, or `createRedisStore()` for a fleet. */
  store: PolicyStore
  /**
   * The message carries a TLS-RPT report: nothing is recorded (RFC 8460 §5.3; tlsrpt-reporter issue 50).
   * `deliver()` sets it itself for a string or byte body with a `TLS-Report-Domain` header.
   */
  reportMail?: boolean
  /** The clock for the UTC day, ms since the epoch; default `Date.now`. */
  now?: () => number
}

/** What the driver recorded for one attempt (on `ConnectAttempt.tlsRpt`). @public */
export interface TlsRptAttemptResult {
  policyType: TlsRptPolicyType
  policyDomain: string
  /** `success`, or the RFC 8460 §4.3 result type of the failure. */
  result: 'success' | TlsRptResultType
}

/** Checked recording settings. */
export interface TlsRptRecording {
  store: PolicyStore
  reportMail: boolean
  now: () => number
  recorder: TlsRptRecorderOptions
}

function invalid(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', message, { temporary: false })
}

/** Read the `tlsRpt` option (before any I/O). */
export function tlsRptOption(v: unknown): TlsRptRecording | undefined {
  if (v === undefined) return undefined
  if (v === null || typeof v !== 'object') invalid('tlsRpt must be { store, ... }')
  const o = v as Partial<TlsRptRecordingOptions>
  const st = o.store
  if (typeof st !== 'object' || st === null || typeof st.increment !== 'function' || typeof st.set !== 'function') {
    invalid('tlsRpt.store must be a PolicyStore')
  }
  if (o.reportMail !== undefined && typeof o.reportMail !== 'boolean') invalid('tlsRpt.reportMail must be a boolean')
  if (o.now !== undefined && typeof o.now !== 'function') invalid('tlsRpt.now must be a function')
  if (o.keyPrefix !== undefined && typeof o.keyPrefix !== 'string') invalid('tlsRpt.keyPrefix must be a string')
  if (o.ttlSeconds !== undefined && (typeof o.ttlSeconds !== 'number' || !(o.ttlSeconds > 0))) {
    invalid('tlsRpt.ttlSeconds must be a positive number')
  }
  const recorder: TlsRptRecorderOptions = {}
  if (o.keyPrefix !== undefined) recorder.keyPrefix = o.keyPrefix
  if (o.ttlSeconds !== undefined) recorder.ttlSeconds = o.ttlSeconds
  return { store: st, reportMail: o.reportMail === true, now: o.now ?? Date.now, recorder }
}

/** The policy one MX host is judged under, and how (for the MTA-STS `testing` check after the handshake). */
export interface HostRecording {
  policy: TlsRptPolicyRef
  /** MTA-STS `testing`: the policy to check a delivered session against (RFC 8461 §5: report, do not enforce). */
  testing?: Pick<MtaStsPolicy, 'mode' | 'mx'>
  /** An MTA-STS fetch failure with no policy in force: every attempt is reported as it (RFC 8460 §4.3.2.2). */
  stsFailure?: TlsRptResultType
}

const stsRefs = new WeakMap<object, TlsRptPolicyRef>()
const tlsaRefs = new WeakMap<object, TlsRptPolicyRef>()

/**
 * RFC 8460 §4.4 policy of one host: `tlsa` where DANE decides (policy domain: the TLSA base domain),
 * `sts` where an MTA-STS policy in `enforce` or `testing` applies (the recipient domain), else
 * `no-policy-found` (the recipient domain). Objects are reused so the recorder's key memo hits.
 */
export function hostRecording(
  domain: string,
  host: MxHostFacts,
  eff: EffectivePolicy | undefined,
  sts: { policy?: MtaStsPolicy | undefined; error?: SmtpTlsError | undefined } | undefined,
  applies: string | undefined,
): HostRecording {
  // DANE decides: a validated TLSA RRset at a DANE level, or a TLSA lookup that failed (RFC 7672 §2.1.2)
  const daneLookupFailed = host.tlsa.status === 'lookup-failed' && eff !== undefined && isDaneLevel(eff.configuredLevel)
  if (applies === 'defer' || daneLookupFailed || (eff !== undefined && isDaneLevel(eff.level) && eff.tlsa !== undefined)) {
    const t = eff?.tlsa
    if (t !== undefined) {
      let ref = tlsaRefs.get(t)
      if (ref === undefined) {
        ref = { type: 'tlsa', domain: t.base, strings: t.records.map(formatTlsaRecord), mxHosts: [host.host] }
        tlsaRefs.set(t, ref)
      }
      return { policy: ref }
    }
    return { policy: { type: 'tlsa', domain: host.host, mxHosts: [host.host] } }
  }
  const p = sts?.policy
  if (p !== undefined && (applies === 'sts-enforce' || applies === 'sts-testing')) {
    let ref = stsRefs.get(p)
    if (ref === undefined) {
      ref = { type: 'sts', domain, strings: p.lines, mxHosts: p.mx }
      stsRefs.set(p, ref)
    }
    return applies === 'sts-testing' ? { policy: ref, testing: p } : { policy: ref }
  }
  const failure = sts?.error?.tlsrpt
  if (p === undefined && (failure === 'sts-policy-fetch-error' || failure === 'sts-policy-invalid' || failure === 'sts-webpki-invalid')) {
    return { policy: { type: 'sts', domain }, stsFailure: failure }
  }
  return { policy: { type: 'no-policy-found', domain } }
}

function isDaneLevel(level: string): boolean {
  return level === 'dane' || level === 'dane-only' || level === 'half-dane'
}

/** What one attempt showed, as the driver saw it. */
export interface AttemptFacts {
  host: string
  address?: string | undefined
  localAddress?: string | undefined
  transcript: readonly string[]
  verdict?: Verdict | undefined
  error?: SmtpTlsError | undefined
  /** The TLS facts of a completed handshake, when there was one. */
  facts?: ConnectionFacts | undefined
  /** A plaintext retry after a failed handshake (`may`): the failure is already recorded. */
  retry: boolean
  /** `none`: STARTTLS never tried, nothing to report. */
  levelNone: boolean
}

/** The server's name from its EHLO reply, else from its greeting (RFC 8460 §4.4 `receiving-mx-helo`). */
function heloOf(transcript: readonly string[]): string | undefined {
  let greeting: string | undefined
  let ehlo: string | undefined
  let afterEhlo = false
  for (const line of transcript) {
    if (line.startsWith('> EHLO') || line.startsWith('> HELO')) {
      afterEhlo = true
      continue
    }
    const m = /^< (220|250)[ -](\S+)/.exec(line)
    if (!m) continue
    if (m[1] === '220' && greeting === undefined && !afterEhlo) greeting = m[2]
    else if (m[1] === '250' && afterEhlo && ehlo === undefined) ehlo = m[2]
    if (ehlo !== undefined) break
  }
  return ehlo ?? greeting
}

/**
 * The attempt's one result, or `undefined` when it was no TLS session to report: TCP or DNS failures
 * before STARTTLS (no RFC 8460 §4.3 type describes them), `none`, and the plaintext retry after a
 * failed handshake (that failure was the attempt's result).
 */
export function attemptResult(rec: HostRecording, a: AttemptFacts): TlsRptFailure | 'success' | undefined {
  if (a.levelNone || a.retry) return undefined
  const detail = (resultType: TlsRptResultType, failureReasonCode?: string): TlsRptFailure => {
    const f: TlsRptFailure = { resultType, receivingMxHostname: a.host }
    if (a.localAddress !== undefined) f.sendingMtaIp = a.localAddress
    const helo = a.address === undefined ? undefined : heloOf(a.transcript)
    if (helo !== undefined) f.receivingMxHelo = helo
    if (a.address !== undefined) f.receivingIp = a.address
    if (failureReasonCode !== undefined) f.failureReasonCode = failureReasonCode
    return f
  }
  if (rec.stsFailure !== undefined) return a.address === undefined && a.error?.tlsrpt === undefined ? undefined : detail(rec.stsFailure)
  const v = a.verdict
  if (v?.deliver === true) {
    if (v.status === 'plaintext') return detail('starttls-not-supported') // RFC 8460 §4.3.1
    if (rec.testing !== undefined && a.facts !== undefined) {
      // RFC 8461 §5 testing: the session went on under the configured level; the MTA-STS checks are reported.
      const failure = testingFailure(rec.testing, a.host, a.facts)
      if (failure !== undefined) return detail(failure.result, failure.reason)
    }
    return 'success'
  }
  const type = v?.tlsrpt ?? a.error?.tlsrpt
  if (type === undefined) return undefined
  return detail(
    type,
    type === 'validation-failure' && a.address === undefined && rec.policy.type === 'sts' ? 'mx-not-in-policy' : undefined,
  )
}

function testingFailure(
  policy: Pick<MtaStsPolicy, 'mode' | 'mx'>,
  mxHost: string,
  f: ConnectionFacts,
): { result: TlsRptResultType; reason?: string } | undefined {
  const leaf = f.chain?.[0]
  let nameMatches = false
  if (leaf !== undefined) {
    try {
      nameMatches = matchCertificateName(leaf, [mxHost]) !== undefined
    } catch {
      nameMatches = false
    }
  }
  const error = f.pkix?.trusted === false ? f.pkix.error : undefined
  const v = mtaStsVerdict(policy, {
    mxHost,
    starttls: f.starttls === 'offered' ? 'offered' : f.starttls === 'refused' ? 'refused' : 'not-offered',
    handshake: f.handshake === 'ok' ? 'ok' : 'failed',
    pkix: {
      trusted: f.pkix?.trusted === true,
      expired: error !== undefined && /EXPIRED/i.test(error),
      nameMatches,
      ...(error !== undefined ? { error } : {}),
    },
  })
  if (v.ok) return undefined
  return v.failureReasonCode !== undefined ? { result: v.result, reason: v.failureReasonCode } : { result: v.result }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function'
}

function publish(key: string, error: unknown): void {
  if (storeErrorChannel.hasSubscribers) storeErrorChannel.publish({ operation: 'tlsrpt-record', key, error })
}

/**
 * Record one result, fire-and-forget: a synchronous store records at once, an asynchronous one in the
 * background; a failure goes to `storeErrorChannel` (`operation: 'tlsrpt-record'`, `key`: the policy
 * domain), never to the caller.
 */
export function recordAttempt(r: TlsRptRecording, rec: HostRecording, result: TlsRptFailure | 'success'): void {
  try {
    const out = recordTlsRptSession(
      r.store,
      result === 'success' ? { policy: rec.policy } : { policy: rec.policy, failure: result },
      r.now(),
      r.recorder,
    )
    if (isThenable(out)) out.then(undefined, (e: unknown) => publish(rec.policy.domain, e))
  } catch (e) {
    publish(rec.policy.domain, e)
  }
}
