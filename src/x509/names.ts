/**
 * Server name checks for DANE-TA(2) and Postfix's `verify`/`secure` levels: RFC 7672 §3.2.2-3.2.3
 * and RFC 6125 §6.4 (DNS-IDs; the subject CN only when there is no DNS-ID).
 *
 * Every name, presented or reference, is either a valid DNS name or no name at all: nothing is
 * cut, mapped or repaired on the way to a comparison (a name such as `mx.victim.test/ä.attacker.test`
 * is no name, never `mx.victim.test`).
 */
import { invalidArgument } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { sliceCertificate, type CertificateSlices } from './der.js'
import { readCommonNames, readExtensions, type ExtensionInfo } from './extensions.js'
import { punycodeEncode } from './punycode.js'

/** RFC 1035 §2.3.4: 63 octets per label; 255 octets on the wire = 253 characters without the final dot. */
const MAX_LABEL = 63
const MAX_NAME = 253

/**
 * An ASCII label: letters, digits, hyphens (RFC 1123 §2.1, RFC 5890 §2.3.1 LDH), not starting or ending
 * with a hyphen; `_` is tolerated as before (service labels, seen in certificates in the wild). Lower case.
 */
const LDH_LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/
/** A whole ASCII name of such labels, each 1-63 octets. */
const LDH_NAME = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/
/** `*.example.com`: a wildcard as the entire leftmost label with at least two labels after it (no `*.com`). */
const WILDCARD_NAME = /^\*(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?){2,}$/
/** Characters a name may hold before U-label conversion: ASCII LDH, `_`, `.`, and non-ASCII letters, marks, digits. */
const NAME_CHARS = /^[a-zA-Z0-9_.\-\p{L}\p{M}\p{Nd}]*$/u
/** A U-label after lower-casing and NFC: letters, marks, decimal digits, hyphens; not starting with a mark (RFC 5891 §5.4). */
const U_LABEL = /^[\p{L}\p{Nd}0-9-][\p{L}\p{M}\p{Nd}0-9-]*$/u
const NON_ASCII = /[^\x00-\x7f]/

function checkString(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string')
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `${what} must be a string, got ${name === null ? 'null' : typeof name}`)
}

/** An ASCII label (already lower case) as an LDH label, or undefined. */
function ldhLabel(label: string): boolean {
  return label.length <= MAX_LABEL && LDH_LABEL.test(label)
}

function asciiCount(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x80) n++
  return n
}

/**
 * A label holding non-ASCII characters as an A-label (RFC 5891 §4.4: NFC, then Punycode with the
 * `xn--` prefix), or undefined when it cannot be a U-label: a character that is not a letter, mark
 * or digit, a compatibility character (one NFKC would change: full-width letters and the like,
 * RFC 5892 §2.7), a leading mark, a hyphen at either end or in positions 3-4 (RFC 5891 §4.2.3.1),
 * or a character that maps to ASCII (`K`, the Kelvin sign, to `k`): only a genuine U-label
 * becomes an A-label.
 */
function aLabel(label: string): string | undefined {
  // An A-label is never shorter than its U-label in code points; bound the work first.
  if (label.length > 2 * MAX_LABEL) return undefined
  const u = label.toLowerCase().normalize('NFC')
  if (!NON_ASCII.test(u) || u.normalize('NFKC') !== u || !U_LABEL.test(u)) return undefined
  // No character may become ASCII on the way (the Kelvin sign in `Kä` would become `k`).
  if (asciiCount(u) > asciiCount(label)) return undefined
  if (u.startsWith('-') || u.endsWith('-') || u.slice(2, 4) === '--') return undefined
  const a = 'xn--' + punycodeEncode(u)
  return a.length <= MAX_LABEL ? a : undefined
}

/**
 * The one name check behind every comparison.
 *
 * - A reference name (an MX host, a next hop, a `match=` name, a table key): one final dot is the
 *   same name (RFC 1034 §3.1); U-labels are converted to A-labels; no `*`.
 * - A presented name (a DNS-ID or CN-ID from a certificate): ASCII only (RFC 5280 §7.2 and RFC 6125
 *   §6.4.2 put A-labels in certificates); no final dot: OpenSSL's name constraints compare raw bytes,
 *   so a SAN `mx.victim.test.` escapes `excluded;DNS:victim.test` and must not then match
 *   `mx.victim.test`; a `*` only as the entire leftmost label with at least two
 *   labels after it (RFC 7672 §3.2.3, RFC 6125 §6.4.3).
 */
