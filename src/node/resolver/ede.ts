/**
 * RFC 8914 Extended DNS Errors, named as the IANA "Extended DNS Error Codes" registry names them, so an
 * operator reads `EDE 7 (Signature Expired): "6GJV"` and not an opaque tag a resolver chose as extra text.
 */
import { invalidArgument, readOptions } from '../../args.js'

/** IANA "Extended DNS Error Codes" registry, codes 0-29 (RFC 8914 §4, RFC 9250, RFC 9276 and later additions). */
const EDE_NAMES: readonly string[] = [
  'Other Error', // 0, RFC 8914 §4.1
  'Unsupported DNSKEY Algorithm', // 1
  'Unsupported DS Digest Type', // 2
  'Stale Answer', // 3
  'Forged Answer', // 4
  'DNSSEC Indeterminate', // 5
  'DNSSEC Bogus', // 6
  'Signature Expired', // 7
  'Signature Not Yet Valid', // 8
  'DNSKEY Missing', // 9
  'RRSIGs Missing', // 10
  'No Zone Key Bit Set', // 11
  'NSEC Missing', // 12
  'Cached Error', // 13
  'Not Ready', // 14
  'Blocked', // 15
  'Censored', // 16
  'Filtered', // 17
  'Prohibited', // 18
  'Stale NXDomain Answer', // 19
  'Not Authoritative', // 20
  'Not Supported', // 21
  'No Reachable Authority', // 22
  'Network Error', // 23
  'Invalid Data', // 24, RFC 8914 §4.25
  'Signature Expired before Valid', // 25
  'Too Early', // 26, RFC 9250
  'Unsupported NSEC3 Iterations Value', // 27, RFC 9276
  'Unable to conform to policy', // 28
  'Synthesized', // 29
]

/** The longest extra text shown; the rest is cut (it comes from the network). */
const MAX_EXTRA_TEXT = 120

/**
 * The registry name of an RFC 8914 info-code: `'Signature Expired'` for 7; for a code the registry does not
 * name in this table (30 and up), `'unknown code'`.
 * @public
 */
export function extendedErrorName(code: number): string {
  return (Number.isInteger(code) ? EDE_NAMES[code] : undefined) ?? 'unknown code'
}

/**
 * One EDE for people: `EDE 7 (Signature Expired): "6GJV"`. The registry name leads; the server's EXTRA-TEXT
 * (RFC 8914 §2: for humans, no fixed meaning) follows as a JSON string, control characters escaped and cut
 * at 120 characters, so a resolver's tag never reads as our own words.
 * @public
 */
export function formatExtendedError(error: { code: number; text: string }): string {
  const o = readOptions(error, 'formatExtendedError', ['code', 'text'] as const)
  if (error === undefined || typeof o.code !== 'number' || typeof o.text !== 'string') {
    throw invalidArgument('formatExtendedError needs { code: number, text: string }')
  }
  const e = { code: o.code, text: o.text }
  const head = `EDE ${e.code} (${extendedErrorName(e.code)})`
  if (e.text.length === 0) return head
  const text = e.text.length > MAX_EXTRA_TEXT ? `${e.text.slice(0, MAX_EXTRA_TEXT)}…` : e.text
  return `${head}: ${JSON.stringify(text)}`
}
