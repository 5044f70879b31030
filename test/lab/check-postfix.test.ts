// The issue 16 lab: check() and `smtp-tls-policy check` against real Postfix smtpd servers, resolving
// through NSD + Unbound (DNSSEC), and the HTML report of every scenario rendered in headless Chromium.
// Addresses 127.0.101.x and ::1 (port 2525); the MTA-STS policy host on 127.0.101.10.
//
// Each scenario lists every finding it must give (severity, check id, host, address), and its exit
// status; test/lab/README.md lists them. `CHECK_DOCS=1` also writes the README's text report of
// good.test to $TMPDIR/check-report.txt and the screenshot of its HTML report to docs/check-report.png;
// `CHECK_SCREENSHOTS=DIR` saves every scenario's screenshot (800 px wide) there.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { check, createResolver, type CheckReport } from '../../src/node/index.js'
import { startChromium, type Browser } from '../helpers/chromium.js'
import { expiredCertificate, expiredLeaf, startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const PORT = 2525
const GOOD = '127.0.101.1' // the current key, every name below in its SAN
const MX2 = '127.0.101.2' // the same key as GOOD (good.test's mx2 has a record for another key)
const EXPIRED_CHAIN = '127.0.101.3' // a valid leaf under an expired intermediate
const NO_STARTTLS = '127.0.101.4'
const TA_FULL = '127.0.101.5' // a leaf and its CA
const TA_LEAF_ONLY = '127.0.101.6' // the same leaf without its CA
const HOSTILE = '127.0.101.7' // a certificate whose CN is markup
const EXPIRED_LEAF = '127.0.101.8'
const STS_HTTPS = '127.0.101.10'
const V6 = '::1' // dual.test's AAAA: serves a key no record names

const goodNames = [
  'mx1.good.test',
  'mx2.good.test',
  'mx.single.test',
  'mx.rollover.test',
  'mx.dual.test',
  'mail.target.test',
  'mx1.sts.test',
  'mx2.sts.test',
  'mx.notlsa.test',
  'mx.pkix.test',
  'mx.plain.test',
]
const leaf = makeCert({ key: 'ec256', subject: '/CN=mx1.good.test', dns: goodNames })
const next = makeCert({ key: 'ec256', subject: '/CN=next.good.test' })
const stranger = makeCert({ key: 'ec256', subject: '/CN=stranger.test' })
const taCa = makeCert({ key: 'ec256', subject: '/CN=Check Lab TA', ca: true })
const taLeaf = makeCert({ key: 'ec256', subject: '/CN=mx.ta.test', dns: ['mx.ta.test', 'mx.taleaf.test'], issuer: taCa })
const root = makeCert({ key: 'ec256', subject: '/CN=Check Lab Root', ca: true })
const HOSTILE_CN = '<img src=x onerror=alert(1)>"&amp;</b>'
const hostileLeaf = makeCert({ key: 'ec256', subject: `/CN=${HOSTILE_CN.replace(/\//g, '\\/')}`, dns: ['mx.hostile.test'] })
const HOSTILE_RUA = 'mailto:<script>alert(1)</script>@hostile.test'
const stsCa = makeCert({ key: 'ec256', subject: '/CN=Check Lab STS CA', ca: true })
const chainPem = (...c: Issued[]) => c.map((x) => x.pem).join('')
const ee = (c: Issued) => formatTlsaRecord(createTlsaRecord(c.der, { usage: 3, selector: 1, matchingType: 1 }))
const ta = (c: Issued) => formatTlsaRecord(createTlsaRecord(c.der, { usage: 2, selector: 1, matchingType: 1 }))
const pkixEe = (c: Issued) => formatTlsaRecord(createTlsaRecord(c.der, { usage: 1, selector: 1, matchingType: 1 }))
const tlsa = (host: string) => `_${PORT}._tcp.${host}`
const rpt = (d: string) => `_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@${d}"`

/**
 * A finding as the scenarios name it: severity, check id, then the host and the address it is about.
 * Domain findings have neither.
 */
const key = (severity: string, id: string, host?: string, address?: string) =>
  [severity, id, ...(host ? [host] : []), ...(address ? [`[${address}]`] : [])].join(' ')
function keys(r: CheckReport): string[] {
  return [
    ...r.findings.map((f) => key(f.severity, f.id)),
    ...r.hosts.flatMap((h) => h.findings.map((f) => key(f.severity, f.id, h.host, f.address))),
  ].sort()
}

interface Scenario {
  domain: string
  what: string
  status: 0 | 1 | 2
  findings: string[]
  mtaSts?: boolean
}

// Per MX host and address with a valid TLS session and a DANE match, the lab always adds
// `ok tls` and `ok cert-expiry` at the address and `ok address-dnssec`, `ok tlsa-dnssec` at the host.
const signedHost = (h: string) => [`ok address-dnssec ${h}`, `ok tlsa-dnssec ${h}`]
const session = (h: string, a: string) => [`ok tls ${h} [${a}]`, `ok cert-expiry ${h} [${a}]`]
const verified = (h: string, a: string) => [...session(h, a), `ok dane-match ${h} [${a}]`]
const signedDomain = ['ok mx-dnssec', 'ok mta-sts', 'ok tlsrpt']

const SCENARIOS: Scenario[] = [
  {
    domain: 'good.test',
    what: 'two MX: mx1 verified with its next key published (RFC 7671 §8), mx2’s record names a key nobody serves',
    status: 2,
    findings: [
      ...signedDomain,
      ...signedHost('mx1.good.test'),
      'ok tlsa-rollover mx1.good.test',
      ...verified('mx1.good.test', GOOD),
      ...signedHost('mx2.good.test'),
      ...session('mx2.good.test', MX2),
      `error dane-match mx2.good.test [${MX2}]`,
    ],
  },
  {
    domain: 'rollover.test',
    what: 'rollover ready: a 3 1 1 for the current key and one for the next key; nothing to fix',
    status: 0,
    findings: [
      ...signedDomain,
      ...signedHost('mx.rollover.test'),
      'ok tlsa-rollover mx.rollover.test',
      ...verified('mx.rollover.test', GOOD),
    ],
  },
  {
    domain: 'single.test',
    what: 'a single 3 1 1: a key change breaks DANE delivery (RFC 7671 §8)',
    status: 1,
    findings: [
      ...signedDomain,
      ...signedHost('mx.single.test'),
      'warning tlsa-rollover mx.single.test',
      ...verified('mx.single.test', GOOD),
    ],
  },
  {
    domain: 'dual.test',
    what: 'dual stack: 127.0.101.1 serves the key of the records, ::1 another one (RFC 7672 §2.2)',
    status: 2,
    findings: [
      ...signedDomain,
      ...signedHost('mx.dual.test'),
      'ok tlsa-rollover mx.dual.test',
      'error addresses-disagree mx.dual.test',
      ...verified('mx.dual.test', GOOD),
      ...session('mx.dual.test', V6),
      `error dane-match mx.dual.test [${V6}]`,
    ],
  },
  {
    domain: 'cname.test',
    what: 'the MX host is a CNAME into another signed zone: TLSA at the target (the TLSA base domain, RFC 7672 §2.2.2)',
    status: 0,
    findings: [...signedDomain, ...signedHost('mx.cname.test'), 'ok tlsa-rollover mx.cname.test', ...verified('mx.cname.test', GOOD)],
  },
  {
    domain: 'sts.test',
    what: 'MTA-STS enforce whose mx: patterns miss mx2 (RFC 8461 §4.1)',
    status: 2,
    mtaSts: true,
    findings: [
      ...signedDomain,
      'error mta-sts-mx',
      ...['mx1', 'mx2'].flatMap((m, i) => {
        const h = `${m}.sts.test`
        const a = i === 0 ? GOOD : MX2
        return [...signedHost(h), `ok tlsa-rollover ${h}`, ...verified(h, a), `ok mta-sts-cert ${h} [${a}]`]
      }),
    ],
  },
  {
    domain: 'expired.test',
    what: 'a valid leaf under an expired intermediate (RFC 5280 §6.1.3); the 3 1 1 still matches',
    status: 2,
    findings: [
      ...signedDomain,
      ...signedHost('mx.expired.test'),
      'ok tlsa-rollover mx.expired.test',
      ...verified('mx.expired.test', EXPIRED_CHAIN),
      `error chain-expiry mx.expired.test [${EXPIRED_CHAIN}]`,
    ],
  },
  {
    domain: 'expiredleaf.test',
    what: 'an expired leaf that a 3 1 1 authenticates: DANE-EE ignores dates (RFC 7672 §3.1.1), others do not',
    status: 1,
    findings: [
      ...signedDomain,
      ...signedHost('mx.expiredleaf.test'),
      'ok tlsa-rollover mx.expiredleaf.test',
      `ok tls mx.expiredleaf.test [${EXPIRED_LEAF}]`,
      `ok dane-match mx.expiredleaf.test [${EXPIRED_LEAF}]`,
      `warning cert-expiry mx.expiredleaf.test [${EXPIRED_LEAF}]`,
    ],
  },
  {
    domain: 'ta.test',
    what: 'a 2 1 1 for the issuer, the server sends leaf and issuer: verified, and ready for a key change',
    status: 0,
    findings: [...signedDomain, ...signedHost('mx.ta.test'), 'ok tlsa-rollover mx.ta.test', ...verified('mx.ta.test', TA_FULL)],
  },
  {
    domain: 'taleaf.test',
    what: 'a 2 1 1 for the issuer, the server sends only its leaf (RFC 7671 §5.2.2)',
    status: 2,
    findings: [
      ...signedDomain,
      ...signedHost('mx.taleaf.test'),
      'ok tlsa-rollover mx.taleaf.test',
      ...session('mx.taleaf.test', TA_LEAF_ONLY),
      `error dane-match mx.taleaf.test [${TA_LEAF_ONLY}]`,
      `error chain-incomplete mx.taleaf.test [${TA_LEAF_ONLY}]`,
    ],
  },
  {
    domain: 'pkix.test',
    what: 'a PKIX-EE (1 1 1) record beside 3 1 1 records: SMTP clients ignore it (RFC 7672 §3.1.3)',
    status: 1,
    findings: [
      ...signedDomain,
      ...signedHost('mx.pkix.test'),
      'warning tlsa-pkix mx.pkix.test',
      'ok tlsa-rollover mx.pkix.test',
      ...verified('mx.pkix.test', GOOD),
    ],
  },
  {
    domain: 'notlsa.test',
    what: 'a signed zone without TLSA records: no DANE',
    status: 1,
    findings: [
      ...signedDomain,
      'ok address-dnssec mx.notlsa.test',
      'warning tlsa-absent mx.notlsa.test',
      ...session('mx.notlsa.test', GOOD),
    ],
  },
  {
    domain: 'nostarttls.test',
    what: 'TLSA records published, STARTTLS not offered (RFC 7672 §2.2)',
    status: 2,
    findings: [...signedDomain, ...signedHost('mx.nostarttls.test'), `error starttls mx.nostarttls.test [${NO_STARTTLS}]`],
  },
  {
    domain: 'plain.test',
    what: 'an unsigned zone: what DANE would need; STARTTLS still checked',
    status: 1,
    findings: ['warning mx-dnssec', 'ok mta-sts', 'warning tlsrpt', ...session('mx.plain.test', GOOD)],
  },
  {
    domain: 'bogus.test',
    what: 'expired signatures on the zone: the MX lookup is bogus, senders defer everything',
    status: 2,
    // The _mta-sts and _smtp._tls lookups are bogus too: MTA-STS is an error, TLS-RPT could not be checked.
    findings: ['error mx-lookup', 'error mta-sts', 'warning tlsrpt'],
  },
  {
    domain: 'nullmx.test',
    what: 'a null MX (RFC 7505)',
    status: 0,
    findings: ['ok null-mx', 'ok mx-dnssec', 'ok mta-sts'],
  },
  {
    domain: 'missing.test',
    what: 'no such domain (NXDOMAIN)',
    status: 2,
    findings: ['error no-such-domain'],
  },
  {
    domain: 'hostile.test',
    what: 'markup in the certificate subject and in the TLS-RPT record (an invalid rua URI): text in every report',
    status: 2,
    findings: [
      'ok mx-dnssec',
      'ok mta-sts',
      'error tlsrpt',
      ...signedHost('mx.hostile.test'),
      'ok tlsa-rollover mx.hostile.test',
      ...verified('mx.hostile.test', HOSTILE),
    ],
  },
]

let dns: DnsLab
let postfix: PostfixLab
let https: TestHttpsServer
let browser: Browser
let tmp: string
let caFile: string

before(
  async () => {
    tmp = mkdtempSync(join(tmpdir(), 'stp-check-lab-'))
    const mid = await expiredCertificate(root, { cn: 'Check Lab Expired Intermediate', ca: true })
    const expChainLeaf = makeCert({ key: 'ec256', subject: '/CN=mx.expired.test', dns: ['mx.expired.test'], issuer: mid })
    const expLeaf = await expiredLeaf(root, ['mx.expiredleaf.test'])
    https = await startHttpsServer(
      makeCert({ key: 'ec256', subject: '/CN=mta-sts.sts.test', dns: ['mta-sts.sts.test'], issuer: stsCa }),
      STS_HTTPS,
    )
    https.routes.set('mta-sts.sts.test', (_q, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: enforce\nmx: mx1.sts.test\nmax_age: 604800\n'),
    )
    // Trust anchors of the MTA-STS checks: the policy host's CA, and the lab's self-signed MX certificate.
    caFile = join(tmp, 'ca.pem')
    writeFileSync(caFile, stsCa.pem + leaf.pem)
    const signed = (name: string, mx: string, records: string[], extra: string[] = []) => ({
      name,
      records: [`@ MX 10 ${mx}`, ...records, rpt(name), ...extra],
    })
    dns = await startDnsLab({
      zones: [
        {
          name: 'good.test',
          records: [
            '@ MX 10 mx1',
            '@ MX 20 mx2',
            `mx1 A ${GOOD}`,
            `mx2 A ${MX2}`,
            `${tlsa('mx1')} TLSA ${ee(leaf)}`,
            `${tlsa('mx1')} TLSA ${ee(next)}`,
            // mx2's record names a key nobody serves: DANE fails there
            `${tlsa('mx2')} TLSA ${ee(stranger)}`,
            rpt('good.test'),
          ],
        },
        signed('rollover.test', 'mx', [`mx A ${GOOD}`, `${tlsa('mx')} TLSA ${ee(leaf)}`, `${tlsa('mx')} TLSA ${ee(next)}`]),
        signed('single.test', 'mx', [`mx A ${GOOD}`, `${tlsa('mx')} TLSA ${ee(leaf)}`]),
        signed('dual.test', 'mx', [`mx A ${GOOD}`, `mx AAAA ${V6}`, `${tlsa('mx')} TLSA ${ee(leaf)}`, `${tlsa('mx')} TLSA ${ee(next)}`]),
        signed('cname.test', 'mx', ['mx CNAME mail.target.test.']),
        { name: 'target.test', records: [`mail A ${GOOD}`, `${tlsa('mail')} TLSA ${ee(leaf)}`, `${tlsa('mail')} TLSA ${ee(next)}`] },
        {
          name: 'sts.test',
          records: [
            '@ MX 10 mx1',
            '@ MX 20 mx2',
            `mx1 A ${GOOD}`,
            `mx2 A ${MX2}`,
            ...['mx1', 'mx2'].flatMap((m) => [`${tlsa(m)} TLSA ${ee(leaf)}`, `${tlsa(m)} TLSA ${ee(next)}`]),
            '_mta-sts TXT "v=STSv1; id=20261201"',
            `mta-sts A ${STS_HTTPS}`,
            rpt('sts.test'),
          ],
        },
        signed('expired.test', 'mx', [`mx A ${EXPIRED_CHAIN}`, `${tlsa('mx')} TLSA ${ee(expChainLeaf)}`, `${tlsa('mx')} TLSA ${ee(next)}`]),
        signed('expiredleaf.test', 'mx', [`mx A ${EXPIRED_LEAF}`, `${tlsa('mx')} TLSA ${ee(expLeaf)}`, `${tlsa('mx')} TLSA ${ee(next)}`]),
        signed('ta.test', 'mx', [`mx A ${TA_FULL}`, `${tlsa('mx')} TLSA ${ta(taCa)}`]),
        signed('taleaf.test', 'mx', [`mx A ${TA_LEAF_ONLY}`, `${tlsa('mx')} TLSA ${ta(taCa)}`]),
        signed('pkix.test', 'mx', [
          `mx A ${GOOD}`,
          `${tlsa('mx')} TLSA ${pkixEe(leaf)}`,
          `${tlsa('mx')} TLSA ${ee(leaf)}`,
          `${tlsa('mx')} TLSA ${ee(next)}`,
        ]),
        signed('notlsa.test', 'mx', [`mx A ${GOOD}`]),
        signed('nostarttls.test', 'mx', [`mx A ${NO_STARTTLS}`, `${tlsa('mx')} TLSA ${ee(leaf)}`]),
        { name: 'plain.test', records: ['@ MX 10 mx', `mx A ${GOOD}`], dnssec: 'unsigned' },
        { name: 'bogus.test', records: ['@ MX 10 mx', `mx A ${GOOD}`], dnssec: 'expired' },
        { name: 'nullmx.test', records: ['@ MX 0 .'] },
        {
          name: 'hostile.test',
          records: [
            '@ MX 10 mx',
            `mx A ${HOSTILE}`,
            `${tlsa('mx')} TLSA ${ee(hostileLeaf)}`,
            `${tlsa('mx')} TLSA ${ee(next)}`,
            `_smtp._tls TXT "v=TLSRPTv1; rua=${HOSTILE_RUA}"`,
          ],
        },
      ],
    })
    postfix = await startPostfixLab([
      { address: GOOD, port: PORT, certPem: leaf.pem, keyPem: leaf.keyPem },
      { address: MX2, port: PORT, certPem: leaf.pem, keyPem: leaf.keyPem },
      { address: V6, port: PORT, certPem: stranger.pem, keyPem: stranger.keyPem },
      { address: EXPIRED_CHAIN, port: PORT, certPem: chainPem(expChainLeaf, mid), keyPem: expChainLeaf.keyPem },
      { address: NO_STARTTLS, port: PORT, starttls: false },
      { address: TA_FULL, port: PORT, certPem: chainPem(taLeaf, taCa), keyPem: taLeaf.keyPem },
      { address: TA_LEAF_ONLY, port: PORT, certPem: taLeaf.pem, keyPem: taLeaf.keyPem },
      { address: HOSTILE, port: PORT, certPem: hostileLeaf.pem, keyPem: hostileLeaf.keyPem },
      { address: EXPIRED_LEAF, port: PORT, certPem: chainPem(expLeaf, root), keyPem: expLeaf.keyPem },
    ])
    browser = await startChromium()
  },
  { timeout: 180_000 },
)
after(async () => {
  // every step runs even when one fails: a daemon left running would break the next run
  const steps = [() => browser?.close(), () => postfix?.stop(), () => dns?.stop(), () => https?.close()]
  const failures = (await Promise.allSettled(steps.map(async (f) => f()))).filter((r) => r.status === 'rejected')
  if (tmp) rmSync(tmp, { recursive: true, force: true })
  if (failures.length > 0) throw (failures[0] as PromiseRejectedResult).reason
})

const opts = () => ({
  resolver: createResolver({ servers: [dns.resolverAddress] }),
  port: PORT,
  ehloName: 'client.good.test',
  timeoutMs: 10_000,
  mtaSts: { ca: stsCa.pem + leaf.pem, port: https.port, allowPrivateAddresses: true },
})
const find = (r: CheckReport, id: string) => [...r.findings, ...r.hosts.flatMap((h) => h.findings)].filter((f) => f.id === id)

/** `smtp-tls-policy check <domain> --json --html FILE`: the exit status, the JSON report, the page. */
async function cli(domain: string): Promise<{ status: number; report: CheckReport; htmlFile: string; err: string }> {
  const htmlFile = join(tmp, `${domain}.html`)
  let out = ''
  let err = ''
  const argv = ['check', domain, '--resolver', dns.resolverAddress, '--port', String(PORT), '--ehlo', 'client.good.test']
  argv.push('--ca-file', caFile, '--sts-port', String(https.port), '--allow-private', '--json', '--html', htmlFile)
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, report: JSON.parse(out) as CheckReport, htmlFile, err }
}

describe('check against Postfix + NSD/Unbound: every scenario gives its findings (issue 16)', () => {
  for (const s of SCENARIOS) {
    it(`${s.domain}: ${s.what}`, async () => {
      const { status, report } = await cli(s.domain)
      assert.deepEqual(keys(report), [...s.findings].sort(), JSON.stringify(report, null, 1))
      assert.equal(status, s.status)
      for (const f of [...report.findings, ...report.hosts.flatMap((h) => h.findings)]) {
        assert.ok(f.rule.length > 0 && f.message.length > 0)
        if (f.severity !== 'ok') assert.ok(f.remedy, `${f.id} has a remedy`)
      }
    })
  }
})

describe('check against Postfix + NSD/Unbound: details', () => {
  it('good.test: the record that matched at mx1, TLS 1.3 from Postfix', async () => {
    const r = await check('good.test', opts())
    const [h1] = r.hosts as [CheckReport['hosts'][0]]
    assert.equal(h1.tlsa.status, 'secure')
    assert.match(h1.addresses[0]!.protocol ?? '', /^TLSv1\.[23]$/)
    assert.deepEqual(h1.addresses[0]!.matchingRecords, [ee(leaf)])
  })
  it('cname.test: the CNAME is expanded, the TLSA RRset is looked up at the target (the TLSA base domain)', async () => {
    const r = await check('cname.test', opts())
    const h = r.hosts[0]!
    assert.equal(h.host, 'mx.cname.test')
    assert.equal(h.canonicalHost, 'mail.target.test')
    assert.deepEqual(h.cnames, [{ from: 'mx.cname.test', to: 'mail.target.test' }])
    assert.equal(h.tlsa.base, 'mail.target.test')
    assert.equal(h.tlsa.qname, `_${PORT}._tcp.mail.target.test`)
    assert.match(find(r, 'address-dnssec')[0]?.message ?? '', /via CNAME to mail\.target\.test/)
  })
  it('dual.test: only ::1 fails, and the finding names it', async () => {
    const r = await check('dual.test', opts())
    assert.deepEqual(
      r.hosts[0]!.addresses.map((a) => [a.address, a.family, a.matchingRecords.length]),
      [
        [GOOD, 4, 1],
        [V6, 6, 0],
      ],
    )
    assert.match(find(r, 'addresses-disagree')[0]?.message ?? '', /::1 fail DANE/)
  })
  it('expired.test: the intermediate is named as expired, the leaf is not', async () => {
    const r = await check('expired.test', opts())
    const chain = r.hosts[0]!.addresses[0]!.chain
    assert.equal(chain.length, 2)
    assert.ok(chain[0]!.daysLeft > 0 && chain[1]!.daysLeft < 0)
    assert.match(find(r, 'chain-expiry')[0]?.message ?? '', /Check Lab Expired Intermediate/)
  })
  it('sts.test: the MX that no mx: pattern matches is named', async () => {
    const r = await check('sts.test', opts())
    assert.match(find(r, 'mta-sts-mx')[0]?.message ?? '', /^MX mx2\.sts\.test matches no mx: pattern/)
  })
  it('the CLI: text grouped by host, exit 2 and the failing host named', async () => {
    let out = ''
    const argv = ['check', 'good.test', '--resolver', dns.resolverAddress, '--port', String(PORT), '--ehlo', 'client.good.test']
    const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (out += l + '\n') })
    assert.equal(status, 2, out)
    assert.match(out, /MX 20 mx2\.good\.test\n/)
    if (process.env['CHECK_DOCS'] === '1') writeFileSync(join(tmpdir(), 'check-report.txt'), `$ smtp-tls-policy ${argv.join(' ')}\n${out}`)
  })
})

