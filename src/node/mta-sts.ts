/**
 * MTA-STS over the network (RFC 8461 §3): the `_mta-sts` TXT lookup through our resolver, the policy
 * fetch from `https://mta-sts.<domain>/.well-known/mta-sts.txt` with strict PKIX, and the cache
 * logic around the pure {@link decideMtaStsCache}, kept in a {@link PolicyStore}. Also the
 * `_smtp._tls` TLS-RPT record lookup (RFC 8460 §3).
 */
import diagnostics_channel from 'node:diagnostics_channel'
import https from 'node:https'
import { coded, describeValue, invalidArgument, readOptions } from '../args.js'
import { SmtpTlsError, type TlsRptResultType } from '../errors.js'
import type { DnsAnswer } from '../dns/types.js'
import {
  decideMtaStsCache,
  mtaStsFreshUntil,
  type CachedMtaStsPolicy,
  type MtaStsCacheDecision,
  type MtaStsTxtState,
} from '../mta-sts/cache.js'
import { parseMtaStsPolicy, type MtaStsPolicy } from '../mta-sts/policy.js'
import { parseMtaStsRecord, type MtaStsRecord } from '../mta-sts/record.js'
import type { TraceStep } from '../policy/trace.js'
import type { PolicyStore } from '../store/types.js'
import { parseTlsRptRecord, type TlsRptRecord } from '../tlsrpt/record.js'
import { normalizeDnsName } from '../x509/names.js'
import { pinnedLookup, resolvePublicAddresses } from './public-address.js'
import { createResolver, type Resolver } from './resolver/index.js'
import { PEEK_CACHED, resolverCacheKey, type PeekCached } from './resolver/resolver.js'

/** RFC 8461 §3.3 (and mox, Postfix's mta-sts-resolver): a policy body larger than this is refused. */
export const MTA_STS_MAX_POLICY_BYTES = 64 * 1024
const DEFAULT_TIMEOUT_MS = 10_000
const PATH = '/.well-known/mta-sts.txt' // RFC 8461 §3.2

/** Published when a {@link PolicyStore} operation fails: `{ operation, key, error }`. @public */
export const storeErrorChannel = diagnostics_channel.channel('smtp-tls-policy:store-error')

/** Options of {@link fetchMtaStsPolicy}. @public */
export interface MtaStsFetchOptions {
  /** Our DNSSEC-aware resolver: `mta-sts.<domain>` is resolved through it. Default: a new `createResolver()`. */
  resolver?: Resolver
  signal?: AbortSignal
  /** The whole fetch (address lookup, connect, TLS, headers and body) must finish within this (ms). Default 10000. */
  timeoutMs?: number
  /** Trust anchors (PEM) instead of Node's root store, e.g. a private CA in tests. Verification is never disabled. */
  ca?: string | Buffer | Array<string | Buffer>
  /**
   * Connect to loopback, private (RFC 1918, RFC 4193), link-local, CGNAT, unspecified and multicast
   * addresses too. Default `false`: such an address is refused (a policy host is on the public Internet).
   */
  allowPrivateAddresses?: boolean
  /** The HTTPS port; default 443 (RFC 8461 §3.3). Other values are for tests. */
  port?: number
}

/** A fetched and parsed policy. @public */
export interface MtaStsFetchResult {
  policy: MtaStsPolicy
  /** The address the policy came from. */
  address: string
}

function bad(message: string): never {
  throw invalidArgument(message)
}

function fetchError(tlsrpt: TlsRptResultType, message: string, cause?: unknown): SmtpTlsError {
  // RFC 8461 §3.3 / §5: a fetch failure never bounces mail (temporary), and is reported in TLS-RPT (RFC 8460 §4.3.2.2).
  return new SmtpTlsError('ERR_MTA_STS_FETCH', message, { tlsrpt, enhancedStatus: '4.7.5', cause })
}

function checkDomain(domain: unknown): string {
  if (typeof domain !== 'string') bad(`domain must be a string, got ${describeValue(domain)}`)
  const d = normalizeDnsName(domain)
  if (d === undefined || d.includes('*')) bad(`not a domain name: ${JSON.stringify(domain)}`)
  return d
}

/** Node reports certificate verification failures with these codes (OpenSSL X509_V_ERR_* names). */
function isPkixError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code
  return (
    typeof code === 'string' &&
    (code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
      /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY|DECRYPT|DECODE)|CHAIN_TOO_LONG|PATH_LENGTH/.test(code))
  )
}

interface FetchSettings {
  resolver: Resolver
  signal?: AbortSignal
  timeoutMs: number
  ca?: string | Buffer | Array<string | Buffer>
  allowPrivate: boolean
  port: number
}

function readFetchOptions(opts: unknown, what: string): FetchSettings {
  return fetchSettings(readOptions(opts, what, ['resolver', 'signal', 'timeoutMs', 'ca', 'allowPrivateAddresses', 'port']), what)
}

