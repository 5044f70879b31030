/**
 * Postfix `smtp_tls_policy_maps` tables (postconf(5) `smtp_tls_policy_maps`, TLS_README
 * "TLS policy table"), in the text form `postmap` reads (postmap(1), readlline): one entry per
 * logical line `key whitespace value`, `#` comment lines, blank lines ignored, and lines starting
 * with whitespace continuing the previous logical line.
 *
 * The value is a level followed by `name=value` attributes separated by whitespace or commas;
 * `{ name = value }` keeps whitespace inside a value (newer Postfix, `mystrtokq` with braces). Which attribute is valid at
 * which level, and how often, follows Postfix `smtp_tls_policy.c` `tls_policy_lookup_one`.
 */
import { coded, describeValue, invalidArgument, readOptions } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { hexValue } from '../bytes.js'
import { isSecurityLevel, mustPkix, type SecurityLevel } from './levels.js'
import { normalizeMatchName, normalizePolicyKey } from './names.js'

/** TLS protocol versions Postfix knows (`tls_protocol_mask`). @public */
export type TlsProtocolVersion = 'SSLv2' | 'SSLv3' | 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'

/** Protocol versions, oldest first. @public */
export const TLS_PROTOCOL_VERSIONS: readonly TlsProtocolVersion[] = Object.freeze([
  'SSLv2',
  'SSLv3',
  'TLSv1',
  'TLSv1.1',
  'TLSv1.2',
  'TLSv1.3',
] as const)

/**
 * A parsed `protocols=` value (postconf(5) `smtp_tls_protocols`): bounds (`>=TLSv1.2`, `<=TLSv1.3`),
 * exclusions (`!SSLv3`) and, in the legacy form, an explicit list of included versions.
 * @public
 */
export interface ProtocolPolicy {
  /** The value as written. */
  text: string
  min?: TlsProtocolVersion
  max?: TlsProtocolVersion
  /** Versions listed without `!` (legacy syntax): when non-empty, only these are allowed. */
  include: TlsProtocolVersion[]
  /** Versions listed with `!`. */
  exclude: TlsProtocolVersion[]
}

/** Cipher grades of `ciphers=` (postconf(5) `smtp_tls_mandatory_ciphers`). @public */
export type CipherGrade = 'export' | 'low' | 'medium' | 'high' | 'null'

/**
 * TLS-RPT facts an external policy source (such as an MTA-STS resolver that answers as a Postfix
 * policy table) attaches to its answer, for RFC 8460 reports: Postfix's `policy_type`,
 * `policy_ttl`, `policy_domain`, `policy_string`, `mx_host_pattern` and `policy_failure` attributes.
 * @public
 */
export interface ExternalPolicyInfo {
  /** `policy_type`: RFC 8460 §4.4 policy type of the source (`sts` or `no-policy-found`). */
  type: 'sts' | 'no-policy-found'
  /** `policy_ttl`: seconds. */
  ttl?: number
  /** `policy_domain`. */
  domain?: string
  /** `policy_string` (repeatable): the policy text lines, for the report. */
  strings: string[]
  /** `mx_host_pattern` (repeatable). */
  mxHostPatterns: string[]
  /** `policy_failure`: a failure the source already saw (RFC 8460 §4.3). */
  failure?: 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid' | 'validation-failure'
}

/** Where a policy came from. @public */
export interface PolicySource {
  /** The table key that matched (lower case), e.g. `.example.com` or `[mx.example.com]:587`. */
  key: string
  /** 1-based line of the entry. */
  line: number
}

/** A defect in a table entry kept by the lenient parser: looking the entry up defers delivery. @public */
export interface PolicyDefect {
  code: 'ERR_POLICY_SYNTAX'
  message: string
  line: number
  column: number
}

/**
 * A TLS policy: a table entry's level and attributes (postconf(5) `smtp_tls_policy_maps`).
 * @public
 */
