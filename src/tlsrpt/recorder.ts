/**
 * TLS-RPT recording (RFC 8460 §4): each session outcome becomes one atomic counter increment in a
 * {@link PolicyStore}, keyed by UTC day, policy domain, policy and failure detail; a day's keys are
 * read back with one prefix scan and turned into report policies.
 *
 * Key layout (components `%`-escaped for `%` and `|`; `<prefix>` defaults to `tlsrpt|`):
 * ```
 * <prefix><day>|<policy-domain>|<policy-type>|<policy-hash>|p    policy description (JSON), set once
 * <prefix><day>|<policy-domain>|<policy-type>|<policy-hash>|s    successful sessions
 * <prefix><day>|<policy-domain>|<policy-type>|<policy-hash>|f|<result-type>|<sending-mta-ip>|<receiving-mx-hostname>|<receiving-mx-helo>|<receiving-ip>|<failure-reason-code>
 *                                                                   failed sessions with that detail
 * ```
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { Awaitable, PolicyStore } from '../store/types.js'
import {
  isTlsRptResultType,
  type TlsRptFailureDetail,
  type TlsRptPolicyRef,
  type TlsRptPolicyResult,
  type TlsRptPolicyType,
} from './report.js'

/** A failed session's details (RFC 8460 §4.4 `failure-details`, without the count). @public */
export type TlsRptFailure = Omit<TlsRptFailureDetail, 'failedSessionCount' | 'additionalInformation'>

/** One session outcome to record. @public */
export interface TlsRptSession {
  policy: TlsRptPolicyRef
  /** Absent for a successful session. */
  failure?: TlsRptFailure
  /**
   * `true` when the session delivered a TLS-RPT report itself: it is never recorded, so that reports
   * about report delivery cannot loop (tlsrpt-reporter issue 50). Set it for every message that carries
   * a `TLS-Report-Domain` header (see `isTlsRptReportMessage`).
   */
  reportMail?: boolean
}

/** Options of {@link recordTlsRptSession} and {@link collectTlsRptDay}. @public */
export interface TlsRptRecorderOptions {
  /** Key prefix; default `tlsrpt|`. */
  keyPrefix?: string
  /** Lifetime of the counters, seconds; default 8 days (a day's report is sent after the day ends). */
  ttlSeconds?: number
}

const DEFAULT_PREFIX = 'tlsrpt|'
const DEFAULT_TTL = 8 * 86400
const MAX_COMPONENT = 255

function bad(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `TLS-RPT recorder: ${message}`)
}

/** Escape the separator: `%` → `%25`, `|` → `%7C`; bounded length (HELO names are the peer's words). */
function esc(s: string | undefined): string {
  if (s === undefined) return ''
  if (typeof s !== 'string') bad('failure fields must be strings')
  if (s.length > MAX_COMPONENT) s = s.slice(0, MAX_COMPONENT)
  if (s.indexOf('%') < 0 && s.indexOf('|') < 0) return s
  return s.replace(/%/g, '%25').replace(/\|/g, '%7C')
}

function unesc(s: string): string | undefined {
  if (s === '') return undefined
  return s.indexOf('%') < 0 ? s : s.replace(/%7C/g, '|').replace(/%25/g, '%')
}

// The UTC day of the last call, reused while `now` stays inside it (allocation-free hot path).
let dayStart = 0
let dayEnd = -1
let dayText = ''

/** The UTC day `YYYY-MM-DD` of `now` (ms since the epoch). */
export function utcDay(now: number): string {
  if (now >= dayStart && now < dayEnd) return dayText
  const d = new Date(now)
  if (Number.isNaN(d.getTime())) bad('now must be a valid time')
  dayText = d.toISOString().slice(0, 10)
  dayStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
  dayEnd = dayStart + 86400000
  return dayText
}

const hashes = new WeakMap<TlsRptPolicyRef, string>()
/**
 * Per policy object: the day's key base and success key, the failure keys seen, and the failure detail
 * last recorded (its fields as given) with its key, kept flat in the one object (issue 13).
 */
