// The driver records TLS-RPT sessions (RFC 8460 §4, issue 13): connect(), probe(), deliver() and the
// Nodemailer transport with the `tlsRpt` option write one result per connection attempt to the store,
// under the policy that applied (sts, tlsa, no-policy-found); report mail is never recorded. In-process
// DNS (validating), HTTPS policy host and SMTP servers, certificates from a private CA.
import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { after, before, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import { collectTlsRptDay, createTlsaRecord, type TlsRptDomainResults, type TlsRptPolicyResult } from '../../src/index.js'
import {
  createMemoryStore,
  createResolver,
  deliver,
  probe,
  storeErrorChannel,
  type ConnectOptions,
  type DeliveryMessage,
  type PolicyStore,
} from '../../src/node/index.js'
import { SmtpTlsTransport, type SmtpTlsSentInfo } from '../../src/nodemailer/index.js'
import { startDnsServer, validatingZone, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const ca = makeCert({ key: 'ec256', subject: '/CN=RPT Test CA', ca: true })
const STS = ['sts', 'wrong', 'outside', 'testing', 'broken']
const web = makeCert({ key: 'ec256', subject: '/CN=mta-sts', dns: STS.map((d) => `mta-sts.${d}.test`), issuer: ca })
const mx = makeCert({ key: 'ec256', subject: '/CN=mx.sts.test', dns: ['mx.sts.test'], issuer: ca })
const policy = (mode: string, mxPattern: string) => `version: STSv1\nmode: ${mode}\nmx: ${mxPattern}\nmax_age: 86400\n`
const POLICIES: Record<string, string> = {
  sts: policy('enforce', 'mx.sts.test'),
  wrong: policy('enforce', '*.wrong.test'),
  outside: policy('enforce', '*.outside.test'),
  testing: policy('testing', '*.testing.test'),
}
const NOW = Date.UTC(2026, 0, 2, 12, 0, 0)
const DAY = '2026-01-02'

let dns: TestDnsServer
let https: TestHttpsServer
let smtp: TestSmtpServer
let plain: TestSmtpServer
let base: ConnectOptions

before(async () => {
  smtp = await startSmtpServer({ certPem: mx.pem + ca.pem, keyPem: mx.keyPem, name: 'helo.sts.test' })
  plain = await startSmtpServer({ starttls: false, name: 'helo.plain.test' })
  https = await startHttpsServer(web)
  for (const [d, text] of Object.entries(POLICIES)) {
    https.routes.set(`mta-sts.${d}.test`, (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(text))
  }
  https.routes.set('mta-sts.broken.test', (_req, res) => res.writeHead(404).end())
  const tlsa = createTlsaRecord(mx.der, { usage: 3, selector: 1, matchingType: 1 })
  const records: ZoneRecord[] = [
    ['sts.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
    ['wrong.test', 'MX', { preference: 10, exchange: 'mx.wrong.test' }],
    ['outside.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
    ['testing.test', 'MX', { preference: 10, exchange: 'mx.testing.test' }],
    ['broken.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
    ['none.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
    ['plain.test', 'MX', { preference: 10, exchange: 'mx.plain.test' }],
    ['dane.test', 'MX', { preference: 10, exchange: 'mx.dane.test' }],
    ['bogus.test', 'MX', { preference: 10, exchange: 'mx.bogus.test' }],
    ['mx.bogus.test', 'A', '127.0.0.1'],
    ['mx.sts.test', 'A', '127.0.0.1'],
    ['mx.wrong.test', 'A', '127.0.0.1'],
    ['mx.testing.test', 'A', '127.0.0.1'],
    ['mx.plain.test', 'A', '127.0.0.1'],
    ['mx.dane.test', 'A', '127.0.0.1'],
    [`_${smtp.port}._tcp.mx.dane.test`, 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(tlsa.data) }],
  ]
  for (const d of STS) records.push([`_mta-sts.${d}.test`, 'TXT', 'v=STSv1; id=1'], [`mta-sts.${d}.test`, 'A', '127.0.0.1'])
  dns = await startDnsServer(validatingZone({ records, bogus: [`_${smtp.port}._tcp.mx.bogus.test TLSA`] }))
  base = {
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
    port: smtp.port,
    ehloName: 'client.test',
    timeoutMs: 5000,
    ca: ca.pem,
    mtaSts: { store: createMemoryStore(), ca: ca.pem, allowPrivateAddresses: true, port: https.port },
  }
})
after(async () => {
  await smtp?.close()
  await plain?.close()
  await https?.close()
  await dns?.close()
})

const message = (to: string, extraHeaders = ''): DeliveryMessage => ({
  envelope: { from: 'a@client.test', to: [to] },
  body: `From: a@client.test\r\nTo: ${to}\r\n${extraHeaders}Subject: t\r\n\r\nhello\r\n`,
})

function withStore(store: PolicyStore = createMemoryStore()): { store: PolicyStore; o: ConnectOptions } {
  return { store, o: { ...base, tlsRpt: { store, now: () => NOW } } }
}

async function day(store: PolicyStore): Promise<TlsRptDomainResults[]> {
  return collectTlsRptDay(store, DAY)
}

function only(results: TlsRptDomainResults[], domain: string): TlsRptPolicyResult {
  const d = results.find((r) => r.policyDomain === domain)
  assert.ok(d, `no results for ${domain}: ${JSON.stringify(results)}`)
  assert.equal(d.policies.length, 1, JSON.stringify(d.policies))
  return d.policies[0]!
}

describe('TLS-RPT recording in the driver', () => {
  it('MTA-STS enforce, 3 deliveries: 3 successful sessions under the sts policy, with its strings and mx patterns', async () => {
    const { store, o } = withStore()
    for (let i = 0; i < 3; i++) {
      const r = await deliver('sts.test', message('b@sts.test'), o)
      assert.deepEqual(r.accepted, ['b@sts.test'])
      assert.deepEqual(r.attempts.at(-1)!.tlsRpt, { policyType: 'sts', policyDomain: 'sts.test', result: 'success' })
    }
    const p = only(await day(store), 'sts.test')
    assert.equal(p.successful, 3)
    assert.equal(p.failed, 0)
    assert.equal(p.policy.type, 'sts')
    assert.deepEqual(p.policy.mxHosts, ['mx.sts.test'])
    assert.deepEqual(p.policy.strings, ['version: STSv1', 'mode: enforce', 'mx: mx.sts.test', 'max_age: 86400'])
  })

  it('enforce, certificate for another name, 2 probes: 2 failures certificate-host-mismatch with every detail', async () => {
    const { store, o } = withStore()
    for (let i = 0; i < 2; i++) {
      const r = await probe('wrong.test', o)
      assert.equal(r.outcome.status, 'deferred')
    }
    const p = only(await day(store), 'wrong.test')
    assert.equal(p.successful, 0)
    assert.equal(p.failed, 2)
    assert.deepEqual(p.failureDetails, [
      {
        resultType: 'certificate-host-mismatch',
        failedSessionCount: 2,
        sendingMtaIp: '127.0.0.1',
        receivingMxHostname: 'mx.wrong.test',
        receivingMxHelo: 'helo.sts.test',
        receivingIp: '127.0.0.1',
      },
    ])
  })

  it('enforce, MX outside the policy: one failure per attempt, validation-failure, no connection', async () => {
    const { store, o } = withStore()
    const r = await probe('outside.test', o)
    assert.equal(r.outcome.status, 'deferred')
    const p = only(await day(store), 'outside.test')
    assert.equal(p.failed, 1)
    assert.deepEqual(p.failureDetails, [
      {
        resultType: 'validation-failure',
        failedSessionCount: 1,
        receivingMxHostname: 'mx.sts.test',
        failureReasonCode: 'mx-not-in-policy',
      },
    ])
  })

  it('MTA-STS testing (RFC 8461 §5): the failure is recorded and the message is delivered', async () => {
    const { store, o } = withStore()
    const r = await deliver('testing.test', message('b@testing.test'), o)
    assert.deepEqual(r.accepted, ['b@testing.test'])
    assert.notEqual(r.outcome.status, 'deferred')
    const p = only(await day(store), 'testing.test')
    assert.equal(p.policy.type, 'sts')
    assert.equal(p.successful, 0)
    assert.equal(p.failed, 1)
    assert.equal(p.failureDetails[0]!.resultType, 'certificate-host-mismatch')
    assert.equal(p.failureDetails[0]!.receivingMxHostname, 'mx.testing.test')
  })

  it('policy fetch failed, nothing cached: delivered without MTA-STS, sts-policy-fetch-error recorded', async () => {
    const { store, o } = withStore()
    const r = await deliver('broken.test', message('b@broken.test'), o)
    assert.deepEqual(r.accepted, ['b@broken.test'])
    const p = only(await day(store), 'broken.test')
    assert.equal(p.policy.type, 'sts')
    assert.equal(p.failed, 1)
    assert.equal(p.failureDetails[0]!.resultType, 'sts-policy-fetch-error')
  })

  it('DANE (validated TLSA RRset): tlsa policy under the TLSA base domain, the records as policy strings', async () => {
    const { store, o } = withStore()
    const r = await probe('dane.test', { ...o, level: 'dane' })
    assert.equal(r.outcome.status, 'verified')
    const p = only(await day(store), 'mx.dane.test')
    assert.equal(p.policy.type, 'tlsa')
    assert.equal(p.successful, 1)
    assert.match(p.policy.strings?.[0] ?? '', /^3 1 1 [0-9a-f]{64}$/)
    assert.deepEqual(p.policy.mxHosts, ['mx.dane.test'])
  })

  it('DANE, TLSA answer bogus: deferred without a connection, dnssec-invalid under the tlsa policy of the MX host', async () => {
    const { store, o } = withStore()
    const r = await probe('bogus.test', { ...o, level: 'dane' })
    assert.equal(r.outcome.status, 'deferred')
    const p = only(await day(store), 'mx.bogus.test')
    assert.equal(p.policy.type, 'tlsa')
    assert.deepEqual(
      p.failureDetails.map((d) => [d.resultType, d.receivingMxHostname, d.receivingIp]),
      [['dnssec-invalid', 'mx.bogus.test', undefined]],
    )
  })

  it('no policy: success under no-policy-found; STARTTLS not offered: starttls-not-supported, delivered in plaintext at may', async () => {
    const { store, o } = withStore()
    await deliver('none.test', message('b@none.test'), o)
    const r = await deliver('plain.test', message('b@plain.test'), { ...o, port: plain.port })
    assert.equal(r.outcome.status, 'plaintext')
    const results = await day(store)
    const none = only(results, 'none.test')
    assert.equal(none.policy.type, 'no-policy-found')
    assert.equal(none.successful, 1)
    const p = only(results, 'plain.test')
    assert.equal(p.policy.type, 'no-policy-found')
    assert.deepEqual(
      p.failureDetails.map((d) => [d.resultType, d.receivingMxHelo]),
      [['starttls-not-supported', 'helo.plain.test']],
    )
  })

  it('a TLS-RPT report (TLS-Report-Domain header) or reportMail: true is never recorded', async () => {
    const { store, o } = withStore()
    await deliver('sts.test', message('b@sts.test', 'TLS-Report-Domain: sts.test\r\nTLS-Required: No\r\n'), o)
    await probe('wrong.test', { ...o, tlsRpt: { store, now: () => NOW, reportMail: true } })
    assert.deepEqual(await day(store), [])
    await deliver('sts.test', message('b@sts.test'), o) // the same option records ordinary mail
    assert.equal(only(await day(store), 'sts.test').successful, 1)
  })

  it('a failing store never fails delivery: the error goes to storeErrorChannel', async () => {
    const failing: PolicyStore = {
      get: () => undefined,
      set: () => Promise.reject(new Error('down')),
      increment: () => Promise.reject(new Error('store down')),
      scan: () => [],
      delete: () => false,
    }
    const seen: unknown[] = []
    const onError = (m: unknown) => seen.push(m)
    subscribe(storeErrorChannel.name, onError)
    try {
      const r = await deliver('sts.test', message('b@sts.test'), { ...base, tlsRpt: { store: failing } })
      assert.deepEqual(r.accepted, ['b@sts.test'])
      await new Promise((res) => setImmediate(res))
      assert.ok(
        seen.some((m) => (m as { operation: string }).operation === 'tlsrpt-record'),
        JSON.stringify(seen),
      )
    } finally {
      unsubscribe(storeErrorChannel.name, onError)
    }
  })

  it('the Nodemailer transport records too, and never a message with TLS-Report-Domain', async () => {
    const { store } = withStore()
    const transport = new SmtpTlsTransport({
      resolver: base.resolver!,
      port: smtp.port,
      ehloName: 'client.test',
      ca: ca.pem,
      mtaSts: base.mtaSts!,
      tlsRpt: { store, now: () => NOW },
    })
    const mailer = nodemailer.createTransport(transport)
    for (let i = 0; i < 2; i++) {
      const info = (await mailer.sendMail({ from: 'a@client.test', to: 'b@sts.test', text: 'x' })) as unknown as SmtpTlsSentInfo
      assert.deepEqual(info.accepted, ['b@sts.test'])
    }
    await mailer.sendMail({ from: 'a@client.test', to: 'b@sts.test', text: 'report', headers: { 'TLS-Report-Domain': 'sts.test' } })
    const p = only(await day(store), 'sts.test')
    assert.equal(p.successful, 2)
  })
})
