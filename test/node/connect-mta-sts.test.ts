// connect() with MTA-STS (RFC 8461, issue 13): an in-process HTTPS policy host and SMTP server, both
// with certificates from a private CA (trusted through options, never by disabling verification), and
// the in-process validating DNS server.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createTlsaRecord, formatTrace } from '../../src/index.js'
import { connect, createMemoryStore, createResolver, probe, type ConnectOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const ca = makeCert({ key: 'ec256', subject: '/CN=STS Test CA', ca: true })
const DOMAINS = ['sts', 'wrong', 'outside', 'testing', 'dane-sts', 'unsigned-tlsa']
const web = makeCert({ key: 'ec256', subject: '/CN=mta-sts', dns: DOMAINS.map((d) => `mta-sts.${d}.test`), issuer: ca })
const mx: Issued = makeCert({ key: 'ec256', subject: '/CN=mx.sts.test', dns: ['mx.sts.test'], issuer: ca })
const policy = (mode: string, mxPattern: string) => `version: STSv1\nmode: ${mode}\nmx: ${mxPattern}\nmax_age: 86400\n`
const POLICIES: Record<string, string> = {
  sts: policy('enforce', 'mx.sts.test'),
  wrong: policy('enforce', '*.wrong.test'),
  outside: policy('enforce', '*.outside.test'),
  testing: policy('testing', '*.testing.test'),
  'dane-sts': policy('enforce', '*.dane-sts.test'),
}

let dns: TestDnsServer
let https: TestHttpsServer
let smtp: TestSmtpServer
let o: ConnectOptions

before(async () => {
  smtp = await startSmtpServer({ certPem: mx.pem + ca.pem, keyPem: mx.keyPem })
  https = await startHttpsServer(web)
  for (const [d, text] of Object.entries(POLICIES)) {
    https.routes.set(`mta-sts.${d}.test`, (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(text))
  }
  const tlsa = createTlsaRecord(mx.der, { usage: 3, selector: 1, matchingType: 1 })
  const records: ZoneRecord[] = [
    ['sts.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
    ['wrong.test', 'MX', { preference: 10, exchange: 'mx.wrong.test' }],
    ['outside.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
    ['testing.test', 'MX', { preference: 10, exchange: 'mx.testing.test' }],
    ['dane-sts.test', 'MX', { preference: 10, exchange: 'mx.dane-sts.test' }],
    ['mx.sts.test', 'A', '127.0.0.1'],
    ['mx.wrong.test', 'A', '127.0.0.1'],
    ['mx.testing.test', 'A', '127.0.0.1'],
    ['mx.dane-sts.test', 'A', '127.0.0.1'],
    [`_${smtp.port}._tcp.mx.dane-sts.test`, 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(tlsa.data) }],
  ]
  for (const d of Object.keys(POLICIES)) {
    records.push([`_mta-sts.${d}.test`, 'TXT', 'v=STSv1; id=1'], [`mta-sts.${d}.test`, 'A', '127.0.0.1'])
  }
  dns = await startDnsServer(validatingZone({ records }))
  o = {
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
    port: smtp.port,
    ehloName: 'client.test',
    timeoutMs: 5000,
    ca: ca.pem, // the SMTP server's PKIX trust (RFC 8461 §4.2)
    mtaSts: { store: createMemoryStore(), ca: ca.pem, allowPrivateAddresses: true, port: https.port },
  }
})
after(async () => {
  await smtp?.close()
  await https?.close()
  await dns?.close()
})

describe('connect() with MTA-STS', () => {
  it('enforce, MX in the policy, certificate valid for it: verified at secure, with the policy in the trace', async () => {
    const c = await connect('sts.test', o)
    c.socket.destroy()
    assert.equal(c.outcome.status, 'verified', formatTrace(c.trace))
    assert.equal(c.outcome.level, 'secure')
    assert.match(formatTrace(c.trace), /MTA-STS enforce → secure/)
  })
  it('without mtaSts the same destination is only opportunistic (the option is what applies the policy)', async () => {
    const r = await probe('sts.test', { ...o, mtaSts: false })
    assert.equal(r.outcome.status, 'trusted')
  })
  it('enforce, certificate not valid for the MX host: deferred 4.7.5, certificate-host-mismatch', async () => {
    const r = await probe('wrong.test', o)
    assert.equal(r.outcome.status, 'deferred', JSON.stringify(r.outcome))
    assert.equal(r.outcome.enhancedStatus, '4.7.5')
    assert.equal(r.outcome.tlsrptResult, 'certificate-host-mismatch')
  })
  it('enforce, MX outside the policy: not connected to, deferred 4.7.5 (RFC 8461 §4.1)', async () => {
    const r = await probe('outside.test', o)
    assert.equal(r.outcome.status, 'deferred', JSON.stringify(r.outcome))
    assert.equal(r.outcome.enhancedStatus, '4.7.5')
    assert.equal(r.attempts.length, 1)
    assert.equal(r.attempts[0]!.address, undefined, 'no connection was made')
    assert.equal(r.attempts[0]!.transcript.length, 0)
  })
  it('testing, certificate not valid: delivered under the configured level, the trace says testing', async () => {
    const r = await probe('testing.test', o)
    assert.notEqual(r.outcome.status, 'deferred', JSON.stringify(r.outcome))
    assert.match(formatTrace(r.trace), /MTA-STS testing/)
  })
  it('DANE wins over MTA-STS (RFC 8461 §2): a validated, matching TLSA RRset verifies a host whose name the policy certificate check would refuse', async () => {
    const r = await probe('dane-sts.test', { ...o, level: 'dane' })
    assert.equal(r.outcome.status, 'verified', JSON.stringify(r.outcome))
    assert.match(r.outcome.match ?? '', /TLSA 3 1 1/)
  })
  it('a policy fetched once is served from the store while fresh: no second HTTPS request', async () => {
    const before = https.requests.get('mta-sts.sts.test') ?? 0
    await probe('sts.test', o)
    await probe('sts.test', o)
    assert.equal(https.requests.get('mta-sts.sts.test') ?? 0, before)
  })
})
