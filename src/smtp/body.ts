/**
 * The message body on the wire, chunk by chunk in constant memory: CRLF normalisation of bare CR and
 * bare LF (RFC 5321 §2.3.8, §4.5.2 via §4.1.1.4) and, for `DATA`, dot-stuffing (RFC 5321 §4.5.2).
 * `BDAT` (RFC 3030 §2) sends the bytes unstuffed but normalised the same way, so a server sees the
 * same message either way.
 *
 * State across chunks is two bits: "at the start of a line" and "the last input byte was a CR" (its
 * CRLF is already out; an LF right after it belongs to it). Each input chunk gives one new buffer,
 * written in one pass; `reserve` bytes are left free in front for the caller's command line.
 */

const CR = 0x0d
const LF = 0x0a
const DOT = 0x2e

/** The encoded bytes: `buf.subarray(start, end)`; `[reserveStart, start)` is free for a header. */
export interface EncodedChunk {
  buf: Uint8Array
  start: number
  end: number
}

export class BodyEncoder {
  /** Dot-stuff (DATA) or not (BDAT). */
  readonly stuff: boolean
  /** At the start of a line: nothing written yet, or the last byte written was LF. */
  #bol = true
  /** The last input byte was a CR (CRLF written for it); a following LF is swallowed. */
  #cr = false

  constructor(stuff: boolean) {
    this.stuff = stuff
  }

  /** Encoding `src` would write nothing: it is empty, or only the LF of a CRLF whose CR came last. */
  wouldBeEmpty(src: Uint8Array): boolean {
    return src.length === 0 || (src.length === 1 && this.#cr && src[0] === LF)
  }

  /**
   * Encode one chunk into a new buffer with `reserve` free bytes in front. With `last`, the end of
   * the message follows: a CRLF if the message does not end with one, then `.` CRLF for DATA.
   *
   * Runs of bytes that need no change are copied with one `set` each; only line ends and leading
   * dots are looked at, found by a scan for bytes up to CR four bytes at a time.
   */
  encode(src: Uint8Array, reserve: number, last: boolean): EncodedChunk {
    const n = src.length
    // Worst case: every byte doubles (bare LF → CRLF, a leading "." → ".."), plus CRLF "." CRLF.
    const out = new Uint8Array(reserve + 2 * n + (last ? 5 : 0))
    const words = n >= 1024 ? new Uint32Array(src.buffer, 0, src.buffer.byteLength >>> 2) : undefined
    const stuff = this.stuff
    let o = reserve
    let i = 0
    let bol = this.#bol
    // the LF of a CRLF whose CR ended the previous chunk: its CRLF is already written
    if (this.#cr && n > 0 && src[0] === LF) i = 1
    this.#cr = false
    /** Start of the bytes read but not yet copied. */
    let run = i
    while (i < n) {
      if (bol) {
        // RFC 5321 §4.5.2: a line that starts with "." gets one more "."
        if (stuff && src[i] === DOT) {
          if (i > run) out.set(src.subarray(run, i), o)
          o += i - run
          out[o++] = DOT
          run = i
        }
        bol = false
      }
      let j = scan(src, words, i, n)
      let c = 0
      while (j < n && (c = src[j] as number) !== LF && c !== CR) j = scan(src, words, j + 1, n)
      if (j === n) break
      bol = true
      if (c === CR) {
        if (j + 1 < n && src[j + 1] === LF) {
          i = j + 2 // CRLF: nothing to change
          continue
        }
        // bare CR (or a CR that ends the chunk): CRLF now (RFC 5321 §2.3.8)
        out.set(src.subarray(run, j + 1), o)
        o += j + 1 - run
        out[o++] = LF
        i = run = j + 1
        if (i === n) this.#cr = true
      } else {
        // bare LF: CRLF
        if (j > run) out.set(src.subarray(run, j), o)
        o += j - run
        out[o++] = CR
        run = j
        i = j + 1
      }
    }
    if (n > run) out.set(src.subarray(run, n), o)
    o += n - run
    if (last) {
      if (!bol) {
        out[o++] = CR
        out[o++] = LF
        bol = true
      }
      if (stuff) {
        out[o++] = DOT
        out[o++] = CR
        out[o++] = LF
      }
      this.#cr = false
    }
    this.#bol = bol
    return { buf: out, start: reserve, end: o }
  }
}

/**
 * The first index at or after `i` whose byte is at most CR (13), or `n`. With `words` (a 32-bit
 * view of `src.buffer`), aligned words are tested four bytes at a time: a word has a byte below 14
 * iff `(x - 0x0e0e0e0e) & ~x & 0x80808080` is non-zero (no false negatives for a bound under 128).
 */
function scan(src: Uint8Array, words: Uint32Array | undefined, i: number, n: number): number {
  if (words !== undefined) {
    const off = src.byteOffset
    while (i < n && ((off + i) & 3) !== 0) {
      if ((src[i] as number) <= CR) return i
      i++
    }
    if (i === n) return n
    let w = (off + i) >>> 2
    const wend = (off + n) >>> 2
    while (w < wend) {
      const x = words[w] as number
      if (((x - 0x0e0e0e0e) & ~x & 0x80808080) !== 0) break
      w++
    }
    i = w * 4 - off
  }
  while (i < n && (src[i] as number) > CR) i++
  return i
}