/** What the page says, read in the browser. */
interface PageFacts {
  findings: {
    severity?: string
    id?: string
    rule?: string
    address?: string
    host?: string
    message?: string
    remedy?: string
    shown: boolean
  }[]
  scrollWidth: number
  clientWidth: number
  /** elements whose box reaches past the viewport's left or right edge */
  wide: string[]
  active: number
  text: string
}
const READ_PAGE = `(() => {
  const de = document.documentElement
  const vw = de.clientWidth
  const wide = [...document.querySelectorAll('body *')]
    .filter((e) => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5) })
    .map((e) => e.tagName + '.' + (e.getAttribute('class') || ''))
  const findings = [...document.querySelectorAll('li.finding')].map((li) => ({
    severity: li.dataset.severity, id: li.dataset.id, rule: li.dataset.rule, address: li.dataset.address, host: li.dataset.host,
    message: li.querySelector('.message')?.textContent, remedy: li.querySelector('.remedy-text')?.textContent,
    shown: li.getBoundingClientRect().height > 0 && getComputedStyle(li).visibility === 'visible',
  }))
  return { findings, scrollWidth: Math.max(de.scrollWidth, document.body.scrollWidth), clientWidth: vw, wide,
    active: document.querySelectorAll('script, img, iframe, object, embed, link, a[href], [onerror], [onload]').length,
    text: document.body.innerText }
})()`

