/**
 * Every error this library raises is an {@link SmtpTlsError} with a stable `code`.
 *
 * @packageDocumentation
 */

/**
 * Stable error codes. Codes are never renamed or reused; new ones are added as the library grows.
 * @public
 */
export type ErrorCode =
  // TLSA records (RFC 6698, RFC 7218)
  | 'ERR_TLSA_SYNTAX'
  | 'ERR_TLSA_RDATA'
  // certificates (DER, PEM)
  | 'ERR_CERT_PARSE'
  | 'ERR_PEM_SYNTAX'
  // DANE verification (RFC 7671, RFC 7672)
  | 'ERR_DANE_NO_USABLE_RECORDS'
  | 'ERR_DANE_NO_MATCH'
  | 'ERR_DANE_NAME_MISMATCH'
  | 'ERR_DANE_CHAIN_INVALID'
  | 'ERR_DANE_EXPIRED'
  // certificate pins
  | 'ERR_PIN_SYNTAX'
  | 'ERR_PIN_MISMATCH'
  // policy levels and tables (Postfix smtp_tls_policy_maps)
  | 'ERR_POLICY_SYNTAX'
  | 'ERR_POLICY_NOT_MET'
  | 'ERR_POLICY_CONFIG'
  | 'ERR_DANE_REQUIRED'
  | 'ERR_DANE_TLSA_LOOKUP'
  | 'ERR_PKIX_UNTRUSTED'
  | 'ERR_PKIX_NAME_MISMATCH'
  // SMTP and STARTTLS (RFC 5321, RFC 3207)
  | 'ERR_SMTP_PROTOCOL'
  | 'ERR_SMTP_REPLY_SYNTAX'
  | 'ERR_SMTP_REPLY_TOO_LONG'
  | 'ERR_SMTP_REJECTED'
  | 'ERR_SMTP_RESPONSE_INJECTION'
  | 'ERR_SMTP_TIMEOUT'
  | 'ERR_SMTP_EOF'
  | 'ERR_STARTTLS_NOT_OFFERED'
  | 'ERR_STARTTLS_REFUSED'
  | 'ERR_TLS_HANDSHAKE'
  | 'ERR_STATE'
  // mail transaction (RFC 5321 §3.3, RFC 1870, RFC 6152, RFC 6531, RFC 4954)
  | 'ERR_SMTP_MESSAGE_TOO_BIG'
  | 'ERR_SMTP_EXTENSION_MISSING'
  | 'ERR_SMTP_BAD_ADDRESS'
  | 'ERR_SMTP_AUTH_FAILED'
  | 'ERR_SMTP_AUTH_UNAVAILABLE'
  | 'ERR_SMTP_AUTH_INSECURE'
  // DNS (adapters)
  | 'ERR_DNS_TIMEOUT'
  | 'ERR_DNS_MALFORMED'
  | 'ERR_DNS_SERVFAIL'
  | 'ERR_DNS_BOGUS'
  | 'ERR_DNS_REFUSED'
  | 'ERR_DNS_NULL_MX'
  | 'ERR_DNS_CNAME_LOOP'
  | 'ERR_DNS_CONFIG'
  | 'ERR_DNS_NETWORK'
  | 'ERR_DNS_NXDOMAIN'
  | 'ERR_DNS_NO_ADDRESS'
  // network (adapters)
  | 'ERR_CONNECT'
  | 'ERR_ABORTED'
  // MTA-STS and TLS-RPT (RFC 8461, RFC 8460)
  | 'ERR_MTA_STS_SYNTAX'
  | 'ERR_MTA_STS_FETCH'
  | 'ERR_TLSRPT_SYNTAX'
  | 'ERR_TLSRPT_DELIVERY'
  // policy stores (Redis)
  | 'ERR_STORE'
  // Postfix socketmap protocol (socketmap_table(5)): netstring framing and size limits
  | 'ERR_SOCKETMAP_SYNTAX'
  // REQUIRETLS (RFC 8689)
  | 'ERR_REQUIRETLS'
  // trust stores (CAfile, CApath, tafile; adapters)
  | 'ERR_TRUST_STORE'
  // caller's options
  | 'ERR_INVALID_ARGUMENT'

