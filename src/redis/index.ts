/**
 * smtp-tls-policy/redis: a {@link PolicyStore} over Redis, so that several processes share MTA-STS
 * policies and TLS-RPT counters. It takes a client you created and connected: node-redis 5+ (`redis`)
 * or `ioredis` (both optional peer dependencies; this module imports neither).
 *
 * A store failure never weakens a policy: a failed `get` answers "not cached" (the caller fetches), a
 * failed `set` or `delete` is skipped, and every failure is published on the `node:diagnostics_channel`
 * `smtp-tls-policy:store-error`. Counters and scans reject instead (`ERR_STORE`): a report built
 * from counts that were not read would be wrong.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto'
import diagnostics_channel from 'node:diagnostics_channel'
import { coded, describeValue, invalidArgument, readOptions } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { PolicyStore } from '../store/types.js'

export { SmtpTlsError, isSmtpTlsError } from '../errors.js'
export type { ErrorCode } from '../errors.js'
export type { PolicyStore, Awaitable } from '../store/types.js'

/** A node-redis 5+ client (`createClient()` from `redis`): only `sendCommand` is used. @public */
export interface NodeRedisLikeClient {
  sendCommand(args: string[]): Promise<unknown>
}

/** An ioredis client (`new Redis()`): only `call` is used. @public */
export interface IoRedisLikeClient {
  call(command: string, ...args: string[]): Promise<unknown>
}

/** Options of {@link createRedisStore}. @public */
export interface RedisStoreOptions {
  /** Prepended to every key (default `smtp-tls-policy:`); `scan` returns keys without it. */
  prefix?: string
  /**
   * A command not answered within this many ms counts as failed (default 1000). node-redis and
   * ioredis queue commands while disconnected; without a limit a lookup would wait for Redis.
   */
  timeoutMs?: number
  /**
   * `get`, `set` and `delete` reject with `ERR_STORE` too, instead of answering "not cached" or
   * skipping (default `false`). For a caller that must tell "not cached" from "Redis did not say",
   * such as the socketmap server, which defers rather than fetch an MTA-STS policy it may hold.
   */
  strict?: boolean
}

/** The Redis store: every method answers with a promise. @public */
export interface RedisStore extends PolicyStore {
  get(key: string): Promise<string | undefined>
  set(key: string, value: string, ttlSeconds?: number): Promise<void>
  increment(key: string, by?: number, ttlSeconds?: number): Promise<number>
  scan(prefix: string): Promise<Array<[key: string, value: string]>>
  delete(key: string): Promise<boolean>
}

const storeError = diagnostics_channel.channel('smtp-tls-policy:store-error')

// INCRBY and, when the key has no TTL yet (it was just created), PEXPIRE: one atomic script.
const INCR_SCRIPT =
  "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) " +
  "if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end " +
  'return n'
/** Its SHA-1, for EVALSHA (the script body is sent only after a NOSCRIPT answer). */
const INCR_SHA = createHash('sha1').update(INCR_SCRIPT).digest('hex')

function bad(message: string): never {
  throw invalidArgument(message)
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') bad(`a store key must be a string, got ${describeValue(key)}`)
}

function ttlMs(ttlSeconds: unknown): string {
  if (ttlSeconds === undefined) return ''
  if (typeof ttlSeconds !== 'number' || !(ttlSeconds > 0) || !Number.isFinite(ttlSeconds)) bad('ttlSeconds must be a positive number')
  return String(Math.max(1, Math.round(ttlSeconds * 1000)))
}

/** SCAN MATCH is a glob: escape its metacharacters so a prefix matches only itself. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}

/**
 * Create a {@link PolicyStore} over a connected Redis client (node-redis 5+ or ioredis): `get`,
 * `set` with a TTL (`SET … PX`), an atomic `increment` (`INCRBY`, and `PEXPIRE` when the key is
 * new, in one script), `scan` by prefix (`SCAN MATCH`, never `KEYS`, then `MGET`). Concurrent calls
 * are pipelined by the client (node-redis batches the commands of one tick; ioredis writes them
 * without waiting for replies).
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { createRedisStore } from 'smtp-tls-policy/redis'
 * const client = await createClient({ url: 'redis://127.0.0.1' }).on('error', () => {}).connect()
 * const store = createRedisStore(client, { prefix: 'mta:' })
 * ```
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` when `client` is neither kind of client.
 * @public
 */
export function createRedisStore(client: NodeRedisLikeClient | IoRedisLikeClient, opts?: RedisStoreOptions): RedisStore {
  try {
    return createRedisStoreChecked(client, opts)
  } catch (e) {
    throw coded(e, 'createRedisStore')
  }
}

