/** The aggregate report (RFC 8460 §4) and its file name (§5.1). */
import { coded } from '../args.js'
import { SmtpTlsError, type TlsRptResultType } from '../errors.js'

/** RFC 8460 §4.4 `policy-type`. @public */
export type TlsRptPolicyType = 'tlsa' | 'sts' | 'no-policy-found'

/** The policy a session was evaluated under. @public */
export interface TlsRptPolicyRef {
  type: TlsRptPolicyType
  /** The policy domain: the recipient domain for STS, the TLSA base domain for DANE (RFC 8460 §4.4). */
  domain: string
  /** `policy-string`: the MTA-STS policy's lines, or the TLSA records in presentation format. */
  strings?: readonly string[]
  /** `mx-host`: the policy's MX patterns (STS) or the MX host names (DANE); an array (erratum 6241). */
  mxHosts?: readonly string[]
}

/** One failure detail (RFC 8460 §4.4 `failure-details`). @public */
export interface TlsRptFailureDetail {
  resultType: TlsRptResultType
  sendingMtaIp?: string
  receivingMxHostname?: string
  receivingMxHelo?: string
  receivingIp?: string
  failedSessionCount: number
  additionalInformation?: string
  failureReasonCode?: string
}

/** The counts for one policy. @public */
export interface TlsRptPolicyResult {
  policy: TlsRptPolicyRef
  successful: number
  failed: number
  failureDetails: TlsRptFailureDetail[]
}

/** Input of {@link buildTlsRptReport}. @public */
export interface TlsRptReportInput {
  organizationName: string
  contactInfo: string
  reportId: string
  /** The reporting period: a UTC day `YYYY-MM-DD`, or explicit bounds. */
  dateRange: string | { start: Date | string; end: Date | string }
  policies: readonly TlsRptPolicyResult[]
}

/** The RFC 8460 §4 JSON report, field names as on the wire. @public */
export interface TlsRptReport {
  'organization-name': string
  'date-range': { 'start-datetime': string; 'end-datetime': string }
  'contact-info': string
  'report-id': string
  policies: Array<{
    policy: {
      'policy-type': TlsRptPolicyType
      'policy-string'?: string[]
      'policy-domain': string
      'mx-host'?: string[]
    }
    summary: { 'total-successful-session-count': number; 'total-failure-session-count': number }
    'failure-details'?: Array<{
      'result-type': TlsRptResultType
      'sending-mta-ip'?: string
      'receiving-mx-hostname'?: string
      'receiving-mx-helo'?: string
      'receiving-ip'?: string
      'failed-session-count': number
      'additional-information'?: string
      'failure-reason-code'?: string
    }>
  }>
}

const RESULT_TYPES: ReadonlySet<string> = new Set<TlsRptResultType>([
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
])

/** Is `s` an RFC 8460 §4.3 result type? @public */
export function isTlsRptResultType(s: unknown): s is TlsRptResultType {
  return typeof s === 'string' && RESULT_TYPES.has(s)
}

function bad(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `TLS-RPT report: ${message}`)
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) bad(`${what} must be a non-empty string`)
  return v
}

function count(v: unknown, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) bad(`${what} must be a non-negative integer`)
  return v as number
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) bad(`${what} must be a list of strings`)
  return (v as string[]).slice()
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/

