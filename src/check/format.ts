/** The text rendering of a {@link CheckReport}: grouped by host, ✓ / ⚠ / ✗, at most 80 columns where words allow. */
import { coded, invalidArgument } from '../args.js'
import type { CheckFinding, CheckReport } from './types.js'

const MARK = { ok: '✓', warning: '⚠', error: '✗' } as const
const WIDTH = 80

/** Word-wrap `text` after `first`, continuation lines indented by `indent`. */
function wrap(prefix: string, text: string, indent: string): string[] {
  const lines: string[] = []
  let line = prefix
  let empty = true
  for (const word of text.split(' ')) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line)
      line = indent + word
    } else line += (empty ? '' : ' ') + word
    empty = false
  }
  lines.push(line)
  return lines.map((l) => l.replace(/\u00a0/g, ' '))
}

function findingLines(f: Omit<CheckFinding, 'address'> & { address?: string | undefined }, indent: string): string[] {
  const at = f.address !== undefined ? `[${f.address}] ` : ''
  const out = wrap(`${indent}${MARK[f.severity]} `, `${at}${f.message} (${f.rule.replace(/ /g, '\u00a0')})`, indent + '  ')
  if (f.remedy !== undefined) out.push(...wrap(`${indent}  → `, f.remedy, indent + '    '))
  return out
}

/**
 * Render a {@link CheckReport} as text lines (no trailing newline in each): the domain's findings, then
 * each MX host with its TLSA RRset, its addresses and their findings, then a summary line.
 *
 * @example
 * ```ts
 * for (const line of formatCheckReport(await check('example.com'))) console.log(line)
 * ```
 * @public
 */
export function formatCheckReport(report: CheckReport): string[] {
  try {
    if (report === null || typeof report !== 'object' || !Array.isArray(report.hosts) || !Array.isArray(report.findings))
      throw invalidArgument('formatCheckReport needs a CheckReport')
    return format(report)
  } catch (e) {
    throw coded(e, 'formatCheckReport')
  }
}

function format(r: CheckReport): string[] {
  const out: string[] = [`${r.domain} (port ${r.port}, checked ${r.checkedAt})`]
  for (const f of r.findings) out.push(...findingLines(f, '  '))
  for (const h of r.hosts) {
    out.push('')
    out.push(`MX ${h.preference} ${h.host}${h.canonicalHost !== h.host ? ` → ${h.canonicalHost}` : ''}`)
    for (const rec of h.tlsa.records) out.push(...wrap('    TLSA ', rec.length > 60 ? rec.slice(0, 59) + '…' : rec, '      '))
    // About the host, or about an address the host does not list (never dropped; check() gives none such).
    const listed = new Set(h.addresses.map((a) => a.address))
    for (const f of h.findings) if (f.address === undefined || !listed.has(f.address)) out.push(...findingLines(f, '  '))
    for (const a of h.addresses) {
      out.push(`  ${a.address}`)
      for (const f of h.findings) if (f.address === a.address) out.push(...findingLines({ ...f, address: undefined }, '    '))
    }
  }
  const s = r.summary
  out.push('')
  out.push(`${s.errors} error${s.errors === 1 ? '' : 's'}, ${s.warnings} warning${s.warnings === 1 ? '' : 's'}, ${s.ok} ok`)
  return out
}