/**
 * RFC 8460 §4.3 result types, used when a failure is reported in a TLS-RPT report.
 * @public
 */
export type TlsRptResultType =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'tlsa-invalid'
  | 'dnssec-invalid'
  | 'dane-required'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid'

/** Options accepted by the {@link SmtpTlsError} constructor. @public */
export interface SmtpTlsErrorOptions {
  /** Whether the failure is temporary (message stays queued). Defaults to `true`: this library never bounces by accident. */
  temporary?: boolean
  /** RFC 3463 enhanced status code, e.g. `4.7.5`. With `temporary` (the default), a `5.x.x` becomes `4.x.x`. */
  enhancedStatus?: string
  /** RFC 8460 result type for TLS-RPT. */
  tlsrpt?: TlsRptResultType
  /** Where in the input the defect is (0-based offset, or 1-based line and column for text files). */
  position?: number
  line?: number
  column?: number
  cause?: unknown
}

/**
 * The one error class of this library.
 *
 * @example
 * ```ts
 * try { parseTlsaRecord('3 1 1 zz') } catch (e) {
 *   if (e instanceof SmtpTlsError && e.code === 'ERR_TLSA_SYNTAX') console.log(e.message)
 * }
 * ```
 * @public
 */
export class SmtpTlsError extends Error {
  readonly code: ErrorCode
  /** `true` means: defer and retry later; never bounce the message because of it. */
  readonly temporary: boolean
  readonly enhancedStatus?: string
  readonly tlsrpt?: TlsRptResultType
  readonly position?: number
  readonly line?: number
  readonly column?: number

  /**
   * Never throws, whatever it is given: a message that is not a string is described, and options
   * that cannot be read (a throwing getter or `Proxy` trap) are ignored, so an error can always be raised.
   */
  constructor(code: ErrorCode, message: string, options: SmtpTlsErrorOptions = {}) {
    const o = readErrorOptions(options)
    super(typeof message === 'string' ? message : safeString(message), o.cause === undefined ? undefined : { cause: o.cause })
    this.name = 'SmtpTlsError'
    this.code = code
    this.temporary = o.temporary ?? true
    if (o.enhancedStatus !== undefined) {
      // RFC 3463 §3.1: the class of a temporary failure is 4 ("persistent transient"). A server's 5.x.x
      // on a failure we treat as temporary (a 554 greeting: Postfix smtp_skip_5xx_greeting) becomes
      // 4.x.x, so a queue that defers on `enhancedStatus` never bounces; the message keeps the reply.
      const st = o.enhancedStatus
      this.enhancedStatus = this.temporary && typeof st === 'string' && st.startsWith('5.') ? `4.${st.slice(2)}` : st
    }
    if (o.tlsrpt !== undefined) this.tlsrpt = o.tlsrpt
    if (o.position !== undefined) this.position = o.position
    if (o.line !== undefined) this.line = o.line
    if (o.column !== undefined) this.column = o.column
  }
}

function safeString(v: unknown): string {
  try {
    return String(v)
  } catch {
    return `(${typeof v})`
  }
}

function readErrorOptions(options: unknown): SmtpTlsErrorOptions {
  if (typeof options !== 'object' || options === null) return {}
  try {
    const o = options as SmtpTlsErrorOptions
    const { temporary, enhancedStatus, tlsrpt, position, line, column, cause } = o
    const out: SmtpTlsErrorOptions = {}
    if (typeof temporary === 'boolean') out.temporary = temporary
    if (typeof enhancedStatus === 'string') out.enhancedStatus = enhancedStatus
    if (typeof tlsrpt === 'string') out.tlsrpt = tlsrpt
    if (typeof position === 'number') out.position = position
    if (typeof line === 'number') out.line = line
    if (typeof column === 'number') out.column = column
    if (cause !== undefined) out.cause = cause
    return out
  } catch {
    return {}
  }
}

/** Type guard: is `e` an {@link SmtpTlsError}, optionally with the given code? Never throws. @public */
export function isSmtpTlsError(e: unknown, code?: ErrorCode): e is SmtpTlsError {
  try {
    return e instanceof SmtpTlsError && (code === undefined || e.code === code)
  } catch {
    // a Proxy whose getPrototypeOf trap throws is no SmtpTlsError
    return false
  }
}