interface PolicyMemo {
  day: string
  prefix: string
  domain: string
  type: string
  base: string
  ok: string
  failures: Map<string, string>
  /** `undefined` until a failure is recorded */
  lastKey: string | undefined
  lastResultType: string | undefined
  lastSendingMtaIp: string | undefined
  lastReceivingMxHostname: string | undefined
  lastReceivingMxHelo: string | undefined
  lastReceivingIp: string | undefined
  lastFailureReasonCode: string | undefined
  /** The detail before the last one (two MX addresses failing in turn hit one of the two). */
  prevKey: string | undefined
  prevResultType: string | undefined
  prevSendingMtaIp: string | undefined
  prevReceivingMxHostname: string | undefined
  prevReceivingMxHelo: string | undefined
  prevReceivingIp: string | undefined
  prevFailureReasonCode: string | undefined
}
const bases = new WeakMap<TlsRptPolicyRef, PolicyMemo>()
const MAX_MEMO_FAILURES = 64

/** FNV-1a over the policy's strings and MX hosts, two 32-bit lanes: a short stable id within one domain and day. */
function policyHash(p: TlsRptPolicyRef): string {
  const memo = hashes.get(p)
  if (memo !== undefined) return memo
  let h1 = 0x811c9dc5
  let h2 = 0x01000193 ^ 0x5bd1e995
  const feed = (s: string): void => {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 0x01000193)
      h2 = Math.imul(h2 ^ c, 0x0100019d)
    }
    h1 = Math.imul(h1 ^ 0x0a, 0x01000193)
    h2 = Math.imul(h2 ^ 0x0a, 0x0100019d)
  }
  for (const s of p.strings ?? []) feed(s)
  feed('\u0000')
  for (const s of p.mxHosts ?? []) feed(s)
  const h = (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0')
  hashes.set(p, h)
  return h
}

/** Validate a policy reference the first time it is seen, and compute its hash. */
function checkAndHash(p: TlsRptPolicyRef): string {
  if (!isStringList(p.strings) || !isStringList(p.mxHosts)) bad('policy.strings and policy.mxHosts must be lists of strings')
  return policyHash(p)
}

function checkPolicy(p: unknown): asserts p is TlsRptPolicyRef {
  if (typeof p !== 'object' || p === null) bad('session.policy is required')
  const { type, domain } = p as TlsRptPolicyRef
  if (type !== 'tlsa' && type !== 'sts' && type !== 'no-policy-found') bad('policy.type must be tlsa, sts or no-policy-found')
  if (typeof domain !== 'string' || domain.length === 0 || domain.indexOf('|') >= 0) bad('policy.domain must be a domain name')
}

function isStringList(v: unknown): boolean {
  return v === undefined || (Array.isArray(v) && v.every((s) => typeof s === 'string'))
}

function isThenable<T>(v: Awaitable<T>): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as PromiseLike<T>).then === 'function'
}

/**
 * Record one session outcome: one atomic `increment` on the store (plus one `set` of the policy
 * description when the day's counter for that key is new). Sessions flagged `reportMail` are ignored.
 * Returns `false` when the session was ignored; a promise when the store is asynchronous.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for a malformed session.
 * @public
 */
export function recordTlsRptSession(
  store: PolicyStore,
  session: TlsRptSession,
  now: number | Date,
  opts: TlsRptRecorderOptions = {},
): Awaitable<boolean> {
  try {
    return recordTlsRptSessionChecked(store, session, now, opts)
  } catch (e) {
    throw coded(e, 'recordTlsRptSession')
  }
}

