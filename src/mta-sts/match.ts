/** MX host matching against a policy's `mx` patterns (RFC 8461 §4.1). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { normalizeDnsName } from '../x509/names.js'
import type { MtaStsPolicy } from './policy.js'

/**
 * Does `mxHost` match one of the policy's `mx` patterns? RFC 8461 §4.1: an exact pattern matches the
 * host name; `*.example.com` matches exactly one extra leftmost label (`mx1.example.com`, not
 * `example.com`, not `a.b.example.com`). Case-insensitive, one trailing dot ignored, compared as
 * A-labels (a U-label host is converted). A host that is not a valid DNS name matches nothing.
 *
 * Returns the matching pattern, or `undefined`.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` when `policy.mx` is not a list of strings.
 * @public
 */
export function mtaStsMatchingPattern(policy: Pick<MtaStsPolicy, 'mx'>, mxHost: string): string | undefined {
  try {
    return mtaStsMatchingPatternChecked(policy, mxHost)
  } catch (e) {
    throw coded(e, 'mtaStsMatchingPattern')
  }
}

function mtaStsMatchingPatternChecked(policy: Pick<MtaStsPolicy, 'mx'>, mxHost: string): string | undefined {
  const patterns = (policy as { mx?: unknown } | null | undefined)?.mx
  if (!Array.isArray(patterns)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'policy.mx must be a list of patterns')
  if (typeof mxHost !== 'string') return undefined
  if ((patterns as { [MX_NORMALIZED]?: true })[MX_NORMALIZED] !== true) return matchScan(patterns, mxHost)
  // A list from parseMtaStsPolicy: lower-case A-labels without a trailing dot, frozen. The host is tried
  // as given first: equal to such a pattern proves it plain too (for a wildcard, its first label is
  // checked), so the common case normalises and copies nothing.
  const hit = matchNormalized(patterns as readonly string[], mxHost)
  if (hit !== undefined || isPlainHost(mxHost)) return hit
  const host = normalizeDnsName(mxHost)
  if (host === undefined || host.includes('*')) return undefined
  return matchNormalized(patterns as readonly string[], host)
}

/**
 * Set (with the list frozen) by `parseMtaStsPolicy` on the `mx` lists it returns: their patterns are
 * normalised, so a decision compares strings as they are (issue 13: no re-folding per decision).
 * A symbol on the list itself, not a WeakMap: one property load, no hash lookup.
 */
export const MX_NORMALIZED: unique symbol = Symbol('mta-sts mx normalized')

function matchNormalized(patterns: readonly string[], host: string): string | undefined {
  const dot = host.indexOf('.')
  for (let i = 0; i < patterns.length; i++) {
    const p = patterns[i]!
    if (p.charCodeAt(0) !== 0x2a) {
      if (host === p) return p
      // RFC 8461 §4.1: "*.example.com" stands for exactly one label before ".example.com": the host's
      // first dot starts the pattern's ".example.com", and what precedes it is one plain label.
    } else if (dot > 0 && host.length - dot === p.length - 1 && sameFrom(host, dot, p, 1) && plainLabel(host, dot)) {
      return p
    }
  }
  return undefined
}

/** `host.slice(h) === pattern.slice(p)`, lengths already equal, without slicing (no allocation). */
function sameFrom(host: string, h: number, pattern: string, p: number): boolean {
  for (let n = pattern.length - p, k = 0; k < n; k++) if (host.charCodeAt(h + k) !== pattern.charCodeAt(p + k)) return false
  return true
}

/** `host[0, end)` is one lower-case LDH label. */
function plainLabel(host: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = host.charCodeAt(i)
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return false
  }
  return true
}

/** The scan for any other list (a hand-built policy): folds case and ignores a trailing dot per pattern. */
function matchScan(patterns: readonly unknown[], mxHost: string): string | undefined {
  // Fastest path: a host identical to a pattern (and a plain host name, so never a wildcard).
  for (let i = 0; i < patterns.length; i++) if (patterns[i] === mxHost && isPlainHost(mxHost)) return mxHost
  let host: string | undefined = mxHost
  if (!isPlainHost(mxHost)) {
    host = normalizeDnsName(mxHost)
    if (host === undefined || host.includes('*')) return undefined
  }
  for (let i = 0; i < patterns.length; i++) {
    const raw: unknown = patterns[i]
    if (typeof raw !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'policy.mx must be a list of patterns')
    // parseMtaStsPolicy stores lower-case patterns without a trailing dot; a hand-built policy may differ,
    // so the comparison folds the pattern's case and ignores its trailing dot (without allocating).
    let len = raw.length
    if (len > 0 && raw.charCodeAt(len - 1) === 0x2e) len--
    if (raw.charCodeAt(0) === 0x2a && raw.charCodeAt(1) === 0x2e) {
      // RFC 8461 §4.1: "*.example.com" stands for exactly one label before ".example.com".
      const head = host.length - (len - 1)
      if (head > 0 && host.indexOf('.') === head && sameFolded(host, head, raw, 1, len - 1)) return raw
    } else if (len === host.length && sameFolded(host, 0, raw, 0, len)) {
      return raw
    }
  }
  return undefined
}

/** `host[h, h+n) === lowercase(pattern[p, p+n))` for ASCII, without allocating. */
function sameFolded(host: string, h: number, pattern: string, p: number, n: number): boolean {
  for (let k = 0; k < n; k++) {
    let c = pattern.charCodeAt(p + k)
    if (c >= 0x41 && c <= 0x5a) c += 0x20
    if (host.charCodeAt(h + k) !== c) return false
  }
  return true
}

/** Lower-case letters, digits, '-', '_' and inner dots only, 1-253 characters: what normalizeDnsName would return unchanged. */
function isPlainHost(h: string): boolean {
  const n = h.length
  if (n === 0 || n > 253) return false
  let prevDot = true
  for (let i = 0; i < n; i++) {
    const c = h.charCodeAt(i)
    if (c === 0x2e) {
      if (prevDot) return false
      prevDot = true
    } else if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) {
      prevDot = false
    } else {
      return false
    }
  }
  return !prevDot
}

/**
 * RFC 8461 §4.1: is `mxHost` allowed by the policy? See {@link mtaStsMatchingPattern}.
 * @example
 * ```ts
 * mtaStsMatchesMx({ mx: ['*.example.com'] }, 'MX1.example.com.') // true
 * mtaStsMatchesMx({ mx: ['*.example.com'] }, 'a.b.example.com') // false
 * ```
 * @public
 */
export function mtaStsMatchesMx(policy: Pick<MtaStsPolicy, 'mx'>, mxHost: string): boolean {
  try {
    return mtaStsMatchesMxChecked(policy, mxHost)
  } catch (e) {
    throw coded(e, 'mtaStsMatchesMx')
  }
}

function mtaStsMatchesMxChecked(policy: Pick<MtaStsPolicy, 'mx'>, mxHost: string): boolean {
  return mtaStsMatchingPattern(policy, mxHost) !== undefined
}
