/**
 * SMTP TLS Reporting (RFC 8460), pure: the `_smtp._tls` record, recording session outcomes in a
 * store, the JSON report, its file name and the report message. Gzip and delivery are in the Node entry.
 */
export { parseTlsRptRecord, formatTlsRptRecord } from './record.js'
export type { TlsRptRecord, TlsRptExtension } from './record.js'
export { buildTlsRptReport, tlsRptFileName, isTlsRptResultType } from './report.js'
export type {
  TlsRptPolicyType,
  TlsRptPolicyRef,
  TlsRptFailureDetail,
  TlsRptPolicyResult,
  TlsRptReportInput,
  TlsRptReport,
  TlsRptFileNameInput,
} from './report.js'
export { recordTlsRptSession, collectTlsRptDay } from './recorder.js'
export type { TlsRptFailure, TlsRptSession, TlsRptRecorderOptions, TlsRptDomainResults } from './recorder.js'
export { buildTlsRptMessage, isTlsRptReportMessage } from './message.js'
export type { TlsRptMessageInput } from './message.js'
export { validateTlsRptReport } from './validate.js'
export type { TlsRptValidation, TlsRptValidationError } from './validate.js'
