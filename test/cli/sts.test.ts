// `smtp-tls-policy mta-sts` and `tlsrpt` in-process: exit statuses (README table), text and --json,
// against an in-process DNS server and an HTTPS policy server with a private CA.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, tempDir } from '../helpers/openssl.js'

const tmp = tempDir()
const ca = makeCert({ ca: true, subject: '/CN=CLI CA' })
const names = ['good', 'bad', 'down'].map((d) => `mta-sts.${d}.cli.test`)
let dns: TestDnsServer
let https: TestHttpsServer
const caFile = join(tmp.dir, 'ca.pem')
writeFileSync(caFile, ca.pem)
const example = readFileSync(new URL('../vectors/tlsrpt/rfc8460-example.json', import.meta.url), 'utf8')

before(async () => {
  https = await startHttpsServer(makeCert({ issuer: ca, subject: '/CN=mta-sts.good.cli.test', dns: names }))
  https.routes.set('mta-sts.good.cli.test', (_q, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: enforce\nmx: *.good.cli.test\nmax_age: 604800\n'),
  )
  https.routes.set('mta-sts.bad.cli.test', (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv2\n'))
  https.routes.set('mta-sts.down.cli.test', (_q, res) => res.writeHead(503).end())
  const records: Array<[string, 'A' | 'MX' | 'TXT', unknown]> = [
    ['good.cli.test', 'MX', { preference: 10, exchange: 'mx1.good.cli.test' }],
    ['good.cli.test', 'MX', { preference: 20, exchange: 'backup.elsewhere.test' }],
    ['mx1.good.cli.test', 'A', '127.0.0.1'],
    ['backup.elsewhere.test', 'A', '127.0.0.1'],
    ['_smtp._tls.good.cli.test', 'TXT', 'v=TLSRPTv1; rua=mailto:tls@good.cli.test,https://r.good.cli.test/x'],
    ['_smtp._tls.bad.cli.test', 'TXT', 'v=TLSRPTv1; rua=ftp://x'],
    ['_mta-sts.two.cli.test', 'TXT', 'v=STSv1; id=1'],
    ['_mta-sts.two.cli.test', 'TXT', 'v=STSv1; id=2'],
  ]
  for (const d of ['good', 'bad', 'down']) {
    records.push([`_mta-sts.${d}.cli.test`, 'TXT', 'v=STSv1; id=20260101'])
    records.push([`mta-sts.${d}.cli.test`, 'A', '127.0.0.1'])
  }
  dns = await startDnsServer(validatingZone({ records }))
})
after(async () => {
  await dns?.close()
  await https?.close()
  tmp.done()
})

async function run(...argv: string[]) {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}
const sts = (domain: string, ...more: string[]) =>
  run(
    'mta-sts',
    domain,
    '--resolver',
    dns.server,
    '--ca-file',
    caFile,
    '--port',
    String(https.port),
    '--allow-private',
    '--timeout',
    '5',
    ...more,
  )

describe('smtp-tls-policy mta-sts', () => {
  it('prints the record, the policy, the cache lifetime and which MX hosts it admits: exit 0', async () => {
    const r = await sts('good.cli.test')
    assert.equal(r.status, 0, r.out + r.err)
    assert.match(r.out, /^_mta-sts\.good\.cli\.test: v=STSv1; id=20260101\n/)
    assert.match(r.out, /\n {2}mode: enforce\n/)
    assert.match(r.out, /cache: fetched; max_age 604800 s: valid until \S+Z, refresh from \S+Z\n/)
    assert.match(r.out, /MX 10 mx1\.good\.cli\.test: admitted \(matches \*\.good\.cli\.test\)\n/)
    assert.match(r.out, /MX 20 backup\.elsewhere\.test: NOT admitted/)
  })
  it('--json: one object', async () => {
    const r = await sts('good.cli.test', '--json')
    assert.equal(r.status, 0, r.err)
    const j = JSON.parse(r.out) as { state: string; policy: { mode: string }; mx: Array<{ host: string; pattern?: string }> }
    assert.equal(j.state, 'fetched')
    assert.equal(j.policy.mode, 'enforce')
    assert.deepEqual(
      j.mx.map((m) => [m.host, m.pattern ?? null]),
      [
        ['mx1.good.cli.test', '*.good.cli.test'],
        ['backup.elsewhere.test', null],
      ],
    )
  })
  it('an invalid policy: 65; an HTTPS failure: 75; two records: 65; no record: 0', async () => {
    const bad = await sts('bad.cli.test')
    assert.equal(bad.status, 65, bad.out)
    assert.match(bad.out, /sts-policy-invalid/)
    const down = await sts('down.cli.test')
    assert.equal(down.status, 75, down.out)
    assert.match(down.out, /HTTP status 503/)
    assert.equal((await sts('two.cli.test')).status, 65)
    const none = await sts('nothing.cli.test')
    assert.equal(none.status, 0)
    assert.match(none.out, /no MTA-STS record/)
  })
  it('without --allow-private the loopback policy host is refused: 75', async () => {
    const r = await run('mta-sts', 'good.cli.test', '--resolver', dns.server, '--ca-file', caFile, '--port', String(https.port))
    assert.equal(r.status, 75)
    assert.match(r.out, /refused/)
  })
  it('usage errors: 64, before any I/O; a missing CA file: 66', async () => {
    for (const args of [['mta-sts'], ['mta-sts', 'a b'], ['mta-sts', 'x.test', '--port', '0'], ['mta-sts', 'x.test', 'y.test']]) {
      const n = dns.queries.length
      assert.equal((await run(...args)).status, 64, args.join(' '))
      assert.equal(dns.queries.length, n)
    }
    assert.equal((await run('mta-sts', 'x.test', '--ca-file', join(tmp.dir, 'none.pem'))).status, 66)
  })
})

describe('smtp-tls-policy tlsrpt', () => {
  it('prints the record: 0; an invalid record: 65; no record: 0', async () => {
    const r = await run('tlsrpt', 'good.cli.test', '--resolver', dns.server)
    assert.equal(r.status, 0, r.err)
    assert.match(r.out, /rua mailto:tls@good\.cli\.test\n {2}rua https:\/\/r\.good\.cli\.test\/x\n/)
    assert.equal((await run('tlsrpt', 'bad.cli.test', '--resolver', dns.server)).status, 65)
    assert.match((await run('tlsrpt', 'nothing.cli.test', '--resolver', dns.server)).out, /no TLS-RPT record/)
  })
  it('--report: the RFC 8460 example is valid, gzip too; a broken one is 65 with each defect; a missing file 66', async () => {
    const plain = join(tmp.dir, 'r.json')
    const gz = join(tmp.dir, 'r.json.gz')
    const broken = join(tmp.dir, 'broken.json')
    writeFileSync(plain, example)
    writeFileSync(gz, gzipSync(example))
    const b = JSON.parse(example) as { policies: Array<{ summary: Record<string, unknown> }> }
    b.policies[0]!.summary['total-failure-session-count'] = -1
    delete (b as Record<string, unknown>)['report-id']
    writeFileSync(broken, JSON.stringify(b))
    for (const f of [plain, gz]) {
      const r = await run('tlsrpt', '--report', f)
      assert.equal(r.status, 0, r.out + r.err)
      assert.match(r.out, /valid \(RFC 8460 §4\.4\): 1 policies, 5326 successful and 303 failed sessions/)
    }
    const r = await run('tlsrpt', '--report', broken)
    assert.equal(r.status, 65)
    assert.match(r.out, / {2}\/: report-id is required\n/)
    assert.match(r.out, /\/policies\/0\/summary\/total-failure-session-count: must be a non-negative integer/)
    assert.equal((await run('tlsrpt', '--report', join(tmp.dir, 'none.json'))).status, 66)
    writeFileSync(join(tmp.dir, 'x.json'), '{')
    assert.equal((await run('tlsrpt', '--report', join(tmp.dir, 'x.json'))).status, 65)
  })
  it('usage errors: 64', async () => {
    assert.equal((await run('tlsrpt')).status, 64)
    assert.equal((await run('tlsrpt', '--resolver', '127.0.0.1', '--report', 'x')).status, 64)
  })
})
