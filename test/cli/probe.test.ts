// `smtp-tls-policy probe` in-process: exit status, Postfix-style lines, --json shape.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { createTlsaRecord } from '../../src/index.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { makeCert, tempDir } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=mx.cli.test', dns: ['mx.cli.test'] })
const other = makeCert({ key: 'ec256', subject: '/CN=x.cli.test' })
const rr = (c: typeof cert) => {
  const r = createTlsaRecord(c.der, { usage: 3, selector: 1, matchingType: 1 })
  return { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) }
}
let smtp: TestSmtpServer
let dns: TestDnsServer

before(async () => {
  smtp = await startSmtpServer({ certPem: cert.pem, keyPem: cert.keyPem })
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['good.cli.test', 'MX', { preference: 10, exchange: 'mx.cli.test' }],
        ['bad.cli.test', 'MX', { preference: 10, exchange: 'mxbad.cli.test' }],
        ['null.cli.test', 'MX', { preference: 0, exchange: '.' }],
        ['plain.cli.test', 'MX', { preference: 10, exchange: 'mxplain.cli.test' }],
        ['mxplain.cli.test', 'A', '127.0.0.1'],
        ['mx.cli.test', 'A', '127.0.0.1'],
        ['mxbad.cli.test', 'A', '127.0.0.1'],
        [`_${smtp.port}._tcp.mx.cli.test`, 'TLSA', rr(cert)],
        [`_${smtp.port}._tcp.mxbad.cli.test`, 'TLSA', rr(other)],
      ],
      insecure: ['plain.cli.test', 'mxplain.cli.test', `_${smtp.port}._tcp.mxplain.cli.test`],
    }),
  )
})
after(async () => {
  await smtp?.close()
  await dns?.close()
})

async function run(...argv: string[]) {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}
const common = () => ['--resolver', dns.server, '--port', String(smtp.port), '--ehlo', 'client.cli.test', '--timeout', '5']

describe('smtp-tls-policy probe', () => {
  it('a DANE-verified destination: exit 0, Postfix summary line, -v transcript', async () => {
    const r = await run('probe', 'good.cli.test', ...common(), '-v')
    assert.equal(r.status, 0, r.out + r.err)
    assert.match(r.out, /smtp-tls-policy: < 220 /)
    assert.match(r.out, /smtp-tls-policy: > STARTTLS/)
    assert.match(r.out, /\]:\d+: TLSA 3 1 1 matched at depth 0\n/)
    assert.doesNotMatch(r.out, /Matched TLSA/, 'no doubled word')
    assert.match(r.out, /Verified TLS connection established to mx\.cli\.test\[127\.0\.0\.1\]:\d+: TLSv1\.[23] with cipher /)
  })
  it('a mismatch: exit 75 (EX_TEMPFAIL) with 4.7.5; --json carries the outcome', async () => {
    const r = await run('probe', 'bad.cli.test', ...common(), '--json')
    assert.equal(r.status, 75)
    const j = JSON.parse(r.out)
    assert.equal(j.destination, 'bad.cli.test')
    assert.equal(j.level, 'dane')
    assert.equal(j.effectiveLevel, 'dane')
    assert.equal(j.outcome.status, 'deferred')
    assert.equal(j.outcome.enhancedStatus, '4.7.5')
    assert.equal(j.outcome.tlsrptResult, 'tlsa-invalid')
    assert.equal(j.attempts.length, 1)
    assert.match(j.facts.mx[0].tlsa.records[0].data, /^[0-9a-f]{64}$/)
  })
  it('a null MX: exit 69 (EX_UNAVAILABLE)', async () => {
    const r = await run('probe', 'null.cli.test', ...common())
    assert.equal(r.status, 69)
    assert.match(r.out, /5\.1\.10/)
  })
  it('dane with an insecure MX RRset: says why the level fell back, as --json does (issue 17)', async () => {
    const r = await run('probe', 'plain.cli.test', ...common())
    assert.equal(r.status, 0, r.out + r.err)
    assert.match(r.out, /: level dane applied as may \(.*insecure.*→ may\)\n/)
    assert.match(r.out, /Untrusted TLS connection established/)
  })
  it('no connection at all: the summary names the destination, not ?[?]', async () => {
    const r = await run('probe', 'nx.cli.test', ...common())
    assert.equal(r.status, 69, r.out + r.err)
    assert.match(r.out, /Delivery deferred for nx\.cli\.test: /)
    assert.doesNotMatch(r.out, /\?\[\?\]/)
  })
  it('may on the mismatch is untrusted TLS: exit 0', async () => {
    const r = await run('probe', 'bad.cli.test', ...common(), '--level', 'may')
    assert.equal(r.status, 0)
    assert.match(r.out, /Untrusted TLS connection established/)
  })
  const usage: Array<[string, string[]]> = [
    ['no destination', ['probe']],
    ['unknown level', ['probe', 'good.cli.test', '--level', 'paranoid']],
    ['bad port', ['probe', 'good.cli.test', '--port', '70000']],
    ['--match at dane', ['probe', 'good.cli.test', '--match', 'AB']],
    ['bad resolver address', ['probe', 'good.cli.test', '--resolver', 'not an address']],
  ]
  for (const [why, argv] of usage) {
    it(`exit 64 on ${why}`, async () => {
      const r = await run(...argv)
      assert.equal(r.status, 64, r.out + r.err)
    })
  }
  it('--help', async () => {
    const r = await run('probe', '--help')
    assert.equal(r.status, 0)
    assert.match(r.out, /posttls-finger/)
  })
})

describe('smtp-tls-policy probe --ta-file / --ca-path (Postfix smtp_tls_trust_anchor_file, smtp_tls_CApath)', () => {
  const { dir, done } = tempDir()
  after(done)
  const ta = join(dir, 'anchor.pem')
  const junk = join(dir, 'junk.pem')
  writeFileSync(ta, cert.pem)
  writeFileSync(junk, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n')
  it('secure with the server certificate as the only anchor: verified, exit 0', async () => {
    const r = await run('probe', '[mx.cli.test]', ...common(), '--level', 'secure', '--match', 'mx.cli.test', '--ta-file', ta)
    assert.equal(r.status, 0, r.out + r.err)
    assert.match(r.out, /Verified TLS connection established/)
  })
  it('secure with an unrelated anchor: deferred, exit 75 (the CA roots play no part)', async () => {
    const otherFile = join(dir, 'other.pem')
    writeFileSync(otherFile, other.pem)
    const r = await run('probe', '[mx.cli.test]', ...common(), '--level', 'secure', '--match', 'mx.cli.test', '--ta-file', otherFile)
    assert.equal(r.status, 75, r.out + r.err)
  })
  it('a missing anchor file is EX_NOINPUT (66), a bad block EX_DATAERR (65), both before connecting', async () => {
    const a = await run('probe', '[mx.cli.test]', ...common(), '--level', 'secure', '--ta-file', join(dir, 'missing.pem'))
    assert.equal(a.status, 66, a.out + a.err)
    const b = await run('probe', '[mx.cli.test]', ...common(), '--level', 'secure', '--ta-file', junk)
    assert.equal(b.status, 65, b.out + b.err)
    assert.doesNotMatch(a.out + b.out, /Connected to/)
  })
})
