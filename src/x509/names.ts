/**
 * Server name checks for DANE-TA(2) and Postfix's `verify`/`secure` levels: RFC 7672 §3.2.2-3.2.3
 * and RFC 6125 §6.4 (DNS-IDs; the subject CN only when there is no DNS-ID).
 */
import { SmtpTlsError } from '../errors.js'
import { sliceCertificate, type CertificateSlices } from './der.js'
import { readCommonNames, readExtensions, type ExtensionInfo } from './extensions.js'

/**
 * Normalise a DNS name for comparison: one trailing dot removed, lower case, U-labels converted to
 * A-labels (IDNA via the WHATWG URL host parser, RFC 7672 §3.2.3 compares A-labels). Returns
 * `undefined` for a name that cannot be a host name.
 */
export function normalizeDnsName(name: string): string | undefined {
  let n = name.endsWith('.') ? name.slice(0, -1) : name
  if (n.length === 0 || n.length > 253) return undefined
  if (/[^\x00-\x7f]/.test(n)) {
    try {
      n = new URL(`http://${n}/`).hostname
    } catch {
      return undefined
    }
    if (n.endsWith('.')) n = n.slice(0, -1)
  }
  n = n.toLowerCase()
  // LDH labels, '_' tolerated (seen in the wild), '*' kept for wildcard patterns; nothing else.
  if (!/^[a-z0-9_*-]+(\.[a-z0-9_*-]+)*$/.test(n)) return undefined
  return n
}

/**
 * The names a certificate is valid for under RFC 6125 §6.4.4: its subjectAltName dNSName entries,
 * or, only when it has none, its subject commonName values. Returned as they appear in the
 * certificate (wildcards included); use {@link matchCertificateName} to compare.
 *
 * @throws {@link SmtpTlsError} `ERR_CERT_PARSE` for a malformed certificate.
 * @public
 */
export function certificateDnsNames(der: Uint8Array): string[] {
  const s = sliceCertificate(der)
  return presentedNames(der, s, readExtensions(der, s))
}

/** {@link certificateDnsNames} for an already sliced certificate. */
export function presentedNames(der: Uint8Array, s: CertificateSlices, ext: ExtensionInfo): string[] {
  if (ext.dnsNames.length > 0) return ext.dnsNames.slice()
  // RFC 6125 §6.4.4: the CN-ID is consulted only when there is no DNS-ID.
  return readCommonNames(der, s.subjectStart, s.subjectEnd)
}

/**
 * Match one presented identifier (already normalised) against one reference (already normalised).
 * `suffix` references (from `.example.com`) match any name strictly below the domain.
 */
function matchOne(presented: string, reference: string, suffix: boolean): boolean {
  const star = presented.indexOf('*')
  if (star >= 0) {
    // RFC 7672 §3.2.3 / RFC 6125 §6.4.3: a wildcard only as the entire leftmost label, never
    // partial (`smtp*.example.com`), and at least two labels after it (no `*.com`).
    if (star !== 0 || presented[1] !== '.' || presented.indexOf('*', 1) >= 0) return false
    const rest = presented.slice(1) // ".example.com"
    if (rest.indexOf('.', 1) < 0) return false
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
 * - Comparison is case-insensitive, ignores one trailing dot, and uses A-labels for IDNs.
 * - A wildcard is honoured only as the entire leftmost label and matches exactly one label.
 * - A reference starting with a dot (`.example.com`, Postfix's `match=.domain`) matches any name
 *   below that domain (not the domain itself); a wildcard `*.example.com` certificate matches it.
 *
 * Returns the reference name (as given) that matched first, or `undefined`.
 *
 * @throws {@link SmtpTlsError} `ERR_CERT_PARSE` for a malformed certificate,
 * `ERR_INVALID_ARGUMENT` when `referenceNames` is not a list of strings.
 * @example
 * ```ts
 * matchCertificateName(leafDer, ['mx1.example.com', 'example.com']) // 'mx1.example.com' or undefined
 * ```
 * @public
 */
export function matchCertificateName(leafDer: Uint8Array, referenceNames: readonly string[]): string | undefined {
  const s = sliceCertificate(leafDer)
  return matchPresentedNames(presentedNames(leafDer, s, readExtensions(leafDer, s)), referenceNames)
}

/** {@link matchCertificateName} on names already extracted with {@link presentedNames}. */
export function matchPresentedNames(presented: readonly string[], referenceNames: readonly string[]): string | undefined {
  if (!Array.isArray(referenceNames) || referenceNames.some((n) => typeof n !== 'string')) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'reference names must be a list of strings')
  }
  const normPresented: string[] = []
  for (const p of presented) {
    const n = normalizeDnsName(p)
    if (n !== undefined) normPresented.push(n)
  }
  for (const ref of referenceNames) {
    const suffix = ref.startsWith('.') && ref.length > 1
    const r = normalizeDnsName(suffix ? ref.slice(1) : ref)
    // A reference identifier is a host name, never a pattern.
    if (r === undefined || r.includes('*')) continue
    for (const p of normPresented) if (matchOne(p, r, suffix)) return ref
  }
  return undefined
}
