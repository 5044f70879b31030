/**
 * The client's TLS session cache (Postfix `smtp_tls_session_cache_database`): sessions, and the facts
 * of the verified handshake that created them, under a key that names everything that decides what
 * would be accepted. See "TLS session resumption" in docs/connect.md.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { PkixResult } from '../policy/decide.js'
import { newTlv, readTlv } from '../x509/der.js'

/** Options of {@link createTlsSessionCache}. @public */
export interface TlsSessionCacheOptions {
  /** Sessions kept at most; the least recently used goes first. Default 1000. */
  max?: number
  /**
   * Seconds a session may be resumed after the full handshake that verified the server; resumptions
   * never extend it. Default 3600 (Postfix `smtp_tls_session_cache_timeout`), at most 604800 (RFC 8446
   * §4.6.1: 7 days). A shorter ticket lifetime from the server wins.
   */
  ttlSeconds?: number
  /** The clock, ms since the epoch (tests). Default `Date.now`. */
  clock?: () => number
}

/** Counters of a {@link TlsSessionCache} since it was created. @public */
export interface TlsSessionCacheStats {
  /** Lookups that found a session to offer. */
  hits: number
  /** Lookups that found none (or only an expired one). */
  misses: number
  /** Sessions stored (each new ticket of a verified connection). */
  stores: number
  /** Connections the server resumed. */
  resumed: number
}

/**
 * A bounded in-memory TLS session cache for {@link connect}'s `tlsSessionCache` option, from
 * {@link createTlsSessionCache}. Share one per process (or per queue manager).
 * @public
 */
export interface TlsSessionCache {
  /** Sessions held now. */
  readonly size: number
  readonly max: number
  readonly ttlSeconds: number
  /** Forget every session. */
  clear(): void
  stats(): TlsSessionCacheStats
}

/** What a cache entry holds: the session and the facts of the full handshake that verified it. */
export interface CachedSession {
  /** OpenSSL's serialised session (Node's `'session'` event), for `tls.connect({ session })`. */
  session: Buffer
  /** The peer chain that was judged, DER, leaf first. */
  chain: readonly Uint8Array[]
  /** The PKIX fact of that handshake. */
  pkix: PkixResult
  /** When the full handshake verified the server, ms. */
  authenticatedAt: number
  /** When this entry stops being offered, ms. */
  expiresAt: number
  /**
   * Whether the server sent a ticket on a resumed connection (undefined: not seen yet). Postfix and
   * OpenSSL's default send none, and the driver then need not wait for one before its EHLO (latency only).
   */
  ticketOnResume?: boolean
}

const DEFAULT_MAX = 1000
const DEFAULT_TTL = 3600
/** RFC 8446 §4.6.1: "Clients MUST NOT cache tickets for longer than 7 days". */
const MAX_TTL = 604_800

function invalid(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', message, { temporary: false })
}

/** The implementation; only connect.ts reaches past the public interface. */
export class SessionCache implements TlsSessionCache {
  readonly max: number
  readonly ttlSeconds: number
  readonly #clock: () => number
  /** insertion order is recency order: a hit moves the entry to the end */
  readonly #entries = new Map<string, CachedSession>()
  readonly #stats: TlsSessionCacheStats = { hits: 0, misses: 0, stores: 0, resumed: 0 }

  constructor(max: number, ttlSeconds: number, clock: () => number) {
    this.max = max
    this.ttlSeconds = ttlSeconds
    this.#clock = clock
  }

  get size(): number {
    return this.#entries.size
  }

  clear(): void {
    this.#entries.clear()
  }

