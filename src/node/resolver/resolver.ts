/**
 * A DNSSEC-aware stub resolver (RFC 4033 §7, RFC 7672 §2.1): it asks a trusted validating recursive
 * resolver, reads the AD bit, and types every answer as secure, insecure, a (secure or insecure) denial,
 * or a lookup failure. Node's own `node:dns` cannot do this: it has no TLSA type and never exposes AD.
 */
import { coded, describeValue, invalidArgument } from '../../args.js'
import { randomInt } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { SmtpTlsError } from '../../errors.js'
import type { CnameLink, DnsAnswer, DnsFailure, DnsRecordData, DnsRecordType } from '../../dns/types.js'
import { type DnsServer, formatDnsServer, isLoopbackAddress, parseDnsServer, parseResolvConf } from './config.js'
import { formatExtendedError } from './ede.js'
import { abortError, tcpExchange, type TransportCounters, udpExchange } from './transport.js'
import { encodeQuery, MAX_CNAME_CHAIN, malformed, normaliseName, type ParsedResponse, parseResponse, TYPE_CODE } from './wire.js'

/** TTL cache settings, in seconds. @public */
export interface ResolverCacheOptions {
  /** Floor for every cached answer (default 1). */
  minTtl?: number
  /** Ceiling for positive answers (default 100: Postfix's TLS_DANE_CACHE_TTL_MAX, so TLSA changes are seen quickly). */
  maxTtl?: number
  /** Ceiling for NXDOMAIN and NODATA (default 1, as Postfix caches negative TLSA answers). */
  negativeMaxTtl?: number
  /** Most entries kept; the oldest is evicted first (default 10000). */
  maxEntries?: number
}

/** Options of {@link createResolver}. @public */
export interface ResolverOptions {
  /** `"127.0.0.1"`, `"127.0.0.1:5353"`, `"[::1]:53"`; default: the nameservers of `resolvConf`. */
  servers?: string[]
  /** Per-try timeout in ms (default: resolv.conf `options timeout:`, else 5000). */
  timeoutMs?: number
  /** Rounds over all servers (default: resolv.conf `options attempts:`, else 2). */
  attempts?: number
  /**
   * Which servers' AD bit to believe (RFC 4035 §4.9.3, RFC 7672 §2.1.1). Default `'loopback'`: only
   * 127.0.0.0/8 and ::1. `true` trusts every configured server (only for a channel you secured yourself,
   * e.g. a resolver reached over IPsec or a private link); `false` makes every answer insecure.
   */
  trustAd?: 'loopback' | boolean | ((server: DnsServer) => boolean)
  /** `false` disables caching; default on with {@link ResolverCacheOptions} defaults. */
  cache?: boolean | ResolverCacheOptions
  /** resolv.conf path (default `/etc/resolv.conf`); read once, on the first lookup, when `servers` is not given. */
  resolvConf?: string
  /** Monotonic clock in ms for the cache (tests); default `performance.now`. */
  now?: () => number
}

/** Per-lookup options. @public */
export interface LookupOptions {
  signal?: AbortSignal
  /** `false`: bypass the cache for this lookup (the answer still refreshes it). */
  cache?: boolean
}

/** The configuration in effect. @public */
export interface ResolverConfig {
  servers: DnsServer[]
  timeoutMs: number
  attempts: number
  /** Per server (`address:port`): is its AD bit trusted? */
  trusted: Record<string, boolean>
}

/** Counters, for tests, benchmarks and monitoring. @public */
export interface ResolverStats {
  lookups: number
  cacheHits: number
  /** lookups that joined an identical one already in flight */
  deduplicated: number
  udpSent: number
  tcpSent: number
  /** datagrams dropped as not matching an outstanding query (spoofing or stray packets) */
  dropped: number
  cacheSize: number
}

/**
 * A DNSSEC-aware stub resolver. `lookup` resolves to a typed answer for every DNS outcome (lookup failures
 * included: status `bogus` or `error`); it rejects only for an invalid name or type (`ERR_INVALID_ARGUMENT`),
 * an unusable configuration (`ERR_DNS_CONFIG`) or an abort (`ERR_ABORTED`).
 * @public
 */