/** RFC 3339 date-time in UTC, whole seconds: `2016-04-01T00:00:00Z`. */
export function rfc3339(d: Date | string, what: string): string {
  if (typeof d === 'string') {
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(d) || Number.isNaN(Date.parse(d))) {
      bad(`${what} must be an RFC 3339 date-time`)
    }
    return d
  }
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) bad(`${what} must be a valid Date`)
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** The UTC day `YYYY-MM-DD` as RFC 8460 start and end date-times (the RFC's example ends at 23:59:59Z). */
export function dayRange(day: string): { start: string; end: string } {
  const m = DAY.exec(day)
  if (m === null || Number.isNaN(Date.parse(`${day}T00:00:00Z`)) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) {
    bad(`dateRange ${JSON.stringify(day)} must be a UTC day YYYY-MM-DD`)
  }
  return { start: `${day}T00:00:00Z`, end: `${day}T23:59:59Z` }
}

/**
 * Build the RFC 8460 §4 report object (serialise it with `JSON.stringify`). `mx-host` is an array
 * (erratum 6241). Policies and failure details keep the order given; totals are as given.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for a malformed input.
 * @example
 * ```ts
 * const report = buildTlsRptReport({
 *   organizationName: 'Company-X', contactInfo: 'sts-reporting@company-x.example', reportId: '5065427c-…',
 *   dateRange: '2016-04-01',
 *   policies: [{ policy: { type: 'sts', domain: 'company-y.example', strings: policy.lines, mxHosts: policy.mx },
 *                successful: 5326, failed: 0, failureDetails: [] }],
 * })
 * ```
 * @public
 */
export function buildTlsRptReport(input: TlsRptReportInput): TlsRptReport {
  try {
    return buildTlsRptReportChecked(input)
  } catch (e) {
    throw coded(e, 'buildTlsRptReport')
  }
}

function buildTlsRptReportChecked(input: TlsRptReportInput): TlsRptReport {
  if (typeof input !== 'object' || input === null) bad('input must be an object')
  const range =
    typeof input.dateRange === 'string'
      ? dayRange(input.dateRange)
      : typeof input.dateRange === 'object' && input.dateRange !== null
        ? { start: rfc3339(input.dateRange.start, 'dateRange.start'), end: rfc3339(input.dateRange.end, 'dateRange.end') }
        : bad('dateRange must be a day or { start, end }')
  if (!Array.isArray(input.policies)) bad('policies must be a list')
  const report: TlsRptReport = {
    'organization-name': str(input.organizationName, 'organizationName'),
    'date-range': { 'start-datetime': range.start, 'end-datetime': range.end },
    'contact-info': str(input.contactInfo, 'contactInfo'),
    'report-id': str(input.reportId, 'reportId'),
    policies: [],
  }
  for (const p of input.policies as readonly TlsRptPolicyResult[]) {
    if (typeof p !== 'object' || p === null || typeof p.policy !== 'object' || p.policy === null)
      bad('each policy needs a policy reference')
    const type = p.policy.type
    if (type !== 'tlsa' && type !== 'sts' && type !== 'no-policy-found') bad('policy.type must be tlsa, sts or no-policy-found')
    // Key order as in the RFC 8460 §4.7 example: type, string, domain, mx-host.
    const policy: TlsRptReport['policies'][number]['policy'] = { 'policy-type': type } as TlsRptReport['policies'][number]['policy']
    if (p.policy.strings !== undefined) policy['policy-string'] = strings(p.policy.strings, 'policy.strings')
    policy['policy-domain'] = str(p.policy.domain, 'policy.domain')
    if (p.policy.mxHosts !== undefined) policy['mx-host'] = strings(p.policy.mxHosts, 'policy.mxHosts')
    const entry: TlsRptReport['policies'][number] = {
      policy,
      summary: {
        'total-successful-session-count': count(p.successful, 'successful'),
        'total-failure-session-count': count(p.failed, 'failed'),
      },
    }
    if (!Array.isArray(p.failureDetails)) bad('failureDetails must be a list')
    if (p.failureDetails.length > 0) {
      entry['failure-details'] = p.failureDetails.map((f) => {
        if (typeof f !== 'object' || f === null || !isTlsRptResultType(f.resultType))
          bad('failure resultType must be an RFC 8460 §4.3 result type')
        const d = { 'result-type': f.resultType } as NonNullable<TlsRptReport['policies'][number]['failure-details']>[number]
        if (f.sendingMtaIp !== undefined) d['sending-mta-ip'] = str(f.sendingMtaIp, 'sendingMtaIp')
        if (f.receivingMxHostname !== undefined) d['receiving-mx-hostname'] = str(f.receivingMxHostname, 'receivingMxHostname')
        if (f.receivingMxHelo !== undefined) d['receiving-mx-helo'] = str(f.receivingMxHelo, 'receivingMxHelo')
        if (f.receivingIp !== undefined) d['receiving-ip'] = str(f.receivingIp, 'receivingIp')
        d['failed-session-count'] = count(f.failedSessionCount, 'failedSessionCount')
        if (f.additionalInformation !== undefined) d['additional-information'] = str(f.additionalInformation, 'additionalInformation')
        if (f.failureReasonCode !== undefined) d['failure-reason-code'] = str(f.failureReasonCode, 'failureReasonCode')
        return d
      })
    }
    report.policies.push(entry)
  }
  return report
}

/** Input of {@link tlsRptFileName}. @public */
export interface TlsRptFileNameInput {
  /** The submitter's domain (RFC 8460 §5.1 `sender`). */
  submitter: string
  policyDomain: string
  /** Start and end of the period (seconds since the epoch in the name). */
  begin: Date | number
  end: Date | number
  /** Optional `unique-id`: letters and digits. */
  uniqueId?: string
  /** `.json.gz` when `true` (the default, RFC 8460 §5.2 SHOULD compress), `.json` otherwise. */
  gzip?: boolean
}

const DOMAIN_CHARS = /^[A-Za-z0-9.-]+$/

function epochSeconds(v: Date | number, what: string): number {
  const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v * 1000 : NaN
  if (!Number.isFinite(ms) || ms < 0) bad(`${what} must be a Date or seconds since the epoch`)
  return Math.floor(ms / 1000)
}

/**
 * RFC 8460 §5.1 file name: `sender!policy-domain!begin!end[!unique-id].json[.gz]`, timestamps in
 * seconds since the epoch.
 * @example
 * ```ts
 * tlsRptFileName({ submitter: 'mail.sender.example', policyDomain: 'example.com', begin: 1013662812, end: 1013749130 })
 * // 'mail.sender.example!example.com!1013662812!1013749130.json.gz'
 * ```
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for a name that cannot appear in a file name.
 * @public
 */
export function tlsRptFileName(input: TlsRptFileNameInput): string {
  try {
    return tlsRptFileNameChecked(input)
  } catch (e) {
    throw coded(e, 'tlsRptFileName')
  }
}

function tlsRptFileNameChecked(input: TlsRptFileNameInput): string {
  if (typeof input !== 'object' || input === null) bad('input must be an object')
  const sender = str(input.submitter, 'submitter')
  const domain = str(input.policyDomain, 'policyDomain')
  if (!DOMAIN_CHARS.test(sender) || !DOMAIN_CHARS.test(domain)) bad('submitter and policyDomain must be domain names')
  let name = `${sender}!${domain}!${epochSeconds(input.begin, 'begin')}!${epochSeconds(input.end, 'end')}`
  if (input.uniqueId !== undefined) {
    if (typeof input.uniqueId !== 'string' || !/^[A-Za-z0-9]+$/.test(input.uniqueId)) bad('uniqueId must be letters and digits')
    name += `!${input.uniqueId}`
  }
  return name + (input.gzip === false ? '.json' : '.json.gz')
}