function fetchSettings(o: Partial<Record<keyof MtaStsFetchOptions, unknown>>, what: string): FetchSettings {
  const s: FetchSettings = { resolver: undefined as never, timeoutMs: DEFAULT_TIMEOUT_MS, allowPrivate: false, port: 443 }
  if (o.resolver !== undefined) {
    if (typeof o.resolver !== 'object' || o.resolver === null || typeof (o.resolver as Resolver).lookup !== 'function') {
      bad(`${what}.resolver must be a Resolver from createResolver`)
    }
    s.resolver = o.resolver as Resolver
  }
  if (o.signal !== undefined) {
    if (!(o.signal instanceof AbortSignal)) bad(`${what}.signal must be an AbortSignal`)
    s.signal = o.signal
  }
  if (o.timeoutMs !== undefined) {
    if (typeof o.timeoutMs !== 'number' || !(o.timeoutMs > 0) || !Number.isFinite(o.timeoutMs))
      bad(`${what}.timeoutMs must be a positive number`)
    s.timeoutMs = o.timeoutMs
  }
  if (o.ca !== undefined) {
    const ok = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v)
    if (!(ok(o.ca) || (Array.isArray(o.ca) && o.ca.every(ok)))) bad(`${what}.ca must be PEM text, a Buffer or a list of them`)
    s.ca = o.ca as FetchSettings['ca'] & object
  }
  if (o.allowPrivateAddresses !== undefined) {
    if (typeof o.allowPrivateAddresses !== 'boolean') bad(`${what}.allowPrivateAddresses must be a boolean`)
    s.allowPrivate = o.allowPrivateAddresses
  }
  if (o.port !== undefined) {
    if (!Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535) bad(`${what}.port must be from 1 to 65535`)
    s.port = o.port as number
  }
  s.resolver ??= createResolver()
  return s
}

function abortedError(signal: AbortSignal): SmtpTlsError {
  return new SmtpTlsError('ERR_ABORTED', 'MTA-STS policy fetch aborted', { cause: signal.reason })
}

/**
 * Fetch and parse the policy of `domain` from `https://mta-sts.<domain>/.well-known/mta-sts.txt`
 * (RFC 8461 §3.3): the host resolved through `resolver`, strict PKIX with SNI `mta-sts.<domain>`,
 * no redirects, status 200 only, media type `text/plain`, at most 64 KiB, within `timeoutMs`.
 *
 * @throws {@link SmtpTlsError} `ERR_MTA_STS_FETCH` (temporary) with `tlsrpt` `sts-webpki-invalid` (the
 * certificate of `mta-sts.<domain>`), `sts-policy-invalid` (the body is not a valid policy) or
 * `sts-policy-fetch-error` (anything else); `ERR_ABORTED`; `ERR_INVALID_ARGUMENT`.
 * @public
 */
export async function fetchMtaStsPolicy(domain: string, opts?: MtaStsFetchOptions): Promise<MtaStsFetchResult> {
  let d: string
  let s: FetchSettings
  try {
    d = checkDomain(domain)
    s = readFetchOptions(opts, 'fetchMtaStsPolicy options')
  } catch (e) {
    throw coded(e, 'fetchMtaStsPolicy')
  }
  return fetchChecked(d, s)
}

async function fetchChecked(domain: string, s: FetchSettings): Promise<MtaStsFetchResult> {
  const host = `mta-sts.${domain}` // RFC 8461 §3.3
  const signal = s.signal
  if (signal?.aborted) throw abortedError(signal)
  const deadline = AbortSignal.timeout(s.timeoutMs)
  const both = signal ? AbortSignal.any([signal, deadline]) : deadline
  const addresses = await Promise.race([
    resolvePublicAddresses(s.resolver, host, { allowPrivate: s.allowPrivate, signal: both }, (m) =>
      fetchError('sts-policy-fetch-error', m),
    ),
    new Promise<never>((_, reject) => {
      const stop = (): void =>
        reject(
          signal?.aborted ? abortedError(signal) : fetchError('sts-policy-fetch-error', `${host}: no address within ${s.timeoutMs} ms`),
        )
      if (both.aborted) stop()
      else both.addEventListener('abort', stop, { once: true })
    }),
  ]).catch((e: unknown) => {
    if (signal?.aborted) throw abortedError(signal)
    if (e instanceof SmtpTlsError && e.code === 'ERR_ABORTED')
      throw fetchError('sts-policy-fetch-error', `${host}: no address within ${s.timeoutMs} ms`)
    throw e
  })
  const body = await new Promise<string>((resolve, reject) => {
    let settled = false
    let tlsDone = false
    const req = https.request({
      host,
      port: s.port,
      path: PATH,
      method: 'GET',
      servername: host, // SNI mta-sts.<domain>; the certificate must name it (RFC 8461 §3.3)
      rejectUnauthorized: true, // RFC 8461 §3.3: "HTTPS ... MUST" validate the certificate (RFC 6125)
      ...(s.ca !== undefined ? { ca: s.ca } : {}),
      minVersion: 'TLSv1.2',
      agent: false,
      lookup: pinnedLookup(addresses), // the addresses resolved and checked above, never node:dns's answer
      headers: { host, accept: 'text/plain', 'user-agent': 'smtp-tls-policy' },
    })
    const finish = (e: SmtpTlsError | undefined, text?: string): void => {
      if (settled) return
      settled = true
      both.removeEventListener('abort', onAbort)
      req.destroy()
      if (e) reject(e)
      else resolve(text!)
    }
    const onAbort = (): void =>
      finish(
        signal?.aborted
          ? abortedError(signal)
          : fetchError('sts-policy-fetch-error', `${host}: no complete policy within ${s.timeoutMs} ms`),
      )
    if (both.aborted) return onAbort()
    both.addEventListener('abort', onAbort, { once: true })
    req.on('socket', (sock) => sock.once('secureConnect', () => (tlsDone = true)))
    req.on('error', (e) => {
      if (!tlsDone && isPkixError(e)) finish(fetchError('sts-webpki-invalid', `${host}: certificate not valid: ${e.message}`, e))
      else finish(fetchError('sts-policy-fetch-error', `${host}: ${e.message}`, e))
    })
    req.on('response', (res) => {
      res.on('error', (e) => finish(fetchError('sts-policy-fetch-error', `${host}: ${e.message}`, e)))
      const status = res.statusCode ?? 0
      if (status !== 200) {
        // RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed", and only 200 carries a policy.
        const why = status >= 300 && status < 400 ? ' (redirects are not followed, RFC 8461 §3.3)' : ''
        return finish(fetchError('sts-policy-fetch-error', `${host}: HTTP status ${status}${why}`))
      }
      const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
      if (type !== 'text/plain') {
        // RFC 8461 §3.2: the policy's media type is "text/plain".
        return finish(fetchError('sts-policy-invalid', `${host}: media type ${JSON.stringify(type)}, not text/plain (RFC 8461 §3.2)`))
      }
      const declared = Number(res.headers['content-length'])
      if (declared > MTA_STS_MAX_POLICY_BYTES)
        return finish(fetchError('sts-policy-invalid', `${host}: policy of ${declared} bytes, over 64 KiB`))
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > MTA_STS_MAX_POLICY_BYTES) return finish(fetchError('sts-policy-invalid', `${host}: policy over 64 KiB`))
        chunks.push(c)
      })
      res.on('end', () => finish(undefined, Buffer.concat(chunks).toString('utf8')))
      res.on('aborted', () => finish(fetchError('sts-policy-fetch-error', `${host}: connection closed mid-body`)))
    })
    req.end()
  })
  let policy: MtaStsPolicy
  try {
    policy = parseMtaStsPolicy(body)
  } catch (e) {
    throw fetchError('sts-policy-invalid', `${host}: ${(e as Error).message}`, e)
  }
  return { policy, address: addresses[0]!.address }
}

