/**
 * A Postfix TLS policy server over the socketmap protocol (socketmap_table(5)): Postfix sends one
 * netstring `<name> <key>` per lookup and reads one netstring reply (`OK <policy>`, `NOTFOUND `,
 * `TEMP <reason>`, `PERM <reason>`). `name` selects a profile (`dane`, `sts`, `dane+sts`); the facts
 * come from discoverDestination and getMtaStsPolicy, the answer from the pure socketmapAnswer.
 */
import { isAscii } from 'node:buffer'
import { chmod, lstat, unlink } from 'node:fs/promises'
import net from 'node:net'
import { coded, describeValue, invalidArgument, readOptions } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { PolicyStore } from '../store/types.js'
import type { TraceStep } from '../policy/trace.js'
import {
  parseSocketmapKey,
  socketmapAnswer,
  socketmapError,
  SOCKETMAP_PROFILES,
  type SocketmapAnswer,
  type SocketmapKey,
  type SocketmapProfile,
} from '../socketmap/answer.js'
import { createNetstringDecoder, SOCKETMAP_MAX_QUERY } from '../socketmap/netstring.js'
import { discoverDestination } from './discovery.js'
import { getMtaStsPolicy, type GetMtaStsPolicyOptions } from './mta-sts.js'
import { createResolver, type Resolver } from './resolver/resolver.js'

/**
 * One structured log event of the socketmap server (one JSON line in the CLI). A `query` event carries
 * `name`, `key`, `reply`, `result` (`OK`, `NOTFOUND`, `TEMP`, `PERM`, `TIMEOUT`), `policy` (the Postfix
 * level of an `OK` answer: `dane-only`, `dane`, `secure`, `may`), `cached`, `cache` (`hit` or `miss` when
 * the store was asked) and `durationMs`; a `prefetch` event `key` and `outcome` (`refreshed`, `failed`:
 * the unexpired answer stays, `dropped`: the queue was full); a `store-error` event `operation`.
 * {@link createSocketmapMetrics} counts them.
 * @public
 */
export interface SocketmapLogEvent {
  event: 'listening' | 'query' | 'prefetch' | 'client-error' | 'store-error' | 'lookup-error' | 'closed'
  [field: string]: unknown
}

/** Options of the background refresh of cached answers ({@link SocketmapServerOptions.prefetch}). @public */
export interface SocketmapPrefetchOptions {
  /** Most refreshes running at once; default 4. */
  concurrency?: number
  /** Most refreshes waiting for a free slot; more are dropped (the answer is looked up again when it expires); default 1000. */
  queue?: number
}

/** Options of {@link createSocketmapServer}. @public */
export interface SocketmapServerOptions {
  /** `unix:/path/to/socket` or `inet:HOST:PORT` (port 0: any free port, see {@link SocketmapServer.address}). */
  listen: string
  /** File mode of a unix socket; default 0o666 (restrict access with the directory). */
  mode?: number
  /** Our DNSSEC-aware resolver; default `createResolver()`. */
  resolver?: Resolver
  /** Where answers (and MTA-STS policies) are cached; without one, every lookup goes to DNS (and HTTPS). */
  store?: PolicyStore
  /** Map names and what they answer; default `SOCKETMAP_PROFILES` of `smtp-tls-policy` (`dane`, `sts`, `dane+sts`). */
  profiles?: Record<string, SocketmapProfile>
  /** Most open client connections (more are closed at once); default 100. */
  maxConnections?: number
  /** A connection with no request for this long is closed (ms); default 10000. */
  idleTimeoutMs?: number
  /** A lookup longer than this answers `TIMEOUT` (socketmap_table(5); Postfix defers as for `TEMP`) (ms); default 15000. */
  lookupTimeoutMs?: number
  /**
   * Cache times (seconds). A DANE answer lives for the smallest TTL of the validated RRsets it came from
   * (MX, address and TLSA records; `dane`, default 300, when none is known), an MTA-STS answer until the
   * policy expires (`max_age` after it was fetched), a NOTFOUND for `negative` (default 300); `max`
   * (default 3600) caps every answer. TEMP and PERM are never cached.
   */
  cache?: { negative?: number; dane?: number; max?: number }
  /**
   * Refresh a cached answer in the background before it expires (default on; `false`: off). A query that
   * finds its answer in the last 10 to 20 % of its life (a point drawn at random per answer when it is
   * stored: jitter) starts one refresh, with at most `concurrency` at once. A refresh that fails
   * (TEMP, a timeout, an MTA-STS policy that cannot be fetched) keeps the unexpired answer, and is tried
   * again after half of the remaining life.
   */
  prefetch?: SocketmapPrefetchOptions | boolean
  /** MTA-STS fetch options (`ca`, `port`, `allowPrivateAddresses`, `timeoutMs`; for labs and tests). */
  mtaSts?: Omit<GetMtaStsPolicyOptions, 'resolver' | 'store' | 'signal'>
  /** Address families looked up (default both). */
  families?: readonly (4 | 6)[]
  /** Structured events; default none. */
  log?: (event: SocketmapLogEvent) => void
  /** Clock (ms since the epoch); default `Date.now`. */
  now?: () => number
  /** A uniform random number in [0, 1) for the prefetch and MTA-STS refresh jitter; default `Math.random`. */
  random?: () => number
}

