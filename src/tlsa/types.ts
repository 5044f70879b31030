/** TLSA record model (RFC 6698 §2.1) and the RFC 7218 mnemonics. */

/**
 * A TLSA record: RFC 6698 §2.1. `data` is the certificate association data.
 * @public
 */
export interface TlsaRecord {
  /** Certificate usage, RFC 6698 §2.1.1: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE, 255 PrivCert. */
  usage: number
  /** Selector, RFC 6698 §2.1.2: 0 Cert (full certificate), 1 SPKI, 255 PrivSel. */
  selector: number
  /** Matching type, RFC 6698 §2.1.3: 0 Full, 1 SHA2-256, 2 SHA2-512, 255 PrivMatch. */
  matchingType: number
  /** Certificate association data. */
  data: Uint8Array
}

/** RFC 7218 §2.1 certificate usage mnemonics. @public */
export const TlsaUsage = { PKIX_TA: 0, PKIX_EE: 1, DANE_TA: 2, DANE_EE: 3, PrivCert: 255 } as const
/** RFC 7218 §2.2 selector mnemonics. @public */
export const TlsaSelector = { Cert: 0, SPKI: 1, PrivSel: 255 } as const
/** RFC 7218 §2.3 matching type mnemonics. @public */
export const TlsaMatchingType = { Full: 0, SHA2_256: 1, SHA2_512: 2, PrivMatch: 255 } as const

/** Digest algorithms of TLSA matching types 1 and 2, strongest first by default (RFC 7671 §9). @public */
export type TlsaDigest = 'sha512' | 'sha256'

/** Mnemonic tables, index = field value (RFC 7218 §2). */
export const USAGE_NAMES: Readonly<Record<number, string>> = { 0: 'PKIX-TA', 1: 'PKIX-EE', 2: 'DANE-TA', 3: 'DANE-EE', 255: 'PrivCert' }
export const SELECTOR_NAMES: Readonly<Record<number, string>> = { 0: 'Cert', 1: 'SPKI', 255: 'PrivSel' }
export const MATCHING_NAMES: Readonly<Record<number, string>> = { 0: 'Full', 1: 'SHA2-256', 2: 'SHA2-512', 255: 'PrivMatch' }

/** Expected digest lengths for matching types 1 and 2 (RFC 6698 §2.1.3). */
export const DIGEST_LENGTH: Readonly<Record<number, number>> = { 1: 32, 2: 64 }
