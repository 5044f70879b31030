/**
 * Names in policy tables and next hops, through the one DNS-name check of `x509/names.ts`: a name is
 * a valid DNS name (U-labels as A-labels) or no name at all.
 */
import { SmtpTlsError } from '../errors.js'
import { normalizeDnsName } from '../x509/names.js'

/**
 * A policy-table key or a next hop in the form lookups compare (postconf(5) `smtp_tls_policy_maps`):
 * lower case; the domain of `domain`, `.domain`, `[host]`, `host:port` and `[host]:port` normalised
 * by {@link normalizeDnsName} (one final dot removed, U-labels as A-labels, RFC 5891 §4). A key whose
 * host part is no valid DNS name (an address literal, anything else) stays as its lower-case text.
 */
export function normalizePolicyKey(key: string): string {
  if (typeof key !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'a policy key must be a string')
  const k = key.toLowerCase()
  if (k.charCodeAt(0) !== 0x5b && k.indexOf(':') < 0) {
    // The common case, `domain` or `.domain`: no regular expression, no match array.
    const dot = k.charCodeAt(0) === 0x2e
    const name = normalizeDnsName(dot ? k.slice(1) : k)
    return name === undefined ? k : dot ? '.' + name : name
  }
  const m = /^(\[)([^\]]*)\](:[0-9]+)?$/.exec(k) ?? /^()([^:[\]]+)(:[0-9]+)?$/.exec(k)
  if (m === null) return k
  const bracket = m[1] === '['
  const host = m[2]!
  const dot = !bracket && host.startsWith('.')
  const name = normalizeDnsName(dot ? host.slice(1) : host)
  if (name === undefined) return k
  return `${bracket ? '[' : ''}${dot ? '.' : ''}${name}${bracket ? ']' : ''}${m[3] ?? ''}`
}

/** Postfix match strategies at `verify`/`secure` that are keywords, not names (TLS_README). */
const MATCH_KEYWORDS: ReadonlySet<string> = new Set(['hostname', 'nexthop', 'dot-nexthop'])

/**
 * One `match=` element at `verify`/`secure`: a strategy keyword, or a name `example.com` / suffix
 * `.example.com` normalised by {@link normalizeDnsName}; `undefined` when it is neither.
 */
export function normalizeMatchName(value: string): string | undefined {
  if (typeof value !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'a match name must be a string')
  const l = value.toLowerCase()
  if (MATCH_KEYWORDS.has(l)) return l
  const dot = l.startsWith('.')
  const name = normalizeDnsName(dot ? l.slice(1) : l)
  return name === undefined ? undefined : dot ? '.' + name : name
}
