/**
 * An incremental SMTP reply parser (RFC 5321 §4.2) over arbitrary byte chunks.
 *
 * Bytes are scanned for LF; a line is decoded (latin1, one char per byte, so nothing can fail to
 * decode) only once it is complete. Limits bound the memory a hostile server can make us hold.
 */
import { coded, describeValue, invalidArgument, isBytes, readOptions } from '../args.js'
import { latin1 } from '../bytes.js'
import { SmtpTlsError } from '../errors.js'

export { latin1 }

/**
 * One complete SMTP reply.
 * @public
 */
export interface SmtpReply {
  /** The three-digit reply code (RFC 5321 §4.2), e.g. `250`. */
  readonly code: number
  /**
   * The RFC 3463 enhanced status code of the first line (RFC 2034 §4: `5.7.1` after `550 `), when the
   * server sent one whose class matches the reply code's first digit.
   */
  readonly enhancedStatus?: string
  /**
   * The text of each line after the code and its separator (`250-`/`250 `), enhanced status included,
   * decoded as latin1 (byte for byte). A bare final `250` gives `''`.
   */
  readonly lines: readonly string[]
}

/**
 * Options of {@link ReplyParser}.
 * @public
 */
export interface ReplyParserOptions {
  /** Longest reply line accepted, in bytes without the line ending. Default 2048 (Postfix `line_length_limit`). */
  maxLineLength?: number
  /** Most lines accepted in one multi-line reply. Default 500. */
  maxLines?: number
}

/** Default line limit: Postfix's `line_length_limit` (2048); RFC 5321 §4.5.3.1.5 only promises 512 octets. @public */
export const DEFAULT_MAX_LINE_LENGTH = 2048
/** Default bound on the number of lines of one reply. @public */
export const DEFAULT_MAX_LINES = 500

const EMPTY = new Uint8Array(0)
const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const HYPHEN = 0x2d
const DIGIT0 = 0x30