/** What {@link SocketmapServer.reload} can change; `listen`, `mode`, `store`, `log` and `now` need a new server. @public */
export type SocketmapReloadOptions = Omit<SocketmapServerOptions, 'listen' | 'mode' | 'store' | 'log' | 'now'>

/** Options a running server keeps: {@link SocketmapServer.reload} refuses them. */
const FIXED_OPTIONS = ['listen', 'mode', 'store', 'log', 'now'] as const

/** The result of {@link SocketmapServer.lookup}. @public */
export interface SocketmapLookup {
  reply: string
  cached: boolean
  trace: TraceStep[]
}

/** A running socketmap server. @public */
export interface SocketmapServer {
  /** Where it listens: `unix:/path` or `inet:HOST:PORT` with the real port. */
  readonly address: string
  /** Open client connections. */
  readonly connections: number
  /** Answer one request as a client would get it (the CLI's `query`). */
  lookup(name: string, key: string): Promise<SocketmapLookup>
  /**
   * Apply new settings without dropping a client (the CLI's SIGHUP): profiles, cache times, timeouts,
   * the resolver, MTA-STS fetch options, the connection limit. An option left out takes its default,
   * as in {@link createSocketmapServer}. Lookups already running finish under the old settings; a
   * new idle timeout applies to connections opened after the reload. Answers cached under a map name whose
   * profile changed (or went) are deleted from the store: they were computed by the old rule.
   * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for bad options (nothing is changed then).
   */
  reload(options: SocketmapReloadOptions): Promise<void>
  /** Stop listening, close every connection; resolves when closed. */
  close(): Promise<void>
}

interface Settings {
  listen: { path: string } | { host: string; port: number }
  mode: number
  resolver: Resolver
  store: PolicyStore | undefined
  profiles: Map<string, SocketmapProfile>
  maxConnections: number
  idleTimeoutMs: number
  lookupTimeoutMs: number
  negative: number
  dane: number
  max: number
  mtaSts: Omit<GetMtaStsPolicyOptions, 'resolver' | 'store' | 'signal'>
  families: readonly (4 | 6)[] | undefined
  log: ((event: SocketmapLogEvent) => void) | undefined
  now: () => number
  random: () => number
  prefetch: { concurrency: number; queue: number } | undefined
}

/** Pipelined requests waiting on one connection before it is closed (Postfix sends one at a time). */
const MAX_PENDING = 16

function parseListen(v: unknown): Settings['listen'] {
  if (typeof v !== 'string') throw invalidArgument(`socketmap listen must be unix:PATH or inet:HOST:PORT, got ${describeValue(v)}`)
  if (v.startsWith('unix:') && v.length > 5) return { path: v.slice(5) }
  const m = /^inet:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(v)
  if (m) {
    const port = Number(m[3])
    if (port <= 65535) return { host: (m[1] ?? m[2]) as string, port }
  }
  throw invalidArgument(`socketmap listen must be unix:PATH or inet:HOST:PORT, got ${describeValue(v)}`)
}

function intOption(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw invalidArgument(`createSocketmapServer options.${name} must be an integer from ${min} to ${max}, got ${describeValue(v)}`)
  return v
}