function recordTlsRptSessionChecked(
  store: PolicyStore,
  session: TlsRptSession,
  now: number | Date,
  opts: TlsRptRecorderOptions = {},
): Awaitable<boolean> {
  if (typeof session !== 'object' || session === null) bad('session must be an object')
  // RFC 8460 §5.3: the session that delivers a report SHOULD NOT be included in the next report (loops).
  if (session.reportMail === true) return false
  const t = typeof now === 'number' ? now : now instanceof Date ? now.getTime() : NaN
  if (!Number.isFinite(t)) bad('now must be a Date or ms since the epoch')
  const policy = session.policy
  checkPolicy(policy)
  const hash = hashes.get(policy) ?? checkAndHash(policy)
  const prefix = opts.keyPrefix ?? DEFAULT_PREFIX
  const ttl = opts.ttlSeconds ?? DEFAULT_TTL
  const day = utcDay(t)
  // The day's key base and success key, memoised per policy object: the same string objects each time
  // (their hash is computed once), nothing allocated on the common path.
  let memo = bases.get(policy)
  if (memo === undefined || memo.day !== day || memo.prefix !== prefix || memo.domain !== policy.domain || memo.type !== policy.type) {
    const base = `${prefix}${day}|${esc(policy.domain.toLowerCase())}|${policy.type}|${hash}|`
    memo = {
      day,
      prefix,
      domain: policy.domain,
      type: policy.type,
      base,
      ok: base + 's',
      failures: new Map(),
      lastKey: undefined,
      lastResultType: undefined,
      lastSendingMtaIp: undefined,
      lastReceivingMxHostname: undefined,
      lastReceivingMxHelo: undefined,
      lastReceivingIp: undefined,
      lastFailureReasonCode: undefined,
      prevKey: undefined,
      prevResultType: undefined,
      prevSendingMtaIp: undefined,
      prevReceivingMxHostname: undefined,
      prevReceivingMxHelo: undefined,
      prevReceivingIp: undefined,
      prevFailureReasonCode: undefined,
    }
    bases.set(policy, memo)
  }
  const base = memo.base
  let key: string
  const f = session.failure
  if (f === undefined) {
    key = memo.ok
  } else {
    if (typeof f !== 'object' || f === null) bad('failure.resultType must be an RFC 8460 §4.3 result type')
    // The same detail as the policy's last or previous failure (a failing MX fails the same way again
    // and again, or two of its addresses in turn): its key at once, without building and hashing the
    // detail string (issue 13: ≤ 2 µs per result).
    const resultType = f.resultType
    const sendingMtaIp = f.sendingMtaIp
    const receivingMxHostname = f.receivingMxHostname
    const receivingMxHelo = f.receivingMxHelo
    const receivingIp = f.receivingIp
    const failureReasonCode = f.failureReasonCode
    if (
      memo.lastKey !== undefined &&
      resultType === memo.lastResultType &&
      sendingMtaIp === memo.lastSendingMtaIp &&
      receivingMxHostname === memo.lastReceivingMxHostname &&
      receivingMxHelo === memo.lastReceivingMxHelo &&
      receivingIp === memo.lastReceivingIp &&
      failureReasonCode === memo.lastFailureReasonCode
    ) {
      key = memo.lastKey
    } else {
      if (
        memo.prevKey !== undefined &&
        resultType === memo.prevResultType &&
        sendingMtaIp === memo.prevSendingMtaIp &&
        receivingMxHostname === memo.prevReceivingMxHostname &&
        receivingMxHelo === memo.prevReceivingMxHelo &&
        receivingIp === memo.prevReceivingIp &&
        failureReasonCode === memo.prevFailureReasonCode
      ) {
        key = memo.prevKey
      } else {
        if (!isTlsRptResultType(resultType)) bad('failure.resultType must be an RFC 8460 §4.3 result type')
        key = failureKey(memo, base, resultType, sendingMtaIp, receivingMxHostname, receivingMxHelo, receivingIp, failureReasonCode)
      }
      // the last detail becomes the previous one, this one the last
      memo.prevKey = memo.lastKey
      memo.prevResultType = memo.lastResultType
      memo.prevSendingMtaIp = memo.lastSendingMtaIp
      memo.prevReceivingMxHostname = memo.lastReceivingMxHostname
      memo.prevReceivingMxHelo = memo.lastReceivingMxHelo
      memo.prevReceivingIp = memo.lastReceivingIp
      memo.prevFailureReasonCode = memo.lastFailureReasonCode
      memo.lastKey = key
      memo.lastResultType = resultType
      memo.lastSendingMtaIp = sendingMtaIp
      memo.lastReceivingMxHostname = receivingMxHostname
      memo.lastReceivingMxHelo = receivingMxHelo
      memo.lastReceivingIp = receivingIp
      memo.lastFailureReasonCode = failureReasonCode
    }
  }
  const n = store.increment(key, 1, ttl)
  return isThenable(n)
    ? Promise.resolve(n).then((v) => describePolicy(store, base, policy, ttl, v))
    : describePolicy(store, base, policy, ttl, n)
}

/** The full counter key of a failure detail, reused for a detail seen before for this policy and day. */
function failureKey(
  memo: PolicyMemo,
  base: string,
  resultType: string,
  sendingMtaIp: string | undefined,
  receivingMxHostname: string | undefined,
  receivingMxHelo: string | undefined,
  receivingIp: string | undefined,
  failureReasonCode: string | undefined,
): string {
  const detail = `${resultType}|${esc(sendingMtaIp)}|${esc(receivingMxHostname)}|${esc(receivingMxHelo)}|${esc(receivingIp)}|${esc(failureReasonCode)}`
  // Reuse the full key string of a detail seen before (its hash is then cached): a lookup in this
  // policy's small map is cheaper than hashing a fresh long key in a large store.
  let full = memo.failures.get(detail)
  if (full === undefined) {
    if (memo.failures.size >= MAX_MEMO_FAILURES) memo.failures.clear()
    full = `${base}f|${detail}`
    memo.failures.set(detail, full)
  }
  return full
}