/** Options of {@link getMtaStsPolicy}. @public */
export interface GetMtaStsPolicyOptions extends MtaStsFetchOptions {
  /** Where policies are cached across calls and processes (`createMemoryStore()`, `createRedisStore()`). Without one, every call fetches. */
  store?: PolicyStore
  /** Key prefix in the store; default `mta-sts|`. */
  keyPrefix?: string
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number
  /** A uniform random number in [0, 1) for the refresh jitter; default `Math.random`. */
  random?: () => number
  /** Refresh in the background when the policy is inside its refresh window (RFC 8461 §10.2); default `true`. */
  refresh?: boolean
  /**
   * After a failed fetch, do not fetch the same `id` again for this long (seconds; default 300, RFC 8461
   * §3.3 suggests at least five minutes); meanwhile the lookup answers as if the fetch had failed
   * again. Kept in the domain's store entry; `0` disables it.
   */
  retryAfterFailureSeconds?: number
}

/** What {@link getMtaStsPolicy} found. @public */
export interface MtaStsLookup {
  domain: string
  /** The `_mta-sts` record, when exactly one valid record was found. */
  record?: MtaStsRecord
  txt: MtaStsTxtState
  /** The policy in force; `undefined`: deliver as if the domain had no MTA-STS. */
  policy?: MtaStsPolicy
  /**
   * - `cached`: a fresh cached policy, no HTTPS request;
   * - `fetched`: fetched now (not cached, expired, or the `id` changed);
   * - `cached-after-failure`: the fetch failed or the TXT lookup did, the unexpired cached policy applies (§3.3);
   * - `none`: no policy.
   */
  state: 'cached' | 'fetched' | 'cached-after-failure' | 'none'
  decision: MtaStsCacheDecision['reason']
  fetchedAt?: number
  expiresAt?: number
  /** The fetch or TXT failure, with its TLS-RPT `result-type` in `error.tlsrpt` when reportable. */
  error?: SmtpTlsError
  /** A background refresh in flight (resolves when done; never rejects). */
  refreshing?: Promise<void>
  trace: TraceStep[]
}

/** Background refreshes in flight, per store and domain: one at a time. */
const refreshing = new WeakMap<object, Map<string, Promise<void>>>()
const NO_STORE = {}

function publishStoreError(operation: string, key: string, error: unknown): void {
  if (storeErrorChannel.hasSubscribers) storeErrorChannel.publish({ operation, key, error })
}

/** A failed fetch remembered with the cached entry (RFC 8461 §3.3: do not hammer a failing policy host). */
interface FetchFailure {
  id: string
  /** ms since the epoch: fetch this id again from then on */
  until: number
  tlsrpt: TlsRptResultType
  message: string
}

/**
 * One store entry per domain, `{ id, fetchedAt, lines }` for the policy and/or `failed` for a recent
 * fetch failure: one `get` per lookup serves both.
 */
type StoreEntry = { cached?: CachedMtaStsPolicy; failed?: FetchFailure }
const NO_ENTRY: StoreEntry = Object.freeze({})

/** The store entry: at once from a synchronous store (the memory store), else a promise that never rejects. */
function storeGet(store: PolicyStore | undefined, key: string, m?: DomainMemo): StoreEntry | Promise<StoreEntry> {
  if (store === undefined) return NO_ENTRY
  let v: string | undefined | PromiseLike<string | undefined>
  try {
    v = store.get(key)
  } catch (e) {
    // A store failure costs a fetch, never a weaker policy.
    publishStoreError('get', key, e)
    return NO_ENTRY
  }
  if (typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function') {
    return Promise.resolve(v).then(
      (raw) => storeEntry(key, raw),
      (e: unknown) => {
        publishStoreError('get', key, e)
        return NO_ENTRY
      },
    )
  }
  if (m !== undefined && v === m.raw && v !== undefined) return m.entry! // the text seen last time for this domain
  const entry = storeEntry(key, v as string | undefined)
  if (m !== undefined && typeof v === 'string' && entry !== NO_ENTRY) {
    m.raw = v
    m.entry = entry
  }
  return entry
}

