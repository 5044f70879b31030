/**
 * TLS-RPT report files and messages (RFC 8460 §5.1-§5.3): the gzip step (node:zlib) around the pure
 * report, file-name and message builders.
 */
import { coded } from '../args.js'
import { gzipSync } from 'node:zlib'
import { SmtpTlsError } from '../errors.js'
import { buildTlsRptMessage } from '../tlsrpt/message.js'
import { tlsRptFileName, type TlsRptReport } from '../tlsrpt/report.js'

/** The report as `application/tlsrpt+gzip` bytes (RFC 8460 §5.2: SHOULD be gzip-compressed). @public */
export function gzipTlsRptReport(report: TlsRptReport): Uint8Array {
  try {
    return gzipTlsRptReportChecked(report)
  } catch (e) {
    throw coded(e, 'gzipTlsRptReport')
  }
}

function gzipTlsRptReportChecked(report: TlsRptReport): Uint8Array {
  return new Uint8Array(gzipSync(Buffer.from(JSON.stringify(report), 'utf8')))
}

/** Input of {@link createTlsRptMail}. @public */
export interface TlsRptMailInput {
  report: TlsRptReport
  from: string
  /** `mailto:` recipients from the policy domain's `rua` (with or without the `mailto:` scheme). */
  to: readonly string[]
  /** The submitter's domain. */
  submitter: string
  /** The policy domain the report is for (`TLS-Report-Domain`). */
  policyDomain: string
  date: Date
  /** Attach the JSON uncompressed (`application/tlsrpt+json`); default gzip. */
  gzip?: boolean
  /** `unique-id` in the file name (letters and digits). */
  uniqueId?: string
  messageId?: string
}

/** A report ready to send: the file name, the attachment bytes and the whole message (CRLF). @public */
export interface TlsRptMail {
  fileName: string
  attachment: Uint8Array
  message: string
}

/**
 * Build a TLS-RPT report mail: gzip the report, name it (RFC 8460 §5.1) and wrap it in a
 * `multipart/report; report-type="tlsrpt"` message with `TLS-Required: No`. Deliver it with any mailer;
 * its delivery must be recorded with `reportMail: true` (that is: not recorded).
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for malformed input.
 * @public
 */
export function createTlsRptMail(input: TlsRptMailInput): TlsRptMail {
  try {
    return createTlsRptMailChecked(input)
  } catch (e) {
    throw coded(e, 'createTlsRptMail')
  }
}

function createTlsRptMailChecked(input: TlsRptMailInput): TlsRptMail {
  if (typeof input !== 'object' || input === null || typeof input.report !== 'object' || input.report === null) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'TLS-RPT mail: report is required')
  }
  const range = input.report['date-range']
  const begin = new Date(range?.['start-datetime'] ?? NaN)
  const end = new Date(range?.['end-datetime'] ?? NaN)
  const gzip = input.gzip !== false
  const nameInput = { submitter: input.submitter, policyDomain: input.policyDomain, begin, end, gzip }
  const fileName = tlsRptFileName(input.uniqueId === undefined ? nameInput : { ...nameInput, uniqueId: input.uniqueId })
  const attachment = gzip ? gzipTlsRptReport(input.report) : new TextEncoder().encode(JSON.stringify(input.report))
  if (!Array.isArray(input.to)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'TLS-RPT mail: to must be a list')
  const to = input.to.map((a) => (typeof a === 'string' && /^mailto:/i.test(a) ? decodeURIComponentSafe(a.slice(7)) : a))
  const message = buildTlsRptMessage({
    from: input.from,
    to,
    submitter: input.submitter,
    policyDomain: input.policyDomain,
    reportId: input.report['report-id'],
    date: input.date,
    report: attachment,
    gzip,
    fileName,
    ...(input.messageId === undefined ? {} : { messageId: input.messageId }),
  })
  return { fileName, attachment, message }
}

function decodeURIComponentSafe(s: string): string {
  const addr = s.split('?')[0]!
  try {
    return decodeURIComponent(addr)
  } catch {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `TLS-RPT mail: invalid mailto URI ${JSON.stringify(s)}`)
  }
}