export interface TlsPolicy {
  level: SecurityLevel
  /**
   * `match=`: at `fingerprint`, the pins (`|`-separated in the table); at `verify`/`secure`, the
   * match strategies `hostname`, `nexthop`, `dot-nexthop`, literal names and `.domain` suffixes
   * (`:`-separated). Repeated `match=` attributes append.
   */
  match?: string[]
  protocols?: ProtocolPolicy
  ciphers?: CipherGrade
  /** `exclude=`: cipher exclusions (OpenSSL names), as written. */
  exclude?: string
  /** `servername=`: the SNI name to send; `hostname` means the server's host name. */
  servername?: string
  /** `tafile=` (only at `verify`/`secure`): trust-anchor files, as paths (the parser does no I/O; `connect()` loads them). */
  tafile?: string[]
  /** `connection_reuse=yes|no`. */
  connectionReuse?: boolean
  /** `enable_rpk=yes|no` (RFC 7250 raw public keys). */
  enableRpk?: boolean
  /** TLS-RPT facts from an external policy source (Postfix `policy_type=…` and related attributes). */
  external?: ExternalPolicyInfo
  /** The table entry that produced this policy. */
  source?: PolicySource
  /**
   * Set only by the lenient parser (`onError: 'defer'`): the entry is defective. Such a policy has
   * `level: 'secure'` so that a caller that ignores `defect` can only fail closed; `resolvePolicy`
   * turns it into a deferral (Postfix: an invalid policy defers delivery, 4.7.5).
   */
  defect?: PolicyDefect
}

/** A table entry. @public */
export interface PolicyTableEntry {
  key: string
  line: number
  policy: TlsPolicy
}

/** Something Postfix accepts with a warning. @public */
export interface PolicyWarning {
  line: number
  column: number
  message: string
}

/** A parsed policy table. @public */
export interface PolicyTable {
  /** Entries by lower-case key, in table order. */
  readonly entries: ReadonlyMap<string, PolicyTableEntry>
  /** What Postfix only warns about (duplicate keys, attributes ignored at `none`). */
  readonly warnings: readonly PolicyWarning[]
  /** Lenient mode only: every defect found (those tied to an entry also make it defer). */
  readonly errors: readonly SmtpTlsError[]
}

/** Options of {@link parsePolicyTable}. @public */
export interface ParsePolicyTableOptions {
  /**
   * `throw` (default): the first defect throws `ERR_POLICY_SYNTAX`. `defer`: a defective entry is
   * kept and its lookup yields a policy with `defect` set, which defers delivery to that
   * destination only (Postfix's behaviour: the table loads, the bad entry defers); defects not tied
   * to a key are collected in `errors`.
   */
  onError?: 'throw' | 'defer'
}

const CIPHER_GRADES: readonly CipherGrade[] = ['export', 'low', 'medium', 'high', 'null']
const MAX_TABLE_CHARS = 16 * 1024 * 1024

/** A defect at a position of the logical line. */
class Defect extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message)
  }
}

interface Segment {
  /** offset of this physical line's text in the logical line */
  start: number
  line: number
}

/**
 * Map an offset in a logical line to 1-based line and column. `segments` are sorted by `start`, so a
 * binary search: a linear scan made every warning cost O(continuation lines), quadratic in all.
 */
function position(segments: readonly Segment[], offset: number): { line: number; column: number } {
  const seg = segmentAt(segments, offset)
  return { line: seg.line, column: offset - seg.start + 1 }
}

/** The physical line (segment) holding `offset`. */
function segmentAt(segments: readonly Segment[], offset: number): Segment {
  let lo = 0
  let hi = segments.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (segments[mid]!.start <= offset) lo = mid
    else hi = mid - 1
  }
  return segments[lo]!
}

interface Token {
  text: string
  offset: number
}

const isSep = (c: string): boolean => c === ' ' || c === '\t' || c === ',' || c === '\n' || c === '\r' || c === '\v' || c === '\f'

