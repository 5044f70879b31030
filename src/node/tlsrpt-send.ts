/**
 * TLS-RPT report delivery (RFC 8460 §5): read a UTC day's recorded sessions from the store, build one
 * report per policy domain, look up its `_smtp._tls` record through our resolver and send the report
 * to every `rua` URI: `https:` by POST of `application/tlsrpt+gzip` (§5.4), `mailto:` by mail (§5.3)
 * with our own `deliver()`. Each (day, policy domain, URI) is claimed in the store with one atomic
 * increment for as long as its delivery may take, and marked sent once delivered, so that a report is
 * sent once even when several senders share a Redis store, and a sender that dies mid-way loses nothing.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import https from 'node:https'
import net from 'node:net'
import { randomInt } from 'node:crypto'
import { coded, describeValue, invalidArgument, readOptions } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { PolicyStore } from '../store/types.js'
import { collectTlsRptDay, type TlsRptDomainResults } from '../tlsrpt/recorder.js'
import { buildTlsRptReport, type TlsRptReport } from '../tlsrpt/report.js'
import { deliver, type DeliverOptions } from './deliver.js'
import { getTlsRptRecord } from './mta-sts.js'
import { pinnedLookup, resolvePublicAddresses } from './public-address.js'
import { createResolver, type Resolver } from './resolver/index.js'
import { createTlsRptMail, gzipTlsRptReport } from './tlsrpt.js'

/** Published after each scheduled run: `{ result }` or `{ day, error }`. @public */
export const tlsRptSendChannel = diagnostics_channel.channel('smtp-tls-policy:tlsrpt-send')

/** Options of {@link sendTlsRptReports}. @public */
export interface SendTlsRptReportsOptions {
  /** The store the driver recorded into (`tlsRpt.store`). */
  store: PolicyStore
  /** The UTC day `YYYY-MM-DD` to report; it must have ended. */
  day: string
  /** RFC 8460 §4.4 `organization-name`. */
  organizationName: string
  /** RFC 8460 §4.4 `contact-info` (an address or URI). */
  contactInfo: string
  /** The submitter's domain (`TLS-Report-Submitter`, the file name). */
  submitter: string
  /** The envelope sender and `From:` of report mail. */
  from: string
  /** Our resolver, for `_smtp._tls` records and HTTPS hosts; default `createResolver()`. */
  resolver?: Resolver
  /** The recorder's key prefix (`tlsRpt.keyPrefix`); default `tlsrpt|`. */
  keyPrefix?: string
  /**
   * `deliver()` options for `mailto:` reports (`level`, `mtaSts`, `ca`, `port`, `ehloName`, …). The
   * message always goes with `TLS-Required: No` (RFC 8460 §5.3, RFC 8689 §4.2.2) and is never recorded.
   */
  deliver?: DeliverOptions
  /** Trust anchors (PEM) for `https:` URIs instead of Node's root store. Verification is never disabled. */
  ca?: string | Buffer | Array<string | Buffer>
  /** POST to loopback, private or link-local addresses too (tests and labs only). Default false. */
  allowPrivateAddresses?: boolean
  /** Each URI's delivery, ms; default 30000. */
  timeoutMs?: number
  /** DKIM-sign (or otherwise transform) each report message before it is sent (RFC 8460 §5.3 SHOULD sign). */
  sign?: (message: string, policyDomain: string) => string | Promise<string>
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number
  signal?: AbortSignal
}

/** One `rua` URI's outcome. @public */
export interface TlsRptUriResult {
  uri: string
  /**
   * `sent`; `already-sent` (by an earlier run or another sender); `in-progress` (another sender holds
   * the claim: it is delivering now, or it stopped less than an hour ago, and a later run sends once the
   * claim has lapsed); `failed` (released: a later run tries again).
   */
  status: 'sent' | 'already-sent' | 'in-progress' | 'failed'
  /**
   * Why it failed; on a `sent` URI, the store error that kept it from being marked sent (a later run
   * may then send the same report again, with the same `report-id`).
   */
  error?: SmtpTlsError
}