export interface Resolver {
  lookup<T extends DnsRecordType>(name: string, type: T, opts?: LookupOptions): Promise<DnsAnswer<T>>
  config(): Promise<ResolverConfig>
  stats(): ResolverStats
  clearCache(): void
}

type Exchange =
  | { kind: 'response'; parsed: ParsedResponse; server: DnsServer }
  | { kind: 'failure'; error: SmtpTlsError; servfail?: { parsed: ParsedResponse; server: DnsServer } }

/**
 * Internal (not exported from the package): a synchronous look into the resolver's cache. Given the
 * cache key from {@link resolverCacheKey} of a name already in normalised form, it returns the cached
 * answer while it is fresh (counted as a lookup and a cache hit, as `lookup` would), else `undefined`.
 * The answer is the cached object itself, with the TTL it was stored with: read `status`, `records`
 * and `error` only. getMtaStsPolicy uses it for a warm lookup without a turn of the event loop (issue 13).
 */
export const PEEK_CACHED: unique symbol = Symbol('smtp-tls-policy resolver cache peek')
export type PeekCached = (key: string) => DnsAnswer | undefined
/** The cache key `lookup` uses for a normalised name (see `normaliseName`). */
export function resolverCacheKey(qname: string, type: DnsRecordType): string {
  return `${type} ${qname}`
}

interface CacheEntry {
  answer: DnsAnswer
  expires: number
}

/** RFC 8914 §4 info-codes that report a DNSSEC validation failure (bogus or indeterminate). */
const DNSSEC_EDE = new Set([5, 6, 7, 8, 9, 10, 11, 12])

function failureOf(e: SmtpTlsError): DnsFailure {
  const f: DnsFailure = { code: e.code, message: e.message, temporary: e.temporary }
  if (e.enhancedStatus !== undefined) f.enhancedStatus = e.enhancedStatus
  if (e.tlsrpt !== undefined) f.tlsrpt = e.tlsrpt
  return f
}

/**
 * Create a resolver. With no `servers`, the nameservers of /etc/resolv.conf are used (read on the first lookup).
 *
 * @example
 * ```ts
 * const r = createResolver({ servers: ['127.0.0.1'] })   // a local validating Unbound
 * const a = await r.lookup('_25._tcp.mx.example.com', 'TLSA')
 * if (a.status === 'secure') console.log(a.records)
 * ```
 * @throws {@link SmtpTlsError} `ERR_DNS_CONFIG` for an invalid server string or option.
 * @public
 */
export function createResolver(opts: ResolverOptions = {}): Resolver {
  try {
    return createResolverChecked(opts)
  } catch (e) {
    throw coded(e, 'createResolver')
  }
}