function storeEntry(key: string, raw: string | undefined): StoreEntry {
  if (raw === undefined || raw === null) return NO_ENTRY
  const memo = typeof raw === 'string' ? parsedEntries.get(raw) : undefined
  if (memo !== undefined) return memo
  const out: { cached?: CachedMtaStsPolicy; failed?: FetchFailure } = {}
  try {
    const c = JSON.parse(raw) as {
      id?: unknown
      fetchedAt?: unknown
      lines?: unknown
      failed?: Partial<Record<keyof FetchFailure, unknown>>
    }
    const f = c.failed
    if (typeof f === 'object' && f !== null && typeof f.id === 'string' && typeof f.until === 'number' && typeof f.message === 'string') {
      const type = f.tlsrpt === 'sts-policy-invalid' || f.tlsrpt === 'sts-webpki-invalid' ? f.tlsrpt : 'sts-policy-fetch-error'
      out.failed = { id: f.id, until: f.until, tlsrpt: type, message: f.message }
    }
    if (c.id === undefined && out.failed) return out
    if (typeof c.id !== 'string' || typeof c.fetchedAt !== 'number' || !Array.isArray(c.lines)) throw new Error('not a cached policy')
    // The policy is stored as its lines and parsed again: a damaged entry cannot inject a weaker policy.
    out.cached = Object.freeze({
      id: c.id,
      fetchedAt: c.fetchedAt,
      policy: deepFreeze(parseMtaStsPolicy((c.lines as string[]).join('\n'))),
    })
    remember(raw, out)
    return out
  } catch (e) {
    publishStoreError('get', key, e)
    return NO_ENTRY
  }
}

/**
 * Store entries already parsed, by their exact text (issue 13: a warm lookup must not parse the policy
 * again). The same text always parses to the same policy, so the memo can never change a decision;
 * what it hands out is frozen, shared between callers. Bounded: cleared when full.
 */
const parsedEntries = new Map<string, { cached?: CachedMtaStsPolicy; failed?: FetchFailure }>()
const MAX_PARSED_ENTRIES = 20_000

function remember(raw: string, entry: { cached?: CachedMtaStsPolicy; failed?: FetchFailure }): void {
  if (parsedEntries.size >= MAX_PARSED_ENTRIES) parsedEntries.clear()
  parsedEntries.set(raw, Object.freeze(entry))
}

function deepFreeze(p: MtaStsPolicy): MtaStsPolicy {
  for (const e of p.extensions) Object.freeze(e)
  Object.freeze(p.extensions)
  Object.freeze(p.lines)
  return Object.freeze(p)
}

async function storeSet(store: PolicyStore | undefined, key: string, c: CachedMtaStsPolicy): Promise<void> {
  if (store === undefined) return
  try {
    if (c.policy.maxAge > 0)
      await store.set(key, JSON.stringify({ id: c.id, fetchedAt: c.fetchedAt, lines: c.policy.lines }), c.policy.maxAge)
    else await store.delete(key)
  } catch (e) {
    publishStoreError('set', key, e)
  }
}

async function storeDelete(store: PolicyStore | undefined, key: string): Promise<void> {
  if (store === undefined) return
  try {
    await store.delete(key)
  } catch (e) {
    publishStoreError('delete', key, e)
  }
}

type TxtLookup = { txt: MtaStsTxtState; record?: MtaStsRecord; error?: SmtpTlsError }
const parsedRecords = new Map<string, TxtLookup>()

function lookupTxt(m: DomainMemo, s: FetchSettings): Promise<TxtLookup> {
  return s.resolver.lookup(`_mta-sts.${m.domain}`, 'TXT', s.signal ? { signal: s.signal } : {}).then((ans) => memoTxt(m, ans))
}

/** The `_mta-sts` TXT answer as the cache decision sees it (RFC 8461 §3.1); records parsed once per text. */
function txtOf(domain: string, ans: DnsAnswer<'TXT'>): TxtLookup {
  if (ans.status === 'nxdomain' || ans.status === 'nodata') return { txt: { status: 'absent' } }
  if (ans.status !== 'secure' && ans.status !== 'insecure') {
    const f = ans.error
    return {
      txt: { status: 'failed' },
      error: new SmtpTlsError(f?.code ?? 'ERR_DNS_SERVFAIL', f?.message ?? `_mta-sts.${domain} TXT ${ans.status}`),
    }
  }
  const one = ans.records.length === 1 ? ans.records[0] : undefined
  const memo = one !== undefined ? parsedRecords.get(one) : undefined
  if (memo !== undefined) return memo
  try {
    const record = parseMtaStsRecord(ans.records)
    const out: TxtLookup = record
      ? {
          txt: Object.freeze({ status: 'found', id: record.id }),
          record: Object.freeze({
            ...record,
            extensions: Object.freeze(record.extensions.map((x) => Object.freeze(x))) as MtaStsRecord['extensions'],
          }),
        }
      : { txt: { status: 'absent' } }
    if (one !== undefined && record) {
      // the same record text parses to the same record: parsed once (issue 13), frozen, bounded
      if (parsedRecords.size >= MAX_PARSED_ENTRIES) parsedRecords.clear()
      parsedRecords.set(one, Object.freeze(out))
    }
    return out
  } catch (e) {
    // RFC 8461 §3.1: not exactly one valid record → "does not have an available MTA-STS Policy".
    return { txt: { status: 'absent' }, error: e as SmtpTlsError }
  }
}

