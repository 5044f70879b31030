/**
 * The MTA-STS cache decision (RFC 8461 §3.3, §10.2), pure: the caller passes the clock (`now`),
 * the TXT lookup outcome and any random jitter; the decision says what to do next.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { TraceStep } from '../policy/trace.js'
import { FRESH_CELL, type FreshCell, type MtaStsPolicy } from './policy.js'

/** A policy in the cache, with the TXT `id` it was fetched under. @public */
export interface CachedMtaStsPolicy {
  policy: MtaStsPolicy
  /** The `_mta-sts` record `id` at fetch time (RFC 8461 §3.1). */
  id: string
  /** When the policy was fetched, ms since the epoch; it expires `policy.maxAge` seconds later (§3.2). */
  fetchedAt: number
}

/** The outcome of this round's `_mta-sts` TXT lookup. @public */
export type MtaStsTxtState = { status: 'found'; id: string } | { status: 'absent' } | { status: 'failed' }

/** Input of {@link decideMtaStsCache}. @public */
export interface MtaStsCacheInput {
  /** The caller's clock: ms since the epoch, or a `Date`. */
  now: number | Date
  cached?: CachedMtaStsPolicy | undefined
  txt: MtaStsTxtState
  /** A policy fetch was attempted in this round and failed (HTTP error, invalid policy, PKIX failure of `mta-sts.<domain>`). */
  fetchFailed?: boolean
  /** A uniform random number in [0, 1] from the caller, to spread proactive refreshes. Default 0. */
  jitter?: number
  /** Refresh a policy this long before it expires (seconds); default a tenth of `max_age`, at most one day. */
  refreshAheadSeconds?: number
}

/**
 * - `use`: apply `policy`. `refresh` asks for a proactive background fetch (the policy stays in force).
 * - `fetch`: fetch the policy now; when the fetch fails, ask again with `fetchFailed: true` (an unexpired
 *   cached policy is then kept).
 * - `none`: no MTA-STS policy applies; deliver as if the domain had none (§5).
 * `discard` is `true` when the cached entry has expired and should be removed.
 * @public
 */
export type MtaStsCacheDecision =
  | {
      action: 'use'
      policy: MtaStsPolicy
      reason: 'fresh' | 'txt-unavailable' | 'fetch-failed'
      refresh: boolean
      expiresAt: number
      discard: false
      trace: TraceStep[]
    }
  | { action: 'fetch'; reason: 'not-cached' | 'expired' | 'id-changed'; discard: boolean; trace: TraceStep[] }
  | { action: 'none'; reason: 'no-record' | 'txt-lookup-failed' | 'fetch-failed'; discard: boolean; trace: TraceStep[] }

const FRESH: TraceStep = Object.freeze({ rule: 'cached policy, TXT id unchanged', ref: 'RFC 8461 §3.3' })
const FRESH_REFRESH: TraceStep = Object.freeze({ rule: 'cached policy, TXT id unchanged, refresh ahead of expiry', ref: 'RFC 8461 §10.2' })

function bad(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', message)
}

/**
 * Decide between the cached MTA-STS policy, a fetch, and no policy.
 *
 * | cache | TXT | fetch failed | decision |
 * |---|---|---|---|
 * | unexpired | same `id` | - | `use` (`fresh`; `refresh` when within the refresh window before expiry) |
 * | unexpired | other `id` | no | `fetch` (`id-changed`, §3.3) |
 * | unexpired | absent or failed | - | `use` (`txt-unavailable`: with no live policy the cached one MUST apply, §3.3, §10.2) |
 * | unexpired | any | yes | `use` (`fetch-failed`: §3.3 MUST apply an unexpired cached policy) |
 * | none or expired | found | no | `fetch` |
 * | none or expired | found | yes | `none` (§3.3: continue as if there were no MTA-STS) |
 * | none or expired | absent / failed | - | `none` |
 *
 * A `fresh` decision is frozen and shared by all calls for the same cached entry (the warm path
 * allocates nothing); treat every decision as read-only.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for malformed input.
 * @public
 */
export function decideMtaStsCache(input: MtaStsCacheInput): MtaStsCacheDecision {
  try {
    return decideMtaStsCacheChecked(input)
  } catch (e) {
    throw coded(e, 'decideMtaStsCache')
  }
}

