/**
 * The store of `smtp-tls-policy serve` (in memory, or Redis shared by several servers) and the
 * `dump` and `purge` commands on it. The `redis` package (an optional peer dependency) is loaded
 * only here, only when a Redis URL is given.
 */
import type * as RedisModule from 'redis'
import { SmtpTlsError } from '../errors.js'
import { cachedReply } from '../node/socketmap.js'
import { createRedisStore } from '../redis/index.js'
import { createMemoryStore, type MemoryStore } from '../store/memory.js'
import type { PolicyStore } from '../store/types.js'
import {
  clean,
  CliError,
  EX_OK,
  EX_TEMPFAIL,
  EX_UNAVAILABLE,
  EX_USAGE,
  isCoded,
  type CliIo,
  type ServeSettings,
  type StoreArgs,
} from './common.js'
import { storeSettings } from './config.js'

/** One structured log line of serve. */
export type LogEvent = { event: string } & Record<string, unknown>

/** The socketmap server's cache keys: `socketmap|<map name>|<next hop>:<port>` (lookupPath in src/node/socketmap.ts). */
const ANSWERS = 'socketmap|'

const DEFAULT_PREFIX = 'smtp-tls-policy:'

/** Answers remembered in this process while Redis is up, for when it is not: at most this many. */
const FALLBACK_ENTRIES = 50_000

/** A URL for a log line: no password. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)[^@/]*@/, '$1***@')
}

type RedisClient = {
  connect(): Promise<unknown>
  destroy(): void
  sendCommand(args: string[]): Promise<unknown>
  on(event: string, listener: (...args: never[]) => void): unknown
}

/** A node-redis client, not connected yet. `persistent`: reconnect for ever (serve); else fail at once (dump, purge). */
async function redisClient(url: string, persistent: boolean): Promise<RedisClient> {
  let redis: typeof RedisModule
  try {
    redis = await import('redis')
  } catch {
    throw new CliError(EX_UNAVAILABLE, 'a Redis store needs the redis package: npm install redis')
  }
  const reconnectStrategy = persistent ? (retries: number) => Math.min(100 * 2 ** retries, 2000) : (false as const)
  const client = redis.createClient({
    ...(url.startsWith('unix:')
      ? { socket: { path: url.slice(5), tls: false, connectTimeout: 2000, reconnectStrategy } }
      : { url, socket: { connectTimeout: 2000, reconnectStrategy } }),
    // A command while disconnected fails at once (a cache miss, or TEMP), instead of waiting for Redis.
    disableOfflineQueue: true,
  })
  return client as unknown as RedisClient
}

/**
 * Redis first, this process's copy when Redis fails. Every read goes to Redis (so a purge, or an answer
 * another server stored, is seen at once); an answer Redis gave or took is remembered here with its
 * remaining TTL, so that while Redis is down the answers this server has seen are still served, never
 * past their expiry. A value that is neither in Redis nor here, while Redis is down, rejects: the
 * socketmap server then answers TEMP (src/node/socketmap.ts), never a weaker answer.
 */
export function withFallback(remote: PolicyStore, local: MemoryStore, pttl: (key: string) => Promise<number>): PolicyStore {
  return {
    async get(key) {
      let v: string | undefined
      try {
        v = await remote.get(key)
      } catch (e) {
        const kept = local.get(key)
        if (kept !== undefined) return kept
        throw e
      }
      if (v === undefined)
        local.delete(key) // purged, or expired there
      else if (local.get(key) !== v)
        void pttl(key).then(
          (ms) => {
            if (ms > 0) local.set(key, v, ms / 1000)
          },
          () => {},
        )
      return v
    },
    async set(key, value, ttlSeconds) {
      local.set(key, value, ttlSeconds)
      await remote.set(key, value, ttlSeconds)
    },
    increment: (key, by, ttlSeconds) => remote.increment(key, by, ttlSeconds),
    scan: (prefix) => remote.scan(prefix),
    async delete(key) {
      local.delete(key)
      return remote.delete(key)
    },
  }
}

/** serve's store: memory, or Redis (`--redis`) with a fallback copy. `close` ends the Redis client. */
export async function openServeStore(s: ServeSettings, log: (e: LogEvent) => void): Promise<{ store: PolicyStore; close(): void }> {
  if (s.redis === undefined) return { store: createMemoryStore(), close: () => {} }
  const client = await redisClient(s.redis, true)
  const redis = redactUrl(s.redis)
  let reported = false
  // For the client's life: a Redis error is logged (once per outage), never thrown at the process.
  client.on('error', (e: Error) => {
    if (reported) return
    reported = true
    log({ event: 'store-error', operation: 'connect', redis, error: e?.message })
  })
  client.on('ready', () => {
    reported = false
    log({ event: 'store-ready', redis })
  })
  // Retries until Redis answers (reconnectStrategy); serve answers meanwhile (TEMP where it must).
  client.connect().catch(() => {})
  const prefix = s.redisPrefix ?? DEFAULT_PREFIX
  const remote = createRedisStore(client, { prefix, strict: true })
  const pttl = async (key: string): Promise<number> => Number(await client.sendCommand(['PTTL', prefix + key]))
  return { store: withFallback(remote, createMemoryStore({ maxEntries: FALLBACK_ENTRIES }), pttl), close: () => client.destroy() }
}

