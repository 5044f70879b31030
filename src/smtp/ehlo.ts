/**
 * EHLO reply parsing (RFC 5321 §4.1.1.1): the server's domain, then one extension per line.
 */
import { coded, describeValue, invalidArgument } from '../args.js'
import type { SmtpReply } from './reply.js'

/**
 * The extensions this library acts on, as a typed record (keyword → advertised).
 * @public
 */
export interface KnownExtensions {
  /** RFC 3207 */
  readonly STARTTLS: boolean
  /** RFC 8689: honour it only when advertised after STARTTLS (Postfix, mox). */
  readonly REQUIRETLS: boolean
  /** RFC 2920 */
  readonly PIPELINING: boolean
  /** RFC 6152 */
  readonly '8BITMIME': boolean
  /** RFC 6531 */
  readonly SMTPUTF8: boolean
  /** RFC 2034 */
  readonly ENHANCEDSTATUSCODES: boolean
}

/**
 * What an EHLO reply says about the server.
 * @public
 */
export interface EhloCapabilities {
  /** The domain (or address literal) the server gives on the first line. */
  readonly domain: string
  /** The rest of the first line after the domain (the greet text), may be empty. */
  readonly greet: string
  /**
   * Every extension keyword, upper-cased (keywords are case-insensitive, RFC 5321 §2.4), mapped to its
   * parameters as sent (`SIZE` → `40960000`, `AUTH` → `PLAIN LOGIN`; `''` when none). The first
   * occurrence of a repeated keyword wins.
   */
  readonly extensions: ReadonlyMap<string, string>
  /** The extensions this library acts on. */
  readonly known: KnownExtensions
  /** RFC 1870 SIZE limit when advertised with a valid number (`0` means no fixed limit). */
  readonly size?: number
  /** RFC 4954 AUTH mechanisms, upper-cased (also from the obsolete `AUTH=` form). */
  readonly auth: readonly string[]
  /** Extension lines that are not `ehlo-keyword *(SP ehlo-param)`; ignored, kept for transcripts. */
  readonly ignored: readonly string[]
}

/**
 * Check one extension line in a single pass (RFC 5321 §4.1.1.1):
 * `ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`, then `*(SP ehlo-param)` with
 * `ehlo-param = 1*(%d33-126)`. Returns the keyword's end (the first space or the line's end), or -1
 * when the line breaks the grammar; bit 30 is set when the keyword has lower-case letters.
 */
function scanLine(line: string): number {
  const n = line.length
  let lower = 0
  let i = 0
  for (; i < n; i++) {
    const c = line.charCodeAt(i)
    if (c === 0x20) break
    if (c >= 0x61 && c <= 0x7a) lower = 1 << 30
    else if (!((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c === 0x2d && i > 0))) return -1
  }
  if (i === 0) return -1
  for (let j = i + 1; j < n; j++) {
    const c = line.charCodeAt(j)
    if (c !== 0x20 && (c < 33 || c > 126)) return -1
  }
  return i | lower
}

/** RFC 1870 §4: size-param = 1*DIGIT (up to 15 digits, so the number stays exact). */
function parseSize(p: string): number | undefined {
  if (p.length === 0 || p.length > 15) return undefined
  let v = 0
  for (let i = 0; i < p.length; i++) {
    const d = p.charCodeAt(i) - 0x30
    if (d < 0 || d > 9) return undefined
    v = v * 10 + d
  }
  return v
}

/**
 * Parse the capabilities of an EHLO reply (its lines, or the {@link SmtpReply}).
 *
 * Keywords are case-insensitive and stored upper-cased; parameters are kept as sent. A line that is
 * not a valid `ehlo-line` (for example a STARTTLS line overwritten by a middlebox as `XXXXXXXA` is valid
 * and simply unknown; `8BITMIME=x y` with a bad character is not) is ignored, never fatal.
 *
 * @example
 * ```ts
 * const caps = parseEhloCapabilities(['mx.example.com Hello', 'SIZE 40960000', 'AUTH PLAIN LOGIN', 'starttls'])
 * caps.known.STARTTLS // true
 * caps.extensions.get('AUTH') // 'PLAIN LOGIN'
 * caps.size // 40960000
 * ```
 * @public
 */