/** Postfix `mystrtokq(&s, CHARS_COMMA_SP, CHARS_BRACE)`: split on whitespace and commas, `{…}` kept whole. */
function tokenize(s: string, base: number, sink: (text: string, offset: number) => void): void {
  let i = 0
  while (i < s.length) {
    while (i < s.length && isSep(s[i]!)) i++
    if (i >= s.length) break
    const start = i
    let depth = 0
    while (i < s.length) {
      const c = s[i]!
      if (c === '{') depth++
      else if (c === '}') {
        if (depth === 0) throw new Defect(`unbalanced "}" in "${s.slice(start)}"`, base + i)
        depth--
      } else if (depth === 0 && isSep(c)) break
      i++
    }
    if (depth > 0) throw new Defect(`missing "}" in "${s.slice(start)}"`, base + start)
    sink(s.slice(start, i), base + start)
  }
}

/** Postfix `split_nameval` (after `extpar` for `{ … }`): `name=value`, whitespace around both trimmed. */
function splitNameValue(tok: Token): { name: string; value: string; valueOffset: number } {
  let t = tok.text
  let off = tok.offset
  if (t.startsWith('{')) {
    if (!t.endsWith('}')) throw new Defect(`malformed attribute/value pair "${t}": text after "}"`, off)
    t = t.slice(1, -1)
    off += 1
    // Postfix extpar(EXTPAR_FLAG_NORMAL_WS): line breaks and tabs inside braces become spaces.
    t = t.replace(/\s/g, ' ')
  }
  const eq = t.indexOf('=')
  if (eq < 0) throw new Defect(`malformed attribute/value pair "${tok.text}": missing "=" after attribute name`, tok.offset)
  const name = t.slice(0, eq).trim()
  if (name.length === 0) throw new Defect(`malformed attribute/value pair "${tok.text}": missing attribute name`, tok.offset)
  const raw = t.slice(eq + 1)
  const lead = raw.length - raw.trimStart().length
  return { name, value: raw.trim(), valueOffset: off + eq + 1 + lead }
}

/** Postfix `valid_hostname`: LDH labels (underscore tolerated) of 1-63 octets, at most 255, not all-numeric. */
export function isValidHostname(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false
  const labels = name.split('.')
  let alpha = false
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) return false
    if (!/^[A-Za-z0-9_-]+$/.test(l) || l.startsWith('-') || l.endsWith('-')) return false
    if (/[A-Za-z_-]/.test(l)) alpha = true
  }
  // "numeric hostname" is rejected (it would be an address).
  return alpha
}

function parseVersion(name: string, at: number): TlsProtocolVersion {
  for (const v of TLS_PROTOCOL_VERSIONS) if (v.toLowerCase() === name.toLowerCase()) return v
  throw new Defect(`unknown TLS protocol "${name}" (expected one of ${TLS_PROTOCOL_VERSIONS.join(', ')})`, at)
}

/**
 * Parse a `protocols=` value (postconf(5) `smtp_tls_protocols`): `>=V`, `<=V`, `!V` and `V`,
 * separated by `:`, whitespace or commas. An empty value lifts every restriction (as in Postfix).
 */
function parseProtocols(value: string, at: number): ProtocolPolicy {
  const p: ProtocolPolicy = { text: value, include: [], exclude: [] }
  let i = 0
  for (const part of value.split(/[:\s,]/)) {
    const off = at + i
    i += part.length + 1
    if (part.length === 0) continue
    if (part.startsWith('>=')) {
      if (p.min !== undefined) throw new Defect(`protocols: more than one ">=" bound in "${value}"`, off)
      p.min = parseVersion(part.slice(2), off)
    } else if (part.startsWith('<=')) {
      if (p.max !== undefined) throw new Defect(`protocols: more than one "<=" bound in "${value}"`, off)
      p.max = parseVersion(part.slice(2), off)
    } else if (part.startsWith('!')) p.exclude.push(parseVersion(part.slice(1), off))
    else p.include.push(parseVersion(part, off))
  }
  if (p.min !== undefined && p.max !== undefined && TLS_PROTOCOL_VERSIONS.indexOf(p.min) > TLS_PROTOCOL_VERSIONS.indexOf(p.max)) {
    throw new Defect(`protocols: ">=${p.min}" is above "<=${p.max}": no protocol is left`, at)
  }
  return p
}

