/**
 * The client's TLS session cache (Postfix `smtp_tls_session_cache_database`): sessions, and the facts
 * of the verified handshake that created them, under a key that names everything that decides what
 * would be accepted. See "TLS session resumption" in docs/connect.md.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { PkixResult } from '../policy/decide.js'
import { bytesEqual } from '../bytes.js'
import { decodeTime, newTlv, readTlv, sliceCertificate } from '../x509/der.js'

/** Options of {@link createTlsSessionCache}. @public */
export interface TlsSessionCacheOptions {
  /** Sessions kept at most; the least recently used goes first. Default 1000. */
  max?: number
  /**
   * Seconds a session may be resumed after the full handshake that verified the server; resumptions
   * never extend it. Default 3600 (Postfix `smtp_tls_session_cache_timeout`), at most 604800 (RFC 8446
   * §4.6.1: 7 days). A shorter ticket lifetime from the server wins, and so does the end of the
   * validity of a certificate in the chain that was judged.
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
    const fields = sessionFields(session)
    // RFC 8446 §4.6.1 ticket_lifetime (RFC 5077 §3.3 lifetime hint): the server will not accept it later.
    const hint = fields.lifetimeHint
    if (hint !== undefined && hint > 0) expiresAt = Math.min(expiresAt, now + hint * 1000)
    // Never past a certificate's notAfter: a full handshake then would meet OpenSSL's date check
    // (verify, secure) or decide()'s (DANE-TA); a resumed session must not skip it.
    expiresAt = Math.min(expiresAt, notAfter(chain))
    if (!(expiresAt > now) || fields.peerAt === undefined) return
    // OpenSSL's record of whom the session authenticated must be the leaf that was judged (a ticket
    // from a resumed connection names nobody: its session came from a stored one, without a peer).
    const leaf = chain[0]
    const peer = fields.peer
    if (peer === undefined ? leaf !== undefined && from === undefined : leaf === undefined || !bytesEqual(peer, leaf)) return
    // Stored without the certificate: OpenSSL 3.0 would decode it again each time the session is
    // offered (about 0.3 ms of CPU), and on resumption the decision uses the chain kept here.
    const stripped = withoutField(session, fields.peerAt)
    if (stripped === undefined) return
    this.#entries.delete(key)
    while (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as string)
    // a ticket that came on a resumed connection: this server renews tickets, so wait for them
    this.#entries.set(key, { session: stripped, chain, pkix, authenticatedAt, expiresAt, ...(from ? { ticketOnResume: true } : {}) })
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
export function sessionFields(der: Uint8Array): SessionFields {
  const out: SessionFields = {}
  try {
    const t = newTlv()
    const top = readTlv(der, 0, der.length, t)
    if (top.tag !== 0x30 || top.end !== der.length) return out
    let p = top.valueStart
    const end = top.end
    // where field [3] would be: before the first field with a higher tag
    let peerAt: [number, number] | undefined
    while (p < end) {
      readTlv(der, p, end, t)
      const { tag, valueStart, end: next } = t
      if (peerAt === undefined && tag >= 0xa3 && tag <= 0xbf) peerAt = tag === 0xa3 ? [p, next] : [p, p]
      if (tag === 0xa3) {
        const inner = readTlv(der, valueStart, next, newTlv())
        if (inner.tag === 0x30 && inner.end === next) out.peer = der.subarray(valueStart, next)
        else return {}
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
    if (peerAt === undefined && p === end) peerAt = [end, end]
    if (peerAt !== undefined) out.peerAt = peerAt
  } catch {
    // a field we do not need may use a form our DER reader refuses: keep what was read
  }
  return out
}

/** What {@link sessionFields} reads from a serialised session. */
export interface SessionFields {
  /** `[3] peer`: the server's certificate, DER */
  peer?: Uint8Array
  /** `[9]` the ticket lifetime hint, seconds */
  lifetimeHint?: number
  /** the byte range of `[3]` (empty where it would go when absent); undefined when unreadable */
  peerAt?: [number, number]
}

/** The earliest notAfter of a chain, ms (RFC 5280 §4.1.2.5); an unreadable certificate: -Infinity. */
function notAfter(chain: readonly Uint8Array[]): number {
  let min = Number.POSITIVE_INFINITY
  for (const der of chain) {
    try {
      const c = sliceCertificate(der)
      min = Math.min(min, decodeTime(der, c.notAfterStart, c.notAfterEnd))
    } catch {
      return Number.NEGATIVE_INFINITY
    }
  }
  return min
}

/** The session without the bytes `[from, to)`, the outer SEQUENCE's length re-encoded (X.690 §8.1.3). */
function withoutField(der: Uint8Array, [from, to]: [number, number]): Buffer | undefined {
  if (from === to) return Buffer.from(der)
  const top = readTlv(der, 0, der.length, newTlv())
  const body = Buffer.concat([der.subarray(top.valueStart, from), der.subarray(to, top.end)])
  const n = body.length
  if (n > 0xffffff) return undefined
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]
  return Buffer.concat([Buffer.from([0x30, ...len]), body])
}
