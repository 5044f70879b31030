/**
 * Postfix TLS security levels as data, with the predicates every caller needs.
 * Order and predicates follow Postfix `src/tls/tls.h` (`TLS_LEV_*`, `TLS_MUST_MATCH`,
 * `TLS_MUST_PKIX`, `TLS_OPPORTUNISTIC`, `TLS_REQUIRED`, `TLS_DANE_BASED`).
 */
import { describeValue, invalidArgument } from '../args.js'

/** A configurable security level (postconf(5) `smtp_tls_security_level`). @public */
export type SecurityLevel = 'none' | 'may' | 'encrypt' | 'dane' | 'dane-only' | 'fingerprint' | 'verify' | 'secure'

/**
 * A level after DNS facts are applied: a {@link SecurityLevel} or `half-dane` (Postfix
 * `TLS_LEV_HALF_DANE`: DANE authentication required, but the MX RRset was insecure so success is
 * reported as `trusted`, never `verified`; RFC 7672 §2.2.1). `half-dane` cannot be configured.
 * @public
 */
export type EffectiveLevel = SecurityLevel | 'half-dane'

/**
 * Every effective level, weakest first: Postfix's numeric order
 * `none < may < encrypt < fingerprint < half-dane < dane < dane-only < verify < secure`.
 * @public
 */
export const SECURITY_LEVELS: readonly EffectiveLevel[] = Object.freeze([
  'none',
  'may',
  'encrypt',
  'fingerprint',
  'half-dane',
  'dane',
  'dane-only',
  'verify',
  'secure',
] as const)

/** The levels a policy table or `smtp_tls_security_level` may name (no `half-dane`). @public */
export const CONFIGURABLE_LEVELS: readonly SecurityLevel[] = Object.freeze([
  'none',
  'may',
  'encrypt',
  'fingerprint',
  'dane',
  'dane-only',
  'verify',
  'secure',
] as const)

const RANK: Readonly<Record<EffectiveLevel, number>> = {
  none: 0,
  may: 1,
  encrypt: 2,
  fingerprint: 3,
  'half-dane': 4,
  dane: 5,
  'dane-only': 6,
  verify: 7,
  secure: 8,
}

/** Position of a level in {@link SECURITY_LEVELS} (Postfix `TLS_LEV_*` value). @public */
export function levelRank(level: EffectiveLevel): number {
  return rank(level)
}

/** The rank of a level; anything else (a wrong type, an unknown name, `toString`) is ERR_INVALID_ARGUMENT. */
function rank(level: unknown): number {
  if (typeof level !== 'string' || !Object.prototype.hasOwnProperty.call(RANK, level)) {
    throw invalidArgument(`not a security level: ${describeValue(level)}`)
  }
  return RANK[level as EffectiveLevel]
}

/** Is `s` a configurable level name (case-sensitive; Postfix `tls_level_lookup` rejects `half-dane`)? @public */
export function isSecurityLevel(s: unknown): s is SecurityLevel {
  return typeof s === 'string' && s !== 'half-dane' && Object.prototype.hasOwnProperty.call(RANK, s)
}

/** TLS is mandatory: every level above `may` (Postfix `TLS_REQUIRED`). @public */
export function mustEncrypt(level: EffectiveLevel): boolean {
  return rank(level) > RANK.may
}

/** The peer must be authenticated (pins, DANE or PKIX): every level above `encrypt` (Postfix `TLS_MUST_MATCH`). @public */
export function mustMatch(level: EffectiveLevel): boolean {
  return rank(level) > RANK.encrypt
}

/** Authentication uses the PKIX (WebPKI / tafile) trust store: `verify` and `secure` (Postfix `TLS_MUST_PKIX`). @public */
export function mustPkix(level: EffectiveLevel): boolean {
  return rank(level) >= RANK.verify
}

/**
 * The configured level may end in unauthenticated or plaintext delivery, depending on what the
 * peer or DNS offers: `may` and `dane` (Postfix `TLS_OPPORTUNISTIC`; RFC 7672 §2.2 opportunistic DANE).
 * @public
 */
export function isOpportunistic(level: EffectiveLevel): boolean {
  return level === 'may' || level === 'dane'
}

/** The level uses TLSA records: `half-dane`, `dane`, `dane-only` (Postfix `TLS_DANE_BASED`). @public */
export function isDaneBased(level: EffectiveLevel): boolean {
  return level === 'half-dane' || level === 'dane' || level === 'dane-only'
}

/** The weaker of two levels (e.g. `TLS-Required: No` caps at `may`, RFC 8689 §4.2.2). @public */
export function minLevel<T extends EffectiveLevel>(a: T, b: T): T {
  return rank(a) <= rank(b) ? a : b
}