/** One policy domain's outcome. @public */
export interface TlsRptDomainSendResult {
  policyDomain: string
  /**
   * `no-record`: the domain publishes no `_smtp._tls` record; `failed` with `error` when the lookup
   * failed; `partial` when some URIs are done and others failed or are `in-progress`; `in-progress` when
   * none failed but another sender still holds a claim.
   */
  status: 'sent' | 'partial' | 'failed' | 'already-sent' | 'in-progress' | 'no-record'
  reportId?: string
  /** Successful and failed sessions in the report. */
  sessions: { successful: number; failed: number }
  uris: TlsRptUriResult[]
  error?: SmtpTlsError
}

/** What {@link sendTlsRptReports} did. @public */
export interface TlsRptSendResult {
  day: string
  domains: TlsRptDomainSendResult[]
}

interface SendSettings {
  store: PolicyStore
  day: string
  organizationName: string
  contactInfo: string
  submitter: string
  from: string
  resolver: Resolver
  prefix: string
  deliver: DeliverOptions
  ca?: string | Buffer | Array<string | Buffer>
  allowPrivate: boolean
  timeoutMs: number
  sign?: (message: string, policyDomain: string) => string | Promise<string>
  now: () => number
  signal?: AbortSignal
}

const KEYS = [
  'store',
  'day',
  'organizationName',
  'contactInfo',
  'submitter',
  'from',
  'resolver',
  'keyPrefix',
  'deliver',
  'ca',
  'allowPrivateAddresses',
  'timeoutMs',
  'sign',
  'now',
  'signal',
] as const

/**
 * A claim on (day, domain, URI) lasts far longer than a delivery takes at the default timeouts (a
 * `mailto:` report can try several MX hosts); a delivery that outlasts it lets another sender send the
 * same report too (twice, never lost), and a sender that dies holding it delays that URI by at most this long.
 */
const CLAIM_TTL = 3600
/** The sent marker outlives the recorded sessions (8 days, the recorder's default), so no run repeats a report. */
const SENT_TTL = 8 * 86400
/** RFC 8460 §5.4 leaves the size to the receiver; a report over this is not POSTed (nor a response read beyond it). */
const MAX_BYTES = 16 * 1024 * 1024

function bad(message: string): never {
  throw invalidArgument(`sendTlsRptReports: ${message}`)
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.trim() === '') bad(`${name} must be a non-empty string, got ${describeValue(v)}`)
  return v
}

function readSendOptions(opts: unknown, withDay: boolean): SendSettings {
  if (typeof opts !== 'object' || opts === null) bad(`options must be an object, got ${describeValue(opts)}`)
  const o = readOptions(opts, 'sendTlsRptReports options', KEYS)
  const st = o.store as PolicyStore | undefined
  if (
    typeof st !== 'object' ||
    st === null ||
    typeof st.scan !== 'function' ||
    typeof st.increment !== 'function' ||
    typeof st.delete !== 'function'
  ) {
    bad('store must be a PolicyStore')
  }
  const s: SendSettings = {
    store: st,
    day: '',
    organizationName: str(o.organizationName, 'organizationName'),
    contactInfo: str(o.contactInfo, 'contactInfo'),
    submitter: str(o.submitter, 'submitter'),
    from: str(o.from, 'from'),
    resolver: undefined as never,
    prefix: 'tlsrpt|',
    deliver: {},
    allowPrivate: false,
    timeoutMs: 30_000,
    now: Date.now,
  }
  if (withDay) {
    if (typeof o.day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(o.day) || Number.isNaN(Date.parse(`${o.day}T00:00:00Z`))) {
      bad('day must be a UTC day YYYY-MM-DD')
    }
    s.day = o.day
  }
  if (o.resolver !== undefined) {
    if (typeof o.resolver !== 'object' || o.resolver === null || typeof (o.resolver as Resolver).lookup !== 'function') {
      bad('resolver must be a Resolver')
    }
    s.resolver = o.resolver as Resolver
  }
  if (o.keyPrefix !== undefined) s.prefix = str(o.keyPrefix, 'keyPrefix')
  if (o.deliver !== undefined) {
    if (typeof o.deliver !== 'object' || o.deliver === null) bad('deliver must be the options of deliver()')
    s.deliver = o.deliver as DeliverOptions
  }
  if (o.ca !== undefined) {
    const ok = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v)
    if (!(ok(o.ca) || (Array.isArray(o.ca) && o.ca.every(ok)))) bad('ca must be PEM text, a Buffer or a list of them')
    s.ca = o.ca as SendSettings['ca'] & object
  }
  if (o.allowPrivateAddresses !== undefined) {
    if (typeof o.allowPrivateAddresses !== 'boolean') bad('allowPrivateAddresses must be a boolean')
    s.allowPrivate = o.allowPrivateAddresses
  }
  if (o.timeoutMs !== undefined) {
    if (typeof o.timeoutMs !== 'number' || !Number.isInteger(o.timeoutMs) || o.timeoutMs < 1 || o.timeoutMs > 3_600_000) {
      bad('timeoutMs must be an integer from 1 to 3600000')
    }
    s.timeoutMs = o.timeoutMs
  }
  if (o.sign !== undefined) {
    if (typeof o.sign !== 'function') bad('sign must be a function')
    s.sign = o.sign as SendSettings['sign'] & object
  }
  if (o.now !== undefined) {
    if (typeof o.now !== 'function') bad('now must be a function')
    s.now = o.now as () => number
  }
  if (o.signal !== undefined) {
    if (!(o.signal instanceof AbortSignal)) bad('signal must be an AbortSignal')
    s.signal = o.signal
  }
  s.resolver ??= createResolver()
  return s
}