/** Validate an integer option in [min, max]; the caller's mistake, so ERR_INVALID_ARGUMENT. */
export function checkLimit(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}, got ${String(value)}`, {
      temporary: false,
    })
  }
  return value
}

/**
 * RFC 3463 §2 status code at the start of `text`: class "." subject "." detail, class 2/4/5,
 * subject and detail 1-3 digits, followed by SP or the end of the text (RFC 2034 §4).
 * Returns the code or `undefined`.
 */
export function parseEnhancedStatus(text: string): string | undefined {
  const c = text.charCodeAt(0)
  if ((c !== 0x32 && c !== 0x34 && c !== 0x35) || text.charCodeAt(1) !== 0x2e) return undefined
  let i = 2
  for (let part = 0; part < 2; part++) {
    const from = i
    while (i < text.length && i - from < 4) {
      const d = text.charCodeAt(i)
      if (d < DIGIT0 || d > DIGIT0 + 9) break
      i++
    }
    const n = i - from
    if (n < 1 || n > 3) return undefined
    if (part === 0) {
      if (text.charCodeAt(i) !== 0x2e) return undefined
      i++
    }
  }
  if (i < text.length && text.charCodeAt(i) !== SP) return undefined
  return text.slice(0, i)
}

/**
 * Incremental SMTP reply parser.
 *
 * Feed bytes with {@link ReplyParser.push}, then call {@link ReplyParser.next} until it returns
 * `undefined`. Lines end in CRLF or, as Postfix's client tolerates, a bare LF. A malformed reply
 * throws a coded {@link SmtpTlsError} (`ERR_SMTP_REPLY_SYNTAX`, `ERR_SMTP_REPLY_TOO_LONG`), after
 * which the parser is failed and every later `push`/`next` throws the same error.
 *
 * @example
 * ```ts
 * const p = new ReplyParser()
 * p.push(new TextEncoder().encode('250-mx.example.com\r\n250 STARTT'))
 * p.next() // undefined: the reply is not complete
 * p.push(new TextEncoder().encode('LS\r\n'))
 * p.next() // { code: 250, lines: ['mx.example.com', 'STARTTLS'] }
 * ```
 * @public
 */
export class ReplyParser {
  readonly maxLineLength: number
  readonly maxLines: number
  /** Received bytes; a caller's chunk is used in place until a partial line must outlive it (see next()). */
  #buf: Uint8Array = EMPTY
  /** #buf is our own copy (false: it is the caller's last chunk). */
  #owned = false
  /** Start of the current (incomplete) line in #buf. */
  #start = 0
  /** End of valid data in #buf. */
  #end = 0
  /** Where the LF scan resumes (everything in [#start, #scan) is known to hold no LF). */
  #scan = 0
  /** Stream offset of #buf[0], for error positions that do not depend on how bytes were split. */
  #base = 0
  #code = 0
  #enhanced: string | undefined = undefined
  #lines: string[] = []
  #failed: SmtpTlsError | undefined = undefined

  constructor(opts: ReplyParserOptions = {}) {
    const o = readOptions(opts, 'ReplyParser options', ['maxLineLength', 'maxLines'])
    this.maxLineLength = checkLimit('maxLineLength', o.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH, 4, 1 << 24)
    this.maxLines = checkLimit('maxLines', o.maxLines ?? DEFAULT_MAX_LINES, 1, 1 << 20)
  }

  /** Bytes received but not yet returned as part of a reply (lines of an incomplete reply count too). */
  get pending(): boolean {
    return this.#end > this.#start || this.#lines.length > 0
  }

  /** Total bytes consumed into returned replies or pending lines (the stream offset of the next line). */
  get offset(): number {
    return this.#base + this.#start
  }

  /**
   * Append received bytes. Nothing is parsed until {@link ReplyParser.next}. The chunk may be read in
   * place (no copy) until `next()` returns `undefined`; do not modify it before then.
   */
  push(bytes: Uint8Array): void {
    if (this.#failed) throw this.#failed
    if (!isBytes(bytes)) throw invalidArgument(`ReplyParser.push needs a Uint8Array, got ${describeValue(bytes)}`)
    const n = bytes.length
    if (n === 0) return
    const live = this.#end - this.#start
    if (live === 0) {
      // Nothing pending: read the chunk in place.
      this.#base += this.#end
      this.#buf = bytes
      this.#owned = false
      this.#start = this.#scan = 0
      this.#end = n
      return
    }
    if (!this.#owned || this.#end + n > this.#buf.length) {
      let size = Math.max(256, this.#owned ? this.#buf.length : 0)
      while (size < live + n) size *= 2
      const grown = new Uint8Array(size)
      grown.set(this.#buf.subarray(this.#start, this.#end))
      this.#buf = grown
      this.#owned = true
      this.#base += this.#start
      this.#scan -= this.#start
      this.#start = 0
      this.#end = live
    }
    this.#buf.set(bytes, this.#end)
    this.#end += n
  }

  /** The next complete reply, or `undefined` when more bytes are needed. Throws a coded error on a defect. */
  next(): SmtpReply | undefined {
    if (this.#failed) throw this.#failed
    const buf = this.#buf
    for (;;) {
      let i = this.#scan
      const end = this.#end
      while (i < end && buf[i] !== LF) i++
      const start = this.#start
      if (i === end) {
        this.#scan = end
        // A partial line already over the limit can be refused now, without waiting for its LF.
        const len = end - start
        if (len > this.maxLineLength + 1 || (len === this.maxLineLength + 1 && buf[end - 1] !== CR)) {
          this.#fail('ERR_SMTP_REPLY_TOO_LONG', `reply line longer than ${this.maxLineLength} bytes`, start)
        }
        // Keep the partial line in our own buffer: the caller may reuse its chunk now.
        if (!this.#owned && len > 0) this.#own()
        return undefined
      }
      // A complete line [start, lineEnd) ending at the LF at i; CRLF or a bare LF (Postfix smtp_get).
      let lineEnd = i
      if (lineEnd > start && buf[lineEnd - 1] === CR) lineEnd--
      this.#start = this.#scan = i + 1
      const reply = this.#line(buf, start, lineEnd)
      if (reply) return reply
    }
  }

  /** Copy the pending bytes out of the caller's chunk. */
  #own(): void {
    const live = this.#end - this.#start
    const copy = new Uint8Array(Math.max(256, live * 2))
    copy.set(this.#buf.subarray(this.#start, this.#end))
    this.#base += this.#start
    this.#scan -= this.#start
    this.#buf = copy
    this.#owned = true
    this.#start = 0
    this.#end = live
  }

  /** Parse one line; returns the reply when it was the last line. */
  #line(buf: Uint8Array, start: number, end: number): SmtpReply | undefined {
    const len = end - start
    if (len > this.maxLineLength) this.#fail('ERR_SMTP_REPLY_TOO_LONG', `reply line longer than ${this.maxLineLength} bytes`, start)
    // RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39, then "-" (more lines), SP or CRLF (last line).
    const d0 = (buf[start] ?? 0) - DIGIT0
    const d1 = (buf[start + 1] ?? 0) - DIGIT0
    const d2 = (buf[start + 2] ?? 0) - DIGIT0
    if (len < 3 || d0 < 2 || d0 > 5 || d1 < 0 || d1 > 5 || d2 < 0 || d2 > 9) {
      this.#fail('ERR_SMTP_REPLY_SYNTAX', `reply line does not start with a reply code: ${quote(buf, start, end)}`, start)
    }
    const code = d0 * 100 + d1 * 10 + d2
    const sep = len > 3 ? buf[start + 3] : SP
    if (sep !== SP && sep !== HYPHEN) {
      this.#fail('ERR_SMTP_REPLY_SYNTAX', `reply code ${code} is followed by neither "-" nor a space: ${quote(buf, start, end)}`, start)
    }
    const first = this.#lines.length === 0
    if (first) {
      this.#code = code
    } else if (code !== this.#code) {
      // RFC 5321 §4.2.1: every line of a multi-line reply carries the same code.
      this.#fail('ERR_SMTP_REPLY_SYNTAX', `reply code ${code} inside a multi-line ${this.#code} reply`, start)
    }
    if (this.#lines.length >= this.maxLines) {
      this.#fail('ERR_SMTP_REPLY_TOO_LONG', `reply of more than ${this.maxLines} lines`, start)
    }
    const text = len > 4 ? latin1(buf, start + 4, end) : ''
    if (first) {
      const es = parseEnhancedStatus(text)
      // RFC 3463 §3.1 / RFC 2034 §4: the class of the enhanced status matches the reply code's first digit.
      this.#enhanced = es !== undefined && es.charCodeAt(0) - DIGIT0 === d0 ? es : undefined
    }
    this.#lines.push(text)
    if (sep === HYPHEN) return undefined
    const reply: SmtpReply =
      this.#enhanced === undefined ? { code, lines: this.#lines } : { code, enhancedStatus: this.#enhanced, lines: this.#lines }
    this.#lines = []
    this.#enhanced = undefined
    return reply
  }

  #fail(code: 'ERR_SMTP_REPLY_SYNTAX' | 'ERR_SMTP_REPLY_TOO_LONG', message: string, at: number): never {
    // A hostile or broken server: a remote protocol error, temporary (RFC 3463 X.5.0 protocol status).
    this.#failed = new SmtpTlsError(code, message, { enhancedStatus: '4.5.0', position: this.#base + at })
    throw this.#failed
  }
}

