/**
 * Postfix cipher grades (`ciphers=`) and exclusions (`exclude=`) as an OpenSSL cipher string for
 * TLS 1.2 and below. TLS 1.3 suites are negotiated separately and keep the TLS stack's defaults, as
 * in Postfix (postconf(5) `smtp_tls_mandatory_ciphers`, `tls_high_cipherlist`, …).
 */
import { describeValue, invalidArgument, readOptions } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { CipherGrade } from './table.js'

/** postconf(5) defaults of `tls_<grade>_cipherlist` (Postfix 3.7). */
const GRADES: Readonly<Record<CipherGrade, string>> = {
  high: 'aNULL:-aNULL:HIGH:@STRENGTH',
  medium: 'aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH',
  low: 'aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH',
  export: 'aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH',
  null: 'eNULL:!aNULL',
}

/** An OpenSSL cipher name or alias in an exclusion list (postconf(5) `smtp_tls_exclude_ciphers`). */
const CIPHER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/

/** What {@link tlsCipherList} needs of an effective policy. @public */
export interface CipherPolicy {
  /** `ciphers=` from the policy table; Postfix's default grade is `medium`. */
  ciphers?: CipherGrade
  /** `exclude=`: OpenSSL cipher names or aliases, separated by spaces, commas or colons. */
  exclude?: string
  /** The level authenticates the server, so anonymous (aNULL) suites are excluded (RFC 7672 §8.2). */
  authenticating: boolean
}

/**
 * The OpenSSL cipher string (TLS 1.2 and below) for a policy's `ciphers=` grade and `exclude=` list,
 * built like Postfix's `tls_set_ciphers`: the grade's list, then `!NAME` for each exclusion, then
 * `!aNULL` at levels that authenticate the server (RFC 7672 §8.2: offer non-anonymous suites).
 * `undefined` when the policy names neither: the TLS stack's default list applies (Node's excludes
 * aNULL, eNULL, EXPORT, DES, RC4 and MD5 already). Throws `ERR_POLICY_CONFIG` for an exclusion that is
 * not a cipher name.
 *
 * @example
 * ```ts
 * tlsCipherList({ ciphers: 'high', exclude: 'ECDHE-RSA-AES128-GCM-SHA256', authenticating: true })
 * // 'aNULL:-aNULL:HIGH:@STRENGTH:!ECDHE-RSA-AES128-GCM-SHA256:!aNULL'
 * ```
 * @public
 */
export function tlsCipherList(policy: CipherPolicy): string | undefined {
  if (policy === undefined) throw invalidArgument('tlsCipherList needs a policy object')
  // read once into a snapshot: a getter or Proxy trap becomes ERR_INVALID_ARGUMENT
  const p = readOptions(policy, 'tlsCipherList policy', ['ciphers', 'exclude', 'authenticating'] as const) as Partial<CipherPolicy>
  if (p.ciphers === undefined && p.exclude === undefined) return undefined
  const grade = p.ciphers ?? 'medium'
  const base = typeof grade === 'string' && Object.hasOwn(GRADES, grade) ? GRADES[grade] : undefined
  if (base === undefined)
    throw new SmtpTlsError('ERR_POLICY_CONFIG', `unknown cipher grade ${describeValue(grade)}`, { enhancedStatus: '4.7.5' })
  let list: string = base
  if (p.exclude !== undefined) {
    if (typeof p.exclude !== 'string') throw new SmtpTlsError('ERR_POLICY_CONFIG', 'exclude= must be text', { enhancedStatus: '4.7.5' })
    for (const name of p.exclude.split(/[\s,:]+/)) {
      if (name.length === 0) continue
      if (!CIPHER_NAME.test(name)) {
        throw new SmtpTlsError('ERR_POLICY_CONFIG', `exclude=: ${JSON.stringify(name.slice(0, 80))} is not a cipher name`, {
          enhancedStatus: '4.7.5',
        })
      }
      list += `:!${name}`
    }
  }
  if (p.authenticating === true) list += ':!aNULL'
  return list
}