/** Is a negotiated protocol (`TLSv1.3`, as Node's `getProtocol()` reports it) allowed by `p`? @public */
export function protocolAllowed(p: ProtocolPolicy, negotiated: string): boolean {
  try {
    return protocolAllowedChecked(p, negotiated)
  } catch (e) {
    throw coded(e, 'protocolAllowed')
  }
}

function protocolAllowedChecked(p: ProtocolPolicy, negotiated: string): boolean {
  if (typeof p !== 'object' || p === null || !Array.isArray(p.include) || !Array.isArray(p.exclude)) {
    throw invalidArgument(`protocolAllowed needs a ProtocolPolicy, got ${describeValue(p)}`)
  }
  if (typeof negotiated !== 'string') throw invalidArgument(`negotiated protocol must be a string, got ${describeValue(negotiated)}`)
  const idx = TLS_PROTOCOL_VERSIONS.findIndex((v) => v.toLowerCase() === negotiated.toLowerCase())
  if (idx < 0) return false
  const v = TLS_PROTOCOL_VERSIONS[idx]!
  if (p.min !== undefined && idx < TLS_PROTOCOL_VERSIONS.indexOf(p.min)) return false
  if (p.max !== undefined && idx > TLS_PROTOCOL_VERSIONS.indexOf(p.max)) return false
  if (p.exclude.includes(v)) return false
  if (p.include.length > 0 && !p.include.includes(v)) return false
  return true
}

/** Syntax of one pin: hex octets, optionally separated by single colons (Postfix `tls_dane_add_fpt_digests`). */
function checkPinSyntax(pin: string, at: number): void {
  const colons = pin.includes(':')
  let i = 0
  let octets = 0
  while (i < pin.length) {
    if (i + 1 >= pin.length || hexValue(pin.charCodeAt(i)) < 0 || hexValue(pin.charCodeAt(i + 1)) < 0) {
      throw new Defect(`malformed fingerprint "${pin}": expected hexadecimal octets`, at)
    }
    i += 2
    octets++
    if (colons && i < pin.length) {
      if (pin[i] !== ':' || i + 1 >= pin.length) throw new Defect(`malformed fingerprint "${pin}": separate every octet with one colon`, at)
      i++
    }
  }
  // md5, sha1, sha256, sha512 (postconf(5) smtp_tls_fingerprint_digest)
  if (![16, 20, 32, 64].includes(octets))
    throw new Defect(`malformed fingerprint "${pin}": ${octets} octets is no supported digest length`, at)
}

/** A `match=` name that is no valid DNS name can never match (x509/names.ts): a defect, never silently dropped. */
function invalidMatchName(name: string, at: number): never {
  throw new Defect(`"match=${name}" is neither hostname, nexthop, dot-nexthop nor a valid DNS name`, at)
}

