/**
 * The report message (RFC 8460 §5.3): `multipart/report; report-type="tlsrpt"` with a short text part
 * and the report attached as `application/tlsrpt+gzip` (or `+json`), base64. Built by hand: plain
 * MIME, CRLF line ends, ready for any mailer (sign it with DKIM before sending, RFC 8460 §5.3).
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'

/** Input of {@link buildTlsRptMessage}. @public */
export interface TlsRptMessageInput {
  from: string
  /** Recipients: the `mailto:` addresses of the policy domain's `rua` (without `mailto:`). */
  to: readonly string[]
  /** The submitter's domain (`TLS-Report-Submitter`). */
  submitter: string
  /** The policy domain (`TLS-Report-Domain`). */
  policyDomain: string
  /** The report's `report-id`. */
  reportId: string
  /** The `Date:` header. */
  date: Date
  /** The report bytes: gzip of the JSON (`gzip: true`, the default) or the JSON itself. */
  report: Uint8Array
  gzip?: boolean
  /** The attachment's file name (RFC 8460 §5.1, see `tlsRptFileName`). */
  fileName: string
  /** `Message-ID` without angle brackets; default `<reportId>@<submitter>` made safe. */
  messageId?: string
}

function bad(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `TLS-RPT message: ${message}`)
}

/** A header value: printable ASCII and spaces only (no CR/LF: no header injection). */
function hv(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || !/^[\x20-\x7e]+$/.test(v)) bad(`${what} must be printable ASCII`)
  return v
}

/** RFC 5322 §3.3 date: `Tue, 01 Dec 2026 14:34:05 +0000`. */
function rfc5322Date(d: Date): string {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) bad('date must be a valid Date')
  return d.toUTCString().replace(/GMT$/, '+0000')
}

function base64Lines(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
  let out = ''
  for (let i = 0; i < b64.length; i += 76) out += b64.slice(i, i + 76) + '\r\n'
  return out
}

/**
 * Build the report message as a string with CRLF line ends. Headers: `TLS-Report-Domain`,
 * `TLS-Report-Submitter` (RFC 8460 §5.3), `TLS-Required: No` (RFC 8460 §5.3: reports MUST be
 * delivered despite TLS failures; RFC 8689 header) and `Auto-Submitted: auto-generated` (RFC 3834).
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for a header value with controls or non-ASCII.
 * @public
 */
export function buildTlsRptMessage(input: TlsRptMessageInput): string {
  try {
    return buildTlsRptMessageChecked(input)
  } catch (e) {
    throw coded(e, 'buildTlsRptMessage')
  }
}

function buildTlsRptMessageChecked(input: TlsRptMessageInput): string {
  if (typeof input !== 'object' || input === null) bad('input must be an object')
  const from = hv(input.from, 'from')
  if (!Array.isArray(input.to) || input.to.length === 0) bad('to must be a non-empty list')
  const to = input.to.map((a, i) => hv(a, `to[${i}]`))
  const submitter = hv(input.submitter, 'submitter')
  const domain = hv(input.policyDomain, 'policyDomain')
  const reportId = hv(input.reportId, 'reportId')
  const fileName = hv(input.fileName, 'fileName')
  if (/["\\]/.test(fileName)) bad('fileName must not contain quotes or backslashes')
  if (!(input.report instanceof Uint8Array)) bad('report must be a Uint8Array')
  const gzip = input.gzip !== false
  const messageId = input.messageId ?? `${reportId.replace(/[^A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]/g, '_')}@${submitter}`
  hv(messageId, 'messageId')
  if (/[<>\s]/.test(messageId)) bad('messageId must not contain angle brackets or spaces')
  // The boundary cannot occur in base64 (no "_" in its alphabet) nor in the text part below.
  const boundary = `----=_tlsrpt_${messageId.replace(/[^A-Za-z0-9]/g, '').slice(0, 40)}`
  if ([from, ...to, submitter, domain, reportId, fileName].some((v) => v.includes('----=_tlsrpt_')))
    bad('a header value contains the MIME boundary')
  const lines = [
    `From: ${from}`,
    `To: ${to.join(', ')}`,
    `Subject: Report Domain: ${domain} Submitter: ${submitter} Report-ID: <${reportId}>`,
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <${messageId}>`,
    `TLS-Report-Domain: ${domain}`,
    `TLS-Report-Submitter: ${submitter}`,
    'TLS-Required: No',
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt";\r\n\tboundary="${boundary}"`,
    '',
    'This is a multipart message in MIME format.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset="us-ascii"',
    'Content-Transfer-Encoding: 7bit',
    '',
    `This is an aggregate TLS report from ${submitter} for ${domain}.`,
    '',
    `--${boundary}`,
    `Content-Type: application/tlsrpt+${gzip ? 'gzip' : 'json'}`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment;\r\n\tfilename="${fileName}"`,
    '',
  ]
  return lines.join('\r\n') + '\r\n' + base64Lines(input.report) + `\r\n--${boundary}--\r\n`
}

/**
 * Does this message carry a TLS-RPT report (a `TLS-Report-Domain` header, or a
 * `multipart/report; report-type=tlsrpt` content type)? Pass the header block (everything before the
 * first empty line, or the whole message). Sessions delivering such mail must be recorded with
 * `reportMail: true` (that is: not at all).
 * @public
 */
export function isTlsRptReportMessage(headers: string): boolean {
  if (typeof headers !== 'string') return false
  const end = headers.search(/\r?\n\r?\n/)
  const head = (end < 0 ? headers : headers.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ')
  return /^tls-report-domain[ \t]*:/im.test(head) || /^content-type[ \t]*:[^\n]*report-type[ \t]*=[ \t]*"?tlsrpt"?/im.test(head)
}