function deliveryError(message: string, cause?: unknown): SmtpTlsError {
  return new SmtpTlsError('ERR_TLSRPT_DELIVERY', message, cause === undefined ? {} : { cause })
}

/**
 * Send the reports of one UTC day (RFC 8460 §5): for each policy domain with recorded sessions, one
 * report (§4), sent to every URI of its `_smtp._tls` record (§3) — `https:` as a POST of
 * `application/tlsrpt+gzip` (§5.4: strict PKIX, no redirects, a time limit, private addresses refused
 * unless allowed), `mailto:` as a `multipart/report` message (§5.3) through `deliver()` with
 * `TLS-Required: No`, never itself recorded. Each (day, domain, URI) is claimed in the store before
 * sending (an atomic increment that lapses after an hour) and marked sent after: a URI marked sent is
 * `already-sent`, one claimed by another sender `in-progress`, a failed one is released so that the next
 * run tries it again, and one whose sender died is sent by a run after its claim lapsed. Never rejects
 * for a delivery failure: each URI says how it went.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` (bad options, a day that has not ended).
 * @public
 */
export async function sendTlsRptReports(options: SendTlsRptReportsOptions): Promise<TlsRptSendResult> {
  let s: SendSettings
  try {
    s = readSendOptions(options, true)
    const end = Date.parse(`${s.day}T00:00:00Z`) + 86_400_000
    if (s.now() < end) bad(`the day ${s.day} has not ended (RFC 8460 §4.1: a report covers a whole UTC day)`)
  } catch (e) {
    throw coded(e, 'sendTlsRptReports')
  }
  const days = await collectTlsRptDay(s.store, s.day, { keyPrefix: s.prefix })
  const domains: TlsRptDomainSendResult[] = []
  for (const d of days) {
    if (s.signal?.aborted) throw new SmtpTlsError('ERR_ABORTED', 'sendTlsRptReports aborted', { cause: s.signal.reason })
    domains.push(await sendDomain(s, d))
  }
  return { day: s.day, domains }
}

