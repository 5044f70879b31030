/**
 * A structural validator for TLS-RPT reports (RFC 8460 §4.4, with erratum 6241: `mx-host` is an
 * array), pure and dependency-free. It checks what test/vectors/tlsrpt/report.schema.json checks (a
 * differential test against Ajv keeps them equal): required fields, types, no unknown fields, the
 * `policy-type` and `result-type` enumerations, RFC 3339 date-times and non-negative integer counts.
 */
import { isTlsRptResultType } from './report.js'

/** One defect: a JSON pointer into the report and what is wrong there. @public */
export interface TlsRptValidationError {
  path: string
  message: string
}

/** The outcome of {@link validateTlsRptReport}. @public */
export interface TlsRptValidation {
  valid: boolean
  /** Every defect found (empty when valid), in document order. */
  errors: TlsRptValidationError[]
}

const DATETIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$/ // RFC 3339 date-time
const POLICY_TYPES = new Set(['tlsa', 'sts', 'no-policy-found']) // RFC 8460 §4.4 policy-type

type Check = (v: unknown, path: string, errors: TlsRptValidationError[]) => void

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const str =
  (minLength = 0): Check =>
  (v, path, errors) => {
    if (typeof v !== 'string') errors.push({ path, message: 'must be a string' })
    else if (v.length < minLength) errors.push({ path, message: 'must not be empty' })
  }
const count: Check = (v, path, errors) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) errors.push({ path, message: 'must be a non-negative integer' })
}
const datetime: Check = (v, path, errors) => {
  if (typeof v !== 'string' || !DATETIME.test(v)) errors.push({ path, message: 'must be an RFC 3339 date-time' })
}
const stringArray: Check = (v, path, errors) => {
  if (!Array.isArray(v)) return void errors.push({ path, message: 'must be an array' })
  v.forEach((x, i) => str()(x, `${path}/${i}`, errors))
}
const oneOf =
  (ok: (v: unknown) => boolean, what: string): Check =>
  (v, path, errors) => {
    if (!ok(v)) errors.push({ path, message: `must be ${what}` })
  }
const arrayOf =
  (item: Check): Check =>
  (v, path, errors) => {
    if (!Array.isArray(v)) return void errors.push({ path, message: 'must be an array' })
    v.forEach((x, i) => item(x, `${path}/${i}`, errors))
  }

function object(required: string[], fields: Record<string, Check>): Check {
  return (v, path, errors) => {
    if (!isObject(v)) return void errors.push({ path, message: 'must be an object' })
    for (const r of required) if (!Object.hasOwn(v, r)) errors.push({ path, message: `${r} is required` })
    for (const k of Object.keys(v)) {
      const f = Object.hasOwn(fields, k) ? fields[k] : undefined
      if (f === undefined) errors.push({ path: `${path}/${k}`, message: 'is not an RFC 8460 §4.4 field' })
      else f(v[k], `${path}/${k}`, errors)
    }
  }
}

const REPORT = object(['organization-name', 'date-range', 'contact-info', 'report-id', 'policies'], {
  'organization-name': str(1),
  'date-range': object(['start-datetime', 'end-datetime'], { 'start-datetime': datetime, 'end-datetime': datetime }),
  'contact-info': str(1),
  'report-id': str(1),
  policies: arrayOf(
    object(['policy', 'summary'], {
      policy: object(['policy-type', 'policy-domain'], {
        'policy-type': oneOf((v) => typeof v === 'string' && POLICY_TYPES.has(v), 'tlsa, sts or no-policy-found'),
        'policy-string': stringArray,
        'policy-domain': str(1),
        'mx-host': stringArray, // RFC 8460 erratum 6241: an array
      }),
      summary: object(['total-successful-session-count', 'total-failure-session-count'], {
        'total-successful-session-count': count,
        'total-failure-session-count': count,
      }),
      'failure-details': arrayOf(
        object(['result-type', 'failed-session-count'], {
          'result-type': oneOf((v) => typeof v === 'string' && isTlsRptResultType(v), 'an RFC 8460 §4.3 result type'),
          'sending-mta-ip': str(1),
          'receiving-mx-hostname': str(1),
          'receiving-mx-helo': str(1),
          'receiving-ip': str(1),
          'failed-session-count': count,
          'additional-information': str(),
          'failure-reason-code': str(),
        }),
      ),
    }),
  ),
})

/**
 * Check a parsed TLS-RPT report (the JSON value, RFC 8460 §4.4) and list every defect. Never throws:
 * any value (a `Proxy` that throws included) gives a result.
 *
 * @example
 * ```ts
 * const r = validateTlsRptReport(JSON.parse(text))
 * if (!r.valid) for (const e of r.errors) console.log(`${e.path}: ${e.message}`)
 * ```
 * @public
 */
export function validateTlsRptReport(report: unknown): TlsRptValidation {
  const errors: TlsRptValidationError[] = []
  try {
    REPORT(report, '', errors)
  } catch {
    errors.push({ path: '', message: 'cannot be read' })
  }
  return { valid: errors.length === 0, errors }
}