function dnsName(name: string, reference: boolean): string | undefined {
  // The bound keeps the work linear and small.
  const n = reference && name.endsWith('.') ? name.slice(0, -1) : name
  if (n.length === 0 || n.length > 2 * MAX_NAME) return undefined
  if (!NON_ASCII.test(n)) {
    if (n.length > MAX_NAME) return undefined
    // The common case: one regular expression, no per-label allocation (hot path of every verdict).
    const lower = n.toLowerCase()
    return LDH_NAME.test(lower) || (!reference && WILDCARD_NAME.test(lower)) ? lower : undefined
  }
  // RFC 5891 §5.3-5.4: reject every character that cannot be in a host name before any conversion,
  // so that no delimiter (`/ ? # \ @ : % [ ]`, space, control, NUL) ever reaches a conversion step.
  // Presented names never get here: a certificate holds A-labels (RFC 5280 §7.2).
  if (!reference || !NAME_CHARS.test(n)) return undefined
  const labels = n.split('.')
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!
    const a = NON_ASCII.test(l) ? aLabel(l) : l.toLowerCase()
    if (a === undefined || !ldhLabel(a)) return undefined
    labels[i] = a
  }
  const out = labels.join('.')
  return out.length <= MAX_NAME ? out : undefined
}

/**
 * Normalise a reference DNS name (a host name to look for: an MX host, a next-hop domain, a
 * `match=` name, a policy-table key): one trailing dot removed, lower case, U-labels converted to
 * A-labels label by label (RFC 7672 §3.2.3 compares A-labels; RFC 5891 §4). Returns `undefined` for
 * anything that is not a valid DNS name: labels of 1-63 octets of letters, digits and hyphens (`_`
 * tolerated), at most 253 octets, no `*`, no character outside a host name (URL delimiters, spaces,
 * controls, punctuation, symbols, compatibility characters). Nothing is cut or repaired.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` when `name` is not a string.
 */
export function normalizeDnsName(name: string): string | undefined {
  checkString(name, 'a DNS name')
  return dnsName(name, true)
}

/**
 * Normalise a presented identifier (a DNS-ID or CN-ID from a certificate) for comparison: ASCII
 * only (RFC 5280 §7.2: IDNs appear as A-labels), no final dot (OpenSSL's name constraints would not
 * have seen the name without it), lower case, a wildcard only as the entire leftmost label followed by
 * at least two labels. Returns `undefined` for any other string; such a name matches nothing.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` when `name` is not a string.
 */
export function normalizePresentedName(name: string): string | undefined {
  checkString(name, 'a presented name')
  return dnsName(name, false)
}

/**
 * OpenSSL's test for a subject CN that is a DNS name (crypto/x509/v3_ncons.c `cn2dnsid`): only such
 * a CN is held to a CA's DNS name constraints (RFC 5280 §4.2.1.10). A CN-ID that OpenSSL would
 * exempt (a wildcard, a final dot, one label, a non-ASCII character, a hyphen or dot next to a dot)
 * is therefore not used as a name: otherwise a name-constrained CA could issue `CN=*.victim.test`
 * or `CN=mx.victim.test.` and pass the chain check.
 */
function constrainableCommonName(cn: string): boolean {
  if (cn.length === 0 || cn.length > MAX_NAME) return false
  let dots = 0
  for (let i = 0; i < cn.length; i++) {
    const c = cn.charCodeAt(i)
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f) continue
    if (i === 0 || i === cn.length - 1) return false
    if (c === 0x2d) continue
    if (c === 0x2e && cn.charCodeAt(i + 1) !== 0x2e && cn.charCodeAt(i - 1) !== 0x2d && cn.charCodeAt(i + 1) !== 0x2d) {
      dots++
      continue
    }
    return false
  }
  return dots > 0
}

function checkDer(der: unknown, what: string): asserts der is Uint8Array {
  let ok = false
  try {
    ok = der instanceof Uint8Array
  } catch {
    // a Proxy whose getPrototypeOf trap throws is no certificate either
  }
  if (!ok) throw invalidArgument(`${what} must be a DER certificate (Uint8Array)`)
}

function checkNameList(names: unknown, what: string): asserts names is readonly string[] {
  let ok = false
  try {
    ok = Array.isArray(names) && names.every((n) => typeof n === 'string')
  } catch {
    // a revoked Proxy, or a trap: not a list of names
  }
  if (!ok) throw invalidArgument(`${what} must be a list of strings`)
}

/**
 * The names a certificate is valid for under RFC 6125 §6.4.4: its subjectAltName dNSName entries,
 * or, only when it has none, its subject commonName values that are DNS names OpenSSL holds to name
 * constraints (no wildcard, no final dot, two labels or more, ASCII). Returned as they appear in the
 * certificate (wildcards included); use {@link matchCertificateName} to compare.
 *
 * @throws {@link SmtpTlsError} `ERR_CERT_PARSE` for a malformed certificate,
 * `ERR_INVALID_ARGUMENT` when `der` is not a Uint8Array.
 * @public
 */