function createRedisStoreChecked(client: NodeRedisLikeClient | IoRedisLikeClient, opts?: RedisStoreOptions): RedisStore {
  if ((typeof client !== 'object' && typeof client !== 'function') || client === null) {
    bad(`client must be a node-redis or ioredis client, got ${describeValue(client)}`)
  }
  let send: (args: string[]) => Promise<unknown>
  const c = client as Partial<NodeRedisLikeClient & IoRedisLikeClient>
  const call = c.call
  const sendCommand = c.sendCommand
  // ioredis has `call(name, ...args)` (and a `sendCommand` taking a Command object); node-redis has only `sendCommand(args)`.
  if (typeof call === 'function') send = (args) => call.apply(client, args as [string, ...string[]])
  else if (typeof sendCommand === 'function') send = (args) => sendCommand.call(client, args)
  else bad('client must be a node-redis client (sendCommand) or an ioredis client (call)')
  const o = readOptions(opts, 'createRedisStore options', ['prefix', 'timeoutMs', 'strict'])
  const strict = o.strict ?? false
  if (typeof strict !== 'boolean') bad('createRedisStore options.strict must be a boolean')
  const prefix = o.prefix ?? 'smtp-tls-policy:'
  if (typeof prefix !== 'string') bad('createRedisStore options.prefix must be a string')
  const t = o.timeoutMs ?? 1000
  if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t)) bad('createRedisStore options.timeoutMs must be a positive number')
  const timeoutMs: number = t

  /** One command, failed (ERR_STORE) when it throws or takes longer than timeoutMs. */
  function run(args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new SmtpTlsError('ERR_STORE', `Redis ${args[0]}: no answer within ${timeoutMs} ms`)), timeoutMs)
      timer.unref?.()
      let p: Promise<unknown>
      try {
        p = send(args)
      } catch (e) {
        p = Promise.reject(e)
      }
      p.then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (e: unknown) => {
          clearTimeout(timer)
          reject(new SmtpTlsError('ERR_STORE', `Redis ${args[0]}: ${e instanceof Error ? e.message : String(e)}`, { cause: e }))
        },
      )
    })
  }

  function failed(operation: string, key: string, e: unknown): SmtpTlsError {
    const err = e instanceof SmtpTlsError ? e : new SmtpTlsError('ERR_STORE', String(e), { cause: e })
    if (storeError.hasSubscribers) storeError.publish({ operation, key, error: err })
    return err
  }

  async function incr(k: string, by: string, ms: string): Promise<unknown> {
    try {
      return await run(['EVALSHA', INCR_SHA, '1', k, by, ms])
    } catch (e) {
      // NOSCRIPT: the server has not seen the script yet (or was restarted): send it once in full.
      if (!/NOSCRIPT/.test((e as Error).message)) throw e
      return run(['EVAL', INCR_SCRIPT, '1', k, by, ms])
    }
  }

  return {
    async get(key) {
      checkKey(key)
      try {
        const v = await run(['GET', prefix + key])
        return v === null || v === undefined ? undefined : String(v)
      } catch (e) {
        const err = failed('get', key, e) // a miss: the caller fetches, never trusts less
        if (strict) throw err
        return undefined
      }
    },
    async set(key, value, ttlSeconds) {
      checkKey(key)
      if (typeof value !== 'string') bad('a store value must be a string')
      const ms = ttlMs(ttlSeconds)
      try {
        await run(ms === '' ? ['SET', prefix + key, value] : ['SET', prefix + key, value, 'PX', ms])
      } catch (e) {
        const err = failed('set', key, e)
        if (strict) throw err
      }
    },
    async increment(key, by = 1, ttlSeconds) {
      checkKey(key)
      if (!Number.isSafeInteger(by)) bad('increment must be a safe integer')
      const ms = ttlMs(ttlSeconds)
      let v: unknown
      try {
        v = await incr(prefix + key, String(by), ms)
      } catch (e) {
        throw failed('increment', key, e)
      }
      const n = Number(v)
      if (!Number.isSafeInteger(n)) throw failed('increment', key, `INCRBY answered ${describeValue(v)}`)
      return n
    },
    async scan(scanPrefix) {
      if (typeof scanPrefix !== 'string') bad('a scan prefix must be a string')
      const match = globEscape(prefix + scanPrefix) + '*'
      try {
        const keys = new Set<string>()
        let cursor = '0'
        do {
          const r = (await run(['SCAN', cursor, 'MATCH', match, 'COUNT', '1000'])) as [unknown, unknown[]]
          cursor = String(r[0])
          for (const k of r[1]) keys.add(String(k)) // SCAN may return a key twice
        } while (cursor !== '0')
        const list = [...keys]
        const batches: Array<Promise<unknown>> = []
        for (let i = 0; i < list.length; i += 500) batches.push(run(['MGET', ...list.slice(i, i + 500)]))
        const values = (await Promise.all(batches)).flat() as unknown[]
        const out: Array<[string, string]> = []
        list.forEach((k, i) => {
          const v = values[i]
          if (v !== null && v !== undefined) out.push([k.slice(prefix.length), String(v)]) // gone since SCAN: skipped
        })
        return out
      } catch (e) {
        throw failed('scan', scanPrefix, e)
      }
    },
    async delete(key) {
      checkKey(key)
      try {
        return Number(await run(['DEL', prefix + key])) > 0
      } catch (e) {
        const err = failed('delete', key, e)
        if (strict) throw err
        return false
      }
    },
  }
}
