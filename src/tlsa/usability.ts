/** Which TLSA records a client may use (RFC 6698 §4.1, RFC 7671 §9-10, RFC 7672 §3.1.3). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { isCertificateDer, isSpkiDer } from '../x509/der.js'
import { DIGEST_LENGTH, MATCHING_NAMES, type TlsaDigest, type TlsaRecord } from './types.js'

/** DANE profile: `smtp` (RFC 7672: DANE-TA and DANE-EE only) or `generic` (RFC 6698: all four usages). @public */
export type DaneProfile = 'smtp' | 'generic'

/** Options of {@link checkTlsaUsability}. @public */
export interface TlsaUsabilityOptions {
  /** Default `smtp`. */
  profile?: DaneProfile
  /**
   * Digest algorithms the client supports, strongest first (RFC 7671 §9 digest agility).
   * Default `['sha512', 'sha256']`. A matching type whose digest is not listed is unusable.
   */
  digests?: readonly TlsaDigest[]
}

/** A record set aside by {@link checkTlsaUsability}, with the reason an operator can read. @public */
export interface UnusableTlsaRecord {
  record: TlsaRecord
  reason: string
}

/** Result of {@link checkTlsaUsability}. @public */
export interface TlsaUsability {
  usable: TlsaRecord[]
  unusable: UnusableTlsaRecord[]
}

const DIGEST_OF_MTYPE: Readonly<Record<number, TlsaDigest>> = { 1: 'sha256', 2: 'sha512' }
const DEFAULT_DIGESTS: readonly TlsaDigest[] = ['sha512', 'sha256']

/**
 * Split a TLSA RRset into usable and unusable records.
 *
 * Unusable (each with a reason): unknown or private-use usage, selector or matching type
 * (RFC 6698 §4.1, RFC 7671 §10.3); usages 0 and 1 under the SMTP profile (RFC 7672 §3.1.3);
 * a digest of the wrong length; Full(0) data that is not exactly one DER certificate (selector 0)
 * or SubjectPublicKeyInfo (selector 1); digest records superseded by a stronger digest for the same
 * usage and selector (RFC 7671 §9; Full records are never superseded).
 *
 * @example
 * ```ts
 * const { usable, unusable } = checkTlsaUsability(records)
 * for (const u of unusable) console.log(formatTlsaRecord(u.record), u.reason)
 * ```
 * @public
 */
export function checkTlsaUsability(records: readonly TlsaRecord[], opts: TlsaUsabilityOptions = {}): TlsaUsability {
  try {
    return checkTlsaUsabilityChecked(records, opts)
  } catch (e) {
    throw coded(e, 'checkTlsaUsability')
  }
}

function checkTlsaUsabilityChecked(records: readonly TlsaRecord[], opts: TlsaUsabilityOptions = {}): TlsaUsability {
  if (!Array.isArray(records)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'records must be an array of TLSA records')
  const profile = opts.profile ?? 'smtp'
  if (profile !== 'smtp' && profile !== 'generic') {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `profile must be "smtp" or "generic", got ${String(profile)}`)
  }
  const digests = opts.digests ?? DEFAULT_DIGESTS
  if (!Array.isArray(digests) || digests.some((d) => d !== 'sha256' && d !== 'sha512')) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'digests must be a list of "sha512" and "sha256"')
  }
  const usable: TlsaRecord[] = []
  const unusable: UnusableTlsaRecord[] = []
  // Pass 1: per-record checks. Pass 2: digest agility among what survived.
  const candidates: TlsaRecord[] = []
  for (const r of records) {
    const reason = recordDefect(r, profile, digests)
    if (reason === undefined) candidates.push(r)
    else unusable.push({ record: r, reason })
  }
  // RFC 7671 §9: per usage+selector, the client uses only the strongest digest present that it
  // supports; Full(0) records are kept regardless (RFC 7671 §9, requirements item 9).
  const best = new Map<number, number>() // (usage << 8 | selector) -> rank of strongest digest present
  for (const r of candidates) {
    if (r.matchingType === 0) continue
    const rank = digests.indexOf(DIGEST_OF_MTYPE[r.matchingType]!)
    const key = (r.usage << 8) | r.selector
    const cur = best.get(key)
    if (cur === undefined || rank < cur) best.set(key, rank)
  }
  for (const r of candidates) {
    if (r.matchingType !== 0) {
      const rank = digests.indexOf(DIGEST_OF_MTYPE[r.matchingType]!)
      const top = best.get((r.usage << 8) | r.selector)!
      if (rank !== top) {
        unusable.push({
          record: r,
          reason: `superseded by stronger ${digests[top]} records with the same usage and selector (RFC 7671 §9 digest agility)`,
        })
        continue
      }
    }
    usable.push(r)
  }
  // Keep the caller's order in the unusable list too.
  unusable.sort((a, b) => records.indexOf(a.record) - records.indexOf(b.record))
  return { usable, unusable }
}

function recordDefect(r: TlsaRecord, profile: DaneProfile, digests: readonly TlsaDigest[]): string | undefined {
  if (r === null || typeof r !== 'object' || !(r.data instanceof Uint8Array)) return 'not a TLSA record object'
  const { usage, selector, matchingType: mtype, data } = r
  if (usage === 255 || selector === 255 || mtype === 255) {
    return 'private-use value (255) is not usable in records from DNS (RFC 6698 §2.1, RFC 7218)'
  }
  if (!(usage >= 0 && usage <= 3 && Number.isInteger(usage))) return `unknown certificate usage ${usage} (RFC 6698 §4.1)`
  if (selector !== 0 && selector !== 1) return `unknown selector ${selector} (RFC 6698 §4.1)`
  if (mtype !== 0 && mtype !== 1 && mtype !== 2) return `unknown matching type ${mtype} (RFC 6698 §4.1)`
  if (profile === 'smtp' && usage < 2) {
    return `certificate usage ${usage === 0 ? 'PKIX-TA(0)' : 'PKIX-EE(1)'} is not usable for SMTP (RFC 7672 §3.1.3)`
  }
  if (data.length === 0) return 'empty certificate association data'
  if (mtype === 0) {
    if (selector === 0 && !isCertificateDer(data)) return 'Full(0) Cert(0) data is not exactly one DER certificate (RFC 7671 §10.3)'
    if (selector === 1 && !isSpkiDer(data)) return 'Full(0) SPKI(1) data is not exactly one DER SubjectPublicKeyInfo (RFC 7671 §10.3)'
    return undefined
  }
  const want = DIGEST_LENGTH[mtype]!
  if (data.length !== want) return `${MATCHING_NAMES[mtype]} data is ${data.length} bytes, expected ${want} (RFC 6698 §2.1.3)`
  if (!digests.includes(DIGEST_OF_MTYPE[mtype]!)) return `${MATCHING_NAMES[mtype]} is not among the enabled digests (${digests.join(', ')})`
  return undefined
}