function readSettings(opts: unknown, needListen = true): Settings {
  if (typeof opts !== 'object' || opts === null)
    throw invalidArgument(`createSocketmapServer options must be an object, got ${describeValue(opts)}`)
  const o = readOptions(opts, 'createSocketmapServer options', [
    'listen',
    'mode',
    'resolver',
    'store',
    'profiles',
    'maxConnections',
    'idleTimeoutMs',
    'lookupTimeoutMs',
    'cache',
    'mtaSts',
    'families',
    'log',
    'now',
    'random',
    'prefetch',
  ])
  const profiles = new Map<string, SocketmapProfile>()
  const p = o.profiles ?? SOCKETMAP_PROFILES
  if (typeof p !== 'object' || p === null) throw invalidArgument('createSocketmapServer options.profiles must be an object')
  for (const [name, prof] of Object.entries(p as Record<string, unknown>)) {
    if (!/^[!-~]+$/.test(name)) throw invalidArgument(`socketmap profile name ${describeValue(name)} must be printable with no space`)
    const q = readOptions(prof, `profile ${name}`, ['dane', 'sts', 'testing', 'tlsrpt'])
    if (typeof q.dane !== 'boolean' || typeof q.sts !== 'boolean') throw invalidArgument(`profile ${name}: dane and sts must be booleans`)
    if (q.testing !== undefined && q.testing !== 'notfound' && q.testing !== 'may')
      throw invalidArgument(`profile ${name}: testing must be notfound or may`)
    if (q.tlsrpt !== undefined && typeof q.tlsrpt !== 'boolean') throw invalidArgument(`profile ${name}: tlsrpt must be a boolean`)
    profiles.set(name, {
      dane: q.dane,
      sts: q.sts,
      ...(q.testing !== undefined ? { testing: q.testing } : {}),
      ...(q.tlsrpt === true ? { tlsrpt: true } : {}), // the TLS-RPT attributes (Postfix ≥ 3.10)
    })
  }
  const c = readOptions(o.cache, 'createSocketmapServer options.cache', ['negative', 'dane', 'max'])
  const store = o.store as PolicyStore | undefined
  if (
    store !== undefined &&
    (typeof store !== 'object' || store === null || typeof store.get !== 'function' || typeof store.set !== 'function')
  )
    throw invalidArgument('createSocketmapServer options.store must be a PolicyStore')
  const resolver = o.resolver as Resolver | undefined
  if (resolver !== undefined && (typeof resolver !== 'object' || resolver === null || typeof resolver.lookup !== 'function'))
    throw invalidArgument('createSocketmapServer options.resolver must be a Resolver')
  for (const f of ['log', 'now', 'random'] as const)
    if (o[f] !== undefined && typeof o[f] !== 'function') throw invalidArgument(`createSocketmapServer options.${f} must be a function`)
  if (o.mtaSts !== undefined && (typeof o.mtaSts !== 'object' || o.mtaSts === null))
    throw invalidArgument('createSocketmapServer options.mtaSts must be an object')
  const families = o.families
  if (families !== undefined && (!Array.isArray(families) || families.length === 0 || families.some((f) => f !== 4 && f !== 6)))
    throw invalidArgument('createSocketmapServer options.families must list 4 and/or 6')
  let prefetch: Settings['prefetch']
  if (o.prefetch !== false) {
    if (o.prefetch !== undefined && o.prefetch !== true && (typeof o.prefetch !== 'object' || o.prefetch === null))
      throw invalidArgument(`createSocketmapServer options.prefetch must be an object or a boolean, got ${describeValue(o.prefetch)}`)
    const f = readOptions(typeof o.prefetch === 'object' ? o.prefetch : undefined, 'createSocketmapServer options.prefetch', [
      'concurrency',
      'queue',
    ])
    prefetch = {
      concurrency: intOption(f.concurrency, 'prefetch.concurrency', 1, 1000, 4),
      queue: intOption(f.queue, 'prefetch.queue', 0, 1000000, 1000),
    }
  }
  return {
    listen: needListen ? parseListen(o.listen) : { host: '', port: 0 },
    mode: intOption(o.mode, 'mode', 0, 0o777, 0o666),
    resolver: resolver ?? createResolver(),
    store,
    profiles,
    maxConnections: intOption(o.maxConnections, 'maxConnections', 1, 100000, 100),
    idleTimeoutMs: intOption(o.idleTimeoutMs, 'idleTimeoutMs', 1, 3600000, 10000),
    lookupTimeoutMs: intOption(o.lookupTimeoutMs, 'lookupTimeoutMs', 1, 3600000, 15000),
    negative: intOption(c.negative, 'cache.negative', 0, 86400 * 366, 300),
    dane: intOption(c.dane, 'cache.dane', 0, 86400 * 366, 300),
    max: intOption(c.max, 'cache.max', 0, 86400 * 366, 3600),
    mtaSts: (o.mtaSts ?? {}) as Settings['mtaSts'],
    families: families as Settings['families'],
    log: o.log as Settings['log'],
    now: (o.now as (() => number) | undefined) ?? Date.now,
    random: (o.random as (() => number) | undefined) ?? Math.random,
    prefetch,
  }
}