/** The findings of a JSON report in the page's terms (undefined where the page has no attribute). */
function jsonFindings(r: CheckReport) {
  return [
    ...r.findings.map((f) => ({ ...f, host: undefined as string | undefined })),
    ...r.hosts.flatMap((h) => h.findings.map((f) => ({ ...f, host: h.host }))),
  ].map((f) => JSON.stringify([f.severity, f.id, f.rule, f.address, f.host, f.message, f.remedy]))
}

describe('the HTML report in headless Chromium (issue 16)', () => {
  for (const s of SCENARIOS) {
    it(`${s.domain}: no overflow at 1024 and 800 px, no console error, nothing fetched, the findings of --json`, async () => {
      const { report, htmlFile } = await cli(s.domain)
      const page = await browser.open(`file://${htmlFile}`, 1024, 768)
      try {
        for (const width of [1024, 800]) {
          await page.resize(width, 768)
          const p = await page.evaluate<PageFacts>(READ_PAGE)
          assert.ok(p.scrollWidth <= p.clientWidth, `${width} px: scrollWidth ${p.scrollWidth} > clientWidth ${p.clientWidth}`)
          assert.deepEqual(p.wide, [], `${width} px: wider than the viewport`)
          assert.equal(p.active, 0, 'no script, image, link or handler')
          assert.ok(p.findings.every((f) => f.shown))
          const inPage = p.findings.map((f) => JSON.stringify([f.severity, f.id, f.rule, f.address, f.host, f.message, f.remedy]))
          assert.deepEqual(inPage.sort(), jsonFindings(report).sort())
          if (s.domain === 'hostile.test') {
            const subject = report.hosts[0]!.addresses[0]!.chain[0]!.subject
            // Node writes it as an RFC 4514 string (\< \> \" \;): the markup characters are all there.
            assert.ok(subject.includes('<img src=x onerror=alert(1)') && subject.includes('</b'), subject)
            assert.ok(p.text.includes(subject), 'the hostile subject is shown as text')
            assert.ok(p.text.includes(HOSTILE_RUA), 'the hostile TLS-RPT address is shown as text')
          }
        }
        const png = await page.screenshot()
        assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG')
        // The whole page at the last width (800 px, less the vertical scroll bar when the page is taller).
        const [w, h] = [png.readUInt32BE(16), png.readUInt32BE(20)]
        assert.ok(w > 760 && w <= 800 && h >= 300, `${w} x ${h}`)
        const shots = process.env['CHECK_SCREENSHOTS']
        if (shots) writeFileSync(join(shots, `${s.domain}.png`), png)
        if (process.env['CHECK_DOCS'] === '1' && s.domain === 'good.test') {
          await page.resize(1024, 768)
          writeFileSync(new URL('../../docs/check-report.png', import.meta.url), await page.screenshot())
        }
        assert.deepEqual(page.problems, [], 'no console error, exception or CSP report')
        assert.deepEqual(page.requests, [], 'nothing fetched')
      } finally {
        await page.close()
      }
    })
  }
  it('the page is the rendering of the JSON of the same run', async () => {
    const { report, htmlFile } = await cli('good.test')
    const { formatCheckReportHtml } = await import('../../src/index.js')
    assert.equal(readFileSync(htmlFile, 'utf8'), formatCheckReportHtml(report))
  })
})
