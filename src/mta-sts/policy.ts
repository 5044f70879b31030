/** The MTA-STS policy file, `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.2). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { normalizeDnsName } from '../x509/names.js'
import { EXT_NAME } from '../txt-record.js'
import type { MtaStsExtension } from './record.js'
import { MX_NORMALIZED } from './match.js'

/** RFC 8461 §5: `enforce` refuses failing MX hosts, `testing` delivers and reports, `none` is no policy. @public */
export type MtaStsMode = 'enforce' | 'testing' | 'none'

/** A parsed MTA-STS policy. @public */
export interface MtaStsPolicy {
  version: 'STSv1'
  mode: MtaStsMode
  /** Seconds the policy may be cached (0-31557600, RFC 8461 §3.2). */
  maxAge: number
  /** MX patterns, lower-case A-labels: `mx.example.com` or `*.example.com` (RFC 8461 §4.1). Frozen by `parseMtaStsPolicy`. */
  mx: string[]
  /** Unknown keys (RFC 8461 §3.2: ignored), in file order. */
  extensions: MtaStsExtension[]
  /** The policy's non-empty lines as received, without line terminators: RFC 8460 §4.4 `policy-string`. */
  lines: string[]
}

/** RFC 8461 §3.2: "max_age ... maximum value of 31557600" (one year). @public */
export const MTA_STS_MAX_AGE_LIMIT = 31557600
/** Larger bodies are refused (mox and the fetcher cap the body at 64 KiB). */
const MAX_POLICY_LENGTH = 64 * 1024

function syntax(message: string, line: number): never {
  throw new SmtpTlsError('ERR_MTA_STS_SYNTAX', `invalid MTA-STS policy: ${message} (line ${line})`, { line })
}

/** RFC 5321 §4.1.2 `sub-domain = Let-dig [Ldh-str]`: letters, digits, inner hyphens, 1-63 octets. */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * Validate and normalise one `mx` value: `["*."] Domain`, A-labels only (RFC 8461 §3.2: IDNs are given
 * as A-labels). Returns the lower-case pattern, or `undefined` when it is not a valid pattern.
 */
export function normalizeMxPattern(value: string): string | undefined {
  if (/[^\x21-\x7e]/.test(value)) return undefined // A-labels only: no U-labels, no spaces or controls
  const wild = value.startsWith('*.')
  const name = normalizeDnsName(wild ? value.slice(2) : value)
  if (name === undefined) return undefined
  for (const label of name.split('.')) if (!LDH_LABEL.test(label)) return undefined
  return wild ? `*.${name}` : name
}

/**
 * The same text as one flat string: a pattern built by concatenation is a rope (a V8 cons string) that
 * every character read on the warm path would walk (issue 13: the wildcard comparison was the hottest
 * line of a decision). Joining the characters builds a sequential string; done once per parse.
 */
function flatString(s: string): string {
  return s.split('').join('')
}

const VCHAR_LINE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/ // RFC 8461 §3.2 sts-policy-vchar, SP and HTAB

/**
 * Parse an MTA-STS policy (RFC 8461 §3.2).
 *
 * - Lines end in LF or CRLF; empty lines are ignored (a tolerance: the grammar has none).
 * - `version: STSv1`, `mode` (`enforce`, `testing`, `none`) and `max_age` (at most 31557600) are
 *   required; at least one `mx` unless the mode is `none`.
 * - For a repeated key other than `mx`, the first occurrence wins; unknown keys are kept in
 *   `extensions` and otherwise ignored. Every line must still be valid.
 * - `mx` values must be A-labels, optionally with a leading `*.`; they are stored in lower case.
 *
 * @throws {@link SmtpTlsError} `ERR_MTA_STS_SYNTAX` with the `line`, `ERR_INVALID_ARGUMENT` for a non-string.
 * @example
 * ```ts
 * const p = parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n')
 * p.mode // 'enforce'
 * ```
 * @public
 */
