// check(): the operator's validator (issue 16) against an in-process validating resolver and STARTTLS servers.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { createTlsaRecord } from '../../src/index.js'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { check, createResolver, formatCheckReport, formatCheckReportHtml, type CheckReport } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js'
import { expiredCertificate, startHttpsServer, type Route, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=mx.chk.test', dns: ['mx.chk.test'] })
const next = makeCert({ key: 'ec256', subject: '/CN=mx.chk.test' })
const other = makeCert({ key: 'ec256', subject: '/CN=other.chk.test' })
const rr = (c: typeof cert, usage = 3, selector = 1, matchingType = 1) => {
  const r = createTlsaRecord(c.der, { usage, selector, matchingType })
  return { usage, selector, matchingType, certificate: Buffer.from(r.data) }
}
let v4: TestSmtpServer
let v6: TestSmtpServer
let dns: TestDnsServer

before(async () => {
  v4 = await startSmtpServer({ certPem: cert.pem, keyPem: cert.keyPem })
  // The same port on ::1, serving a key no TLSA record names: only the IPv6 address fails.
  v6 = await startSmtpServer({ certPem: other.pem, keyPem: other.keyPem, address: '::1', port: v4.port })
  const tlsa = (host: string) => `_${v4.port}._tcp.${host}`
  const mx = (domain: string, host: string): ZoneRecord[] => [
    [domain, 'MX', { preference: 10, exchange: host }],
    [host, 'A', '127.0.0.1'],
    [`_smtp._tls.${domain}`, 'TXT', `v=TLSRPTv1; rua=mailto:tlsrpt@${domain}`],
  ]
  dns = await startDnsServer(
    validatingZone({
      records: [
        // good: the current key and the next one (RFC 7671 §8)
        ...mx('good.chk.test', 'mx.good.chk.test'),
        [tlsa('mx.good.chk.test'), 'TLSA', rr(cert)],
        [tlsa('mx.good.chk.test'), 'TLSA', rr(next)],
        // one record: rollover warning
        ...mx('single.chk.test', 'mx.single.chk.test'),
        [tlsa('mx.single.chk.test'), 'TLSA', rr(cert)],
        // mismatch
        ...mx('bad.chk.test', 'mx.bad.chk.test'),
        [tlsa('mx.bad.chk.test'), 'TLSA', rr(other, 3, 1, 1)],
        [tlsa('mx.bad.chk.test'), 'TLSA', rr(next)],
        // dual stack, ::1 serves another key
        ...mx('dual.chk.test', 'mx.dual.chk.test'),
        ['mx.dual.chk.test', 'AAAA', '::1'],
        [tlsa('mx.dual.chk.test'), 'TLSA', rr(cert)],
        [tlsa('mx.dual.chk.test'), 'TLSA', rr(next)],
        // a PKIX usage and a 3 1 1 for the current key
        ...mx('pkix.chk.test', 'mx.pkix.chk.test'),
        [tlsa('mx.pkix.chk.test'), 'TLSA', rr(cert, 1, 1, 1)],
        [tlsa('mx.pkix.chk.test'), 'TLSA', rr(cert)],
        [tlsa('mx.pkix.chk.test'), 'TLSA', rr(next)],
        // digest agility: a matching 3 1 1 superseded by a 3 1 2 for another key (RFC 7671 §9)
        ...mx('agile.chk.test', 'mx.agile.chk.test'),
        [tlsa('mx.agile.chk.test'), 'TLSA', rr(cert)],
        [tlsa('mx.agile.chk.test'), 'TLSA', rr(other, 3, 1, 2)],
        // a CNAME'd MX host: the TLSA records live at the target, the TLSA base domain (RFC 7672 §2.2.2)
        ...mx('cname.chk.test', 'mx.cname.chk.test').filter((r) => r[1] !== 'A'),
        ['mx.cname.chk.test', 'CNAME', 'mail.target.chk.test'],
        ['mail.target.chk.test', 'A', '127.0.0.1'],
        [tlsa('mail.target.chk.test'), 'TLSA', rr(cert)],
        [tlsa('mail.target.chk.test'), 'TLSA', rr(next)],
        ['null.chk.test', 'MX', { preference: 0, exchange: '.' }],
        // unsigned
        ...mx('plain.chk.test', 'mx.plain.chk.test'),
      ],
      insecure: ['plain.chk.test', 'mx.plain.chk.test', tlsa('mx.plain.chk.test'), '_smtp._tls.plain.chk.test'],
    }),
  )
})
after(async () => {
  await v4?.close()
  await v6?.close()
  await dns?.close()
})

const opts = (extra: object = {}) => ({
  resolver: createResolver({ servers: [dns.server], timeoutMs: 3000 }),
  port: v4.port,
  ehloName: 'client.chk.test',
  timeoutMs: 5000,
  ...extra,
})
const all = (r: CheckReport) => [...r.findings, ...r.hosts.flatMap((h) => h.findings)]
const find = (r: CheckReport, id: string) => all(r).filter((f) => f.id === id)
const text = (r: CheckReport) => formatCheckReport(r).join('\n')

describe('check (issue 16)', () => {
  it('a good DANE domain: every finding ok, the record that matched at each address', async () => {
    const r = await check('good.chk.test', opts())
    assert.deepEqual(r.summary.errors + r.summary.warnings, 0, text(r))
    assert.equal(r.mxSecure, true)
    const h = r.hosts[0]!
    assert.equal(h.tlsa.status, 'secure')
    assert.equal(h.addresses.length, 1)
    assert.equal(h.addresses[0]!.starttls, true)
    assert.match(h.addresses[0]!.protocol ?? '', /^TLSv1\.[23]$/)
    assert.equal(h.addresses[0]!.matchingRecords.length, 1)
    assert.equal(
      h.addresses[0]!.chain[0]!.spkiSha256,
      Buffer.from(createTlsaRecord(cert.der, { usage: 3, selector: 1, matchingType: 1 }).data).toString('hex'),
    )
    assert.equal(find(r, 'dane-match')[0]!.severity, 'ok')
    assert.equal(find(r, 'tlsa-rollover')[0]!.severity, 'ok', 'a record for the next key: ready (RFC 7671 §8)')
    for (const f of all(r)) assert.ok(f.rule.length > 0)
  })
  it('a single 3 1 1: rollover warning with the fix (RFC 7671 §8)', async () => {
    const r = await check('single.chk.test', opts())
    const [f] = find(r, 'tlsa-rollover')
    assert.equal(f?.severity, 'warning')
    assert.equal(f?.rule, 'RFC 7671 §8')
    assert.match(f?.remedy ?? '', /second 3 1 1 for the next key/)
    assert.equal(r.summary.errors, 0)
  })
  it('a TLSA mismatch: an error naming the address, with a remedy', async () => {
    const r = await check('bad.chk.test', opts())
    const [f] = find(r, 'dane-match')
    assert.equal(f?.severity, 'error')
    assert.equal(f?.address, '127.0.0.1')
    assert.match(f?.message ?? '', /ERR_DANE_NO_MATCH/)
    assert.ok(f?.remedy)
    assert.equal(find(r, 'tlsa-rollover').length, 0, 'no key in use is named: no rollover verdict')
  })
  it('dual stack where only ::1 fails: that address is named and the addresses disagree', async () => {
    const r = await check('dual.chk.test', opts())
    const h = r.hosts[0]!
    assert.deepEqual(
      h.addresses.map((a) => a.address),
      ['127.0.0.1', '::1'],
    )
    const m = find(r, 'dane-match')
    assert.deepEqual(
      m.map((f) => [f.address, f.severity]),
      [
        ['127.0.0.1', 'ok'],
        ['::1', 'error'],
      ],
    )
    const [d] = find(r, 'addresses-disagree')
    assert.equal(d?.severity, 'error')
    assert.match(d?.message ?? '', /::1/)
  })
  it('a PKIX usage under the SMTP profile is a warning (RFC 7672 §3.1.3)', async () => {
    const r = await check('pkix.chk.test', opts())
    const [f] = find(r, 'tlsa-pkix')
    assert.equal(f?.severity, 'warning')
    assert.equal(f?.rule, 'RFC 7672 §3.1.3')
  })
  it('an expired leaf: a warning under DANE-EE (RFC 7672 §3.1.1), an error without DANE', async () => {
    const later = new Date(Date.now() + 400 * 86_400_000)
    const dane = await check('good.chk.test', opts({ now: later }))
    const [f] = find(dane, 'cert-expiry')
    assert.equal(f?.severity, 'warning')
    assert.equal(f?.rule, 'RFC 7672 §3.1.1')
    assert.ok((dane.hosts[0]!.addresses[0]!.chain[0]!.daysLeft ?? 0) < 0)
    const plain = await check('plain.chk.test', opts({ now: later }))
    assert.equal(find(plain, 'cert-expiry')[0]?.severity, 'error')
    const soon = await check('good.chk.test', opts({ now: new Date(Date.now() + 360 * 86_400_000) }))
    assert.equal(find(soon, 'cert-expiry')[0]?.severity, 'warning')
    assert.match(find(soon, 'cert-expiry')[0]?.message ?? '', /expires in \d+ days/)
  })
  it('digest agility: a matching SHA2-256 record ignored for a SHA2-512 one that does not match (RFC 7671 §9)', async () => {
    const r = await check('agile.chk.test', opts())
    const [u] = find(r, 'tlsa-unusable')
    assert.equal(u?.severity, 'warning')
    assert.equal(u?.rule, 'RFC 7671 §9')
    assert.equal(find(r, 'dane-match')[0]?.severity, 'error')
    const [d] = find(r, 'digest-agility')
    assert.equal(d?.severity, 'error')
    assert.equal(d?.address, '127.0.0.1')
  })
  it('a CNAME’d MX host: expanded, TLSA at the target (the TLSA base domain), verified', async () => {
    const r = await check('cname.chk.test', opts())
    const h = r.hosts[0]!
    assert.equal(h.canonicalHost, 'mail.target.chk.test')
    assert.deepEqual(h.cnames, [{ from: 'mx.cname.chk.test', to: 'mail.target.chk.test' }])
    assert.equal(h.tlsa.base, 'mail.target.chk.test')
    assert.equal(h.tlsa.qname, `_${v4.port}._tcp.mail.target.chk.test`)
    assert.match(find(r, 'address-dnssec')[0]?.message ?? '', /via CNAME to mail\.target\.chk\.test/)
    assert.equal(find(r, 'dane-match')[0]?.severity, 'ok')
    assert.equal(r.summary.errors + r.summary.warnings, 0, text(r))
  })
  it('a null MX: reported as such, no host sessions', async () => {
    const r = await check('null.chk.test', opts())
    assert.equal(r.status, 'null-mx')
    assert.equal(r.hosts.length, 0)
    assert.equal(find(r, 'null-mx')[0]?.rule, 'RFC 7505 §3')
  })
  it('an unsigned domain: a warning that says what DANE would need', async () => {
    const r = await check('plain.chk.test', opts())
    const [f] = find(r, 'mx-dnssec')
    assert.equal(f?.severity, 'warning')
    assert.match(f?.remedy ?? '', /sign the zone/)
    assert.equal(find(r, 'dane-match').length, 0, 'no DANE verdict without DNSSEC')
  })
  it('text: grouped by host with ✓ ⚠ ✗, at most 80 columns', async () => {
    const r = await check('dual.chk.test', opts())
    const lines = formatCheckReport(r)
    assert.ok(lines.some((l) => l.startsWith('MX 10 mx.dual.chk.test')))
    assert.ok(lines.some((l) => l.includes('✓')) && lines.some((l) => l.includes('✗')))
    for (const l of lines) assert.ok([...l].length <= 80 || !l.includes(' ', 10), `too wide: ${l}`)
  })
  it('wrong types: coded errors, before any I/O', async () => {
    await assert.rejects(check(42 as never), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(check('a..b'), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(check('good.chk.test', { port: 0 }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => formatCheckReport(null as never), { code: 'ERR_INVALID_ARGUMENT' })
  })
})

async function run(...argv: string[]) {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}

describe('smtp-tls-policy check', () => {
  const common = () => ['--resolver', dns.server, '--port', String(v4.port), '--ehlo', 'client.chk.test', '--timeout', '5']
  it('exit 0 for a good domain, 1 for warnings only, 2 for errors', async () => {
    assert.equal((await run('check', 'good.chk.test', ...common())).status, 0)
    assert.equal((await run('check', 'single.chk.test', ...common())).status, 1)
    const bad = await run('check', 'dual.chk.test', ...common())
    assert.equal(bad.status, 2, bad.out + bad.err)
    assert.match(bad.out, /\n  ::1\n(    .*\n)*    ✗ DANE fails/)
  })
  it('--json: the report, stable between runs (but for the time)', async () => {
    const a = await run('check', 'dual.chk.test', ...common(), '--json')
    const b = await run('check', 'dual.chk.test', ...common(), '--json')
    const strip = (s: string) => s.replace(/"checkedAt": "[^"]*"/, '')
    assert.equal(strip(a.out), strip(b.out))
    const j = JSON.parse(a.out)
    assert.equal(j.domain, 'dual.chk.test')
    assert.equal(j.hosts[0].addresses[1].address, '::1')
  })
  it('--html FILE with --json: the page carries the findings of the JSON of the same run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stp-check-'))
    try {
      const file = join(dir, 'report.html')
      const r = await run('check', 'dual.chk.test', ...common(), '--json', '--html', file)
      assert.equal(r.status, 2, r.err)
      const json = JSON.parse(r.out) as CheckReport
      const html = readFileSync(file, 'utf8')
      assert.equal(html, formatCheckReportHtml(json), 'the file is the rendering of the printed report')
      const ids = [...html.matchAll(/<li class="finding [a-z]+" data-severity="([a-z]+)" data-id="([a-z-]+)"/g)].map(
        (m) => `${m[1]} ${m[2]}`,
      )
      assert.deepEqual(
        ids.sort(),
        all(json)
          .map((f) => `${f.severity} ${f.id}`)
          .sort(),
      )
      assert.equal(statSync(file).mode & 0o777 & ~0o644, 0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  it('--html: a missing folder or a directory is exit 73 before any lookup; a failed write is 73 after the report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stp-check-'))
    try {
      // The resolver is unreachable (75 if asked): 73 shows the path was refused first.
      for (const bad of [join(dir, 'missing', 'r.html'), dir, '']) {
        const r = await run('check', 'good.chk.test', '--resolver', '127.0.0.1:9', '--timeout', '1', '--html', bad)
        assert.equal(r.status, 73, r.out + r.err)
        assert.equal(r.err.trim().split('\n').length, 1, r.err)
        assert.match(r.err, /cannot write HTML report/)
      }
      // /dev/full opens, then every write fails with ENOSPC: the text report is out, then one line.
      const full = await run('check', 'good.chk.test', ...common(), '--html', '/dev/full')
      assert.equal(full.status, 73, full.out + full.err)
      assert.match(full.out, /^good\.chk\.test \(port/)
      assert.equal(full.err.trim().split('\n').length, 1, full.err)
      assert.match(full.err, /cannot write HTML report \/dev\/full: ENOSPC/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  it('exit 75 when the resolver cannot be reached', async () => {
    const r = await run('check', 'good.chk.test', '--resolver', '127.0.0.1:9', '--timeout', '1')
    assert.equal(r.status, 75, r.out + r.err)
  })
  for (const [why, argv] of [
    ['no domain', ['check']],
    ['two domains', ['check', 'a.test', 'b.test']],
    ['bad port', ['check', 'a.test', '--port', '0']],
    ['bad domain', ['check', 'a_b.test']],
  ] as const) {
    it(`exit 64 on ${why}`, async () => assert.equal((await run(...argv)).status, 64))
  }
  it('--help', async () => {
    const r = await run('check', '--help')
    assert.equal(r.status, 0)
    assert.match(r.out, /rollover/)
  })
})

describe('check: MTA-STS, DANE-TA chains, no STARTTLS', () => {
  const ca = makeCert({ key: 'ec256', subject: '/CN=Check Test CA', ca: true })
  const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.ta.chk.test', dns: ['mx.ta.chk.test'], issuer: ca })
  const stsNames = ['mta-sts.sts.chk.test', 'mta-sts.testing.chk.test', 'mta-sts.stsok.chk.test']
  let https: TestHttpsServer
  let leafOnly: TestSmtpServer
  let noTls: TestSmtpServer
  let expChain: TestSmtpServer
  let expLeaf: ReturnType<typeof makeCert>
  let dns2: TestDnsServer
  before(async () => {
    https = await startHttpsServer(makeCert({ issuer: ca, subject: '/CN=mta-sts.sts.chk.test', dns: stsNames }))
    const policy =
      (body: string): Route =>
      (_q, res) =>
        res.writeHead(200, { 'content-type': 'text/plain' }).end(body)
    https.routes.set('mta-sts.sts.chk.test', policy('version: STSv1\nmode: enforce\nmx: mx.elsewhere.chk.test\nmax_age: 3600\n'))
    https.routes.set('mta-sts.stsok.chk.test', policy('version: STSv1\nmode: enforce\nmx: mx.ta.chk.test\nmax_age: 604800\n'))
    https.routes.set('mta-sts.testing.chk.test', policy('version: STSv1\nmode: testing\nmx: *.testing.chk.test\nmax_age: 604800\n'))
    // The leaf alone, no issuer: a 2 1 1 record for the CA cannot be checked (RFC 7671 §5.2.2).
    leafOnly = await startSmtpServer({ certPem: leaf.pem, keyPem: leaf.keyPem })
    // A valid leaf under an intermediate that expired in 2020 (RFC 5280 §6.1.3).
    const mid = await expiredCertificate(ca, { cn: 'Check Expired Intermediate', ca: true })
    expLeaf = makeCert({ key: 'ec256', subject: '/CN=mx.expchain.chk.test', dns: ['mx.expchain.chk.test'], issuer: mid })
    expChain = await startSmtpServer({ certPem: expLeaf.pem + mid.pem, keyPem: expLeaf.keyPem })
    noTls = await startSmtpServer({ starttls: false })
    const records: ZoneRecord[] = [['ta.chk.test', 'MX', { preference: 10, exchange: 'mx.ta.chk.test' }]]
    records.push(['mx.ta.chk.test', 'A', '127.0.0.1'], [`_${leafOnly.port}._tcp.mx.ta.chk.test`, 'TLSA', rr(ca, 2, 1, 1)])
    records.push(['nostls.chk.test', 'MX', { preference: 10, exchange: 'mx.nostls.chk.test' }], ['mx.nostls.chk.test', 'A', '127.0.0.1'])
    records.push([`_${noTls.port}._tcp.mx.nostls.chk.test`, 'TLSA', rr(cert)])
    records.push(
      ['expchain.chk.test', 'MX', { preference: 10, exchange: 'mx.expchain.chk.test' }],
      ['mx.expchain.chk.test', 'A', '127.0.0.1'],
    )
    records.push(
      [`_${expChain.port}._tcp.mx.expchain.chk.test`, 'TLSA', rr(expLeaf)],
      [`_${expChain.port}._tcp.mx.expchain.chk.test`, 'TLSA', rr(next)],
    )
    records.push(['stsok.chk.test', 'MX', { preference: 10, exchange: 'mx.ta.chk.test' }])
    records.push(['_mta-sts.stsok.chk.test', 'TXT', 'v=STSv1; id=1'], ['mta-sts.stsok.chk.test', 'A', '127.0.0.1'])
    for (const d of ['sts', 'testing']) {
      records.push([`${d}.chk.test`, 'MX', { preference: 10, exchange: `mx.${d}.chk.test` }], [`mx.${d}.chk.test`, 'A', '127.0.0.1'])
      records.push([`_mta-sts.${d}.chk.test`, 'TXT', 'v=STSv1; id=1'], [`mta-sts.${d}.chk.test`, 'A', '127.0.0.1'])
    }
    dns2 = await startDnsServer(validatingZone({ records }))
  })
  after(async () => {
    await https?.close()
    await leafOnly?.close()
    await noTls?.close()
    await expChain?.close()
    await dns2?.close()
  })
  const opts2 = (port: number) => ({
    resolver: createResolver({ servers: [dns2.server], timeoutMs: 3000 }),
    port,
    ehloName: 'client.chk.test',
    timeoutMs: 5000,
    mtaSts: { ca: ca.pem, port: https.port, allowPrivateAddresses: true },
  })
  it('MTA-STS enforce: a real MX no pattern matches is an error, a short max_age a warning (RFC 8461 §4.1, §3.2)', async () => {
    const r = await check('sts.chk.test', opts2(v4.port))
    assert.equal(find(r, 'mta-sts')[0]?.severity, 'ok')
    const [mx] = find(r, 'mta-sts-mx')
    assert.equal(mx?.severity, 'error')
    assert.match(mx?.message ?? '', /mx\.sts\.chk\.test/)
    assert.equal(find(r, 'mta-sts-max-age')[0]?.severity, 'warning')
    const [c] = find(r, 'mta-sts-cert')
    assert.equal(c?.severity, 'error', 'a self-signed certificate under enforce (RFC 8461 §4.2)')
    assert.equal(c?.address, '127.0.0.1')
  })
  it('MTA-STS enforce with a trusted certificate that names the MX host: ok (RFC 8461 §4.2)', async () => {
    const r = await check('stsok.chk.test', opts2(leafOnly.port))
    assert.equal(find(r, 'mta-sts-mx').length, 0)
    assert.equal(find(r, 'mta-sts-cert')[0]?.severity, 'ok', JSON.stringify(find(r, 'mta-sts-cert')))
  })
  it('MTA-STS testing: a warning for the mode, the MX matches', async () => {
    const r = await check('testing.chk.test', opts2(v4.port))
    assert.equal(find(r, 'mta-sts-mode')[0]?.severity, 'warning')
    assert.equal(find(r, 'mta-sts-mx').length, 0)
    assert.equal(find(r, 'mta-sts-max-age').length, 0)
    assert.equal(find(r, 'mta-sts-cert')[0]?.severity, 'warning', 'testing: a warning, not an error')
  })
  it('a DANE-TA record and a server that sends only its leaf: chain incomplete', async () => {
    const r = await check('ta.chk.test', opts2(leafOnly.port))
    assert.equal(find(r, 'dane-match')[0]?.severity, 'error')
    assert.equal(find(r, 'chain-incomplete')[0]?.severity, 'error')
    assert.equal(find(r, 'chain-incomplete')[0]?.rule, 'RFC 7671 §5.2.2')
  })
  it('an expired intermediate under a valid leaf: chain-expiry names it, while the 3 1 1 still matches', async () => {
    const r = await check('expchain.chk.test', opts2(expChain.port))
    const chain = r.hosts[0]!.addresses[0]!.chain
    assert.equal(chain.length, 2)
    assert.ok(chain[0]!.daysLeft > 0 && chain[1]!.daysLeft < 0)
    assert.equal(find(r, 'dane-match')[0]?.severity, 'ok')
    assert.equal(find(r, 'cert-expiry')[0]?.severity, 'ok')
    const [f] = find(r, 'chain-expiry')
    assert.equal(f?.severity, 'error')
    assert.equal(f?.rule, 'RFC 5280 §6.1.3')
    assert.match(f?.message ?? '', /Check Expired Intermediate/)
  })
  it('a DANE host that does not offer STARTTLS: an error', async () => {
    const r = await check('nostls.chk.test', opts2(noTls.port))
    const [f] = find(r, 'starttls')
    assert.equal(f?.severity, 'error')
    assert.equal(r.hosts[0]!.addresses[0]!.starttls, false)
  })
})