/**
 * What a warm lookup of one domain needs again and again (issue 13), derived once per domain name as
 * given: the normalised domain, the store key, the resolver's cache key, and the last TXT answer, store
 * entry and cached result seen, each reused only while the input it came from is the same object.
 * Bounded: cleared when full. Nothing here can change a result: each memo is checked against its input.
 */
interface DomainMemo {
  domain: string
  prefix: string | undefined
  key: string
  /** The resolver's cache key of `_mta-sts.<domain>` TXT. */
  txtKey: string
  txtAnswer: DnsAnswer | undefined
  /** The single TXT string last seen (a resolver that builds a new answer each time may return the same string). */
  txtRecord: string | undefined
  txt: TxtLookup | undefined
  /** The store entry text last seen, and what it parsed to. */
  raw: string | undefined
  entry: StoreEntry | undefined
  /** The frozen `cached` result, the inputs it was made from, and it already resolved. */
  warmTxt: TxtLookup | undefined
  warmEntry: StoreEntry | undefined
  warmDecision: MtaStsCacheDecision | undefined
  warmValue: MtaStsLookup | undefined
  warmPromise: Promise<MtaStsLookup> | undefined
  /** Before this time, the same TXT answer and store entry decide the same (see mtaStsFreshUntil); else -Infinity. */
  warmUntil: number
}
const domainMemos = new Map<string, DomainMemo>()

function domainMemo(domain: string): DomainMemo {
  const hit = typeof domain === 'string' ? domainMemos.get(domain) : undefined
  if (hit !== undefined) return hit
  const d = checkDomain(domain)
  const m: DomainMemo = {
    domain: d,
    prefix: undefined,
    key: '',
    txtKey: resolverCacheKey(`_mta-sts.${d}`, 'TXT').split('').join(''), // flat, as key above
    txtAnswer: undefined,
    txtRecord: undefined,
    txt: undefined,
    raw: undefined,
    entry: undefined,
    warmTxt: undefined,
    warmEntry: undefined,
    warmDecision: undefined,
    warmValue: undefined,
    warmPromise: undefined,
    warmUntil: -Infinity,
  }
  if (domainMemos.size >= MAX_PARSED_ENTRIES) domainMemos.clear()
  domainMemos.set(domain, m)
  return m
}

/** The TXT answer at once when the resolver holds it fresh in its cache (our createResolver), else `undefined`. */
function peekTxt(m: DomainMemo, s: FetchSettings): TxtLookup | undefined {
  const peek = (s.resolver as { [PEEK_CACHED]?: PeekCached })[PEEK_CACHED]
  if (peek === undefined || s.signal?.aborted) return undefined
  const ans = peek(m.txtKey) as DnsAnswer<'TXT'> | undefined
  if (ans === undefined) return undefined
  if (ans === m.txtAnswer) return m.txt!
  const t = memoTxt(m, ans)
  m.txtAnswer = ans
  return t
}

/** {@link txtOf}, reusing the domain's last result when the answer is the same single TXT string. */
function memoTxt(m: DomainMemo, ans: DnsAnswer<'TXT'>): TxtLookup {
  const one = (ans.status === 'secure' || ans.status === 'insecure') && ans.records.length === 1 ? ans.records[0] : undefined
  if (one !== undefined && one === m.txtRecord) return m.txt!
  const t = txtOf(m.domain, ans)
  m.txtAnswer = undefined
  m.txtRecord = one
  m.txt = t
  return t
}

/**
 * The MTA-STS policy in force for `domain` (RFC 8461 §3.3): look up `_mta-sts.<domain>`, then use the
 * cached policy while its `id` is unchanged and it has not expired (no HTTPS request), fetch when
 * nothing is cached, it expired or the `id` changed, keep the unexpired cached policy when the fetch
 * or the TXT lookup fails, and refresh in the background ahead of expiry (random jitter, §10.2).
 *
 * It resolves for every DNS and HTTPS outcome (`state: 'none'` and `error` when there is no policy);
 * it rejects only with `ERR_INVALID_ARGUMENT` or `ERR_ABORTED`.
 * @public
 */
export function getMtaStsPolicy(domain: string, opts?: GetMtaStsPolicyOptions): Promise<MtaStsLookup> {
  let m: DomainMemo
  let o: { s: FetchSettings; g: Settings }
  try {
    m = domainMemo(domain)
    o = readGetOptions(opts)
  } catch (e) {
    return Promise.reject(coded(e, 'getMtaStsPolicy'))
  }
  try {
    return getChecked(m, o.s, o.g)
  } catch (e) {
    return Promise.reject(e as Error)
  }
}

const GET_WHAT = 'getMtaStsPolicy options'

/** The last options read, with what was made of them: reused while every option is the same value. */
interface ReadGetOptions {
  resolver: unknown
  signal: unknown
  timeoutMs: unknown
  ca: unknown
  allowPrivateAddresses: unknown
  port: unknown
  store: unknown
  keyPrefix: unknown
  now: unknown
  random: unknown
  refresh: unknown
  retryAfterFailureSeconds: unknown
  s: FetchSettings
  g: Settings
}
let lastGetOptions: ReadGetOptions | undefined

/**
 * The options of getMtaStsPolicy, each read once (in the order of before: the fetch options first). When
 * every value is the one of the previous call, the settings made then are reused (the signal may differ);
 * otherwise they are validated as new. Without a resolver each call makes its own, as before.
 */
