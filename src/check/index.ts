/** The report of `check()` (smtp-tls-policy/node) and its renderers: text and one self-contained HTML page. Pure. */
export { formatCheckReport } from './format.js'
export { formatCheckReportHtml } from './html.js'
export type { CheckAddressReport, CheckCertificate, CheckFinding, CheckHostReport, CheckReport, CheckSeverity } from './types.js'
