/**
 * DANE verification (RFC 6698, RFC 7671, RFC 7672) and the certificate name checks it uses.
 *
 * @example
 * ```ts
 * import { parseTlsaRecord, verifyDane } from 'smtp-tls-policy'
 * const res = verifyDane({
 *   records: ['2 0 1 0daa…', '3 1 1 3111…'].map(parseTlsaRecord),
 *   chain: peerChainDer, // leaf first, as sent
 *   names: ['mx.example.com', 'example.com'],
 * })
 * if (!res.ok && res.code !== 'ERR_DANE_NO_USABLE_RECORDS') throw new Error(res.detail)
 * ```
 */
export { verifyDane } from './verify.js'
export type { DaneAnchorSource, DaneFailure, DaneFailureCode, DaneResult, DaneSuccess, DaneUsageName, DaneVerifyInput } from './verify.js'
export { certificateDnsNames, matchCertificateName } from '../x509/names.js'
export { trustAnchorTlsaRecords, verifyTrustAnchors } from './anchors.js'
export type { TrustAnchor, TrustAnchorVerifyInput } from './anchors.js'
