/**
 * The HTML rendering of a {@link CheckReport}: one self-contained page (inline CSS, an inline SVG, no
 * script, nothing fetched) that a person can read and send on. Every string from the report, which comes
 * from DNS and certificates and so from anyone, is escaped; a Content-Security-Policy that allows no
 * script and no fetch backs that up.
 */
import { coded, invalidArgument } from '../args.js'
import type { CheckAddressReport, CheckFinding, CheckHostReport, CheckReport, CheckSeverity } from './types.js'

type Outcome = CheckSeverity | 'none'

const MARK: Record<Outcome, string> = { ok: '✓', warning: '⚠', error: '✗', none: '–' }
const WORD: Record<Outcome, string> = { ok: 'ok', warning: 'warning', error: 'error', none: 'not checked' }
const RANK: Record<Outcome, number> = { none: 0, ok: 1, warning: 2, error: 3 }

const ENTITY: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/**
 * Text for HTML content and quoted attribute values: the five markup characters become entities;
 * control characters and bidirectional overrides (which could make a name read as another) are shown
 * as `\u{…}` instead of acting.
 */
function esc(value: unknown): string {
  const s = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value)
  return s
    .replace(/[&<>"']/g, (c) => ENTITY[c] as string)
    .replace(
      /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
      (c) => `\\u{${c.charCodeAt(0).toString(16)}}`,
    )
}

/** The known severity, else `error` (a renderer never trusts a class name it did not choose). */
function outcomeOf(s: unknown): CheckSeverity {
  return s === 'ok' || s === 'warning' ? s : 'error'
}

function worst(findings: readonly CheckFinding[]): Outcome {
  let w: Outcome = 'none'
  for (const f of findings) {
    const o = outcomeOf(f.severity)
    if (RANK[o] > RANK[w]) w = o
  }
  return w
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/**
 * Render a {@link CheckReport} as one HTML document: a header with the summary, a picture of the
 * delivery path (domain → MX → addresses → TLSA → certificate, each box coloured by the worst finding
 * about it), the domain's findings, then each MX host with its TLSA records, its addresses, their TLS
 * session and certificate chain and their findings. Each finding shows its severity, message, remedy
 * and rule, and carries them as `data-severity`, `data-id`, `data-rule`, `data-address` and
 * `data-host` attributes, so a program can read the page back. Pure: no I/O, the same report gives the
 * same bytes.
 *
 * @example
 * ```ts
 * // check() from smtp-tls-policy/node; writing the file is the caller's I/O (node:fs)
 * fs.writeFileSync('report.html', formatCheckReportHtml(await check('example.com')))
 * ```
 * @public
 */
export function formatCheckReportHtml(report: CheckReport): string {
  try {
    if (report === null || typeof report !== 'object' || !Array.isArray(report.hosts) || !Array.isArray(report.findings))
      throw invalidArgument('formatCheckReportHtml needs a CheckReport')
    return page(report)
  } catch (e) {
    throw coded(e, 'formatCheckReportHtml')
  }
}

function page(r: CheckReport): string {
  const s = r.summary ?? { errors: 0, warnings: 0, ok: 0 }
  const overall: Outcome = s.errors > 0 ? 'error' : s.warnings > 0 ? 'warning' : 'ok'
  const verdict =
    overall === 'error'
      ? 'Something is broken: some senders defer or refuse mail, or mail is not protected as published.'
      : overall === 'warning'
        ? 'Mail flows, with risks worth fixing.'
        : 'Every check passed.'
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // No script may run and nothing may be fetched, even if an escaping bug let markup through.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="generator" content="smtp-tls-policy check">',
    `<title>Mail TLS check: ${esc(r.domain)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    '<header>',
    `<h1>Mail TLS check: <span class="domain">${esc(r.domain)}</span></h1>`,
    `<p class="meta">port ${esc(r.port)} · checked <time>${esc(r.checkedAt)}</time> · MX lookup: ${esc(r.status)} · MX RRset ${r.mxSecure ? 'signed (DNSSEC)' : 'not signed'}</p>`,
    `<p class="verdict ${overall}">${MARK[overall]} ${esc(verdict)}</p>`,
    `<ul class="chips" data-errors="${esc(s.errors)}" data-warnings="${esc(s.warnings)}" data-ok="${esc(s.ok)}">`,
    `<li class="chip error">${esc(plural(s.errors, 'error'))}</li>`,
    `<li class="chip warning">${esc(plural(s.warnings, 'warning'))}</li>`,
    `<li class="chip ok">${esc(s.ok)} ok</li>`,
    '</ul>',
    '</header>',
    pathSection(r),
    '<section class="domain-findings">',
    `<h2>Domain <span class="name">${esc(r.domain)}</span></h2>`,
    findingList(r.findings, undefined),
    '</section>',
    ...r.hosts.map((h, i) => hostSection(h, i)),
    '<footer>',
    '<p>Made by <code>smtp-tls-policy check</code>. Each finding names the rule it comes from (an RFC section, or Postfix behaviour) and, when something needs doing, one line on how to fix it.</p>',
    '</footer>',
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n')
}

function findingList(findings: readonly CheckFinding[], host: string | undefined, showAddress = false): string {
  if (findings.length === 0) return '<p class="empty">No findings.</p>'
  return `<ul class="findings">\n${findings.map((f) => findingItem(f, host, showAddress)).join('\n')}\n</ul>`
}

function findingItem(f: CheckFinding, host: string | undefined, showAddress: boolean): string {
  const o = outcomeOf(f.severity)
  const attrs = [
    `class="finding ${o}"`,
    `data-severity="${esc(f.severity)}"`,
    `data-id="${esc(f.id)}"`,
    `data-rule="${esc(f.rule)}"`,
    ...(f.address !== undefined ? [`data-address="${esc(f.address)}"`] : []),
    ...(host !== undefined ? [`data-host="${esc(host)}"`] : []),
  ]
  return [
    `<li ${attrs.join(' ')}>`,
    `<span class="mark" title="${WORD[o]}">${MARK[o]}</span>`,
    '<div class="text">',
    showAddress && f.address !== undefined ? `<p class="where">at ${esc(f.address)}</p>` : '',
    `<p class="message">${esc(f.message)}</p>`,
    f.remedy !== undefined ? `<p class="remedy"><span class="label">Fix: </span><span class="remedy-text">${esc(f.remedy)}</span></p>` : '',
    `<p class="rule"><span class="severity">${WORD[o]}</span> · <span class="rule-text">${esc(f.rule)}</span> · <code class="id">${esc(f.id)}</code></p>`,
    '</div>',
    '</li>',
  ].join('')
}

function hostSection(h: CheckHostReport, i: number): string {
  const cname = h.canonicalHost !== h.host ? ` → ${h.canonicalHost}` : ''
  const facts: [string, string][] = [['Addresses', h.addressSecure ? 'signed (DNSSEC)' : 'not signed']]
  if (h.cnames.length > 0) facts.push(['CNAME', h.cnames.map((c) => `${c.from} → ${c.to}`).join(', ')])
  facts.push(['TLSA', `${h.tlsa.status} at ${h.tlsa.qname} (base domain ${h.tlsa.base})`])
  const records = h.tlsa.records.length
    ? `<ul class="records">${h.tlsa.records.map((x) => `<li><code>${esc(x)}</code></li>`).join('')}</ul>`
    : ''
  return [
    `<section class="host" id="host-${i + 1}" data-host="${esc(h.host)}">`,
    `<h2>MX ${esc(h.preference)} <span class="name">${esc(h.host)}${esc(cname)}</span></h2>`,
    factList(facts),
    records,
    // Findings about the host, and any about an address the host does not list (none in check()'s reports: never dropped).
    findingList(
      h.findings.filter((f) => f.address === undefined || !h.addresses.some((a) => a.address === f.address)),
      h.host,
      true,
    ),
    ...h.addresses.map((a) => addressSection(h, a)),
    '</section>',
  ].join('\n')
}

function factList(facts: [string, string][]): string {
  return `<dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`
}

function addressSection(h: CheckHostReport, a: CheckAddressReport): string {
  const mine = h.findings.filter((f) => f.address === a.address)
  const session = !a.connected
    ? `no connection${a.error ? `: ${a.error}` : ''}`
    : a.starttls === false
      ? 'connected, STARTTLS not offered'
      : a.protocol
        ? `STARTTLS, ${a.protocol}, ${a.cipher ?? 'cipher unknown'}`
        : `connected${a.error ? `: ${a.error}` : ''}`
  const facts: [string, string][] = [['Session', session]]
  if (a.matchingRecords.length > 0) facts.push(['Matching TLSA', a.matchingRecords.join('; ')])
  const chain = a.chain.length
    ? `<ol class="chain">${a.chain
        .map(
          (c) =>
            `<li><span class="subject">${esc(c.subject)}</span><br><span class="issuer">issued by ${esc(c.issuer)}</span><br>` +
            `<span class="expiry">valid until <time>${esc(c.notAfter)}</time> (${esc(daysText(c.daysLeft))})</span><br>` +
            `<span class="spki">SPKI SHA2-256 <code>${esc(c.spkiSha256)}</code></span></li>`,
        )
        .join('')}</ol>`
    : ''
  return [
    `<section class="address" data-address="${esc(a.address)}">`,
    `<h3>${esc(a.address)} <span class="family">IPv${a.family === 6 ? 6 : 4}</span></h3>`,
    factList(facts),
    chain,
    findingList(mine, h.host),
    '</section>',
  ].join('\n')
}

function daysText(days: number): string {
  if (!Number.isFinite(days)) return 'dates unreadable'
  return days < 0 ? `expired ${-days} days ago` : `${days} days left`
}

// The delivery path picture: one row per address, columns domain → MX host → address → TLSA → certificate.

interface Box {
  title: string
  sub: string
  outcome: Outcome
  /** The tooltip: the whole text, as the box shows only what fits. */
  tip: string
}

const COLUMNS = [
  { x: 8, w: 150, label: 'Domain' },
  { x: 196, w: 190, label: 'MX host' },
  { x: 424, w: 150, label: 'Address' },
  { x: 612, w: 150, label: 'TLSA' },
  { x: 800, w: 152, label: 'Certificate' },
] as const
const VIEW_WIDTH = 960
const ROW = 58
const BOX = 44
const TOP = 28

const DANE_IDS = new Set(['dane-match', 'digest-agility', 'chain-incomplete'])
const SESSION_IDS = new Set(['connect', 'starttls', 'tls'])
const CERT_IDS = new Set(['cert-expiry', 'chain-expiry', 'mta-sts-cert'])
const TLSA_HOST_IDS = new Set(['tlsa-absent', 'tlsa-dnssec', 'tlsa-lookup', 'tlsa-none-usable'])

function domainBox(r: CheckReport): Box {
  const sub = r.status === 'ok' ? (r.mxSecure ? 'MX signed' : 'MX not signed') : r.status
  return { title: r.domain, sub, outcome: worst(r.findings), tip: `${r.domain}: ${sub}` }
}

function hostBox(h: CheckHostReport): Box {
  const sub = `MX ${h.preference}${h.canonicalHost !== h.host ? ` → ${h.canonicalHost}` : ''}`
  const own = h.findings.filter((f) => f.address === undefined)
  return { title: h.host, sub, outcome: worst(own), tip: `${h.host} (${sub})` }
}

function addressBox(h: CheckHostReport, a: CheckAddressReport | undefined): Box {
  if (!a) return { title: 'no address', sub: 'no A/AAAA', outcome: 'error', tip: `${h.host} has no usable address` }
  const at = h.findings.filter((f) => f.address === a.address && SESSION_IDS.has(f.id))
  const sub = !a.connected ? 'no connection' : a.starttls === false ? 'no STARTTLS' : (a.protocol ?? 'no TLS')
  return { title: a.address, sub, outcome: worst(at), tip: `${a.address}: ${sub}${a.error ? ` (${a.error})` : ''}` }
}

function tlsaBox(h: CheckHostReport, a: CheckAddressReport | undefined): Box {
  const dane = a ? h.findings.filter((f) => f.address === a.address && DANE_IDS.has(f.id)) : []
  const n = h.tlsa.records.length
  if (dane.length > 0) {
    const o = worst(dane)
    const rec = a?.matchingRecords[0]
    const title = o === 'ok' && rec ? rec.split(' ').slice(0, 3).join(' ') + ' match' : 'no match'
    return { title, sub: plural(n, 'record'), outcome: o, tip: dane.map((f) => f.message).join('\n') }
  }
  const words: Record<string, string> = {
    secure: 'signed',
    'secure-denial': 'no TLSA',
    insecure: 'not signed',
    'lookup-failed': 'lookup failed',
    'not-looked-up': 'not looked up',
  }
  const title = words[h.tlsa.status] ?? String(h.tlsa.status)
  const o = worst(h.findings.filter((f) => f.address === undefined && TLSA_HOST_IDS.has(f.id)))
  return { title, sub: n ? plural(n, 'record') : 'no DANE', outcome: o, tip: `${h.tlsa.qname}: ${h.tlsa.status}` }
}

function certBox(h: CheckHostReport, a: CheckAddressReport | undefined): Box {
  const leaf = a?.chain[0]
  if (!a || !leaf) return { title: 'no certificate', sub: '', outcome: 'none', tip: 'no certificate received' }
  const cn = /(?:^|, )CN=([^,]*)/.exec(leaf.subject)?.[1] ?? leaf.subject
  const o = worst(h.findings.filter((f) => f.address === a.address && CERT_IDS.has(f.id)))
  return {
    title: cn,
    sub: daysText(leaf.daysLeft),
    outcome: o,
    tip: `${leaf.subject}\nissued by ${leaf.issuer}\nvalid until ${leaf.notAfter}`,
  }
}

function pathSection(r: CheckReport): string {
  const rows: { host: number; boxes: Box[] }[] = []
  r.hosts.forEach((h, hi) => {
    const addrs: (CheckAddressReport | undefined)[] = h.addresses.length ? h.addresses : [undefined]
    for (const a of addrs) rows.push({ host: hi, boxes: [addressBox(h, a), tlsaBox(h, a), certBox(h, a)] })
  })
  const height = TOP + Math.max(1, rows.length) * ROW
  const out: string[] = []
  const y = (row: number) => TOP + row * ROW + (ROW - BOX) / 2
  const mid = (top: number, rowsSpanned: number) => top + (rowsSpanned * ROW - (ROW - BOX)) / 2
  for (const c of COLUMNS) out.push(`<text class="col" x="${c.x}" y="16">${c.label}</text>`)
  // Domain: spans every row.
  const dTop = y(0)
  const dMid = mid(dTop, Math.max(1, rows.length))
  out.push(box(COLUMNS[0], dMid - BOX / 2, domainBox(r)))
  if (rows.length === 0) {
    const why = r.nullMx
      ? 'null MX: the domain receives no mail'
      : r.status === 'no-such-domain'
        ? 'no such domain'
        : r.status === 'deferred'
          ? 'the MX lookup failed: no host to deliver to'
          : 'no MX host to deliver to'
    out.push(`<text class="note" x="${COLUMNS[1].x}" y="${dMid + 5}">${esc(why)}</text>`)
  }
  r.hosts.forEach((h, hi) => {
    const first = rows.findIndex((x) => x.host === hi)
    const span = rows.filter((x) => x.host === hi).length
    const hMid = mid(y(first), span)
    out.push(edge(COLUMNS[0], dMid, COLUMNS[1], hMid))
    out.push(box(COLUMNS[1], hMid - BOX / 2, hostBox(h)))
    for (let k = 0; k < span; k++) out.push(edge(COLUMNS[1], hMid, COLUMNS[2], y(first + k) + BOX / 2))
  })
  rows.forEach((row, i) => {
    const top = y(i)
    row.boxes.forEach((b, k) => {
      const col = COLUMNS[k + 2] as (typeof COLUMNS)[number]
      if (k > 0) out.push(edge(COLUMNS[k + 1] as (typeof COLUMNS)[number], top + BOX / 2, col, top + BOX / 2))
      out.push(box(col, top, b))
    })
  })
  const legend = (['ok', 'warning', 'error', 'none'] as const)
    .map((o) => `<li><span class="swatch ${o}"></span>${MARK[o]} ${WORD[o]}</li>`)
    .join('')
  return [
    '<section class="path">',
    '<h2>Delivery path</h2>',
    `<svg viewBox="0 0 ${VIEW_WIDTH} ${height}" role="img" aria-label="Delivery path: domain, MX hosts, addresses, TLSA, certificates">`,
    ...out,
    '</svg>',
    `<ul class="legend">${legend}</ul>`,
    '</section>',
  ].join('\n')
}

/** Shorten to what fits in `width` SVG units at ~7.3 units per character (13 px sans), with an ellipsis. */
function fit(text: string, width: number, perChar: number): string {
  const max = Math.max(4, Math.floor((width - 16) / perChar))
  const chars = [...text]
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…'
}

function box(col: { x: number; w: number }, top: number, b: Box): string {
  return [
    `<g class="node ${b.outcome}" data-outcome="${b.outcome}">`,
    `<title>${esc(b.tip)}</title>`,
    `<rect x="${col.x}" y="${top}" width="${col.w}" height="${BOX}" rx="6"></rect>`,
    `<text class="t" x="${col.x + 8}" y="${top + 18}">${MARK[b.outcome]} ${esc(fit(b.title, col.w - 14, 7.4))}</text>`,
    `<text class="s" x="${col.x + 8}" y="${top + 35}">${esc(fit(b.sub, col.w, 6.4))}</text>`,
    '</g>',
  ].join('')
}

function edge(from: { x: number; w: number }, y1: number, to: { x: number }, y2: number): string {
  const x1 = from.x + from.w
  const x2 = to.x
  const c = (x2 - x1) / 2
  return `<path class="edge" d="M${x1} ${y1} C${x1 + c} ${y1} ${x2 - c} ${y2} ${x2} ${y2}"></path>`
}

const CSS = `
:root{--ok:#1e7a34;--ok-bg:#e7f4ea;--warning:#9a4d00;--warning-bg:#fff3d6;--error:#b3261e;--error-bg:#fce8e6;--none:#5f6368;--none-bg:#f1f3f4;--line:#dadce0;--muted:#5f6368}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;color:#202124;background:#fff;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
main{max-width:980px;margin:0 auto;padding:24px 16px 40px}
h1{font-size:24px;line-height:1.25;margin:0 0 6px;overflow-wrap:anywhere}
h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
h3{font-size:15px;margin:16px 0 6px;overflow-wrap:anywhere}
.family{font-weight:400;color:var(--muted);font-size:13px}
p{margin:0}
code{font:13px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;overflow-wrap:anywhere;word-break:break-all}
.meta{color:var(--muted);overflow-wrap:anywhere}
.verdict{margin-top:12px;font-weight:600}
.verdict.ok{color:var(--ok)}.verdict.warning{color:var(--warning)}.verdict.error{color:var(--error)}
.chips{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0 0;padding:0;list-style:none}
.chip{border:1px solid;border-radius:999px;padding:1px 12px;font-weight:600;font-size:14px}
.chip.ok{color:var(--ok);background:var(--ok-bg)}.chip.warning{color:var(--warning);background:var(--warning-bg)}.chip.error{color:var(--error);background:var(--error-bg)}
.path svg{display:block;width:100%;height:auto;max-width:960px}
.path text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
.path .col{font-size:12px;font-weight:600;fill:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.path .t{font-size:13px;font-weight:600}
.path .s{font-size:11px;fill:#3c4043}
.path .note{font-size:13px;fill:var(--muted)}
.path .edge{fill:none;stroke:#9aa0a6;stroke-width:1.5}
.node rect{stroke-width:1.5}
.node.ok rect{fill:var(--ok-bg);stroke:var(--ok)}.node.ok .t{fill:var(--ok)}
.node.warning rect{fill:var(--warning-bg);stroke:var(--warning)}.node.warning .t{fill:var(--warning)}
.node.error rect{fill:var(--error-bg);stroke:var(--error)}.node.error .t{fill:var(--error)}
.node.none rect{fill:var(--none-bg);stroke:var(--none)}.node.none .t{fill:var(--none)}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:8px 0 0;padding:0;list-style:none;font-size:13px;color:var(--muted)}
.swatch{display:inline-block;width:12px;height:12px;border:1.5px solid;border-radius:3px;margin-right:6px;vertical-align:-1px}
.swatch.ok{background:var(--ok-bg);border-color:var(--ok)}.swatch.warning{background:var(--warning-bg);border-color:var(--warning)}
.swatch.error{background:var(--error-bg);border-color:var(--error)}.swatch.none{background:var(--none-bg);border-color:var(--none)}
.findings{list-style:none;margin:8px 0;padding:0}
.finding{display:flex;gap:10px;margin:6px 0;padding:8px 12px;border-left:4px solid;border-radius:4px}
.finding.ok{border-color:var(--ok);background:#f6fbf7}
.finding.warning{border-color:var(--warning);background:var(--warning-bg)}
.finding.error{border-color:var(--error);background:var(--error-bg)}
.mark{flex:none;width:1.2em;text-align:center;font-weight:700}
.finding.ok .mark{color:var(--ok)}.finding.warning .mark{color:var(--warning)}.finding.error .mark{color:var(--error)}
.text{flex:1;min-width:0}
.message,.remedy,.where{overflow-wrap:anywhere}
.where{font-size:13px;font-weight:600}
.remedy{margin-top:4px}
.remedy .label{font-weight:600}
.rule{margin-top:2px;font-size:13px;color:var(--muted);overflow-wrap:anywhere}
.rule code{font-size:12px}
.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 14px;margin:8px 0}
.facts dt{color:var(--muted)}
.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
.records{margin:4px 0 8px;padding-left:20px}
.records code{font-size:12px}
.address{margin:14px 0 0 6px;padding-left:14px;border-left:2px solid var(--line)}
.chain{margin:6px 0;padding-left:22px;font-size:14px}
.chain li{margin:4px 0;overflow-wrap:anywhere}
.chain .issuer,.chain .expiry,.chain .spki{color:var(--muted)}
.chain code{font-size:12px}
.empty{color:var(--muted)}
footer{margin-top:36px;padding-top:8px;border-top:1px solid var(--line);font-size:13px;color:var(--muted)}
@media (max-width:600px){.facts{grid-template-columns:minmax(0,1fr)}.facts dd{margin-bottom:4px}.address{margin-left:0;padding-left:10px}}
@media print{main{max-width:none;padding:0}.finding,.address{break-inside:avoid}}
`
  .trim()
  .replace(/\n/g, '')
