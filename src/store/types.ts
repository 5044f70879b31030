/** The store interface shared by MTA-STS policies, DANE answers and TLS-RPT counters (DESIGN.md §1). */

/** A value or a promise of it: the memory store answers synchronously, a network store asynchronously. @public */
export type Awaitable<T> = T | PromiseLike<T>

/**
 * A small key-value store: get, set with a TTL, atomic increment, scan by prefix, delete. Keys and
 * values are strings (counters are decimal strings), so a Redis adapter maps one-to-one (GET, SET EX,
 * INCRBY + EXPIRE NX, SCAN MATCH prefix*, DEL).
 *
 * A store failure must never weaken a policy: callers treat a rejected call as a cache miss (one more
 * lookup) or defer.
 * @public
 */
export interface PolicyStore {
  /** The value, or `undefined` when absent or expired. */
  get(key: string): Awaitable<string | undefined>
  /** Store `value`; with `ttlSeconds` (> 0) it expires that long after now. Without, it does not expire. */
  set(key: string, value: string, ttlSeconds?: number): Awaitable<void>
  /**
   * Atomically add `by` (default 1, an integer) to the counter at `key` and return the new value. A missing
   * key counts from 0 and gets `ttlSeconds` (the TTL is set only when the key is created).
   */
  increment(key: string, by?: number, ttlSeconds?: number): Awaitable<number>
  /** Every unexpired entry whose key starts with `prefix`, as `[key, value]` pairs, in no particular order. */
  scan(prefix: string): Awaitable<Array<[key: string, value: string]>>
  /** Remove `key`; `true` when it was there. */
  delete(key: string): Awaitable<boolean>
}