async function sendDomain(s: SendSettings, d: TlsRptDomainResults): Promise<TlsRptDomainSendResult> {
  const sessions = { successful: 0, failed: 0 }
  for (const p of d.policies) {
    sessions.successful += p.successful
    sessions.failed += p.failed
  }
  const out: TlsRptDomainSendResult = { policyDomain: d.policyDomain, status: 'failed', sessions, uris: [] }
  let rua: string[]
  try {
    const record = await getTlsRptRecord(d.policyDomain, { resolver: s.resolver, ...(s.signal ? { signal: s.signal } : {}) })
    if (record === undefined) {
      out.status = 'no-record'
      return out
    }
    rua = [...new Set(record.rua)]
  } catch (e) {
    out.error = e instanceof SmtpTlsError ? e : deliveryError(`_smtp._tls.${d.policyDomain}: ${String(e)}`, e)
    return out
  }
  // A stable id: a URI retried on a later run gets the same report (RFC 8460 §4.4 report-id).
  const reportId = `${s.day}T00:00:00Z_${d.policyDomain}@${s.submitter}`.replace(/[^\x21-\x7e]/g, '')
  out.reportId = reportId
  let report: TlsRptReport
  let gz: Uint8Array
  try {
    report = buildTlsRptReport({
      organizationName: s.organizationName,
      contactInfo: s.contactInfo,
      reportId,
      dateRange: s.day,
      policies: d.policies,
    })
    gz = gzipTlsRptReport(report)
  } catch (e) {
    out.error = coded(e, 'sendTlsRptReports')
    return out
  }
  for (const uri of rua) out.uris.push(await sendUri(s, d.policyDomain, uri, report, gz))
  out.status = domainStatus(out.uris)
  return out
}

function domainStatus(uris: readonly TlsRptUriResult[]): TlsRptDomainSendResult['status'] {
  let sent = 0
  let already = 0
  let inProgress = 0
  for (const u of uris) {
    if (u.status === 'sent') sent++
    else if (u.status === 'already-sent') already++
    else if (u.status === 'in-progress') inProgress++
  }
  const failed = uris.length - sent - already - inProgress
  if (failed === 0 && inProgress === 0) return sent === 0 ? 'already-sent' : 'sent'
  if (sent + already > 0) return 'partial'
  return failed === 0 ? 'in-progress' : 'failed'
}

/** `<prefix>sent|<day>|<domain>|<uri>` (the marker; runs before the claim existed wrote their claims here) or `…claim|…`. */
function uriKey(kind: 'sent' | 'claim', s: SendSettings, domain: string, uri: string): string {
  const esc = (x: string) => x.replace(/%/g, '%25').replace(/\|/g, '%7C')
  return `${s.prefix}${kind}|${s.day}|${esc(domain)}|${esc(uri)}`
}

/**
 * One URI: claim, deliver, mark sent, release. At any moment after a delivery either the claim or the
 * sent marker exists (the marker is written before the claim is released), so a second sender that
 * claims after the first released finds the marker and sends nothing.
 */
async function sendUri(s: SendSettings, domain: string, uri: string, report: TlsRptReport, gz: Uint8Array): Promise<TlsRptUriResult> {
  const sentKey = uriKey('sent', s, domain, uri)
  const claimKey = uriKey('claim', s, domain, uri)
  const storeError = (what: string, e: unknown) => new SmtpTlsError('ERR_STORE', `${what} for ${uri}: ${String(e)}`, { cause: e })
  const release = async (): Promise<void> => {
    try {
      await s.store.delete(claimKey)
    } catch {
      /* the claim lapses after CLAIM_TTL */
    }
  }
  try {
    if ((await s.store.get(sentKey)) !== undefined) return { uri, status: 'already-sent' }
    if ((await s.store.increment(claimKey, 1, CLAIM_TTL)) !== 1) return { uri, status: 'in-progress' }
    // another sender may have delivered, marked and released between our first look and our claim
    if ((await s.store.get(sentKey)) !== undefined) {
      await release()
      return { uri, status: 'already-sent' }
    }
  } catch (e) {
    // Without a claim the report could go twice: not sent now, tried by a later run.
    return { uri, status: 'failed', error: storeError('claim', e) }
  }
  try {
    if (/^https:/i.test(uri)) await postReport(s, uri, gz)
    else if (/^mailto:/i.test(uri)) await mailReport(s, domain, uri, report)
    else throw deliveryError(`${uri}: only mailto: and https: are defined (RFC 8460 §3)`)
  } catch (e) {
    await release()
    const error = e instanceof SmtpTlsError ? e : deliveryError(`${uri}: ${String(e)}`, e)
    return { uri, status: 'failed', error }
  }
  try {
    await s.store.set(sentKey, '1', SENT_TTL)
  } catch (e) {
    // Delivered but not marked: the claim stays until it lapses, then a later run may send the same
    // report again (the same report-id, RFC 8460 §4.4): twice rather than never.
    return { uri, status: 'sent', error: storeError('sent marker', e) }
  }
  await release()
  return { uri, status: 'sent' }
}

