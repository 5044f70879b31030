/**
 * Punycode encoding of one label (RFC 3492 §6.3), for IDNA A-labels (RFC 5891 §4.4). Pure, no
 * dependency on `node:url` or the deprecated `punycode` module. Callers bound the input length.
 */

// RFC 3492 §5: parameter values for Punycode.
const BASE = 36
const TMIN = 1
const TMAX = 26
const SKEW = 38
const DAMP = 700
const INITIAL_BIAS = 72
const INITIAL_N = 0x80

/** RFC 3492 §6.1 bias adaptation. */
function adapt(delta: number, numPoints: number, firstTime: boolean): number {
  let d = firstTime ? Math.floor(delta / DAMP) : delta >> 1
  d += Math.floor(d / numPoints)
  let k = 0
  while (d > ((BASE - TMIN) * TMAX) >> 1) {
    d = Math.floor(d / (BASE - TMIN))
    k += BASE
  }
  return k + Math.floor(((BASE - TMIN + 1) * d) / (d + SKEW))
}

/** RFC 3492 §5: digit values 0-25 are a-z, 26-35 are 0-9 (lower case output). */
function digit(d: number): string {
  return String.fromCharCode(d < 26 ? d + 97 : d + 22)
}

/**
 * Encode a label's code points with Punycode (RFC 3492 §6.3), without the `xn--` prefix:
 * `bücher` → `bcher-kva`. The input should be short (a label of at most 63 code points).
 */
export function punycodeEncode(input: string): string {
  const cps: number[] = []
  for (const ch of input) cps.push(ch.codePointAt(0)!)
  let out = ''
  for (const c of cps) if (c < 0x80) out += String.fromCharCode(c)
  const b = out.length
  let h = b
  if (b > 0) out += '-'
  let n = INITIAL_N
  let delta = 0
  let bias = INITIAL_BIAS
  while (h < cps.length) {
    let m = Number.MAX_SAFE_INTEGER
    for (const c of cps) if (c >= n && c < m) m = c
    delta += (m - n) * (h + 1)
    n = m
    for (const c of cps) {
      if (c < n) delta++
      if (c === n) {
        let q = delta
        for (let k = BASE; ; k += BASE) {
          const t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias
          if (q < t) break
          out += digit(t + ((q - t) % (BASE - t)))
          q = Math.floor((q - t) / (BASE - t))
        }
        out += digit(q)
        bias = adapt(delta, h + 1, h === b)
        delta = 0
        h++
      }
    }
    delta++
    n++
  }
  return out
}
