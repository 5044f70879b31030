/**
 * smtp-tls-policy/node: the Node I/O adapters (DNS resolver, connection driver, MTA-STS fetcher).
 * They gather facts, hand them to the pure core and carry out its decision.
 *
 * @packageDocumentation
 */
export { SmtpTlsError, isSmtpTlsError } from '../errors.js'
export type { ErrorCode } from '../errors.js'
export { readCertificateFile } from './files.js'