interface CachedAnswer {
  key: string
  map: string
  destination: string
  /** seconds left; null: no expiry */
  ttl: number | null
  reply: string
}

function parseAnswerKey(key: string): { map: string; destination: string } {
  const rest = key.slice(ANSWERS.length)
  const bar = rest.lastIndexOf('|')
  return bar < 0 ? { map: '', destination: rest } : { map: rest.slice(0, bar), destination: rest.slice(bar + 1) }
}

/** Does a cache key's next hop (`example.com:25`, `[example.com]:25`) belong to `domain`? */
function ofDomain(destination: string, domain: string): boolean {
  const host = destination.replace(/:[0-9]+$/, '')
  return host === domain || host === `[${domain}]`
}

/** A strict Redis store for one command (query, dump, purge): 75 when Redis cannot be reached now. */
export async function connectRedis(
  url: string,
  redisPrefix: string | undefined,
): Promise<{ store: PolicyStore; pttl(key: string): Promise<number>; close(): void }> {
  const client = await redisClient(url, false)
  client.on('error', () => {}) // reported through connect() and each command
  try {
    await client.connect()
  } catch (e) {
    throw new CliError(EX_TEMPFAIL, `cannot reach Redis at ${redactUrl(url)}: ${(e as Error)?.message}`)
  }
  const prefix = redisPrefix ?? DEFAULT_PREFIX
  return {
    store: createRedisStore(client, { prefix, strict: true }),
    pttl: async (key) => Number(await client.sendCommand(['PTTL', prefix + key])),
    close: () => client.destroy(),
  }
}

/** Reads only: `set` and `delete` do nothing (query inspects the servers' cache, never changes it). */
export function readOnly(store: PolicyStore): PolicyStore {
  return {
    get: (key) => store.get(key),
    set: () => {},
    increment: () => Promise.reject(new SmtpTlsError('ERR_STORE', 'a read-only store counts nothing')),
    scan: (prefix) => store.scan(prefix),
    delete: () => false,
  }
}

/** `dump` and `purge [domain]`. */
export async function storeCommand(command: 'dump' | 'purge', a: StoreArgs, io: CliIo): Promise<number> {
  const { redis, redisPrefix } = await storeSettings(a)
  if (redis === undefined)
    throw new CliError(EX_USAGE, `${command}: the configuration file names no redis: (an in-memory cache lives inside "serve")`)
  const { store, pttl, close } = await connectRedis(redis, redisPrefix)
  try {
    let entries = await store.scan(ANSWERS)
    if (a.domain !== undefined) {
      const domain = a.domain
      entries = entries.filter(([k]) => ofDomain(parseAnswerKey(k).destination, domain))
    }
    if (command === 'purge') {
      let n = 0
      for (const [k] of entries) if (await store.delete(k)) n++
      if (a.json) io.out(JSON.stringify({ purged: n, ...(a.domain !== undefined && { domain: a.domain }) }))
      else io.out(`purged ${n} cached answer${n === 1 ? '' : 's'}${a.domain !== undefined ? ` of ${a.domain}` : ''}`)
      return EX_OK
    }
    const rows: CachedAnswer[] = []
    const ttls = await Promise.all(entries.map(([k]) => pttl(k)))
    entries.forEach(([key, reply], i) => {
      const ms = Number(ttls[i])
      if (ms === -2) return // expired since the scan
      // the stored entry is `<refreshAt> <expiresAt> <reply>` (lookupPath in src/node/socketmap.ts)
      rows.push({ key, ...parseAnswerKey(key), ttl: ms < 0 ? null : Math.ceil(ms / 1000), reply: cachedReply(reply) ?? reply })
    })
    rows.sort((x, y) => (x.destination < y.destination ? -1 : x.destination > y.destination ? 1 : x.map < y.map ? -1 : 1))
    if (a.json) io.out(JSON.stringify(rows, null, 2))
    else for (const r of rows) io.out(clean(`${String(r.ttl ?? '-').padStart(7)}  ${r.map}  ${r.destination}  ${r.reply}`))
    return EX_OK
  } catch (e) {
    if (isCoded(e) && e.code === 'ERR_STORE') throw new CliError(EX_TEMPFAIL, `Redis at ${redactUrl(redis)}: ${e.message}`)
    throw e
  } finally {
    close()
  }
}