export function certificateDnsNames(der: Uint8Array): string[] {
  checkDer(der, 'der')
  const s = sliceCertificate(der)
  return presentedNames(der, s, readExtensions(der, s))
}

/** {@link certificateDnsNames} for an already sliced certificate. */
export function presentedNames(der: Uint8Array, s: CertificateSlices, ext: ExtensionInfo): string[] {
  checkDer(der, 'der')
  if (ext.dnsNames.length > 0) return ext.dnsNames.slice()
  // RFC 6125 §6.4.4: the CN-ID is consulted only when there is no DNS-ID; and only a CN that the
  // chain's name constraints apply to (see constrainableCommonName).
  return readCommonNames(der, s.subjectStart, s.subjectEnd).filter(constrainableCommonName)
}

/**
 * Match one presented identifier (normalised by {@link normalizePresentedName}) against one
 * reference (normalised by {@link normalizeDnsName}). `suffix` references (from `.example.com`)
 * match any name strictly below the domain.
 */
function matchOne(presented: string, reference: string, suffix: boolean): boolean {
  if (presented.charCodeAt(0) === 0x2a) {
    // RFC 7672 §3.2.3 / RFC 6125 §6.4.3: the normaliser let a wildcard through only as the entire
    // leftmost label with two labels or more after it (never partial: `smtp*.example.com`).
    const rest = presented.slice(1) // ".example.com"
    // `*.example.com` names hosts below example.com, so it satisfies the suffix reference.
    if (suffix) return rest.endsWith('.' + reference)
    // exactly one label in place of the '*'
    if (!reference.endsWith(rest)) return false
    const head = reference.slice(0, reference.length - rest.length)
    return head.length > 0 && head.indexOf('.') < 0
  }
  if (suffix) return presented.endsWith('.' + reference)
  return presented === reference
}

/**
 * Match a certificate's DNS names against reference identifiers (RFC 7672 §3.2.2-3.2.3, RFC 6125).
 *
 * - DNS SANs are used; the subject CN only when the certificate has no DNS SAN.
 * - Comparison is case-insensitive and uses A-labels for IDNs: a reference name's U-labels are
 *   converted and one final dot ignored; a presented name must already be ASCII, without a final dot.
 * - A wildcard is honoured only as the entire leftmost label and matches exactly one label.
 * - A reference starting with a dot (`.example.com`, Postfix's `match=.domain`) matches any name
 *   below that domain (not the domain itself); a wildcard `*.example.com` certificate matches it.
 * - A name, presented or reference, that is not a valid DNS name (a URL delimiter, a space, a
 *   control character, an empty label, ...) matches nothing; it is never cut to a shorter name.
 *
 * Returns the reference name (as given) that matched first, or `undefined`.
 *
 * @throws {@link SmtpTlsError} `ERR_CERT_PARSE` for a malformed certificate,
 * `ERR_INVALID_ARGUMENT` when `leafDer` is not a Uint8Array or `referenceNames` is not a list of strings.
 * @example
 * ```ts
 * matchCertificateName(leafDer, ['mx1.example.com', 'example.com']) // 'mx1.example.com' or undefined
 * ```
 * @public
 */
export function matchCertificateName(leafDer: Uint8Array, referenceNames: readonly string[]): string | undefined {
  checkDer(leafDer, 'leafDer')
  checkNameList(referenceNames, 'reference names')
  const s = sliceCertificate(leafDer)
  return matchPresentedNames(presentedNames(leafDer, s, readExtensions(leafDer, s)), referenceNames)
}

/** {@link matchCertificateName} on names already extracted with {@link presentedNames}. */
export function matchPresentedNames(presented: readonly string[], referenceNames: readonly string[]): string | undefined {
  checkNameList(presented, 'presented names')
  checkNameList(referenceNames, 'reference names')
  const normPresented: string[] = []
  for (const p of presented) {
    const n = dnsName(p, false)
    if (n !== undefined) normPresented.push(n)
  }
  if (normPresented.length === 0) return undefined
  for (const ref of referenceNames) {
    const suffix = ref.startsWith('.') && ref.length > 1
    // A reference identifier is a host name, never a pattern: the normaliser rejects '*'.
    const r = dnsName(suffix ? ref.slice(1) : ref, true)
    if (r === undefined) continue
    for (const p of normPresented) if (matchOne(p, r, suffix)) return ref
  }
  return undefined
}