export function parseMtaStsPolicy(text: string): MtaStsPolicy {
  if (typeof text !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'an MTA-STS policy must be a string')
  if (text.length > MAX_POLICY_LENGTH) syntax(`longer than ${MAX_POLICY_LENGTH} characters`, 1)
  let version: string | undefined
  let mode: MtaStsMode | undefined
  let maxAge: number | undefined
  const mx: string[] = []
  const extensions: MtaStsExtension[] = []
  const lines: string[] = []
  const raw = text.split('\n')
  for (let i = 0; i < raw.length; i++) {
    let line = raw[i]!
    if (line.endsWith('\r')) line = line.slice(0, -1) // RFC 8461 §3.2: sts-policy-term = LF / CRLF
    if (line.length === 0) continue
    const n = i + 1
    if (!VCHAR_LINE.test(line)) syntax('control character', n)
    const colon = line.indexOf(':')
    if (colon <= 0) syntax('expected "key: value"', n)
    const key = line.slice(0, colon)
    if (!EXT_NAME.test(key)) syntax(`invalid key ${JSON.stringify(key)}`, n)
    // sts-policy-field-delim = ":" *WSP; trailing *WSP after a field
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')
    if (value.length === 0) syntax(`empty value for ${key}`, n)
    if (value.includes('\t')) syntax(`tab inside the value of ${key}`, n) // sts-policy-ext-value: SP only
    lines.push(line)
    switch (key) {
      case 'version':
        if (value !== 'STSv1') syntax(`version must be STSv1, got ${JSON.stringify(value)}`, n)
        version ??= value
        break
      case 'mode':
        if (value !== 'enforce' && value !== 'testing' && value !== 'none') {
          syntax(`mode must be enforce, testing or none, got ${JSON.stringify(value)}`, n)
        }
        mode ??= value
        break
      case 'max_age': {
        // sts-policy-max-age-value = 1*10(DIGIT), at most 31557600
        if (!/^[0-9]{1,10}$/.test(value)) syntax('max_age must be 1-10 digits', n)
        const v = Number(value)
        if (v > MTA_STS_MAX_AGE_LIMIT) syntax(`max_age ${v} exceeds ${MTA_STS_MAX_AGE_LIMIT}`, n)
        maxAge ??= v
        break
      }
      case 'mx': {
        const p = normalizeMxPattern(value)
        if (p === undefined) syntax(`invalid mx pattern ${JSON.stringify(value)}`, n)
        if (!mx.includes(p)) mx.push(flatString(p))
        break
      }
      default:
        extensions.push({ name: key, value })
    }
  }
  const last = raw.length
  if (version === undefined) syntax('no version', last)
  if (mode === undefined) syntax('no mode', last)
  if (maxAge === undefined) syntax('no max_age', last)
  if (mode !== 'none' && mx.length === 0) syntax(`mode ${mode} needs at least one mx`, last)
  // Normalised and frozen: mtaStsMatchesMx then compares the patterns as they are (see MX_NORMALIZED).
  Object.defineProperty(mx, MX_NORMALIZED, { value: true })
  Object.freeze(mx)
  const policy: MtaStsPolicy = { version: 'STSv1', mode, maxAge, mx, extensions, lines }
  // decideMtaStsCache keeps this policy's shared fresh decisions here (issue 13: no allocation per decision).
  Object.defineProperty(policy, FRESH_CELL, { value: { expiresAt: NaN, use: undefined, refresh: undefined } satisfies FreshCell })
  return policy
}

/**
 * A mutable cell, non-enumerable on each policy from parseMtaStsPolicy, where decideMtaStsCache keeps
 * the two frozen `fresh` decisions for the policy's current expiry.
 */
export const FRESH_CELL: unique symbol = Symbol('mta-sts fresh decisions')
/** See {@link FRESH_CELL}. */
export interface FreshCell {
  /** The expiry the decisions were built for; `NaN` before the first. */
  expiresAt: number
  use: unknown
  refresh: unknown
}

/** Format a policy as a file body, one `key: value` per line, CRLF-free, ending in LF. @public */
export function formatMtaStsPolicy(policy: Pick<MtaStsPolicy, 'mode' | 'maxAge' | 'mx' | 'extensions'>): string {
  try {
    return formatMtaStsPolicyChecked(policy)
  } catch (e) {
    throw coded(e, 'formatMtaStsPolicy')
  }
}

function formatMtaStsPolicyChecked(policy: Pick<MtaStsPolicy, 'mode' | 'maxAge' | 'mx' | 'extensions'>): string {
  let s = `version: STSv1\nmode: ${policy.mode}\n`
  for (const m of policy.mx) s += `mx: ${m}\n`
  s += `max_age: ${policy.maxAge}\n`
  for (const e of policy.extensions) s += `${e.name}: ${e.value}\n`
  return s
}