  stats(): TlsSessionCacheStats {
    return { ...this.#stats }
  }

  now(): number {
    const t = this.#clock()
    // a broken clock must not keep sessions forever: an unreadable time expires everything
    return typeof t === 'number' && Number.isFinite(t) ? t : Number.POSITIVE_INFINITY
  }

  /** The entry to offer under `key`, or undefined (expired entries are dropped). */
  lookup(key: string): CachedSession | undefined {
    const e = this.#entries.get(key)
    if (e === undefined || !(this.now() < e.expiresAt)) {
      if (e !== undefined) this.#entries.delete(key)
      this.#stats.misses++
      return undefined
    }
    this.#entries.delete(key)
    this.#entries.set(key, e)
    this.#stats.hits++
    return e
  }

  /**
   * Store a session of a connection whose verdict allowed delivery. `from`: the entry this connection
   * resumed (its authentication time carries over, so resumptions never extend a session's life).
   */
  store(key: string, session: Buffer, chain: readonly Uint8Array[], pkix: PkixResult, from: CachedSession | undefined): void {
    const now = this.now()
    if (!Number.isFinite(now)) return
    const authenticatedAt = from?.authenticatedAt ?? now
    let expiresAt = authenticatedAt + this.ttlSeconds * 1000
    // RFC 8446 §4.6.1 ticket_lifetime (RFC 5077 §3.3 lifetime hint): the server will not accept it later.
    const hint = sessionFields(session).lifetimeHint
    if (hint !== undefined && hint > 0) expiresAt = Math.min(expiresAt, now + hint * 1000)
    if (!(expiresAt > now)) return
    this.#entries.delete(key)
    while (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as string)
    // a ticket that came on a resumed connection: this server renews tickets, so wait for them
    this.#entries.set(key, { session, chain, pkix, authenticatedAt, expiresAt, ...(from ? { ticketOnResume: true } : {}) })
    this.#stats.stores++
  }

  delete(key: string): void {
    this.#entries.delete(key)
  }

  countResumed(): void {
    this.#stats.resumed++
  }
}

/**
 * A bounded, in-memory client TLS session cache, the way Postfix's `smtp_tls_session_cache_database`
 * works: pass it as `tlsSessionCache` to `connect()`, `probe()` or `deliver()`. A session
 * is stored only after its connection passed the policy, under a key made of the next hop, MX host,
 * address, port, SNI, level and everything the policy checks (match names, pins, a digest of the
 * TLSA RRset, trust anchors, protocols and ciphers), so a changed policy never resumes an old session;
 * a resumed session's certificate is judged again against the current policy.
 *
 * @example
 * ```ts
 * const tlsSessionCache = createTlsSessionCache({ max: 10_000 })
 * const conn = await connect('example.com', { level: 'dane', tlsSessionCache })
 * // trace ends with 'TLS session resumed …' when the server resumed the session
 * ```
 * @public
 */
export function createTlsSessionCache(options: TlsSessionCacheOptions = {}): TlsSessionCache {
  try {
    return sessionCache(options)
  } catch (e) {
    // a getter or Proxy trap in the options: coded (DESIGN.md §3)
    throw coded(e, 'createTlsSessionCache')
  }
}

function sessionCache(options: TlsSessionCacheOptions): TlsSessionCache {
  if (options === null || typeof options !== 'object') invalid('createTlsSessionCache options must be an object')
  const { max = DEFAULT_MAX, ttlSeconds = DEFAULT_TTL, clock = Date.now } = options
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10_000_000)
    invalid('tlsSessionCache max must be an integer from 1 to 10000000')
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL)
    invalid(`tlsSessionCache ttlSeconds must be an integer from 1 to ${MAX_TTL} (RFC 8446 §4.6.1: 7 days)`)
  if (typeof clock !== 'function') invalid('tlsSessionCache clock must be a function returning ms since the epoch')
  return new SessionCache(max, ttlSeconds, clock)
}

/** `instanceof` that a Proxy cannot turn into a throw. */
export function isSessionCache(x: unknown): x is SessionCache {
  try {
    return x instanceof SessionCache
  } catch {
    return false
  }
}

/**
 * The fields of OpenSSL's serialised session (`d2i_SSL_SESSION`, what `openssl sess_id` reads) that
 * the cache needs: `[3] peer` (the server's certificate as the TLS stack recorded it) and `[9]` the
 * ticket lifetime hint in seconds. Anything unreadable yields nothing (the caller then trusts less).
 */
export function sessionFields(der: Uint8Array): { peer?: Uint8Array; lifetimeHint?: number } {
  const out: { peer?: Uint8Array; lifetimeHint?: number } = {}
  try {
    const t = newTlv()
    const top = readTlv(der, 0, der.length, t)
    if (top.tag !== 0x30) return out
    let p = top.valueStart
    const end = top.end
    while (p < end) {
      readTlv(der, p, end, t)
      const { tag, valueStart, end: next } = t
      if (tag === 0xa3) {
        const inner = readTlv(der, valueStart, next, newTlv())
        if (inner.tag === 0x30 && inner.end === next) out.peer = der.subarray(valueStart, next)
      } else if (tag === 0xa9) {
        const n = readTlv(der, valueStart, next, newTlv())
        if (n.tag === 0x02 && n.end - n.valueStart <= 6) {
          let v = 0
          for (let i = n.valueStart; i < n.end; i++) v = v * 256 + der[i]!
          out.lifetimeHint = v
        }
      }
      // tags are in ascending order: nothing the cache needs comes after [9]
      if (tag > 0xa9 && tag <= 0xbf) break
      p = next
    }
  } catch {
    // a field we do not need may use a form our DER reader refuses: keep what was read
  }
  return out
}
