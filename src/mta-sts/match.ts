/** MX host matching against a policy's `mx` patterns (RFC 8461 §4.1). */
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
  const patterns = (policy as { mx?: unknown } | null | undefined)?.mx
  if (!Array.isArray(patterns)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'policy.mx must be a list of patterns')
  if (typeof mxHost !== 'string') return undefined
  const host = normalizeDnsName(mxHost)
  if (host === undefined || host.includes('*')) return undefined
  for (const raw of patterns as unknown[]) {
    if (typeof raw !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'policy.mx must be a list of patterns')
    // parseMtaStsPolicy stores lower-case patterns; a hand-built policy may not.
    let p = raw.toLowerCase()
    if (p.endsWith('.')) p = p.slice(0, -1)
    if (p.startsWith('*.')) {
      // RFC 8461 §4.1: the wildcard stands for exactly one label.
      const suffix = p.slice(1) // ".example.com"
      const head = host.length - suffix.length
      if (head > 0 && host.endsWith(suffix) && host.lastIndexOf('.', head - 1) < 0) return raw
    } else if (p === host) {
      return raw
    }
  }
  return undefined
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
  return mtaStsMatchingPattern(policy, mxHost) !== undefined
}