function readGetOptions(opts: unknown): { s: FetchSettings; g: Settings } {
  if (typeof opts !== 'object' || opts === null) return settingsOf(readOptions(opts, GET_WHAT, GET_KEYS))
  const o = opts as Record<(typeof GET_KEYS)[number], unknown>
  // Each option read once, into locals (nothing allocated when the settings are reused).
  let resolver,
    signal,
    timeoutMs,
    ca,
    allowPrivateAddresses,
    port,
    store,
    keyPrefix,
    now,
    random,
    refresh,
    retryAfterFailureSeconds: unknown
  try {
    resolver = o.resolver
    signal = o.signal
    timeoutMs = o.timeoutMs
    ca = o.ca
    allowPrivateAddresses = o.allowPrivateAddresses
    port = o.port
    store = o.store
    keyPrefix = o.keyPrefix
    now = o.now
    random = o.random
    refresh = o.refresh
    retryAfterFailureSeconds = o.retryAfterFailureSeconds
  } catch (e) {
    throw coded(e, GET_WHAT)
  }
  const last = lastGetOptions
  if (
    last !== undefined &&
    resolver !== undefined &&
    resolver === last.resolver &&
    timeoutMs === last.timeoutMs &&
    ca === last.ca &&
    !Array.isArray(ca) && // a list may have changed inside: validated again below
    allowPrivateAddresses === last.allowPrivateAddresses &&
    port === last.port &&
    store === last.store &&
    keyPrefix === last.keyPrefix &&
    now === last.now &&
    random === last.random &&
    refresh === last.refresh &&
    retryAfterFailureSeconds === last.retryAfterFailureSeconds &&
    typeof (resolver as Resolver).lookup === 'function' &&
    (store === undefined || isPolicyStore(store))
  ) {
    if (signal === last.signal) return last
    if (signal !== undefined && !(signal instanceof AbortSignal)) bad(`${GET_WHAT}.signal must be an AbortSignal`)
    // built field by field (no spread, no delete: the object keeps a fast shape)
    const l = last.s
    const s: FetchSettings = { resolver: l.resolver, timeoutMs: l.timeoutMs, allowPrivate: l.allowPrivate, port: l.port }
    if (l.ca !== undefined) s.ca = l.ca
    if (signal !== undefined) s.signal = signal
    return { s, g: last.g }
  }
  const v = {
    resolver,
    signal,
    timeoutMs,
    ca,
    allowPrivateAddresses,
    port,
    store,
    keyPrefix,
    now,
    random,
    refresh,
    retryAfterFailureSeconds,
  }
  const snapshot: Partial<Record<(typeof GET_KEYS)[number], unknown>> = {}
  for (const k of GET_KEYS) if (v[k] !== undefined) snapshot[k] = v[k]
  const r = settingsOf(snapshot)
  if (v.resolver !== undefined) lastGetOptions = { ...v, s: r.s, g: r.g }
  return r
}

const GET_KEYS = [
  'resolver',
  'signal',
  'timeoutMs',
  'ca',
  'allowPrivateAddresses',
  'port',
  'store',
  'keyPrefix',
  'now',
  'random',
  'refresh',
  'retryAfterFailureSeconds',
] as const

function isPolicyStore(st: unknown): st is PolicyStore {
  return (
    typeof st === 'object' &&
    st !== null &&
    typeof (st as PolicyStore).get === 'function' &&
    typeof (st as PolicyStore).set === 'function' &&
    typeof (st as PolicyStore).delete === 'function'
  )
}

function settingsOf(o: Partial<Record<(typeof GET_KEYS)[number], unknown>>): { s: FetchSettings; g: Settings } {
  const s = fetchSettings(o, GET_WHAT)
  const g: Settings = { prefix: 'mta-sts|', now: Date.now, random: Math.random, refresh: true, retryAfter: 300 }
  if (o.retryAfterFailureSeconds !== undefined) {
    const r = o.retryAfterFailureSeconds
    if (typeof r !== 'number' || !(r >= 0) || !Number.isFinite(r))
      bad('getMtaStsPolicy options.retryAfterFailureSeconds must be a non-negative number')
    g.retryAfter = r
  }
  if (o.store !== undefined) {
    if (!isPolicyStore(o.store)) bad('getMtaStsPolicy options.store must be a PolicyStore')
    g.store = o.store
  }
  if (o.keyPrefix !== undefined) {
    if (typeof o.keyPrefix !== 'string') bad('getMtaStsPolicy options.keyPrefix must be a string')
    g.prefix = o.keyPrefix
  }
  if (o.now !== undefined) {
    if (typeof o.now !== 'function') bad('getMtaStsPolicy options.now must be a function')
    g.now = o.now as () => number
  }
  if (o.random !== undefined) {
    if (typeof o.random !== 'function') bad('getMtaStsPolicy options.random must be a function')
    g.random = o.random as () => number
  }
  if (o.refresh !== undefined) {
    if (typeof o.refresh !== 'boolean') bad('getMtaStsPolicy options.refresh must be a boolean')
    g.refresh = o.refresh
  }
  return { s, g }
}

function clockOf(f: () => number): number {
  const t = f()
  if (typeof t !== 'number' || !Number.isFinite(t)) throw invalidArgument('getMtaStsPolicy options.now must return ms since the epoch')
  return t
}

function jitterOf(f: () => number): number {
  const j = f()
  return typeof j === 'number' && j >= 0 && j <= 1 ? j : 0
}

interface Settings {
  store?: PolicyStore
  prefix: string
  now: () => number
  random: () => number
  refresh: boolean
  retryAfter: number
}

/** Foreground fetches in flight, per store and domain and id: concurrent lookups share one request. */
const fetching = new WeakMap<object, Map<string, Promise<MtaStsFetchResult>>>()

