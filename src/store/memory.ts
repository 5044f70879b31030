/**
 * The default in-process store: a bounded LRU map with TTLs checked on access against an injected
 * clock. No timers: an expired entry disappears when it is next touched, scanned, or evicted.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { PolicyStore } from './types.js'

/** Options of {@link createMemoryStore}. @public */
export interface MemoryStoreOptions {
  /**
   * At most this many entries; the least recently used one is evicted first (approximately: an entry
   * touched is safe for at least 3/4·maxEntries further operations). Default 100,000.
   */
  maxEntries?: number
  /** The clock, ms since the epoch. Default `Date.now` (the only clock read, and only when none is given). */
  now?: () => number
}

/** The memory store answers synchronously. @public */
export interface MemoryStore extends PolicyStore {
  get(key: string): string | undefined
  set(key: string, value: string, ttlSeconds?: number): void
  increment(key: string, by?: number, ttlSeconds?: number): number
  scan(prefix: string): Array<[key: string, value: string]>
  delete(key: string): boolean
  /** Entries held, expired ones not yet removed included. */
  readonly size: number
  clear(): void
}

interface Entry {
  value: string | number
  /** ms since the epoch; `Infinity` for no expiry. */
  expiresAt: number
  /** The operation count when the entry was last moved to the most recent end. */
  movedAt: number
}

function bad(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', message)
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') bad('a store key must be a string')
}

function expiry(now: number, ttlSeconds: number | undefined): number {
  if (ttlSeconds === undefined) return Infinity
  if (typeof ttlSeconds !== 'number' || !(ttlSeconds > 0)) bad('ttlSeconds must be a positive number')
  return now + ttlSeconds * 1000
}

/**
 * Create the default {@link PolicyStore}: in memory, bounded, LRU eviction, TTLs on an injected clock.
 *
 * @example
 * ```ts
 * const store = createMemoryStore({ maxEntries: 10_000 })
 * store.set('mta-sts|example.com', JSON.stringify(cached), 86400)
 * store.increment('tlsrpt|…|s', 1, 8 * 86400)
 * ```
 * @public
 */
export function createMemoryStore(opts: MemoryStoreOptions = {}): MemoryStore {
  try {
    return createMemoryStoreChecked(opts)
  } catch (e) {
    throw coded(e, 'createMemoryStore')
  }
}

function createMemoryStoreChecked(opts: MemoryStoreOptions = {}): MemoryStore {
  const maxEntries = opts.maxEntries ?? 100_000
  if (!Number.isInteger(maxEntries) || maxEntries < 1) bad('maxEntries must be a positive integer')
  const clock = opts.now ?? Date.now
  if (typeof clock !== 'function') bad('now must be a function returning ms since the epoch')
  const map = new Map<string, Entry>()
  // LRU with lazy moves: an entry is moved to the recent end only when it was last moved more than a
  // quarter of `maxEntries` operations ago. Each operation moves or inserts at most one entry, so a
  // touched entry is never evicted within 3/4·maxEntries operations, and hot keys cost a lookup only.
  const moveAfter = Math.max(1, Math.floor(maxEntries / 4))
  let tick = 0

  // Look up a live entry and mark it used; drop it when expired.
  function live(key: string, now: number): Entry | undefined {
    const e = map.get(key)
    if (e === undefined) return undefined
    if (e.expiresAt <= now) {
      map.delete(key)
      return undefined
    }
    if (++tick - e.movedAt > moveAfter) {
      map.delete(key)
      map.set(key, e)
      e.movedAt = tick
    }
    return e
  }

  function insert(key: string, e: Entry): void {
    map.delete(key)
    map.set(key, e)
    e.movedAt = ++tick
    if (map.size > maxEntries) {
      // Map iterates in insertion order: the first key is the least recently used.
      const oldest = map.keys().next().value as string
      map.delete(oldest)
    }
  }

  return {
    get(key) {
      checkKey(key)
      const e = live(key, clock())
      return e === undefined ? undefined : typeof e.value === 'number' ? String(e.value) : e.value
    },
    set(key, value, ttlSeconds) {
      checkKey(key)
      if (typeof value !== 'string') bad('a store value must be a string')
      insert(key, { value, expiresAt: expiry(clock(), ttlSeconds), movedAt: 0 })
    },
    increment(key, by = 1, ttlSeconds) {
      checkKey(key)
      if (!Number.isSafeInteger(by)) bad('increment must be a safe integer')
      const now = clock()
      const e = live(key, now)
      if (e === undefined) {
        insert(key, { value: by, expiresAt: expiry(now, ttlSeconds), movedAt: 0 })
        return by
      }
      let v = e.value
      if (typeof v === 'string') {
        if (!/^-?[0-9]{1,15}$/.test(v)) bad(`the value at ${JSON.stringify(key)} is not an integer`)
        v = Number(v)
      }
      const next = v + by
      if (!Number.isSafeInteger(next)) bad(`the counter at ${JSON.stringify(key)} would overflow`)
      e.value = next
      return next
    },
    scan(prefix) {
      if (typeof prefix !== 'string') bad('a scan prefix must be a string')
      const now = clock()
      const out: Array<[string, string]> = []
      const dead: string[] = []
      for (const [k, e] of map) {
        if (!k.startsWith(prefix)) continue
        if (e.expiresAt <= now) dead.push(k)
        else out.push([k, typeof e.value === 'number' ? String(e.value) : e.value])
      }
      for (const k of dead) map.delete(k)
      return out
    },
    delete(key) {
      checkKey(key)
      const e = map.get(key)
      map.delete(key)
      return e !== undefined && e.expiresAt > clock()
    },
    get size() {
      return map.size
    },
    clear() {
      map.clear()
    },
  }
}
