// formatCheckReportHtml: one self-contained page, every report string escaped (strings in a report come
// from DNS and certificates, so from anyone), the findings readable back from data attributes.
// The page in a real browser: test/lab/check-postfix.test.ts (Chromium).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { formatCheckReport, formatCheckReportHtml, type CheckFinding, type CheckReport } from '../../src/index.js'
import * as node from '../../src/node/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

const f = (
  severity: CheckFinding['severity'],
  id: string,
  rule: string,
  message: string,
  remedy?: string,
  address?: string,
): CheckFinding => ({
  severity,
  id,
  rule,
  message,
  ...(remedy !== undefined ? { remedy } : {}),
  ...(address !== undefined ? { address } : {}),
})
const cert = (subject: string, daysLeft: number) => ({
  subject,
  issuer: subject,
  notAfter: '2027-12-01T00:00:00.000Z',
  daysLeft,
  spkiSha256: '8aa9474eea043edf98c8db017a3f3e1f4b7f53f80ef2c4f61fd64aa9474eea04',
})

/** A report with two hosts, a dual-stack host whose IPv6 address fails, and one with no session. */
function sample(s: (k: string) => string = (k) => k): CheckReport {
  return {
    domain: s('good.test'),
    port: 25,
    checkedAt: s('2026-12-01T00:00:00.000Z'),
    status: 'ok',
    mxSecure: true,
    nullMx: false,
    implicitMx: false,
    findings: [
      f('ok', 'mx-dnssec', s('RFC 7672 §2.2.1'), s('MX RRset signed')),
      f('warning', 'tlsrpt', 'RFC 8460 §3', s('no TLS-RPT record'), s('publish one')),
    ],
    hosts: [
      {
        host: s('mx1.good.test'),
        preference: 10,
        canonicalHost: s('mx1.good.test'),
        cnames: [],
        addressSecure: true,
        tlsa: {
          status: 'secure',
          qname: s('_25._tcp.mx1.good.test'),
          base: s('mx1.good.test'),
          records: [s('3 1 1 8aa9'), s('3 1 1 c191')],
        },
        addresses: [
          {
            address: s('127.0.101.1'),
            family: 4,
            connected: true,
            starttls: true,
            protocol: s('TLSv1.3'),
            cipher: s('TLS_AES_256_GCM_SHA384'),
            chain: [cert(s('CN=mx1.good.test'), 300)],
            matchingRecords: [s('3 1 1 8aa9')],
          },
          {
            address: s('::1'),
            family: 6,
            connected: true,
            starttls: true,
            protocol: 'TLSv1.3',
            cipher: 'TLS_AES_128_GCM_SHA256',
            chain: [cert(s('CN=old.good.test'), -3), cert(s('CN=Issuer'), 30)],
            matchingRecords: [],
          },
        ],
        findings: [
          f('ok', 'tlsa-rollover', 'RFC 7671 §8', s('ready for a rollover')),
          f('error', 'addresses-disagree', 'RFC 7672 §2.2', s('::1 fails DANE'), s('same key everywhere')),
          f('ok', 'dane-match', 'RFC 7672 §3', s('matched'), undefined, s('127.0.101.1')),
          f('error', 'dane-match', 'RFC 7672 §3', s('DANE fails'), s('publish a TLSA record'), s('::1')),
          f('error', 'cert-expiry', 'RFC 5280 §4.1.2.5', s('expired'), s('renew'), s('::1')),
        ],
      },
      {
        host: s('mx2.good.test'),
        preference: 20,
        canonicalHost: s('mx.other.test'),
        cnames: [{ from: s('mx2.good.test'), to: s('mx.other.test') }],
        addressSecure: true,
        tlsa: { status: 'secure-denial', qname: s('_25._tcp.mx.other.test'), base: s('mx.other.test'), records: [] },
        addresses: [{ address: s('127.0.101.2'), family: 4, connected: false, chain: [], matchingRecords: [], error: s('ECONNREFUSED') }],
        findings: [
          f('warning', 'tlsa-absent', 'RFC 7672 §2.2', s('no TLSA'), s('publish')),
          f('error', 'connect', 'RFC 5321 §5.1', s('no SMTP session'), s('check the listener'), s('127.0.101.2')),
        ],
      },
    ],
    summary: { errors: 4, warnings: 2, ok: 3 },
  }
}