/** Parse a policy value (`level attr=value …`) into a policy. `warn` receives Postfix warnings. */
function parseValue(value: string, base: number, warn: (message: string, offset: number) => void): TlsPolicy {
  let first: Token | undefined
  let none = false
  const attrs: Token[] = []
  tokenize(value, base, (text, offset) => {
    if (first === undefined) {
      first = { text, offset }
      none = text.toLowerCase() === 'none'
    } else if (none) {
      // Postfix warns and ignores attributes when TLS is disabled. Warned as found, no token kept: a
      // table may hold millions of them. (A later tokenizer defect discards these warnings.)
      warn(`ignoring attribute "${text}" with TLS disabled`, offset)
    } else attrs.push({ text, offset })
  })
  // Postfix: "invalid empty policy"
  if (first === undefined) throw new Defect('invalid empty policy', base)
  const levelName = first.text.toLowerCase()
  if (!isSecurityLevel(levelName)) throw new Defect(`invalid security level "${first.text}"`, first.offset)
  const level: SecurityLevel = levelName
  const policy: TlsPolicy = { level }
  if (level === 'none') return policy
  const once = (name: string, present: boolean, at: number): void => {
    if (present) throw new Defect(`attribute "${name}" is specified multiple times`, at)
  }
  // Postfix EXT_POLICY_* attributes: only together with policy_type.
  const ext: Partial<ExternalPolicyInfo> & { strings: string[]; mxHostPatterns: string[] } = { strings: [], mxHostPatterns: [] }
  let extAt: number | undefined
  for (const tok of attrs) {
    const { name: rawName, value: v, valueOffset } = splitNameValue(tok)
    const name = rawName.toLowerCase()
    const at = tok.offset
    switch (name) {
      case 'ciphers': {
        if (v.length === 0) throw new Defect(`attribute "ciphers" has empty value`, at)
        once(name, policy.ciphers !== undefined, at)
        const g = v.toLowerCase() as CipherGrade
        // Postfix checks the grade when the connection starts (and defers); checked here instead.
        if (!CIPHER_GRADES.includes(g)) throw new Defect(`invalid cipher grade "${v}" (expected ${CIPHER_GRADES.join(', ')})`, valueOffset)
        policy.ciphers = g
        break
      }
      case 'protocols':
        once(name, policy.protocols !== undefined, at)
        policy.protocols = parseProtocols(v, valueOffset)
        break
      case 'servername':
        once(name, policy.servername !== undefined, at)
        if (!isValidHostname(v)) throw new Defect(`"servername=${v}" specifies an invalid hostname`, valueOffset)
        policy.servername = v === 'hostname' ? v : v.toLowerCase()
        break
      case 'match': {
        if (v.length === 0) throw new Defect(`attribute "match" has empty value`, at)
        if (level === 'fingerprint') {
          const match = (policy.match ??= [])
          let off = valueOffset
          for (const pin of v.split('|')) {
            if (pin.length > 0) {
              checkPinSyntax(pin, off)
              // One push per item: push(...pins) overflows the stack on a long list.
              match.push(pin)
            }
            off += pin.length + 1
          }
        } else if (level === 'verify' || level === 'secure') {
          const match = (policy.match ??= [])
          // argv_split(val, ":") skips empty fields.
          for (const x of v.split(':')) if (x.length > 0) match.push(normalizeMatchName(x) ?? invalidMatchName(x, valueOffset))
        } else {
          throw new Defect(`attribute "match" invalid at security level "${level}"`, at)
        }
        break
      }
      case 'exclude':
        once(name, policy.exclude !== undefined, at)
        policy.exclude = v
        break
      case 'tafile':
        // Only makes sense with CA-based trust (Postfix: TLS_MUST_PKIX).
        if (!mustPkix(level)) throw new Defect(`attribute "tafile" invalid at security level "${level}"`, at)
        if (v.length === 0) throw new Defect(`attribute "tafile" has empty value`, at)
        ;(policy.tafile ??= []).push(v)
        break
      case 'connection_reuse':
      case 'enable_rpk': {
        const b = v.toLowerCase()
        if (b !== 'yes' && b !== 'no') throw new Defect(`attribute "${name}" has bad value: "${v}"`, valueOffset)
        // last one wins
        if (name === 'connection_reuse') policy.connectionReuse = b === 'yes'
        else policy.enableRpk = b === 'yes'
        // Issue 17: parsed for Postfix compatibility, but nothing here acts on them.
        if (b === 'yes') {
          warn(
            name === 'enable_rpk'
              ? `attribute "enable_rpk=yes" has no effect here: RFC 7250 raw public keys are not negotiated`
              : `attribute "connection_reuse=yes" has no effect here: each connect() opens its own connection`,
            at,
          )
        }
        break
      }
      case 'policy_type': {
        once(name, ext.type !== undefined, at)
        const t = v.toLowerCase()
        if (t !== 'sts' && t !== 'no-policy-found') throw new Defect(`attribute "policy_type" has an unexpected value: "${v}"`, valueOffset)
        ext.type = t
        break
      }
      case 'policy_ttl':
        extAt ??= at
        once(name, ext.ttl !== undefined, at)
        // Postfix: alldig() and a value that fits a long.
        if (!/^[0-9]{1,18}$/.test(v)) throw new Defect(`attribute "policy_ttl" has a malformed value: "${v}"`, valueOffset)
        ext.ttl = Number(v)
        break
      case 'policy_domain':
        extAt ??= at
        once(name, ext.domain !== undefined, at)
        if (!isValidHostname(v)) throw new Defect(`attribute "policy_domain" has a malformed value: "${v}"`, valueOffset)
        ext.domain = v.toLowerCase()
        break
      case 'policy_string':
        extAt ??= at
        ext.strings.push(v)
        break
      case 'mx_host_pattern':
        extAt ??= at
        ext.mxHostPatterns.push(v)
        break
      case 'policy_failure': {
        extAt ??= at
        once(name, ext.failure !== undefined, at)
        const f = v.toLowerCase()
        if (f !== 'sts-policy-fetch-error' && f !== 'sts-policy-invalid' && f !== 'sts-webpki-invalid' && f !== 'validation-failure') {
          throw new Defect(`attribute "policy_failure" has an unexpected value: "${v}"`, valueOffset)
        }
        ext.failure = f
        break
      }
      default:
        throw new Defect(`invalid attribute name: "${rawName}"`, at)
    }
  }
  if (ext.type !== undefined) {
    const e: ExternalPolicyInfo = { type: ext.type, strings: ext.strings, mxHostPatterns: ext.mxHostPatterns }
    if (ext.ttl !== undefined) e.ttl = ext.ttl
    if (ext.domain !== undefined) e.domain = ext.domain
    if (ext.failure !== undefined) e.failure = ext.failure
    policy.external = e
  } else if (extAt !== undefined) {
    throw new Defect(
      'built-in policy has unexpected attribute policy_ttl, policy_domain, policy_string, mx_host_pattern or policy_failure',
      extAt,
    )
  }
  return policy
}