/**
 * Start a socketmap TLS policy server for Postfix's `smtp_tls_policy_maps = socketmap:…:<profile>`.
 *
 * One netstring request `<name> <key>` per reply (socketmap_table(5)); a framing error (leading zero,
 * non-digit, missing comma, length past 10,000 bytes) closes that client's connection only. Answers
 * are cached in `store` (DANE for the smallest TTL of the validated RRsets, MTA-STS for the policy's
 * remaining life, NOTFOUND for `cache.negative`), never TEMP, TIMEOUT or PERM, and refreshed in the
 * background before they expire (`prefetch`); a store failure is a cache miss, never a weaker answer.
 *
 * @example
 * ```ts
 * const server = await createSocketmapServer({ listen: 'inet:127.0.0.1:8461', store: createMemoryStore() })
 * // main.cf: smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:dane+sts
 * ```
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for bad options (before any I/O), `ERR_CONNECT` when it cannot listen.
 * @public
 */
export async function createSocketmapServer(opts: SocketmapServerOptions): Promise<SocketmapServer> {
  let s: Settings
  try {
    s = readSettings(opts)
  } catch (e) {
    throw coded(e, 'createSocketmapServer')
  }
  return startServer(s)
}

/**
 * The lookup path of the server without a socket (the CLI's `query`): `listen` is not needed.
 * @internal
 */
export function createSocketmapLookup(
  opts: Omit<SocketmapServerOptions, 'listen'>,
): (name: string, key: string) => Promise<SocketmapLookup> {
  try {
    const path = lookupPath(readSettings(opts, false))
    return async (name, key) => path.answer(name, key)
  } catch (e) {
    throw coded(e, 'createSocketmapLookup')
  }
}

/** A lookup's result inside the server: `cache` says whether the store was asked and had the answer. */
interface Looked extends SocketmapLookup {
  cache?: 'hit' | 'miss'
}

/**
 * A cached answer as stored: `<refreshAt> <expiresAt> <reply>` (ms since the epoch), so that every server
 * sharing the store knows when to refresh it. Anything else is a miss: a damaged entry cannot inject a policy.
 */
const ENTRY = /^([0-9]{1,16}) ([0-9]{1,16}) (OK [!-~][ -~]*|NOTFOUND )$/

/** The reply in a stored cache entry (for `dump`), or undefined when the entry is not one. */
export function cachedReply(entry: unknown): string | undefined {
  const m = typeof entry === 'string' ? ENTRY.exec(entry) : null
  return m === null ? undefined : m[3]
}
const FROM_CACHE: TraceStep[] = Object.freeze([Object.freeze({ rule: 'answer from the cache', ref: 'store' })]) as TraceStep[]

/** A computed answer with its cache time (seconds) and whether it came from a failure (never replaces a cached answer). */
interface Computed {
  answer: SocketmapAnswer
  ttl: number
  degraded: boolean
}

interface LookupPath {
  /** The answer: synchronously when the store answers synchronously and has it (the memory store), else a promise. */
  answer(name: string, key: string): Looked | Promise<Looked>
  /** Abort lookups and refreshes in flight, drop queued refreshes; resolves when the refreshes have ended. */
  close(): Promise<void>
}

const isPromise = <T>(v: T | PromiseLike<T>): v is PromiseLike<T> =>
  typeof v === 'object' && v !== null && typeof (v as PromiseLike<T>).then === 'function'