// A strict reading of the page: markup only from a fixed set of elements and attributes, every
// attribute value double-quoted, every `&` an entity. A report string that escaped its escaping shows
// up as an unknown element or attribute, a stray quote, `<` in text, or a bare `&`.
const ELEMENTS = new Set(
  'html head meta title style body main header footer section h1 h2 h3 p span ul ol li dl dt dd code time br div svg g rect text path'.split(
    ' ',
  ),
)
const ATTRIBUTES = new Set(
  'lang charset name content http-equiv class id title role aria-label viewbox x y width height rx d data-severity data-id data-rule data-address data-host data-errors data-warnings data-ok data-outcome'.split(
    ' ',
  ),
)
const ENTITY = /&(?!amp;|lt;|gt;|quot;|#39;)/

interface Element {
  name: string
  attrs: Map<string, string>
}

function readPage(html: string): { elements: Element[]; text: string } {
  assert.ok(html.startsWith('<!DOCTYPE html>\n'))
  const token = /<(\/?)([a-zA-Z0-9]+)((?:\s+[a-zA-Z-]+="[^"<>]*")*)\s*>|([^<]+)/y
  const elements: Element[] = []
  let text = ''
  token.lastIndex = '<!DOCTYPE html>'.length
  while (token.lastIndex < html.length) {
    const at = token.lastIndex
    const m = token.exec(html)
    assert.ok(m, `not markup the renderer writes, at ${at}: ${JSON.stringify(html.slice(at, at + 80))}`)
    if (m[4] !== undefined) {
      assert.doesNotMatch(m[4], ENTITY, 'a bare & in text')
      text += m[4]
      continue
    }
    const name = (m[2] as string).toLowerCase()
    assert.ok(ELEMENTS.has(name), `element <${name}>`)
    const attrs = new Map<string, string>()
    for (const a of (m[3] ?? '').matchAll(/([a-zA-Z-]+)="([^"]*)"/g)) {
      const key = (a[1] as string).toLowerCase()
      assert.ok(ATTRIBUTES.has(key), `attribute ${key} on <${name}>`)
      assert.ok(!attrs.has(key), `attribute ${key} twice on <${name}>`)
      assert.doesNotMatch(a[2] as string, ENTITY, 'a bare & in an attribute')
      attrs.set(key, unescape(a[2] as string))
    }
    if (m[1] === '') elements.push({ name, attrs })
  }
  return { elements, text: unescape(text) }
}

/** How the page shows a string: control characters and bidi overrides as `\\u{…}`. */
const shown = (s: string) =>
  s.replace(
    /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u{${c.charCodeAt(0).toString(16)}}`,
  )

const unescape = (s: string) =>
  s.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e] as string)

/** The findings as the page carries them, in page order, with the host each belongs to. */
function pageFindings(html: string) {
  return readPage(html)
    .elements.filter((e) => e.name === 'li' && e.attrs.has('data-severity'))
    .map((e) => ({
      host: e.attrs.get('data-host'),
      severity: e.attrs.get('data-severity'),
      id: e.attrs.get('data-id'),
      rule: e.attrs.get('data-rule'),
      address: e.attrs.get('data-address'),
    }))
}

/** The same from the report: domain findings, then each host's, sorted as the page groups them is not assumed. */
function reportFindings(r: CheckReport) {
  return [
    ...r.findings.map((x) => ({ host: undefined as string | undefined, ...x })),
    ...r.hosts.flatMap((h) => h.findings.map((x) => ({ host: h.host, ...x }))),
  ].map((x) => ({ host: x.host, severity: x.severity, id: x.id, rule: x.rule, address: x.address }))
}
const sorted = <T>(xs: T[]) => xs.map((x) => JSON.stringify(x)).sort()

describe('formatCheckReportHtml (issue 16)', () => {
  it('one document: doctype, charset, a CSP that forbids scripts and fetches, inline CSS, no script', () => {
    const html = formatCheckReportHtml(sample())
    const { elements } = readPage(html)
    const csp = elements.find((e) => e.attrs.get('http-equiv') === 'Content-Security-Policy')
    assert.equal(csp?.attrs.get('content'), "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    assert.ok(elements.some((e) => e.name === 'meta' && e.attrs.get('charset') === 'utf-8'))
    assert.equal(elements.filter((e) => e.name === 'style').length, 1)
    // Nothing that loads: no script, link, img, iframe, object; no src/href attribute; no url() or @import in the CSS.
    assert.doesNotMatch(html, /<(script|link|img|iframe|object|embed|base)\b/i)
    assert.doesNotMatch(html, /\s(src|href|srcset|action)=/i)
    assert.doesNotMatch(html, /url\(|@import/i)
  })
  it('the findings in the page are the findings of the report, with severity, rule, remedy and address', () => {
    const r = sample()
    const html = formatCheckReportHtml(r)
    assert.deepEqual(sorted(pageFindings(html)), sorted(reportFindings(r)))
    const { text } = readPage(html)
    for (const x of reportFindings(r)) assert.ok(text.includes(x.rule))
    assert.ok(text.includes('Fix: publish a TLSA record'))
    assert.ok(text.includes('MX 20 mx2.good.test → mx.other.test'), 'the CNAME target is named')
  })
  it('grouped by host, and each address finding under its address', () => {
    const html = formatCheckReportHtml(sample())
    const h1 = html.indexOf('<section class="host" id="host-1"')
    const v6 = html.indexOf('<section class="address" data-address="::1">')
    const h2 = html.indexOf('<section class="host" id="host-2"')
    assert.ok(h1 > 0 && h1 < v6 && v6 < h2)
    const expired = html.indexOf('data-id="cert-expiry"')
    assert.ok(v6 < expired && expired < h2)
  })
  it('the delivery path: a box per domain, host and address, coloured by the worst finding about it', () => {
    const { elements } = readPage(formatCheckReportHtml(sample()))
    const boxes = elements.filter((e) => e.name === 'g').map((e) => e.attrs.get('data-outcome'))
    // In document order: the domain (TLS-RPT warning), mx1 (addresses disagree), mx2 (no TLSA); then a row per
    // address of (address, TLSA, certificate): 127.0.101.1 (no session finding, DANE ok, no certificate
    // finding), ::1 (DANE and expiry errors), 127.0.101.2 (refused; the host's missing TLSA; no certificate).
    assert.deepEqual(boxes, ['warning', 'error', 'warning', 'none', 'ok', 'none', 'none', 'error', 'error', 'error', 'warning', 'none'])
  })
  it('hostile strings from DNS and certificates stay text: no element, attribute or entity of their own', () => {
    const evil = [
      '<script>alert(1)</script>',
      '"><img src=x onerror=alert(1)>',
      "' onmouseover='alert(1)",
      '&lt;b&gt;&amp',
      '</style><style>*{display:none}</style>',
      ']]><!-- -->',
      'a\u0000b\u001bc\u202eevil\u2066',
    ]
    for (const e of evil) {
      const html = formatCheckReportHtml(sample((k) => `${k}${e}`))
      const { elements, text } = readPage(html)
      assert.equal(elements.filter((x) => x.name === 'style').length, 1, e)
      assert.ok(!elements.some((x) => x.attrs.has('onerror') || x.attrs.has('onmouseover')), e)
      assert.ok(text.includes(`good.test${shown(e)}`), `${e} shown as text`)
      assert.ok(!/[\u0000-\u0008\u001b\u202e\u2066]/.test(html), 'no control or bidi override character acts')
      const found = pageFindings(html)
      assert.ok(found.some((x) => x.address === `::1${shown(e)}`))
    }
  })
  it('property: any strings in every field give a valid page whose findings are the report’s', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 12 }), { minLength: 1, maxLength: 6 }), (parts) => {
        let i = 0
        const r = sample((k) => `${k}${parts[i++ % parts.length]}`)
        const html = formatCheckReportHtml(r)
        const shownFinding = (x: object) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'string' ? shown(v) : v))
        assert.deepEqual(pageFindings(html).map(shownFinding).sort(), reportFindings(r).map(shownFinding).sort())
      }),
      { numRuns: 300 },
    )
  })
  it('the same report gives the same bytes; the node entry exports the same function', () => {
    assert.equal(formatCheckReportHtml(sample()), formatCheckReportHtml(sample()))
    assert.equal(node.formatCheckReportHtml, formatCheckReportHtml)
    assert.equal(node.formatCheckReport, formatCheckReport)
  })
  it('a null MX: the path shows the domain alone and says why', () => {
    const r: CheckReport = {
      ...sample(),
      status: 'null-mx',
      nullMx: true,
      hosts: [],
      findings: [f('ok', 'null-mx', 'RFC 7505 §3', 'null MX')],
    }
    const { text, elements } = readPage(formatCheckReportHtml(r))
    assert.ok(text.includes('null MX: the domain receives no mail'))
    assert.equal(elements.filter((e) => e.name === 'g').length, 1)
  })
  it('wrong types: coded errors', () => {
    for (const bad of [null, undefined, 42, 'report', {}, { hosts: [], findings: 'x' }, { hosts: [{}], findings: [] }])
      throwsCoded(() => formatCheckReportHtml(bad as never), 'ERR_INVALID_ARGUMENT')
  })
})
