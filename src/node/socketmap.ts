/**
 * A Postfix TLS policy server over the socketmap protocol (socketmap_table(5)): Postfix sends one
 * netstring `<name> <key>` per lookup and reads one netstring reply (`OK <policy>`, `NOTFOUND `,
 * `TEMP <reason>`, `PERM <reason>`). `name` selects a profile (`dane`, `sts`, `dane+sts`); the facts
 * come from discoverDestination and getMtaStsPolicy, the answer from the pure socketmapAnswer.
 */
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
  type SocketmapProfile,
} from '../socketmap/answer.js'
import { createNetstringDecoder, encodeNetstring, SOCKETMAP_MAX_QUERY } from '../socketmap/netstring.js'
import { discoverDestination } from './discovery.js'
import { getMtaStsPolicy, type GetMtaStsPolicyOptions } from './mta-sts.js'
import { createResolver, type Resolver } from './resolver/resolver.js'

/** One structured log event of the socketmap server (one JSON line in the CLI). @public */
export interface SocketmapLogEvent {
  event: 'listening' | 'query' | 'client-error' | 'store-error' | 'lookup-error' | 'closed'
  [field: string]: unknown
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
  /** A lookup longer than this answers `TEMP` (ms); default 15000. */
  lookupTimeoutMs?: number
  /** Cache times (seconds): `negative` for NOTFOUND (default 300), `dane` when no TLSA TTL is known (default 300), `max` caps every answer (default 3600). */
  cache?: { negative?: number; dane?: number; max?: number }
  /** MTA-STS fetch options (`ca`, `port`, `allowPrivateAddresses`, `timeoutMs`; for labs and tests). */
  mtaSts?: Omit<GetMtaStsPolicyOptions, 'resolver' | 'store' | 'signal'>
  /** Address families looked up (default both). */
  families?: readonly (4 | 6)[]
  /** Structured events; default none. */
  log?: (event: SocketmapLogEvent) => void
  /** Clock (ms since the epoch); default `Date.now`. */
  now?: () => number
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
  log: (event: SocketmapLogEvent) => void
  now: () => number
}

/** What storeGet answers when the store rejected (as opposed to "not cached"). */
const STORE_FAILED = Symbol('store failed')

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
  ])
  const profiles = new Map<string, SocketmapProfile>()
  const p = o.profiles ?? SOCKETMAP_PROFILES
  if (typeof p !== 'object' || p === null) throw invalidArgument('createSocketmapServer options.profiles must be an object')
  for (const [name, prof] of Object.entries(p as Record<string, unknown>)) {
    if (!/^[!-~]+$/.test(name)) throw invalidArgument(`socketmap profile name ${describeValue(name)} must be printable with no space`)
    const q = readOptions(prof, `profile ${name}`, ['dane', 'sts', 'testing'])
    if (typeof q.dane !== 'boolean' || typeof q.sts !== 'boolean') throw invalidArgument(`profile ${name}: dane and sts must be booleans`)
    if (q.testing !== undefined && q.testing !== 'notfound' && q.testing !== 'may')
      throw invalidArgument(`profile ${name}: testing must be notfound or may`)
    profiles.set(name, { dane: q.dane, sts: q.sts, ...(q.testing !== undefined ? { testing: q.testing } : {}) })
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
  for (const f of ['log', 'now'] as const)
    if (o[f] !== undefined && typeof o[f] !== 'function') throw invalidArgument(`createSocketmapServer options.${f} must be a function`)
  if (o.mtaSts !== undefined && (typeof o.mtaSts !== 'object' || o.mtaSts === null))
    throw invalidArgument('createSocketmapServer options.mtaSts must be an object')
  const families = o.families
  if (families !== undefined && (!Array.isArray(families) || families.length === 0 || families.some((f) => f !== 4 && f !== 6)))
    throw invalidArgument('createSocketmapServer options.families must list 4 and/or 6')
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
    log: (o.log as Settings['log'] | undefined) ?? (() => {}),
    now: (o.now as (() => number) | undefined) ?? Date.now,
  }
}

