/** Byte helpers shared by several areas (DESIGN.md §5). */

/**
 * Decode bytes one char per byte (latin1). Never throws, whatever the bytes.
 *
 * Built with `String.fromCharCode.apply` over subarrays of at most 4096 bytes (the argument count
 * stays far below the stack limit) rather than char by char: `s += c` builds a chain of cons strings
 * once past 12 chars, about 30 heap objects for a 40-byte line, which costs little in a micro-benchmark
 * but makes the garbage collector's work grow with every line a caller keeps (a long EHLO reply, a
 * certificate with thousands of names).
 */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 4096) return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[])
  let s = ''
  for (let i = start; i < end; i += 4096) {
    const sub = bytes.subarray(i, Math.min(end, i + 4096))
    s += String.fromCharCode.apply(null, sub as unknown as number[])
  }
  return s
}
