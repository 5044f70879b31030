/**
 * smtp-tls-policy: the pure core. No sockets, DNS, files, timers or clocks: every function is a
 * deterministic function of its inputs (time is passed in as `now`).
 *
 * @packageDocumentation
 */
export { SmtpTlsError, isSmtpTlsError } from './errors.js'
export type { ErrorCode, SmtpTlsErrorOptions, TlsRptResultType } from './errors.js'

export type { TlsaRecord, TlsaDigest } from './tlsa/types.js'
export { TlsaUsage, TlsaSelector, TlsaMatchingType } from './tlsa/types.js'
export { parseTlsaRecord } from './tlsa/parse.js'
export { formatTlsaRecord, formatTlsaRecordMnemonic, tlsaOwnerName } from './tlsa/format.js'
export { decodeTlsaRdata, encodeTlsaRdata, fromDnsPacketTlsa } from './tlsa/rdata.js'
export { createTlsaRecord } from './tlsa/create.js'
export type { TlsaParameters } from './tlsa/create.js'
export { checkTlsaUsability } from './tlsa/usability.js'
export type { DaneProfile, TlsaUsabilityOptions, TlsaUsability, UnusableTlsaRecord } from './tlsa/usability.js'

export { pemToDer, pemToDerAll, derToPem } from './x509/pem.js'
export type * from './dns/types.js'
export * from './smtp/index.js'
export * from './dane/index.js'
export * from './pin/index.js'
export * from './policy/index.js'
export * from './mta-sts/index.js'
export * from './tlsrpt/index.js'
export * from './store/index.js'
export * from './clientcert/index.js'
export * from './received/index.js'
export * from './socketmap/index.js'
export * from './check/index.js'