function lookupPath(s: Settings): LookupPath {
  const inflight = new Map<string, Promise<Looked>>()
  const parsedKeys = new Map<string, SocketmapKey | null>()
  const running = new Set<AbortController>()
  let closed = false

  const storeError = (operation: string, key: string, e: unknown): void =>
    s.log?.({ event: 'store-error', operation, key, error: (e as Error)?.message })
  const storeSet = async (key: string, value: string, ttl: number): Promise<void> => {
    if (s.store === undefined || ttl <= 0) return
    try {
      await s.store.set(key, value, ttl)
    } catch (e) {
      storeError('set', key, e)
    }
  }
  /** Store an answer for `ttl` seconds, with its refresh point drawn in the last 10-20 % of its life (jitter). */
  const remember = (key: string, reply: string, ttl: number): Promise<void> => {
    const now = s.now()
    const expiresAt = now + ttl * 1000
    const r = s.random()
    const refreshAt = Math.floor(expiresAt - ttl * 1000 * (0.1 + 0.1 * (r >= 0 && r < 1 ? r : 0.5)))
    return storeSet(key, `${refreshAt} ${expiresAt} ${reply}`, ttl)
  }

  /** Run `fn` with a signal that fires after lookupTimeoutMs or on close(); the timer is unref'd and always cleared. */
  const bounded = async <T>(fn: (signal: AbortSignal) => Promise<T>): Promise<{ value: T } | { error: unknown; timedOut: boolean }> => {
    const ac = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      ac.abort()
    }, s.lookupTimeoutMs)
    timer.unref()
    running.add(ac)
    try {
      return { value: await fn(ac.signal) }
    } catch (error) {
      return { error, timedOut }
    } finally {
      clearTimeout(timer)
      running.delete(ac)
    }
  }

  const compute = async (profile: SocketmapProfile, key: SocketmapKey, signal: AbortSignal, refresh: boolean): Promise<Computed> => {
    // The smallest TTL of the validated RRsets this lookup used (MX, A, AAAA, TLSA). Denials are left out:
    // the resolver caps them at 1 s (as Postfix caches negative TLSA answers), and an MX host without
    // AAAA or TLSA would make every answer expire at once. A refresh bypasses the resolver's cache,
    // whose entries are as close to their expiry as the answer being refreshed.
    let dnsTtl = Infinity
    const resolver: Resolver = {
      lookup: (name, type, o) =>
        s.resolver.lookup(name, type, refresh ? { ...o, cache: false } : o).then((a) => {
          if (a.status === 'secure' && a.ttl > 0 && a.ttl < dnsTtl) dnsTtl = a.ttl
          return a
        }),
      config: () => s.resolver.config(),
      stats: () => s.resolver.stats(),
      clearCache: () => s.resolver.clearCache(),
    }
    const now = s.now()
    const done = (answer: SocketmapAnswer, degraded = false): Computed => {
      let ttl: number
      if (answer.status === 'NOTFOUND') ttl = Math.min(answer.ttl ?? s.negative, s.negative)
      else if (answer.source === 'dane') {
        // RFC 7672 §2.2 facts hold as long as the DNS records they came from: the smallest validated TTL.
        ttl = Math.min(answer.ttl ?? Infinity, dnsTtl)
        if (ttl === Infinity) ttl = s.dane
      } else ttl = answer.ttl ?? s.negative // MTA-STS: until the policy expires (max_age after the fetch, RFC 8461 §3.3)
      return { answer, ttl: Math.min(ttl, s.max), degraded }
    }
    let facts
    if (profile.dane) {
      facts = await discoverDestination(key.destination, {
        resolver,
        port: key.port,
        signal,
        ...(s.families ? { families: s.families } : {}),
      })
      // DANE first (RFC 8461 §2): an OK or TEMP from DNS is final, MTA-STS is not fetched.
      const a = socketmapAnswer({ profile: { dane: true, sts: false, ...(profile.tlsrpt === true && { tlsrpt: true }) }, key, facts, now })
      if (a.status !== 'NOTFOUND' || !profile.sts) return done(a)
    }
    if (!profile.sts || !key.mxLookup) return done(socketmapAnswer({ profile, key, ...(facts ? { facts } : {}), now }))
    const sts = await getMtaStsPolicy(key.domain, {
      now: s.now,
      random: s.random,
      ...s.mtaSts,
      resolver,
      ...(s.store ? { store: s.store } : {}),
      signal,
    })
    const input = { policy: sts.policy, ...(sts.expiresAt !== undefined ? { expiresAt: sts.expiresAt } : {}) }
    const a = socketmapAnswer({ profile, key, ...(facts ? { facts } : {}), sts: input, now: s.now() })
    a.trace.push(...sts.trace)
    // A published policy that could not be fetched (and none cached): NOTFOUND for now (RFC 8461 §3.3),
    // but never in place of a cached answer.
    return done(a, sts.policy === undefined && sts.txt.status !== 'absent')
  }

  const lookupUncached = async (
    profile: SocketmapProfile,
    key: SocketmapKey,
    cacheKey: string,
    raw: string,
    storeFailed: boolean,
  ): Promise<Looked> => {
    const r = await bounded((signal) => compute(profile, key, signal, false))
    if ('error' in r) {
      // Anything unexpected (a timeout, a store or resolver bug) defers: never a weaker answer.
      const e = r.error as SmtpTlsError
      s.log?.({ event: 'lookup-error', key: raw, code: e?.code, error: e?.message, timedOut: r.timedOut })
      const reply = r.timedOut
        ? `TIMEOUT lookup took longer than ${s.lookupTimeoutMs} ms` // socketmap_table(5)
        : socketmapError('TEMP', `lookup failed: ${e?.message ?? 'error'}`)
      return { reply, cached: false, trace: [], ...(s.store ? { cache: 'miss' as const } : {}) }
    }
    const { answer: a, ttl } = r.value
    // A store that failed holds its cached MTA-STS policies out of reach: "no policy" (or `testing`)
    // now could be a downgrade of a cached enforce policy (RFC 8461 §5), so defer. DANE (DNSSEC is its own
    // proof) and an enforce policy just fetched stand.
    if (storeFailed && profile.sts && key.mxLookup && a.source !== 'dane' && !a.reply.startsWith('OK secure'))
      return {
        reply: socketmapError('TEMP', 'policy store unavailable: a cached MTA-STS policy cannot be ruled out'),
        cached: false,
        trace: [
          ...a.trace,
          { rule: 'the store failed: a cached MTA-STS policy may exist → TEMP, not a weaker answer', ref: 'RFC 8461 §5' },
        ],
        cache: 'miss',
      }
    if (a.status === 'OK' || a.status === 'NOTFOUND') void remember(cacheKey, a.reply, ttl) // the reply does not wait for the store
    return { reply: a.reply, cached: false, trace: a.trace, ...(s.store ? { cache: 'miss' as const } : {}) }
  }

  // ---- prefetch: refresh a popular answer before it expires ----
  const pf = s.prefetch
  const refreshing = new Set<string>()
  const queue: Array<() => Promise<void>> = []
  const refreshes = new Set<Promise<void>>()
  /** cache key → no refresh before (ms): a failed refresh is tried again after half of the remaining life. */
  const backoff = new Map<string, number>()
  const start = (job: () => Promise<void>): void => {
    const p = job().finally(() => {
      refreshes.delete(p)
      const next = queue.shift()
      if (next !== undefined && !closed) start(next)
    })
    refreshes.add(p)
  }
  const refresh = async (profile: SocketmapProfile, key: SocketmapKey, cacheKey: string, expiresAt: number): Promise<void> => {
    const r = await bounded((signal) => compute(profile, key, signal, true))
    if (closed) return void refreshing.delete(cacheKey)
    const now = s.now()
    if ('value' in r && (r.value.answer.status === 'OK' || r.value.answer.status === 'NOTFOUND') && !r.value.degraded) {
      await remember(cacheKey, r.value.answer.reply, r.value.ttl)
      backoff.delete(cacheKey)
      s.log?.({ event: 'prefetch', key: cacheKey, outcome: 'refreshed', reply: r.value.answer.reply })
    } else {
      // The unexpired answer stays in the store until it expires: a failed refresh never weakens it.
      if (backoff.size >= 10000) backoff.clear()
      backoff.set(cacheKey, now + Math.max(1000, (expiresAt - now) / 2))
      const why = 'value' in r ? r.value.answer.reply : ((r.error as Error)?.message ?? 'error')
      s.log?.({ event: 'prefetch', key: cacheKey, outcome: 'failed', error: why })
    }
    refreshing.delete(cacheKey)
  }
  const maybePrefetch = (profile: SocketmapProfile, key: SocketmapKey, cacheKey: string, expiresAt: number, now: number): void => {
    if (pf === undefined || closed || refreshing.has(cacheKey)) return
    const notBefore = backoff.get(cacheKey)
    if (notBefore !== undefined && now < notBefore) return
    if (refreshes.size >= pf.concurrency && queue.length >= pf.queue) {
      s.log?.({ event: 'prefetch', key: cacheKey, outcome: 'dropped' })
      return
    }
    refreshing.add(cacheKey)
    const job = (): Promise<void> => refresh(profile, key, cacheKey, expiresAt)
    if (refreshes.size < pf.concurrency) start(job)
    else queue.push(job)
  }

  const fromStore = (
    v: unknown,
    profile: SocketmapProfile,
    key: SocketmapKey,
    cacheKey: string,
    raw: string,
    storeFailed = false,
  ): Looked | Promise<Looked> => {
    const m = typeof v === 'string' ? ENTRY.exec(v) : null
    if (m !== null) {
      const now = s.now()
      const expiresAt = Number(m[2])
      if (now < expiresAt) {
        if (now >= Number(m[1])) maybePrefetch(profile, key, cacheKey, expiresAt, now)
        return { reply: m[3] as string, cached: true, cache: 'hit', trace: FROM_CACHE }
      }
    }
    let p = inflight.get(cacheKey)
    if (p === undefined) {
      p = lookupUncached(profile, key, cacheKey, raw, storeFailed).finally(() => inflight.delete(cacheKey))
      inflight.set(cacheKey, p)
    }
    return p
  }

  return {
    answer: (name, raw) => {
      const profile = s.profiles.get(name)
      if (profile === undefined) return { reply: socketmapError('PERM', `unknown map name ${name}`), cached: false, trace: [] }
      // Parsed keys are remembered (Postfix asks for the same few destinations over and over).
      let key = parsedKeys.get(raw)
      if (key === undefined) {
        if (parsedKeys.size >= 10000) parsedKeys.clear()
        key = parseSocketmapKey(raw) ?? null
        parsedKeys.set(raw, key)
      }
      if (key === null)
        return {
          reply: 'NOTFOUND ',
          cached: false,
          trace: [{ rule: 'not a domain or [host] nexthop → NOTFOUND', ref: 'postconf(5) smtp_tls_policy_maps' }],
        }
      const cacheKey = `socketmap|${name}|${key.destination}:${key.port}`
      let v: unknown
      try {
        v = s.store?.get(cacheKey)
      } catch (e) {
        storeError('get', cacheKey, e) // DESIGN.md: a store failure costs a lookup or defers, never a weaker answer
        return fromStore(undefined, profile, key, cacheKey, raw, true)
      }
      if (!isPromise(v)) return fromStore(v, profile, key, cacheKey, raw)
      return Promise.resolve(v).then(
        (x) => fromStore(x, profile, key, cacheKey, raw),
        (e: unknown) => {
          storeError('get', cacheKey, e)
          return fromStore(undefined, profile, key, cacheKey, raw, true)
        },
      )
    },
    close: async () => {
      closed = true
      queue.length = 0
      for (const ac of running) ac.abort()
      await Promise.all(refreshes)
    },
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
function decodeKey(bytes: Buffer): string {
  try {
    return utf8.decode(bytes)
  } catch {
    return bytes.toString('latin1')
  }
}

/** The first word of a reply (`OK`, `NOTFOUND`, `TEMP`, `PERM`, `TIMEOUT`) and, for OK, the Postfix level. */
function resultOf(reply: string): { result: string; policy: string | undefined } {
  const sp = reply.indexOf(' ')
  const result = sp < 0 ? reply : reply.slice(0, sp)
  if (result !== 'OK') return { result, policy: undefined }
  const end = reply.indexOf(' ', sp + 1)
  return { result, policy: reply.slice(sp + 1, end < 0 ? reply.length : end) }
}

async function startServer(s: Settings): Promise<SocketmapServer> {
  const lookups = lookupPath(s)
  const sockets = new Set<net.Socket>()
  const log = s.log

  const logged = (name: string, key: string, r: Looked, started: number): string => {
    const { result, policy } = resultOf(r.reply)
    log?.({
      event: 'query',
      name,
      key,
      reply: r.reply,
      result,
      policy,
      cached: r.cached,
      cache: r.cache,
      durationMs: performance.now() - started,
    })
    return r.reply
  }
  /** One request: the reply now when the answer is cached in a synchronous store, else a promise of it (never rejected). */
  const handle = (payload: Uint8Array): string | Promise<string> => {
    const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.length)
    // Postfix sends an internationalised next hop (smtputf8_enable) as UTF-8 bytes; anything that is not
    // UTF-8 is read one char per byte and can only end as a key that is no DNS name (NOTFOUND).
    const text = isAscii(bytes) ? bytes.toString('latin1') : decodeKey(bytes)
    const sp = text.indexOf(' ')
    if (sp <= 0 || sp === text.length - 1) return socketmapError('PERM', 'malformed request: expected "name key"')
    const name = text.slice(0, sp)
    const key = text.slice(sp + 1)
    const started = log ? performance.now() : 0
    const failed = (e: unknown): string => socketmapError('TEMP', (e as Error)?.message ?? 'error')
    let r: Looked | Promise<Looked>
    try {
      r = lookups.answer(name, key)
    } catch (e) {
      return failed(e)
    }
    if (!isPromise(r)) return log ? logged(name, key, r, started) : r.reply
    return r.then((x) => (log ? logged(name, key, x, started) : x.reply), failed)
  }
  // socketmap_table(5): a netstring per reply; replies are printable ASCII (socketmapAnswer, socketmapError, ENTRY).
  const reply = (sock: net.Socket, text: string): void => {
    if (!sock.destroyed) sock.write(`${text.length}:${text},`, 'latin1')
  }

  const server = net.createServer({ noDelay: true })
  server.maxConnections = s.maxConnections
  server.on('error', (e) => log?.({ event: 'client-error', error: e.message }))
  server.on('connection', (sock) => {
    sockets.add(sock)
    sock.on('error', () => sock.destroy()) // for the socket's life: a reset client never crashes the server
    sock.on('close', () => sockets.delete(sock))
    const decoder = createNetstringDecoder({ maxLength: SOCKETMAP_MAX_QUERY })
    let pending = 0
    let chain: Promise<void> = Promise.resolve()
    sock.setTimeout(s.idleTimeoutMs, () => {
      if (pending > 0)
        sock.setTimeout(s.idleTimeoutMs) // a lookup in progress is not idleness
      else sock.destroy()
    })
    const answered = (text: string): void => {
      pending--
      reply(sock, text)
    }
    sock.on('data', (chunk: Buffer) => {
      let msgs: Uint8Array[]
      try {
        msgs = decoder.push(chunk)
      } catch (e) {
        log?.({ event: 'client-error', error: (e as Error).message })
        sock.destroy() // socketmap_table(5) framing error: this client only
        return
      }
      if (pending + msgs.length > MAX_PENDING) {
        log?.({ event: 'client-error', error: 'too many pipelined requests' })
        sock.destroy()
        return
      }
      for (const m of msgs) {
        if (pending === 0) {
          // Nothing waiting on this connection: a cached answer goes out now, without a promise.
          const r = handle(m)
          if (typeof r === 'string') reply(sock, r)
          else {
            pending++
            chain = r.then(answered)
          }
        } else {
          // Replies leave in request order (socketmap_table(5)): after the ones before.
          pending++
          chain = chain.then(() => handle(m)).then(answered)
        }
      }
    })
    sock.on('end', () => sock.end())
  })

  let address: string
  if ('path' in s.listen) {
    const path = s.listen.path
    // A stale socket from an earlier run is removed; any other file is left alone (listen then fails).
    try {
      if ((await lstat(path)).isSocket()) await unlink(path)
    } catch {
      // absent
    }
    await listen(server, { path })
    try {
      await chmod(path, s.mode)
    } catch (e) {
      server.close()
      throw new SmtpTlsError('ERR_CONNECT', `cannot chmod ${path}: ${(e as Error).message}`, { temporary: true, cause: e })
    }
    address = `unix:${path}`
  } else {
    await listen(server, { host: s.listen.host, port: s.listen.port })
    const a = server.address() as net.AddressInfo
    address = `inet:${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
  }
  log?.({ event: 'listening', address })
  let closing: Promise<void> | undefined
  return {
    address,
    get connections() {
      return sockets.size
    },
    lookup: async (name, key) => {
      if (typeof name !== 'string' || typeof key !== 'string') throw invalidArgument('lookup needs a map name and a key (strings)')
      return lookups.answer(name, key)
    },
    close: () => {
      closing ??= Promise.all([
        new Promise<void>((resolve) => {
          server.close(() => resolve())
          for (const sock of sockets) sock.destroy()
        }),
        lookups.close(),
      ]).then(() => log?.({ event: 'closed', address }))
      return closing
    },
    reload: (opts) => reloadSettings(s, server, opts),
  }
}

async function reloadSettings(s: Settings, server: net.Server, opts: unknown): Promise<void> {
  let n: Settings
  try {
    if (typeof opts !== 'object' || opts === null) throw invalidArgument(`reload options must be an object, got ${describeValue(opts)}`)
    for (const k of FIXED_OPTIONS)
      if ((opts as Record<string, unknown>)[k] !== undefined) throw invalidArgument(`reload cannot change ${k}: start a new server`)
    n = readSettings(opts, false)
  } catch (e) {
    throw coded(e, 'SocketmapServer.reload')
  }
  const changed = new Set<string>()
  for (const name of [...s.profiles.keys(), ...n.profiles.keys()])
    if (JSON.stringify(s.profiles.get(name)) !== JSON.stringify(n.profiles.get(name))) changed.add(name)
  s.resolver = n.resolver
  s.profiles = n.profiles
  s.maxConnections = server.maxConnections = n.maxConnections
  s.idleTimeoutMs = n.idleTimeoutMs
  s.lookupTimeoutMs = n.lookupTimeoutMs
  s.negative = n.negative
  s.dane = n.dane
  s.max = n.max
  s.mtaSts = n.mtaSts
  s.families = n.families
  if (s.store === undefined) return
  // A cached answer of a changed profile was computed by the old rule (cache keys: lookupPath).
  for (const name of changed) {
    try {
      for (const [key] of await s.store.scan(`socketmap|${name}|`)) await s.store.delete(key)
    } catch (e) {
      s.log?.({ event: 'store-error', operation: 'scan', key: `socketmap|${name}|`, error: (e as Error)?.message })
    }
  }
}

function listen(server: net.Server, where: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) =>
      reject(
        new SmtpTlsError('ERR_CONNECT', `cannot listen on ${where.path ?? `${where.host}:${where.port}`}: ${e.message}`, {
          temporary: true,
          cause: e,
        }),
      )
    server.once('error', fail)
    server.listen(where, () => {
      server.off('error', fail)
      resolve()
    })
  })
}
