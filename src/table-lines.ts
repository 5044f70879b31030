/**
 * Logical lines of a Postfix lookup-table source as `postmap` reads them (postmap(1), `readlline`):
 * blank lines and lines whose first non-blank character is `#` are ignored (also between
 * continuation lines), and a line that starts with whitespace continues the previous logical line.
 * Shared by the client-certificate table; `src/policy/table.ts` has the same rules inline.
 */

/** One physical line's part of a logical line. */
export interface LineSegment {
  /** offset of this physical line's text in the logical line */
  start: number
  /** 1-based physical line number */
  line: number
}

/** A logical line: physical lines joined with `\n`. */
export interface LogicalLine {
  text: string
  segments: LineSegment[]
}

/**
 * Split `text` into logical lines. `orphan(line)` is called for a continuation line with no entry
 * before it (postmap warns and skips it; callers here treat it as an error).
 */
export function readLogicalLines(text: string, orphan: (line: number) => void): LogicalLine[] {
  const physical = text.split('\n')
  const out: LogicalLine[] = []
  let cur: LogicalLine | undefined
  for (let n = 0; n < physical.length; n++) {
    let l = physical[n]!
    if (l.endsWith('\r')) l = l.slice(0, -1)
    const trimmed = l.trimStart()
    if (trimmed.length === 0 || trimmed.startsWith('#')) continue
    if (l.length !== trimmed.length) {
      if (cur === undefined) {
        orphan(n + 1)
        continue
      }
      cur.segments.push({ start: cur.text.length + 1, line: n + 1 })
      cur.text += '\n' + l
      continue
    }
    cur = { text: l, segments: [{ start: 0, line: n + 1 }] }
    out.push(cur)
  }
  return out
}

/** Map an offset in a logical line to a 1-based line and column. */
export function linePosition(segments: readonly LineSegment[], offset: number): { line: number; column: number } {
  let seg = segments[0]!
  for (const s of segments) if (s.start <= offset) seg = s
  return { line: seg.line, column: offset - seg.start + 1 }
}