function createResolverChecked(opts: ResolverOptions = {}): Resolver {
  if (typeof opts !== 'object' || opts === null)
    throw invalidArgument(`createResolver options must be an object, got ${describeValue(opts)}`)
  const explicit = opts.servers?.map(parseDnsServer)
  if (explicit !== undefined && explicit.length === 0) throw new SmtpTlsError('ERR_DNS_CONFIG', 'servers must not be empty')
  for (const [k, v] of [
    ['timeoutMs', opts.timeoutMs],
    ['attempts', opts.attempts],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new SmtpTlsError('ERR_DNS_CONFIG', `${k} must be a positive integer`)
  }
  const cacheOpts = opts.cache === false ? undefined : opts.cache === true || opts.cache === undefined ? {} : opts.cache
  const minTtl = cacheOpts?.minTtl ?? 1
  const maxTtl = Math.max(minTtl, cacheOpts?.maxTtl ?? 100)
  const negativeMaxTtl = Math.max(minTtl, cacheOpts?.negativeMaxTtl ?? 1)
  const maxEntries = cacheOpts?.maxEntries ?? 10000
  const now = opts.now ?? (() => performance.now())
  const trustOpt = opts.trustAd ?? 'loopback'
  const trust = (s: DnsServer): boolean =>
    typeof trustOpt === 'function' ? trustOpt(s) : trustOpt === 'loopback' ? isLoopbackAddress(s.address) : trustOpt

  let configPromise: Promise<ResolverConfig> | undefined
  const loadConfig = (): Promise<ResolverConfig> => {
    configPromise ??= (async () => {
      let servers = explicit
      let timeoutMs = 5000
      let attempts = 2
      if (servers === undefined) {
        let text = ''
        try {
          text = await readFile(opts.resolvConf ?? '/etc/resolv.conf', 'utf8')
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
            throw new SmtpTlsError('ERR_DNS_CONFIG', `cannot read ${opts.resolvConf ?? '/etc/resolv.conf'}: ${(e as Error).message}`, {
              cause: e,
            })
          }
        }
        const rc = parseResolvConf(text)
        servers = rc.servers
        timeoutMs = rc.timeoutMs
        attempts = rc.attempts
      }
      const trusted: Record<string, boolean> = {}
      for (const s of servers) trusted[formatDnsServer(s)] = trust(s)
      return { servers, timeoutMs: opts.timeoutMs ?? timeoutMs, attempts: opts.attempts ?? attempts, trusted }
    })()
    return configPromise
  }

  const counters: TransportCounters = { udpSent: 0, tcpSent: 0, dropped: 0 }
  const stats = { lookups: 0, cacheHits: 0, deduplicated: 0 }
  const cache = new Map<string, CacheEntry>()
  const inflight = new Map<string, { promise: Promise<DnsAnswer>; controller: AbortController; waiters: number }>()

  /** Ask the servers in turn (RFC 1035 §7.2), `attempts` rounds, until one gives NOERROR or NXDOMAIN. */
  async function exchange(cfg: ResolverConfig, name: string, type: DnsRecordType, signal: AbortSignal): Promise<Exchange> {
    let lastError: SmtpTlsError | undefined
    let servfail: { parsed: ParsedResponse; server: DnsServer } | undefined
    const finished = new Set<DnsServer>() // servers that gave a definitive failure: not asked again
    for (let attempt = 0; attempt < cfg.attempts && finished.size < cfg.servers.length; attempt++) {
      for (const server of cfg.servers) {
        if (finished.has(server)) continue
        let parsed: ParsedResponse
        try {
          parsed = parseResponse(await udpExchange(server, encodeQuery(randomInt(0, 65536), name, type), cfg.timeoutMs, signal, counters))
          if (parsed.truncated) {
            // RFC 7766 §5 / RFC 1035 §4.2.1: TC means the answer did not fit; ask again over TCP.
            parsed = parseResponse(await tcpExchange(server, encodeQuery(randomInt(0, 65536), name, type), cfg.timeoutMs, signal, counters))
            if (parsed.truncated) throw malformed('TC set on a TCP response')
          }
        } catch (e) {
          if (!(e instanceof SmtpTlsError)) throw e
          if (e.code === 'ERR_ABORTED') throw e
          if (e.code === 'ERR_DNS_MALFORMED') finished.add(server)
          lastError = e
          continue
        }
        if (parsed.rcode === 'NOERROR' || parsed.rcode === 'NXDOMAIN') return { kind: 'response', parsed, server }
        finished.add(server)
        if (parsed.rcode === 'SERVFAIL') servfail ??= { parsed, server }
        else lastError = new SmtpTlsError('ERR_DNS_REFUSED', `${formatDnsServer(server)} answered ${parsed.rcode} for ${name} ${type}`)
      }
    }
    if (servfail) {
      // RFC 7672 §2.1.1: SERVFAIL from a validating resolver is bogus or indeterminate: a lookup failure.
      // The code only says whether the resolver told us why (an RFC 8914 DNSSEC EDE): ERR_DNS_BOGUS, else
      // ERR_DNS_SERVFAIL. What a caller acts on is the same for both: temporary, 4.4.3, TLS-RPT dnssec-invalid.
      const ede = servfail.parsed.extendedErrors
      const detail = ede.length > 0 ? ` (${ede.map(formatExtendedError).join(', ')})` : ''
      const isBogus = ede.some((x) => DNSSEC_EDE.has(x.code))
      const same = { enhancedStatus: '4.4.3', tlsrpt: 'dnssec-invalid' } as const
      const error = isBogus
        ? new SmtpTlsError(
            'ERR_DNS_BOGUS',
            `DNSSEC validation failed for ${name} ${type} at ${formatDnsServer(servfail.server)}${detail}`,
            same,
          )
        : new SmtpTlsError('ERR_DNS_SERVFAIL', `${formatDnsServer(servfail.server)} answered SERVFAIL for ${name} ${type}${detail}`, same)
      return { kind: 'failure', error, servfail }
    }
    return { kind: 'failure', error: lastError ?? new SmtpTlsError('ERR_DNS_TIMEOUT', `no DNS response for ${name} ${type}`) }
  }

  /** One lookup without the cache, following CNAMEs (RFC 1034 §3.6.2, RFC 7672 §2.1.3). */
  async function resolveUncached<T extends DnsRecordType>(name: string, type: T, signal: AbortSignal): Promise<DnsAnswer<T>> {
    const cfg = await loadConfig()
    const cnames: CnameLink[] = []
    const seen = new Set([name])
    let current = name
    let secure = true
    let insecureReason: string | undefined
    let ttl = Number.POSITIVE_INFINITY
    const fail = (error: SmtpTlsError, extra: Partial<DnsAnswer<T>> = {}): DnsAnswer<T> => ({
      name,
      type,
      status: 'error',
      secure: false,
      records: [],
      ttl: 0,
      cnames,
      canonicalName: current,
      error: failureOf(error),
      ...extra,
    })
    for (;;) {
      const ex = await exchange(cfg, current, type, signal)
      if (ex.kind === 'failure') {
        if (!ex.servfail) return fail(ex.error)
        const a = fail(ex.error, { status: 'bogus', rcode: 'SERVFAIL', server: formatDnsServer(ex.servfail.server) })
        if (ex.servfail.parsed.extendedErrors.length > 0) a.extendedErrors = ex.servfail.parsed.extendedErrors
        return a
      }
      const { parsed, server } = ex
      const where = formatDnsServer(server)
      const trusted = cfg.trusted[where] === true
      if (!parsed.authenticData || !trusted) {
        secure = false
        insecureReason ??= !parsed.authenticData
          ? `${where} did not set AD for ${current} ${type}: the data is unsigned or the resolver does not validate`
          : `AD bit from ${where} ignored: not a trusted resolver (only loopback resolvers are trusted unless trustAd says otherwise; RFC 4035 §4.9.3)`
      }
      let added = 0
      if (type !== 'CNAME') {
        for (;;) {
          const links = parsed.answers.filter((a) => a.type === 'CNAME' && a.name === current)
          if (links.length === 0) break
          if (links.length > 1) return fail(malformed(`several CNAME records at ${current}`))
          const link = links[0] as { data: DnsRecordData[DnsRecordType]; ttl: number }
          const to = link.data as string
          if (seen.has(to))
            return fail(new SmtpTlsError('ERR_DNS_CNAME_LOOP', `CNAME loop at ${current} -> ${to} while resolving ${name} ${type}`))
          if (cnames.length >= MAX_CNAME_CHAIN) {
            return fail(new SmtpTlsError('ERR_DNS_CNAME_LOOP', `CNAME chain from ${name} longer than ${MAX_CNAME_CHAIN}`))
          }
          seen.add(to)
          cnames.push({ from: current, to })
          ttl = Math.min(ttl, link.ttl)
          current = to
          added++
        }
      }
      const records = parsed.answers.filter((a) => a.type === type && a.name === current)
      const undecodable = parsed.undecodable.filter((a) => a.type === type && a.name === current)
      const base = { name, type, secure, cnames, canonicalName: current, rcode: parsed.rcode, server: where }
      const withReason = (a: DnsAnswer<T>): DnsAnswer<T> => {
        if (!secure && insecureReason !== undefined) a.insecureReason = insecureReason
        return a
      }
      if (records.length > 0 || undecodable.length > 0) {
        // An RRset whose records are all undecodable is still there (not NODATA): the caller decides they are unusable.
        for (const r of [...records, ...undecodable]) ttl = Math.min(ttl, r.ttl)
        const a: DnsAnswer<T> = {
          ...base,
          status: secure ? 'secure' : 'insecure',
          records: records.map((r) => r.data as DnsRecordData[T]),
          ttl,
        }
        if (undecodable.length > 0) a.undecodable = undecodable.map((u) => u.record)
        return withReason(a)
      }
      // RFC 7672 §2.1.3: a CNAME without the target's data (no SOA proving NODATA): repeat the query at the target.
      if (parsed.rcode === 'NOERROR' && added > 0 && parsed.negativeTtl === undefined) continue
      const neg = Math.min(ttl, parsed.negativeTtl ?? 0)
      return withReason({ ...base, status: parsed.rcode === 'NXDOMAIN' ? 'nxdomain' : 'nodata', records: [], ttl: neg })
    }
  }

  function store(key: string, a: DnsAnswer): DnsAnswer {
    if (a.status === 'bogus' || a.status === 'error') return a // failures are never cached
    const ceiling = a.status === 'secure' || a.status === 'insecure' ? maxTtl : negativeMaxTtl
    const ttl = Math.min(Math.max(a.ttl, minTtl), ceiling)
    const clamped = { ...a, ttl }
    if (cacheOpts !== undefined) {
      cache.delete(key)
      cache.set(key, { answer: clamped, expires: now() + ttl * 1000 })
      while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string)
    }
    return clamped
  }

  return {
    lookup<T extends DnsRecordType>(name: string, type: T, lo: LookupOptions = {}): Promise<DnsAnswer<T>> {
      let qname: string
      try {
        qname = normaliseName(name)
        if (!Object.hasOwn(TYPE_CODE, type)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `unsupported DNS type ${String(type)}`)
      } catch (e) {
        return Promise.reject(e)
      }
      const signal = lo.signal
      if (signal?.aborted) return Promise.reject(abortError(signal))
      stats.lookups++
      const key = resolverCacheKey(qname, type)
      if (cacheOpts !== undefined && lo.cache !== false) {
        const hit = cache.get(key)
        if (hit !== undefined) {
          const left = (hit.expires - now()) / 1000
          if (left > 0) {
            stats.cacheHits++
            return Promise.resolve({ ...(hit.answer as DnsAnswer<T>), ttl: Math.ceil(left), fromCache: true })
          }
          cache.delete(key)
        }
      }
      let f = inflight.get(key)
      if (f === undefined) {
        const controller = new AbortController()
        const entry = { promise: undefined as unknown as Promise<DnsAnswer>, controller, waiters: 0 }
        entry.promise = resolveUncached(qname, type, controller.signal)
          .then((a) => store(key, a))
          .finally(() => {
            if (inflight.get(key) === entry) inflight.delete(key)
          })
        f = entry
        inflight.set(key, f)
      } else {
        stats.deduplicated++
      }
      const flight = f
      flight.waiters++
      return new Promise<DnsAnswer<T>>((resolve, reject) => {
        let settled = false
        const onAbort = () => {
          if (settled) return
          settled = true
          // the shared lookup goes on for the other callers; the last one to leave cancels it
          if (--flight.waiters === 0) {
            if (inflight.get(key) === flight) inflight.delete(key)
            flight.controller.abort(signal?.reason)
          }
          reject(abortError(signal as AbortSignal))
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        flight.promise.then(
          (a) => {
            signal?.removeEventListener('abort', onAbort)
            if (settled) return
            settled = true
            flight.waiters--
            resolve(a as DnsAnswer<T>)
          },
          (e: unknown) => {
            signal?.removeEventListener('abort', onAbort)
            if (settled) return
            settled = true
            flight.waiters--
            reject(e)
          },
        )
      })
    },
    config: loadConfig,
    stats: () => ({ ...stats, ...counters, cacheSize: cache.size }),
    clearCache: () => cache.clear(),
    [PEEK_CACHED]: (key: string): DnsAnswer | undefined => {
      if (cacheOpts === undefined) return undefined
      const hit = cache.get(key)
      if (hit === undefined || hit.expires - now() <= 0) return undefined // lookup() handles (and drops) the expired entry
      stats.lookups++
      stats.cacheHits++
      return hit.answer
    },
  } as Resolver
}