/**
 * Parse a policy table in Postfix `smtp_tls_policy_maps` syntax.
 *
 * - Keys are folded to lower case (Postfix lookup tables are case-insensitive).
 * - A duplicate key is a warning and the first entry wins (postmap "duplicate entry").
 * - Attributes at level `none` are a warning and ignored (Postfix "ignoring attribute … with TLS disabled").
 * - Every other defect Postfix treats as an invalid policy is `ERR_POLICY_SYNTAX` with 1-based
 *   `line` and `column`. Two defects Postfix only warns about and then skips are errors here, because
 *   skipping them would silently apply the default level: a key without a value, and text that starts
 *   with whitespace before any entry.
 *
 * @throws {@link SmtpTlsError} `ERR_POLICY_SYNTAX` (with `onError: 'throw'`, the default).
 * @example
 * ```ts
 * const table = parsePolicyTable(`
 * example.com        secure match=nexthop:dot-nexthop protocols=>=TLSv1.2
 * .example.net       dane-only
 * [mx.example.org]:587 fingerprint
 *     match=3F:1A:…|9C:0B:…
 * `)
 * lookupPolicy(table, 'mail.example.net')?.level // 'dane-only'
 * ```
 * @public
 */
export function parsePolicyTable(text: string, opts: ParsePolicyTableOptions = {}): PolicyTable {
  try {
    return parsePolicyTableChecked(text, opts)
  } catch (e) {
    throw coded(e, 'parsePolicyTable')
  }
}