/** Write the policy description next to its counters when a counter was just created (`n === 1`). */
function describePolicy(store: PolicyStore, base: string, policy: TlsRptPolicyRef, ttl: number, n: number): Awaitable<boolean> {
  if (n !== 1) return true
  const desc = JSON.stringify({ s: policy.strings ?? null, m: policy.mxHosts ?? null })
  const r = store.set(base + 'p', desc, ttl)
  return isThenable(r) ? Promise.resolve(r).then(() => true) : true
}

/** One policy domain's results for a day, ready for `buildTlsRptReport`. @public */
export interface TlsRptDomainResults {
  policyDomain: string
  day: string
  policies: TlsRptPolicyResult[]
}

function toCount(v: string): number {
  return /^[0-9]{1,15}$/.test(v) ? Number(v) : 0
}

function group(entries: ReadonlyArray<readonly [string, string]>, prefix: string, day: string): TlsRptDomainResults[] {
  const domains = new Map<string, Map<string, TlsRptPolicyResult>>()
  const head = `${prefix}${day}|`
  for (const [key, value] of entries) {
    if (!key.startsWith(head)) continue
    const parts = key.slice(head.length).split('|')
    const [domainEsc, type, hash, kind] = parts
    if (domainEsc === undefined || hash === undefined || (type !== 'tlsa' && type !== 'sts' && type !== 'no-policy-found')) continue
    const domain = unesc(domainEsc)
    if (domain === undefined) continue
    let byPolicy = domains.get(domain)
    if (byPolicy === undefined) domains.set(domain, (byPolicy = new Map()))
    const id = `${type}|${hash}`
    let r = byPolicy.get(id)
    if (r === undefined) {
      r = { policy: { type: type as TlsRptPolicyType, domain }, successful: 0, failed: 0, failureDetails: [] }
      byPolicy.set(id, r)
    }
    if (kind === 's' && parts.length === 4) r.successful += toCount(value)
    else if (kind === 'p' && parts.length === 4) {
      try {
        const d = JSON.parse(value) as { s?: unknown; m?: unknown }
        if (Array.isArray(d.s) && d.s.every((x) => typeof x === 'string')) r.policy.strings = d.s as string[]
        if (Array.isArray(d.m) && d.m.every((x) => typeof x === 'string')) r.policy.mxHosts = d.m as string[]
      } catch {
        /* a damaged description: the counts still count */
      }
    } else if (kind === 'f' && parts.length === 10 && isTlsRptResultType(parts[4])) {
      const n = toCount(value)
      const detail: TlsRptFailureDetail = { resultType: parts[4], failedSessionCount: n }
      const fields = ['sendingMtaIp', 'receivingMxHostname', 'receivingMxHelo', 'receivingIp', 'failureReasonCode'] as const
      fields.forEach((name, i) => {
        const v = unesc(parts[5 + i]!)
        if (v !== undefined) detail[name] = v
      })
      r.failed += n
      r.failureDetails.push(detail)
    }
  }
  const out: TlsRptDomainResults[] = []
  for (const [policyDomain, byPolicy] of [...domains].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const policies = [...byPolicy.values()]
    for (const p of policies) p.failureDetails.sort((a, b) => b.failedSessionCount - a.failedSessionCount)
    out.push({ policyDomain, day, policies })
  }
  return out
}

/**
 * Read back one UTC day (`YYYY-MM-DD`) of recorded sessions with one prefix scan, grouped by policy
 * domain and policy. Failure details are sorted by count, largest first. Malformed keys are skipped.
 * @public
 */
export function collectTlsRptDay(store: PolicyStore, day: string, opts: TlsRptRecorderOptions = {}): Awaitable<TlsRptDomainResults[]> {
  if (typeof day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(day)) bad('day must be YYYY-MM-DD')
  const prefix = opts.keyPrefix ?? DEFAULT_PREFIX
  const entries = store.scan(`${prefix}${day}|`)
  return isThenable(entries) ? Promise.resolve(entries).then((e) => group(e, prefix, day)) : group(entries, prefix, day)
}