/**
 * Start a socketmap TLS policy server for Postfix's `smtp_tls_policy_maps = socketmap:…:<profile>`.
 *
 * One netstring request `<name> <key>` per reply (socketmap_table(5)); a framing error (leading zero,
 * non-digit, missing comma, length past 10,000 bytes) closes that client's connection only. Answers
 * are cached in `store` (DANE for the smallest TLSA TTL, MTA-STS for the policy's remaining life, NOTFOUND
 * for `cache.negative`), never TEMP or PERM; a store failure is a cache miss, never a weaker answer.
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
    return lookupPath(readSettings(opts, false))
  } catch (e) {
    throw coded(e, 'createSocketmapLookup')
  }
}

function lookupPath(s: Settings): (name: string, key: string) => Promise<SocketmapLookup> {
  const inflight = new Map<string, Promise<SocketmapLookup>>()
  const storeGet = async (key: string): Promise<string | undefined | typeof STORE_FAILED> => {
    if (s.store === undefined) return undefined
    try {
      const v = await s.store.get(key)
      return typeof v === 'string' ? v : undefined
    } catch (e) {
      s.log({ event: 'store-error', operation: 'get', key, error: (e as Error)?.message })
      return STORE_FAILED // DESIGN.md: a store failure costs a lookup or defers, never a weaker answer
    }
  }
  const storeSet = async (key: string, value: string, ttl: number): Promise<void> => {
    if (s.store === undefined || ttl <= 0) return
    try {
      await s.store.set(key, value, ttl)
    } catch (e) {
      s.log({ event: 'store-error', operation: 'set', key, error: (e as Error)?.message })
    }
  }

  const compute = async (profile: SocketmapProfile, key: NonNullable<ReturnType<typeof parseSocketmapKey>>): Promise<SocketmapAnswer> => {
    const signal = AbortSignal.timeout(s.lookupTimeoutMs)
    const now = s.now()
    let facts
    if (profile.dane) {
      facts = await discoverDestination(key.destination, {
        resolver: s.resolver,
        port: key.port,
        signal,
        ...(s.families ? { families: s.families } : {}),
      })
      // DANE first (RFC 8461 §2): an OK or TEMP from DNS is final, MTA-STS is not fetched.
      const a = socketmapAnswer({ profile: { dane: true, sts: false }, key, facts, now })
      if (a.status !== 'NOTFOUND' || !profile.sts) return a
    }
    if (!profile.sts || !key.mxLookup) return socketmapAnswer({ profile, key, ...(facts ? { facts } : {}), now })
    const sts = await getMtaStsPolicy(key.domain, { ...s.mtaSts, resolver: s.resolver, ...(s.store ? { store: s.store } : {}), signal })
    const input = { policy: sts.policy, ...(sts.expiresAt !== undefined ? { expiresAt: sts.expiresAt } : {}) }
    const a = socketmapAnswer({ profile, key, ...(facts ? { facts } : {}), sts: input, now })
    a.trace.push(...sts.trace)
    return a
  }

  const lookupUncached = async (name: string, rawKey: string): Promise<SocketmapLookup> => {
    const profile = s.profiles.get(name)
    if (profile === undefined) return { reply: socketmapError('PERM', `unknown map name ${name}`), cached: false, trace: [] }
    const key = parseSocketmapKey(rawKey)
    if (key === undefined)
      return {
        reply: 'NOTFOUND ',
        cached: false,
        trace: [{ rule: 'not a domain or [host] nexthop → NOTFOUND', ref: 'postconf(5) smtp_tls_policy_maps' }],
      }
    const cacheKey = `socketmap|${name}|${key.destination}:${key.port}`
    const hit = await storeGet(cacheKey)
    if (typeof hit === 'string' && /^(OK \S|NOTFOUND )/.test(hit))
      return { reply: hit, cached: true, trace: [{ rule: 'answer from the cache', ref: 'store' }] }
    let a: SocketmapAnswer
    try {
      a = await compute(profile, key)
    } catch (e) {
      // Anything unexpected (a timeout, a store or resolver bug) defers: never a weaker answer.
      s.log({ event: 'lookup-error', name, key: rawKey, code: (e as SmtpTlsError)?.code, error: (e as Error)?.message })
      return { reply: socketmapError('TEMP', `lookup failed: ${(e as Error)?.message ?? 'error'}`), cached: false, trace: [] }
    }
    // A store that failed holds its cached MTA-STS policies out of reach: "no policy" (or `testing`)
    // now could be a downgrade of a cached enforce policy (RFC 8461 §5), so defer. DANE (DNSSEC is its own
    // proof) and an enforce policy just fetched stand.
    if (hit === STORE_FAILED && profile.sts && key.mxLookup && a.source !== 'dane' && !a.reply.startsWith('OK secure'))
      return {
        reply: socketmapError('TEMP', 'policy store unavailable: a cached MTA-STS policy cannot be ruled out'),
        cached: false,
        trace: [
          ...a.trace,
          { rule: 'the store failed: a cached MTA-STS policy may exist → TEMP, not a weaker answer', ref: 'RFC 8461 §5' },
        ],
      }
    if (a.status === 'OK' || a.status === 'NOTFOUND') {
      const ttl =
        a.status === 'NOTFOUND' ? Math.min(a.ttl ?? s.negative, s.negative) : (a.ttl ?? (a.source === 'dane' ? s.dane : s.negative))
      void storeSet(cacheKey, a.reply, Math.min(ttl, s.max)) // the reply does not wait for the store (storeSet never rejects)
    }
    return { reply: a.reply, cached: false, trace: a.trace }
  }

  return (name: string, key: string): Promise<SocketmapLookup> => {
    const k = `${name} ${key}`
    let p = inflight.get(k)
    if (p === undefined) {
      p = lookupUncached(name, key).finally(() => inflight.delete(k))
      inflight.set(k, p)
    }
    return p
  }
}

async function startServer(s: Settings): Promise<SocketmapServer> {
  const lookup = lookupPath(s)
  const sockets = new Set<net.Socket>()

  const handle = async (payload: Uint8Array): Promise<string> => {
    const text = Buffer.from(payload).toString('latin1')
    const sp = text.indexOf(' ')
    if (sp <= 0 || sp === text.length - 1) return socketmapError('PERM', 'malformed request: expected "name key"')
    const started = s.now()
    const r = await lookup(text.slice(0, sp), text.slice(sp + 1))
    s.log({ event: 'query', name: text.slice(0, sp), key: text.slice(sp + 1), reply: r.reply, cached: r.cached, ms: s.now() - started })
    return r.reply
  }

  const server = net.createServer({ noDelay: true })
  server.maxConnections = s.maxConnections
  server.on('error', (e) => s.log({ event: 'client-error', error: e.message }))
  server.on('connection', (sock) => {
    sockets.add(sock)
    sock.on('error', () => sock.destroy()) // for the socket's life: a reset client never crashes the server
    sock.on('close', () => sockets.delete(sock))
    const decoder = createNetstringDecoder({ maxLength: SOCKETMAP_MAX_QUERY })
    let pending = 0
    let chain = Promise.resolve()
    sock.setTimeout(s.idleTimeoutMs, () => {
      if (pending > 0)
        sock.setTimeout(s.idleTimeoutMs) // a lookup in progress is not idleness
      else sock.destroy()
    })
    sock.on('data', (chunk: Buffer) => {
      let msgs: Uint8Array[]
      try {
        msgs = decoder.push(chunk)
      } catch (e) {
        s.log({ event: 'client-error', error: (e as Error).message })
        sock.destroy() // socketmap_table(5) framing error: this client only
        return
      }
      if (pending + msgs.length > MAX_PENDING) {
        s.log({ event: 'client-error', error: 'too many pipelined requests' })
        sock.destroy()
        return
      }
      for (const m of msgs) {
        pending++
        chain = chain
          .then(() => handle(m))
          .catch((e: unknown) => socketmapError('TEMP', (e as Error)?.message ?? 'error'))
          .then((reply) => {
            pending--
            if (!sock.destroyed) sock.write(encodeNetstring(reply))
          })
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
  s.log({ event: 'listening', address })
  let closing: Promise<void> | undefined
  return {
    address,
    get connections() {
      return sockets.size
    },
    lookup: async (name, key) => {
      if (typeof name !== 'string' || typeof key !== 'string') throw invalidArgument('lookup needs a map name and a key (strings)')
      return lookup(name, key)
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          s.log({ event: 'closed', address })
          resolve()
        })
        for (const sock of sockets) sock.destroy()
      })
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
      s.log({ event: 'store-error', operation: 'scan', key: `socketmap|${name}|`, error: (e as Error)?.message })
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