export function parseEhloCapabilities(reply: SmtpReply | readonly string[]): EhloCapabilities {
  try {
    return parseEhloCapabilitiesChecked(reply)
  } catch (e) {
    throw coded(e, 'parseEhloCapabilities')
  }
}

function parseEhloCapabilitiesChecked(reply: SmtpReply | readonly string[]): EhloCapabilities {
  const lines: unknown = Array.isArray(reply) ? reply : typeof reply === 'object' && reply !== null ? (reply as SmtpReply).lines : undefined
  if (!Array.isArray(lines)) {
    throw invalidArgument(`parseEhloCapabilities needs an SmtpReply or its lines, got ${describeValue(reply)}`)
  }
  for (let i = 0; i < lines.length; i++) {
    if (typeof lines[i] !== 'string') throw invalidArgument(`EHLO reply line ${i} is ${describeValue(lines[i])}, not a string`)
  }
  return capabilities(lines as readonly string[])
}

function capabilities(lines: readonly string[]): EhloCapabilities {
  const head = lines[0] ?? ''
  const sp = head.indexOf(' ')
  const domain = sp < 0 ? head : head.slice(0, sp)
  const greet = sp < 0 ? '' : head.slice(sp + 1)
  const extensions = new Map<string, string>()
  let ignored: string[] | undefined
  // Mechanisms of every AUTH line, merged once at the end: re-splitting the merged text on each
  // repeated AUTH line was quadratic in the number of lines.
  let authWords: Set<string> | undefined
  for (let i = 1; i < lines.length; i++) {
    let line = lines[i] ?? ''
    // Obsolete "AUTH=LOGIN PLAIN" (pre-RFC 2554 servers); Postfix splits keywords on "=" too.
    if (line.length > 5 && line.charCodeAt(4) === 0x3d && line.slice(0, 4).toUpperCase() === 'AUTH') line = 'AUTH ' + line.slice(5)
    const scan = scanLine(line)
    if (scan < 0) {
      ;(ignored ??= []).push(lines[i] ?? '')
      continue
    }
    const cut = scan & 0x3fffffff
    let key = cut === line.length ? line : line.slice(0, cut)
    if (scan & (1 << 30)) key = key.toUpperCase()
    const params = cut === line.length ? '' : line.slice(cut + 1).trim()
    const prev = extensions.get(key)
    if (prev === undefined) extensions.set(key, params)
    else if (key === 'AUTH') {
      // Servers that send both "AUTH PLAIN" and "AUTH=PLAIN": merge the mechanisms.
      authWords ??= addWords(new Set<string>(), prev)
      addWords(authWords, params)
    }
  }
  if (authWords !== undefined) extensions.set('AUTH', [...authWords].join(' '))
  const known: KnownExtensions = {
    STARTTLS: extensions.has('STARTTLS'),
    REQUIRETLS: extensions.has('REQUIRETLS'),
    PIPELINING: extensions.has('PIPELINING'),
    '8BITMIME': extensions.has('8BITMIME'),
    SMTPUTF8: extensions.has('SMTPUTF8'),
    ENHANCEDSTATUSCODES: extensions.has('ENHANCEDSTATUSCODES'),
  }
  const authParams = extensions.get('AUTH')
  const auth = authParams
    ? authParams
        .split(' ')
        .filter((w) => w !== '')
        .map((w) => w.toUpperCase())
    : []
  const sizeParam = extensions.get('SIZE')
  const size = sizeParam === undefined ? undefined : parseSize(sizeParam)
  const caps: { -readonly [K in keyof EhloCapabilities]: EhloCapabilities[K] } = {
    domain,
    greet,
    extensions,
    known,
    auth,
    ignored: ignored ?? [],
  }
  if (size !== undefined) caps.size = size
  return caps
}

function addWords(seen: Set<string>, text: string): Set<string> {
  for (const w of text.split(' ')) if (w !== '') seen.add(w)
  return seen
}
