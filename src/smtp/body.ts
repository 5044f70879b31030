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
  /** Bytes written so far (the server's view of the message size, stuffing included). */
  octets = 0

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
   */
  encode(src: Uint8Array, reserve: number, last: boolean): EncodedChunk {
    const n = src.length
    // Worst case: every byte doubles (bare LF → CRLF, a leading "." → ".."), plus CRLF "." CRLF.
    const out = new Uint8Array(reserve + 2 * n + (last ? 5 : 0))
    let o = reserve
    let i = 0
    let bol = this.#bol
    let cr = this.#cr
    const stuff = this.stuff
    while (i < n) {
      let c = src[i] as number
      if (cr) {
        cr = false
        if (c === LF) {
          // the LF of a CRLF whose CR ended the previous chunk (or byte): already written
          i++
          continue
        }
      }
      // RFC 5321 §4.5.2: a line that starts with "." gets one more "."
      if (bol && stuff && c === DOT) out[o++] = DOT
      // copy the rest of the line up to CR or LF
      while (c !== LF && c !== CR) {
        out[o++] = c
        bol = false
        if (++i === n) break
        c = src[i] as number
      }
      if (i === n) break
      // CRLF, bare CR or bare LF: one CRLF (RFC 5321 §2.3.8)
      out[o++] = CR
      out[o++] = LF
      bol = true
      cr = c === CR
      i++
    }
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
      cr = false
    }
    this.#bol = bol
    this.#cr = cr
    this.octets += o - reserve
    return { buf: out, start: reserve, end: o }
  }
}