async function mailReport(s: SendSettings, domain: string, uri: string, report: TlsRptReport): Promise<void> {
  const mail = createTlsRptMail({ report, from: s.from, to: [uri], submitter: s.submitter, policyDomain: domain, date: new Date(s.now()) })
  // RFC 6068: mailto:addr1,addr2?query; the header `To:` carries them, each is delivered to its domain.
  const addresses = mailtoAddresses(uri)
  const body = s.sign ? await s.sign(mail.message, domain) : mail.message
  if (typeof body !== 'string') throw deliveryError(`${uri}: sign() must return the message as a string`)
  const o = s.deliver
  const failures: string[] = []
  for (const address of addresses) {
    const at = address.lastIndexOf('@')
    const dest = address.slice(at + 1)
    try {
      const r = await deliver(
        dest,
        { envelope: { from: s.from, to: [address] }, body },
        {
          ...o,
          // RFC 8460 §5.3: reports MUST be delivered despite TLS failures; RFC 8689 §4.2.2 TLS-Required: No
          message: { ...o.message, tlsRequiredNo: true },
          ...(o.tlsRpt !== undefined ? { tlsRpt: { ...o.tlsRpt, reportMail: true } } : {}),
          ...(s.signal ? { signal: s.signal } : {}),
        },
      )
      if (!r.accepted.includes(address)) {
        const rc = r.recipients[0]
        failures.push(
          `${address}: ${rc ? `${rc.code ?? ''} ${rc.enhancedStatus} ${rc.text}`.trim() : (r.error?.message ?? 'not accepted')}`,
        )
      }
    } catch (e) {
      failures.push(`${address}: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  if (failures.length > 0) throw deliveryError(`${uri}: ${failures.join('; ')}`)
}

function mailtoAddresses(uri: string): string[] {
  const raw = uri.slice(7).split('?')[0]!
  let decoded: string
  try {
    decoded = decodeURIComponent(raw)
  } catch {
    throw deliveryError(`${uri}: invalid percent-encoding`)
  }
  const list = decoded
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '')
  if (list.length === 0 || list.some((a) => !/^[^@\s<>]+@[A-Za-z0-9.-]+$/.test(a))) throw deliveryError(`${uri}: not a mail address`)
  return list
}

/** RFC 8460 §5.4: POST the gzip report; 2xx is success; redirects are not followed. */
async function postReport(s: SendSettings, uri: string, gz: Uint8Array): Promise<void> {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    throw deliveryError(`${uri}: not a URL`)
  }
  if (gz.byteLength > MAX_BYTES) throw deliveryError(`${uri}: report of ${gz.byteLength} bytes, over ${MAX_BYTES}`)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const deadline = AbortSignal.timeout(s.timeoutMs)
  const both = s.signal ? AbortSignal.any([s.signal, deadline]) : deadline
  const addresses = await resolvePublicAddresses(s.resolver, host, { allowPrivate: s.allowPrivate, signal: both }, (m) => deliveryError(m))
  await new Promise<void>((resolve, reject) => {
    let settled = false
    const req = https.request({
      host,
      port: url.port === '' ? 443 : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
      rejectUnauthorized: true, // strict PKIX: the report goes to who the URI names
      ...(s.ca !== undefined ? { ca: s.ca } : {}),
      minVersion: 'TLSv1.2',
      agent: false,
      lookup: pinnedLookup(addresses),
      headers: {
        host: url.host,
        'content-type': 'application/tlsrpt+gzip', // RFC 8460 §5.4, §6.4
        'content-length': String(gz.byteLength),
        'user-agent': 'smtp-tls-policy',
      },
    })
    const finish = (e?: SmtpTlsError): void => {
      if (settled) return
      settled = true
      both.removeEventListener('abort', onAbort)
      req.destroy()
      if (e) reject(e)
      else resolve()
    }
    const onAbort = (): void =>
      finish(
        s.signal?.aborted
          ? new SmtpTlsError('ERR_ABORTED', `${uri}: aborted`, { cause: s.signal.reason })
          : deliveryError(`${uri}: no answer within ${s.timeoutMs} ms`),
      )
    if (both.aborted) return onAbort()
    both.addEventListener('abort', onAbort, { once: true })
    req.on('error', (e) => finish(deliveryError(`${uri}: ${e.message}`, e)))
    req.on('response', (res) => {
      res.on('error', () => undefined)
      const status = res.statusCode ?? 0
      if (status >= 200 && status < 300) return finish()
      const why = status >= 300 && status < 400 ? ' (redirects are not followed)' : ''
      finish(deliveryError(`${uri}: HTTP status ${status}${why}`))
    })
    req.end(gz)
  })
}

/** Options of {@link scheduleTlsRptReports}: those of {@link sendTlsRptReports} without `day`. @public */
export interface ScheduleTlsRptReportsOptions extends Omit<SendTlsRptReportsOptions, 'day'> {
  /** Delay after UTC midnight, ms, drawn uniformly from [min, max]; default [240000, 360000] (mox: 4-6 minutes). */
  delayMs?: readonly [min: number, max: number]
  /**
   * Ended days each run covers, the day before first (default 3, at most 8: the recorder keeps 8 days).
   * A day whose reports all went out is marked done and costs one store read afterwards; a day that
   * left a URI failed or in progress (a receiver down, this process stopped over midnight) is tried again.
   */
  catchUpDays?: number
  /**
   * After a run that left a URI failed or in progress, run again this much later, ms (default 3600000,
   * with the same jitter as `delayMs`), as long as that comes before the next daily run.
   */
  retryMs?: number
  /** Called with each run's result (also published on `tlsRptSendChannel`). */
  onResult?: (result: TlsRptSendResult) => void
  /** Called when a day's run fails as a whole (the store's scan failed); that day is tried again. */
  onError?: (error: SmtpTlsError, day: string) => void
}

/** A running schedule. @public */
export interface TlsRptSchedule {
  /** When the next run starts (the daily run, or a retry before it). */
  readonly next: Date
  /** Stop: no further run starts (a run in progress finishes). */
  stop(): void
}

/**
 * Send the previous UTC day's reports once a day, shortly after UTC midnight with random jitter
 * (default 4-6 minutes, as mox does), on an unref'd timer: it does not keep the process alive. Each run
 * also covers the days before (`catchUpDays`) that are not done, and a run that left a URI failed or in
 * progress is repeated after `retryMs`, so a report is not lost to a receiver that was down or to a
 * process that was not running at midnight. Each day's result goes to `onResult` and
 * `tlsRptSendChannel`. Runs are idempotent (see {@link sendTlsRptReports}), so several processes may
 * each run a schedule on a shared store.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for bad options.
 * @public
 */
export function scheduleTlsRptReports(options: ScheduleTlsRptReportsOptions): TlsRptSchedule {
  let delay: readonly [number, number] = [240_000, 360_000]
  let catchUpDays = 3
  let retryMs = 3_600_000
  let onResult: ((r: TlsRptSendResult) => void) | undefined
  let onError: ((e: SmtpTlsError, day: string) => void) | undefined
  let now: () => number
  let store: PolicyStore
  let prefix: string
  try {
    const s = readSendOptions(options, false)
    now = s.now
    store = s.store
    prefix = s.prefix
    const o = readOptions(options, 'scheduleTlsRptReports options', ['delayMs', 'catchUpDays', 'retryMs', 'onResult', 'onError'])
    if (o.delayMs !== undefined) {
      const d = o.delayMs
      if (
        !Array.isArray(d) ||
        d.length !== 2 ||
        !d.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < 86_400_000) ||
        (d[0] as number) > (d[1] as number)
      ) {
        bad('delayMs must be [min, max] ms within a day')
      }
      delay = [d[0] as number, d[1] as number]
    }
    if (o.catchUpDays !== undefined) {
      if (!Number.isInteger(o.catchUpDays) || (o.catchUpDays as number) < 1 || (o.catchUpDays as number) > 8) {
        bad('catchUpDays must be an integer from 1 to 8')
      }
      catchUpDays = o.catchUpDays as number
    }
    if (o.retryMs !== undefined) {
      if (!Number.isInteger(o.retryMs) || (o.retryMs as number) < 1000 || (o.retryMs as number) > 86_400_000) {
        bad('retryMs must be an integer from 1000 to 86400000')
      }
      retryMs = o.retryMs as number
    }
    if (o.onResult !== undefined && typeof o.onResult !== 'function') bad('onResult must be a function')
    if (o.onError !== undefined && typeof o.onError !== 'function') bad('onError must be a function')
    onResult = o.onResult as typeof onResult
    onError = o.onError as typeof onError
  } catch (e) {
    throw coded(e, 'scheduleTlsRptReports')
  }
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let retryTimer: NodeJS.Timeout | undefined
  let daily = 0
  let retryAt: number | undefined
  const jitter = () => (delay[0] === delay[1] ? delay[0] : randomInt(delay[0], delay[1] + 1))
  /** Arm the daily timer for the first run after `after` (default now): UTC midnight plus the jitter. */
  const arm = (after?: number): void => {
    const t = now()
    const from = after ?? t
    const midnight = Math.floor(from / 86_400_000) * 86_400_000
    const j = jitter()
    let at = midnight + j
    if (at <= from) at = midnight + 86_400_000 + j
    daily = at
    timer = setTimeout(() => run(false), Math.max(0, at - t))
    timer.unref()
  }
  const armRetry = (): void => {
    const t = now()
    const at = t + retryMs + jitter()
    if (stopped || at >= daily || retryAt !== undefined) return
    retryAt = at
    retryTimer = setTimeout(() => {
      retryAt = undefined
      run(true)
    }, at - t)
    retryTimer.unref()
  }
  /** A day whose every report went out (or had no record) is marked done: later runs skip it. */
  const doneKey = (day: string) => `${prefix}done|${day}`
  const isDone = async (day: string): Promise<boolean> => {
    try {
      return (await store.get(doneKey(day))) !== undefined
    } catch {
      return false // run it: the sent markers keep it from sending twice
    }
  }
  const complete = (r: TlsRptSendResult) =>
    r.domains.every((d) => d.status === 'sent' || d.status === 'already-sent' || d.status === 'no-record')
  /** The caller's callback: a throw there must not stop the other days or the retry. */
  const callback = (f: () => void): void => {
    try {
      f()
    } catch {
      /* the caller's own error */
    }
  }
  let running = false
  let rerun = false
  const run = (retry: boolean): void => {
    if (stopped) return
    const t = now()
    // the next daily run first: a timer that fired a little early must not run today twice
    if (!retry) arm(t + 3_600_000)
    if (running) {
      // a run still in progress (a long catch-up): this one follows it, its day may be new
      rerun = true
      return
    }
    const today = Math.floor(t / 86_400_000) * 86_400_000
    const days: string[] = []
    for (let k = catchUpDays; k >= 1; k--) days.push(new Date(today - k * 86_400_000).toISOString().slice(0, 10))
    running = true
    void (async () => {
      let pending = false
      for (const day of days) {
        if (stopped) break
        if (await isDone(day)) continue
        try {
          const result = await sendTlsRptReports({ ...options, day })
          if (tlsRptSendChannel.hasSubscribers) tlsRptSendChannel.publish({ result })
          callback(() => onResult?.(result))
          if (!complete(result)) pending = true
          else {
            try {
              await store.set(doneKey(day), '1', SENT_TTL)
            } catch {
              /* the next run looks at the day again and finds every URI already sent */
            }
          }
        } catch (e) {
          pending = true
          const error = coded(e, 'scheduleTlsRptReports')
          if (tlsRptSendChannel.hasSubscribers) tlsRptSendChannel.publish({ day, error })
          callback(() => onError?.(error, day))
        }
      }
      running = false
      if (rerun) {
        rerun = false
        run(true)
      } else if (pending) armRetry()
    })().catch(() => {
      running = false
    })
  }
  arm()
  return {
    get next() {
      return new Date(retryAt !== undefined && retryAt < daily ? retryAt : daily)
    },
    stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      if (retryTimer) clearTimeout(retryTimer)
    },
  }
}
