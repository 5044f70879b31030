/** Byte and hexadecimal helpers shared by the TLSA, X.509, pin and policy code (DESIGN.md §5: a neutral module). */

const HEX = '0123456789abcdef'

/** Value of one hex digit (any case), or -1. */
export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const l = c | 0x20
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10
  return -1
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Upper-case hex of `bytes` with `sep` between octets (`AB:CD:…` for pins). */
export function toHexSeparated(bytes: Uint8Array, sep: string): string {
  let s = ''
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    if (i > 0) s += sep
    s += HEX[b >> 4]!.toUpperCase() + HEX[b & 15]!.toUpperCase()
  }
  return s
}

/** Constant-shape byte comparison (lengths compared first). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!
  return d === 0
}

/**
 * Decode bytes one char per byte (latin1). Never throws, whatever the bytes.
 *
 * Node's native latin1 decoder, on the Buffer a socket delivered or a view of a plain Uint8Array: one
 * flat string and no intermediate (issue 11: `String.fromCharCode.apply` over a subarray cost a
 * view through Buffer's species constructor plus an argument list per reply line, three times the
 * time). Char-by-char `s += c` is worse still: a chain of cons strings the garbage collector must
 * walk for every line a caller keeps.
 */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return end > start ? b.toString('latin1', start, end) : ''
}