/** A short printable excerpt of a line for error messages. */
function quote(buf: Uint8Array, start: number, end: number): string {
  const s = latin1(buf, start, Math.min(end, start + 40))
  return JSON.stringify(s + (end - start > 40 ? '…' : ''))
}

/**
 * Format a reply as its wire lines without line endings (`250-first`, `250 last`), for transcripts.
 * @public
 */
export function formatReplyLines(reply: SmtpReply): string[] {
  try {
    return formatReplyLinesChecked(reply)
  } catch (e) {
    throw coded(e, 'formatReplyLines')
  }
}

function formatReplyLinesChecked(reply: SmtpReply): string[] {
  if (typeof reply !== 'object' || reply === null || !Array.isArray(reply.lines) || typeof reply.code !== 'number') {
    throw invalidArgument(`formatReplyLines needs an SmtpReply, got ${describeValue(reply)}`)
  }
  const n = reply.lines.length
  const out: string[] = new Array<string>(n)
  for (let i = 0; i < n; i++) {
    const t = reply.lines[i] ?? ''
    out[i] = i < n - 1 ? `${reply.code}-${t}` : t === '' ? String(reply.code) : `${reply.code} ${t}`
  }
  return out
}

/**
 * Parse exactly one complete reply from a string or bytes (a convenience over {@link ReplyParser}).
 * Throws `ERR_SMTP_REPLY_SYNTAX` when the input holds less or more than one reply.
 * @public
 */
export function parseReply(input: string | Uint8Array, opts: ReplyParserOptions = {}): SmtpReply {
  try {
    return parseReplyChecked(input, opts)
  } catch (e) {
    throw coded(e, 'parseReply')
  }
}

function parseReplyChecked(input: string | Uint8Array, opts: ReplyParserOptions = {}): SmtpReply {
  if (typeof input !== 'string' && !isBytes(input))
    throw invalidArgument(`parseReply needs a string or a Uint8Array, got ${describeValue(input)}`)
  const bytes = typeof input === 'string' ? latin1Bytes(input) : input
  const p = new ReplyParser(opts)
  p.push(bytes)
  const r = p.next()
  if (!r) throw new SmtpTlsError('ERR_SMTP_REPLY_SYNTAX', 'incomplete reply', { enhancedStatus: '4.5.0', position: bytes.length })
  if (p.pending) throw new SmtpTlsError('ERR_SMTP_REPLY_SYNTAX', 'bytes after the reply', { enhancedStatus: '4.5.0', position: p.offset })
  return r
}

/** Encode a string one byte per char (chars above U+00FF become "?"). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out[i] = c > 0xff ? 0x3f : c
  }
  return out
}