function sharedFetch(domain: string, flightKey: string, s: FetchSettings, owner: object): Promise<MtaStsFetchResult> {
  let inFlight = fetching.get(owner)
  if (inFlight === undefined) fetching.set(owner, (inFlight = new Map()))
  let p = inFlight.get(flightKey)
  if (p === undefined) {
    // Shared: no caller's signal ends it (each caller stops waiting on its own signal); timeoutMs bounds it.
    const { signal: _caller, ...rest } = s
    void _caller
    const map = inFlight
    p = fetchChecked(domain, rest).finally(() => map.delete(flightKey))
    map.set(flightKey, p)
  }
  const signal = s.signal
  if (signal === undefined) return p
  return new Promise((resolve, reject) => {
    const stop = (): void => reject(abortedError(signal))
    if (signal.aborted) return stop()
    signal.addEventListener('abort', stop, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop))
  })
}

/** Remember a failed fetch in the domain's entry, next to an unexpired cached policy if there is one. */
async function rememberFailure(
  g: Settings,
  key: string,
  cached: CachedMtaStsPolicy | undefined,
  failed: FetchFailure,
  now: number,
): Promise<void> {
  if (g.store === undefined || g.retryAfter === 0) return
  const policyLeft = cached ? (cached.fetchedAt + cached.policy.maxAge * 1000 - now) / 1000 : 0
  const entry = cached && policyLeft > 0 ? { id: cached.id, fetchedAt: cached.fetchedAt, lines: cached.policy.lines, failed } : { failed }
  try {
    await g.store.set(key, JSON.stringify(entry), cached && policyLeft > 0 ? policyLeft : g.retryAfter)
  } catch (e) {
    publishStoreError('set', key, e)
  }
}

/**
 * The lookup of `m.domain`. Warm (issue 13): when the resolver has the TXT answer in its cache and the
 * store answers synchronously (the memory store), the decision is made at once, and a fresh cached
 * policy comes back as an already resolved, frozen result shared between calls: no turn of the event
 * loop, nothing allocated. Otherwise the same steps after the TXT lookup (and an asynchronous store).
 * May throw (the caller turns it into a rejection).
 */
function getChecked(m: DomainMemo, s: FetchSettings, g: Settings): Promise<MtaStsLookup> {
  if (m.prefix !== g.prefix) {
    m.key = (g.prefix + m.domain).split('').join('') // flat, not a rope: compared with the store's key on every lookup
    m.prefix = g.prefix
  }
  const key = m.key
  // the store read and the TXT lookup at once; a synchronous store costs no extra turn of the loop
  const pending = storeGet(g.store, key, m)
  const t = peekTxt(m, s)
  if (t !== undefined && !(pending instanceof Promise)) {
    const now = clockOf(g.now)
    const jitter = jitterOf(g.random)
    // The same TXT answer and store entry as the shared result was made from, inside the window where
    // decideMtaStsCache decides the same for any jitter: that result, without deciding again.
    if (t === m.warmTxt && pending === m.warmEntry && now < m.warmUntil) return m.warmPromise!
    const r = decide(m, s, g, t, pending, now, jitter)
    return r === m.warmValue ? m.warmPromise! : (r as Promise<MtaStsLookup>)
  }
  return lookupTxt(m, s).then((t2) =>
    pending instanceof Promise ? pending.then((e) => decideLater(m, s, g, t2, e)) : decideLater(m, s, g, t2, pending),
  )
}

function decideLater(m: DomainMemo, s: FetchSettings, g: Settings, t: TxtLookup, entry: StoreEntry): MtaStsLookup | Promise<MtaStsLookup> {
  if (s.signal?.aborted) throw abortedError(s.signal)
  return decide(m, s, g, t, entry, clockOf(g.now), jitterOf(g.random))
}

/** Decide; a fresh cached policy is answered at once with the domain's shared frozen result, anything else goes on in {@link proceed}. */
function decide(
  m: DomainMemo,
  s: FetchSettings,
  g: Settings,
  t: TxtLookup,
  entry: StoreEntry,
  now: number,
  jitter: number,
): MtaStsLookup | Promise<MtaStsLookup> {
  const cached = entry.cached
  const d = decideMtaStsCache({ now, cached, txt: t.txt, jitter })
  if (d.action === 'use' && d.reason === 'fresh' && !(d.refresh && g.refresh)) {
    if (m.warmTxt === t && m.warmEntry === entry && m.warmDecision === d) return m.warmValue!
    const value: MtaStsLookup = {
      domain: m.domain,
      txt: t.txt,
      policy: d.policy,
      state: 'cached',
      decision: d.reason,
      fetchedAt: cached!.fetchedAt,
      expiresAt: d.expiresAt,
      trace: d.trace,
    }
    if (t.record) value.record = t.record
    if (t.error) value.error = t.error
    Object.freeze(value)
    m.warmTxt = t
    m.warmEntry = entry
    m.warmDecision = d
    m.warmValue = value
    m.warmPromise = Promise.resolve(value)
    m.warmUntil = d.refresh ? -Infinity : mtaStsFreshUntil(cached!)
    return value
  }
  return proceed(m.domain, s, g, m.key, t, entry, now, d)
}