function decideMtaStsCacheChecked(input: MtaStsCacheInput): MtaStsCacheDecision {
  if (typeof input !== 'object' || input === null) bad('input must be an object')
  const now = input.now instanceof Date ? input.now.getTime() : input.now
  if (typeof now !== 'number' || !Number.isFinite(now)) bad('now must be a Date or a finite number of ms')
  const txt = input.txt as MtaStsTxtState | undefined
  if (typeof txt !== 'object' || txt === null || (txt.status !== 'found' && txt.status !== 'absent' && txt.status !== 'failed')) {
    bad('txt.status must be found, absent or failed')
  }
  if (txt.status === 'found' && typeof txt.id !== 'string') bad('txt.id must be a string')
  const jitter = input.jitter ?? 0
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) bad('jitter must be a number in [0, 1]')
  const fetchFailed = input.fetchFailed === true
  const cached = input.cached
  let expiresAt = -Infinity
  if (cached !== undefined) {
    if (typeof cached !== 'object' || cached === null || typeof cached.fetchedAt !== 'number' || typeof cached.id !== 'string') {
      bad('cached must be { policy, id, fetchedAt }')
    }
    const maxAge = (cached.policy as MtaStsPolicy | undefined)?.maxAge
    if (typeof maxAge !== 'number' || !Number.isFinite(maxAge)) bad('cached.policy.maxAge must be a number')
    expiresAt = cached.fetchedAt + maxAge * 1000 // RFC 8461 §3.2 max_age
  }
  if (cached === undefined || now >= expiresAt) {
    const discard = cached !== undefined
    const trace: TraceStep[] = []
    trace.push({ rule: discard ? 'cached policy expired → discarded' : 'no cached policy', ref: 'RFC 8461 §3.2 max_age' })
    if (txt.status !== 'found') {
      trace.push({ rule: `TXT ${txt.status} → no MTA-STS`, ref: 'RFC 8461 §3.1' })
      return { action: 'none', reason: txt.status === 'absent' ? 'no-record' : 'txt-lookup-failed', discard, trace }
    }
    if (fetchFailed) {
      trace.push({ rule: 'fetch failed, nothing cached → deliver as without MTA-STS', ref: 'RFC 8461 §3.3' })
      return { action: 'none', reason: 'fetch-failed', discard, trace }
    }
    trace.push({ rule: `TXT id ${txt.id} → fetch the policy`, ref: 'RFC 8461 §3.3' })
    return { action: 'fetch', reason: discard ? 'expired' : 'not-cached', discard, trace }
  }

  const policy = cached.policy
  const trace: TraceStep[] = [] // not on the fresh path below: it returns a shared decision
  if (fetchFailed) {
    trace.push({ rule: 'fetch failed → keep the unexpired cached policy', ref: 'RFC 8461 §3.3' })
    return { action: 'use', policy, reason: 'fetch-failed', refresh: false, expiresAt, discard: false, trace }
  }
  if (txt.status !== 'found') {
    // RFC 8461 §3.3: with no "live" policy from DNS, an unexpired cached policy MUST apply; an attacker
    // who suppresses the TXT record must not switch it off (§10.2).
    trace.push({ rule: `TXT ${txt.status} → keep the unexpired cached policy`, ref: 'RFC 8461 §3.3, §10.2' })
    return { action: 'use', policy, reason: 'txt-unavailable', refresh: false, expiresAt, discard: false, trace }
  }
  if (txt.id !== cached.id) {
    trace.push({ rule: `TXT id ${cached.id} → ${txt.id}: fetch the new policy`, ref: 'RFC 8461 §3.3' })
    return { action: 'fetch', reason: 'id-changed', discard: false, trace }
  }
  const ahead = input.refreshAheadSeconds ?? Math.min(86400, policy.maxAge / 10)
  if (typeof ahead !== 'number' || !(ahead >= 0) || !Number.isFinite(ahead)) bad('refreshAheadSeconds must be a non-negative number')
  // Proactive refresh inside [expiry - 2·ahead, expiry - ahead], placed by the caller's jitter (RFC 8461 §10.2
  // suggests refreshing before a cached policy expires, so an attacker must block every refresh).
  const refresh = now >= expiresAt - ahead * 1000 * (1 + jitter)
  // The warm path allocates nothing: the two possible fresh decisions for this policy and expiry are
  // built once, frozen, and kept in a cell that parseMtaStsPolicy attached to the policy (one property
  // load; a WeakMap lookup cost more than the allocation it saved). Rebuilt when the expiry differs.
  const cell = (policy as { [FRESH_CELL]?: FreshCell })[FRESH_CELL]
  if (cell !== undefined) {
    if (cell.expiresAt !== expiresAt) {
      cell.use = freshDecision(policy, expiresAt, false)
      cell.refresh = freshDecision(policy, expiresAt, true)
      cell.expiresAt = expiresAt
    }
    return (refresh ? cell.refresh : cell.use) as FreshDecision
  }
  return freshDecision(policy, expiresAt, refresh)
}

type FreshDecision = Extract<MtaStsCacheDecision, { action: 'use' }>
const FRESH_TRACE: readonly TraceStep[] = Object.freeze([FRESH])
const FRESH_REFRESH_TRACE: readonly TraceStep[] = Object.freeze([FRESH_REFRESH])

function freshDecision(policy: MtaStsPolicy, expiresAt: number, refresh: boolean): FreshDecision {
  const trace = (refresh ? FRESH_REFRESH_TRACE : FRESH_TRACE) as TraceStep[]
  return Object.freeze({ action: 'use', policy, reason: 'fresh', refresh, expiresAt, discard: false, trace })
}

/**
 * Internal (getMtaStsPolicy's warm path): the time before which {@link decideMtaStsCache} decides `use`,
 * `fresh`, `refresh: false` for `cached` whatever the jitter, given a TXT `id` equal to `cached.id`, no
 * fetch failure and the default refresh window: the start of the refresh window at the largest jitter
 * (rounding is monotonic, so `ahead·1000·(1 + jitter)` never exceeds `ahead·1000·2`), never after expiry.
 */
export function mtaStsFreshUntil(cached: CachedMtaStsPolicy): number {
  const maxAge = cached.policy.maxAge
  const ahead = Math.min(86400, maxAge / 10)
  return cached.fetchedAt + maxAge * 1000 - ahead * 1000 * 2
}