function parsePolicyTableChecked(text: string, opts: ParsePolicyTableOptions = {}): PolicyTable {
  if (typeof text !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'policy table text must be a string')
  const mode = readOptions(opts, 'parsePolicyTable options', ['onError']).onError ?? 'throw'
  if (mode !== 'throw' && mode !== 'defer')
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `onError must be "throw" or "defer", got ${describeValue(mode)}`)
  if (text.length > MAX_TABLE_CHARS) {
    throw new SmtpTlsError('ERR_POLICY_SYNTAX', `policy table is larger than ${MAX_TABLE_CHARS} characters`, {
      line: 1,
      column: 1,
      temporary: true,
    })
  }
  const entries = new Map<string, PolicyTableEntry>()
  const warnings: PolicyWarning[] = []
  const errors: SmtpTlsError[] = []
  // Warnings are kept up to MAX_WARNINGS, then counted: a table with millions of ignored attributes
  // must not keep millions of objects (issue 10 §3: time and memory stay linear and bounded).
  let suppressed = 0
  let lastSuppressedLine = 0

  const fail = (message: string, line: number, column: number): SmtpTlsError =>
    // A defective policy defers delivery (Postfix MARK_INVALID: 4.7.5), hence temporary.
    new SmtpTlsError('ERR_POLICY_SYNTAX', `policy table line ${line} column ${column}: ${message}`, {
      line,
      column,
      temporary: true,
      enhancedStatus: '4.7.5',
    })

  // Assemble logical lines (postmap readlline).
  const physical = text.split('\n')
  type Logical = { text: string; segments: Segment[] }
  const logical: Logical[] = []
  let cur: Logical | undefined
  for (let n = 0; n < physical.length; n++) {
    let l = physical[n]!
    if (l.endsWith('\r')) l = l.slice(0, -1)
    const trimmed = l.trimStart()
    if (trimmed.length === 0 || trimmed.startsWith('#')) continue // blank and comment lines, also inside continuations
    if (l.length !== trimmed.length) {
      if (cur === undefined) {
        const e = fail('text starts with whitespace but continues no entry', n + 1, 1)
        if (mode === 'throw') throw e
        errors.push(e)
        continue
      }
      cur.segments.push({ start: cur.text.length + 1, line: n + 1 })
      cur.text += '\n' + l
      continue
    }
    cur = { text: l, segments: [{ start: 0, line: n + 1 }] }
    logical.push(cur)
  }

  for (const lg of logical) {
    const m = /^(\S+)(\s*)/.exec(lg.text)!
    const keyRaw = m[1]!
    const key = normalizePolicyKey(keyRaw)
    const valueStart = m[0].length
    const where = position(lg.segments, 0)
    let policy: TlsPolicy
    const localWarnings: PolicyWarning[] = []
    let localSuppressed = 0
    let localLastLine = 0
    try {
      if (valueStart >= lg.text.length || lg.text.slice(valueStart).trim().length === 0) {
        throw new Defect(`expected format: key whitespace value (no policy for "${keyRaw}")`, keyRaw.length)
      }
      policy = parseValue(lg.text.slice(valueStart), valueStart, (message, offset) => {
        const seg = segmentAt(lg.segments, offset)
        if (warnings.length + localWarnings.length < MAX_WARNINGS) {
          localWarnings.push({ line: seg.line, column: offset - seg.start + 1, message: `${keyRaw}: ${message}` })
        } else {
          localSuppressed++
          localLastLine = seg.line
        }
      })
    } catch (e) {
      if (!(e instanceof Defect)) throw e
      localWarnings.length = 0
      localSuppressed = 0
      const p = position(lg.segments, e.offset)
      const err = fail(`"${keyRaw}": ${e.message}`, p.line, p.column)
      if (mode === 'throw') throw err
      errors.push(err)
      policy = { level: 'secure', defect: { code: 'ERR_POLICY_SYNTAX', message: err.message, line: p.line, column: p.column } }
    }
    if (entries.has(key)) {
      // postmap: "duplicate entry", the first one is kept.
      if (warnings.length < MAX_WARNINGS) {
        warnings.push({ ...where, message: `duplicate entry "${keyRaw}" ignored (first at line ${entries.get(key)!.line})` })
      } else {
        suppressed++
        lastSuppressedLine = where.line
      }
      continue
    }
    for (const w of localWarnings) warnings.push(w)
    if (localSuppressed > 0) {
      suppressed += localSuppressed
      lastSuppressedLine = localLastLine
    }
    policy.source = { key, line: where.line }
    entries.set(key, { key, line: where.line, policy })
  }
  if (suppressed > 0) {
    warnings.push({
      line: lastSuppressedLine,
      column: 1,
      message: `${suppressed} more warnings not listed (at most ${MAX_WARNINGS} are kept)`,
    })
  }
  return { entries, warnings, errors }
}

/** How many warnings `parsePolicyTable` lists before it only counts them (one last warning says how many more). */
const MAX_WARNINGS = 1000