/** Everything after the first decision but the fresh case: discard, fetch, fetch failures, refresh. */
async function proceed(
  domain: string,
  s: FetchSettings,
  g: Settings,
  key: string,
  t: TxtLookup,
  entry: StoreEntry,
  now: number,
  first: MtaStsCacheDecision,
): Promise<MtaStsLookup> {
  const cached = entry.cached
  // Result objects are built field by field: object spread here cost three times the rest of a warm
  // lookup (V8's CloneObjectIC goes megamorphic on these shapes; issue 13 bench).
  const base = (o: MtaStsLookup): MtaStsLookup => {
    if (t.record) o.record = t.record
    if (error) o.error = error
    return o
  }
  let d = first
  if (d.discard) await storeDelete(g.store, key)
  let fetched: { policy: MtaStsPolicy; fetchedAt: number } | undefined
  let error = t.error
  if (d.action === 'fetch') {
    const id = (t.txt as { id: string }).id
    const f = entry.failed
    if (f !== undefined && g.retryAfter > 0 && f.id === id && now < f.until) {
      error = fetchError(f.tlsrpt, `${f.message} (failed less than ${g.retryAfter} s ago: not fetched again yet, RFC 8461 §3.3)`)
      d = decideMtaStsCache({ now, cached, txt: t.txt, fetchFailed: true })
    } else
      try {
        const r = await sharedFetch(domain, `${key}\n${id}`, s, g.store ?? NO_STORE)
        fetched = { policy: r.policy, fetchedAt: clockOf(g.now) }
        await storeSet(g.store, key, { policy: r.policy, id, fetchedAt: fetched.fetchedAt })
      } catch (e) {
        if (e instanceof SmtpTlsError && e.code === 'ERR_ABORTED') throw e
        error = e instanceof SmtpTlsError ? e : fetchError('sts-policy-fetch-error', String(e), e)
        const failed = { id, until: now + g.retryAfter * 1000, tlsrpt: error.tlsrpt ?? 'sts-policy-fetch-error', message: error.message }
        await rememberFailure(g, key, cached, failed, now)
        d = decideMtaStsCache({ now, cached, txt: t.txt, fetchFailed: true })
      }
  }
  if (fetched) {
    const { policy, fetchedAt } = fetched
    error = undefined
    const expiresAt = fetchedAt + policy.maxAge * 1000
    return base({ domain, txt: t.txt, policy, state: 'fetched', decision: d.reason, fetchedAt, expiresAt, trace: d.trace })
  }
  if (d.action === 'use') {
    const out = base({
      domain,
      txt: t.txt,
      policy: d.policy,
      state: d.reason === 'fresh' ? 'cached' : 'cached-after-failure',
      decision: d.reason,
      fetchedAt: cached!.fetchedAt,
      expiresAt: d.expiresAt,
      trace: d.trace,
    })
    if (d.refresh && g.refresh && t.txt.status === 'found') out.refreshing = backgroundRefresh(domain, t.txt.id, key, s, g)
    return out
  }
  return base({ domain, txt: t.txt, state: 'none', decision: d.reason, trace: d.trace })
}

/** RFC 8461 §10.2: refresh before expiry, so that an attacker must block every refresh; one per store and domain at a time. */
function backgroundRefresh(domain: string, id: string, key: string, s: FetchSettings, g: Settings): Promise<void> {
  const owner = g.store ?? NO_STORE
  let inFlight = refreshing.get(owner)
  if (inFlight === undefined) refreshing.set(owner, (inFlight = new Map()))
  const running = inFlight.get(key)
  if (running) return running
  const { signal: _caller, ...rest } = s // the caller's signal ends the caller's lookup, not the refresh
  void _caller
  const p = fetchChecked(domain, rest)
    .then((r) => storeSet(g.store, key, { policy: r.policy, id, fetchedAt: g.now() }))
    .catch(() => {
      /* the unexpired cached policy stays in force (RFC 8461 §3.3); the next lookup tries again */
    })
    .finally(() => inFlight.delete(key))
  inFlight.set(key, p)
  return p
}

/** Options of {@link getTlsRptRecord}. @public */
export interface TlsRptRecordOptions {
  resolver?: Resolver
  signal?: AbortSignal
}

/**
 * Look up `_smtp._tls.<domain>` (RFC 8460 §3) through our resolver. Resolves to the record, or
 * `undefined` when the domain has none (no TXT, or no string beginning with `v=TLSRPTv1`).
 *
 * @throws {@link SmtpTlsError} `ERR_TLSRPT_SYNTAX` (an invalid record, or several), the DNS failure's
 * code (`ERR_DNS_*`, temporary), `ERR_ABORTED`, `ERR_INVALID_ARGUMENT`.
 * @public
 */
export async function getTlsRptRecord(domain: string, opts?: TlsRptRecordOptions): Promise<TlsRptRecord | undefined> {
  let d: string
  let resolver: Resolver | undefined
  let signal: AbortSignal | undefined
  try {
    d = checkDomain(domain)
    const o = readOptions(opts, 'getTlsRptRecord options', ['resolver', 'signal'])
    if (o.resolver !== undefined) {
      if (typeof o.resolver !== 'object' || o.resolver === null || typeof (o.resolver as Resolver).lookup !== 'function') {
        bad('getTlsRptRecord options.resolver must be a Resolver')
      }
      resolver = o.resolver as Resolver
    }
    if (o.signal !== undefined) {
      if (!(o.signal instanceof AbortSignal)) bad('getTlsRptRecord options.signal must be an AbortSignal')
      signal = o.signal
    }
  } catch (e) {
    throw coded(e, 'getTlsRptRecord')
  }
  const ans = await (resolver ?? createResolver()).lookup(`_smtp._tls.${d}`, 'TXT', signal ? { signal } : {})
  if (ans.status === 'nxdomain' || ans.status === 'nodata') return undefined
  if (ans.status !== 'secure' && ans.status !== 'insecure') {
    const f = ans.error
    throw new SmtpTlsError(f?.code ?? 'ERR_DNS_SERVFAIL', f?.message ?? `_smtp._tls.${d} TXT ${ans.status}`)
  }
  return parseTlsRptRecord(ans.records)
}
