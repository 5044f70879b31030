// sendTlsRptReports and scheduleTlsRptReports (RFC 8460 §5, issue 13): a day's recorded sessions become
// one report per policy domain, sent to every rua URI of its _smtp._tls record: https: by POST of
// application/tlsrpt+gzip to an in-process HTTPS server (private CA, trusted through an option), mailto:
// by our own deliver() to an in-process SMTP sink. Idempotent per (day, domain, URI) in the store.
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gunzipSync } from 'node:zlib'
import { after, before, describe, it } from 'node:test'
import { SmtpTlsError, type ErrorCode } from '../../src/errors.js'
import { recordTlsRptSession, validateTlsRptReport, type TlsRptPolicyRef } from '../../src/index.js'
import {
  createMemoryStore,
  createResolver,
  scheduleTlsRptReports,
  sendTlsRptReports,
  type PolicyStore,
  type SendTlsRptReportsOptions,
  type TlsRptSendResult,
} from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { startMailSink, type MailSink } from '../helpers/mail-sink.js'
import { makeCert } from '../helpers/openssl.js'

const ca = makeCert({ key: 'ec256', subject: '/CN=RUA Test CA', ca: true })
const web = makeCert({ key: 'ec256', subject: '/CN=rua', dns: ['rua.a.test', 'rua.d.test', 'redirect.e.test'], issuer: ca })
const DAY = '2026-01-02'
const NOW = Date.UTC(2026, 0, 2, 12) // during the day
const LATER = Date.UTC(2026, 0, 3, 0, 5) // the next day, 00:05 UTC

let dns: TestDnsServer
let https: TestHttpsServer
let sink: MailSink
let base: Omit<SendTlsRptReportsOptions, 'store' | 'day'>
const posts: Array<{ host: string; type: string | undefined; body: Buffer }> = []
let dFails = true

before(async () => {
  https = await startHttpsServer(web)
  const collect = (host: string, status: () => number) => (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      posts.push({ host, type: req.headers['content-type'], body: Buffer.concat(chunks) })
      res.writeHead(status()).end()
    })
  }
  https.routes.set(
    'rua.a.test',
    collect('rua.a.test', () => 200),
  )
  https.routes.set(
    'rua.d.test',
    collect('rua.d.test', () => (dFails ? 500 : 201)),
  )
  https.routes.set('redirect.e.test', (_req, res) => res.writeHead(302, { location: 'https://rua.a.test/' }).end())
  sink = await startMailSink()
  const p = https.port
  const records: ZoneRecord[] = [
    ['_smtp._tls.a.test', 'TXT', `v=TLSRPTv1; rua=https://rua.a.test:${p}/tlsrpt`],
    ['_smtp._tls.b.test', 'TXT', 'v=TLSRPTv1; rua=mailto:tlsrpt@reports.b.test'],
    ['_smtp._tls.d.test', 'TXT', `v=TLSRPTv1; rua=https://rua.d.test:${p}/r,mailto:tlsrpt@reports.b.test`],
    ['_smtp._tls.e.test', 'TXT', `v=TLSRPTv1; rua=https://redirect.e.test:${p}/`],
    ['c.test', 'A', '192.0.2.1'],
    ['reports.b.test', 'MX', { preference: 10, exchange: 'mx.reports.b.test' }],
    ['mx.reports.b.test', 'A', '127.0.0.1'],
    ['rua.a.test', 'A', '127.0.0.1'],
    ['rua.d.test', 'A', '127.0.0.1'],
    ['redirect.e.test', 'A', '127.0.0.1'],
  ]
  dns = await startDnsServer(validatingZone({ records }))
  const resolver = createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 })
  base = {
    organizationName: 'Sender Inc.',
    contactInfo: 'tlsrpt@sender.test',
    submitter: 'sender.test',
    from: 'tlsrpt@sender.test',
    resolver,
    ca: ca.pem,
    allowPrivateAddresses: true,
    timeoutMs: 5000,
    now: () => LATER,
    deliver: { resolver, port: sink.port, ehloName: 'sender.test', timeoutMs: 5000 },
  }
})
after(async () => {
  await https?.close()
  await sink?.close()
  await dns?.close()
})

const sts = (domain: string): TlsRptPolicyRef => ({
  type: 'sts',
  domain,
  strings: ['version: STSv1', 'mode: enforce'],
  mxHosts: [`mx.${domain}`],
})

function recorded(): PolicyStore {
  const store = createMemoryStore()
  for (const d of ['a.test', 'b.test', 'c.test', 'd.test', 'e.test']) {
    const policy = sts(d)
    recordTlsRptSession(store, { policy }, NOW)
    recordTlsRptSession(store, { policy }, NOW)
    recordTlsRptSession(store, { policy, failure: { resultType: 'certificate-expired', receivingMxHostname: `mx.${d}` } }, NOW)
  }
  return store
}

const assertCoded = (code: ErrorCode) => (e: unknown) => e instanceof SmtpTlsError && e.code === code

const byDomain = (r: TlsRptSendResult, d: string) => r.domains.find((x) => x.policyDomain === d)!

describe('sendTlsRptReports', () => {
  it('one report per policy domain to every rua URI; a second run sends nothing again and retries only what failed', async () => {
    const store = recorded()
    posts.length = 0
    sink.messages.length = 0
    dFails = true
    const r = await sendTlsRptReports({ ...base, store, day: DAY })
    assert.equal(r.day, DAY)
    assert.deepEqual(
      r.domains.map((d) => [d.policyDomain, d.status]),
      [
        ['a.test', 'sent'],
        ['b.test', 'sent'],
        ['c.test', 'no-record'],
        ['d.test', 'partial'],
        ['e.test', 'failed'],
      ],
    )
    assert.deepEqual(byDomain(r, 'a.test').sessions, { successful: 2, failed: 1 })
    // https: POST application/tlsrpt+gzip, a valid RFC 8460 report for a.test
    const a = posts.find((p) => p.host === 'rua.a.test')!
    assert.equal(a.type, 'application/tlsrpt+gzip')
    const report = JSON.parse(gunzipSync(a.body).toString('utf8'))
    assert.deepEqual(validateTlsRptReport(report).errors, [])
    assert.equal(report.policies[0].policy['policy-domain'], 'a.test')
    assert.equal(report.policies[0].summary['total-successful-session-count'], 2)
    assert.equal(report['date-range']['start-datetime'], '2026-01-02T00:00:00Z')
    // mailto: a multipart/report message through deliver(), TLS-Report-Domain set
    const mails = sink.messages.map((m) => m.bytes.toString('latin1'))
    assert.equal(mails.length, 2, 'b.test and d.test')
    assert.ok(mails.some((m) => /^TLS-Report-Domain: b\.test\r$/m.test(m)))
    assert.ok(mails.every((m) => /^TLS-Required: No\r$/m.test(m) && /report-type="tlsrpt"/.test(m)))
    assert.deepEqual(sink.messages[0]!.to, ['tlsrpt@reports.b.test'])
    // failures per URI
    const d = byDomain(r, 'd.test')
    assert.deepEqual(
      d.uris.map((u) => [u.uri.replace(/:\d+/, ''), u.status]),
      [
        ['https://rua.d.test/r', 'failed'],
        ['mailto:tlsrpt@reports.b.test', 'sent'],
      ],
    )
    assert.match(d.uris[0]!.error!.message, /HTTP status 500/)
    assert.equal(d.uris[0]!.error!.code, 'ERR_TLSRPT_DELIVERY')
    assert.match(byDomain(r, 'e.test').uris[0]!.error!.message, /302 \(redirects are not followed\)/)

    // second run: nothing sent twice; the failed https URI is tried again
    dFails = false
    const before = posts.length
    const r2 = await sendTlsRptReports({ ...base, store, day: DAY })
    assert.deepEqual(
      r2.domains.map((x) => [x.policyDomain, x.status]),
      [
        ['a.test', 'already-sent'],
        ['b.test', 'already-sent'],
        ['c.test', 'no-record'],
        ['d.test', 'sent'],
        ['e.test', 'failed'],
      ],
    )
    assert.deepEqual(
      posts.slice(before).map((p) => p.host),
      ['rua.d.test'],
    )
    assert.equal(sink.messages.length, 2)
  })

  it('the report mail is never recorded, even with tlsRpt in the deliver options', async () => {
    const store = createMemoryStore()
    recordTlsRptSession(store, { policy: sts('b.test') }, NOW)
    const sessions = createMemoryStore()
    const r = await sendTlsRptReports({
      ...base,
      store,
      day: DAY,
      deliver: { ...base.deliver, tlsRpt: { store: sessions, now: () => LATER } },
    })
    assert.equal(byDomain(r, 'b.test').status, 'sent')
    assert.deepEqual(sessions.scan(''), [])
  })

  it('TLS-Required: No (RFC 8689 §4.2.2): a report reaches an MX without STARTTLS even when the configured level is secure', async () => {
    const store = createMemoryStore()
    recordTlsRptSession(store, { policy: sts('b.test') }, NOW)
    const r = await sendTlsRptReports({ ...base, store, day: DAY, deliver: { ...base.deliver, level: 'secure' } })
    assert.equal(byDomain(r, 'b.test').status, 'sent', JSON.stringify(byDomain(r, 'b.test').uris))
  })

  it('private addresses are refused unless allowed', async () => {
    const store = createMemoryStore()
    recordTlsRptSession(store, { policy: sts('a.test') }, NOW)
    const r = await sendTlsRptReports({ ...base, store, day: DAY, allowPrivateAddresses: false })
    assert.equal(byDomain(r, 'a.test').status, 'failed')
    assert.match(byDomain(r, 'a.test').uris[0]!.error!.message, /private.*refused/)
  })

  it('a day that has not ended, or bad options: ERR_INVALID_ARGUMENT before any I/O', async () => {
    const store = createMemoryStore()
    await assert.rejects(sendTlsRptReports({ ...base, store, day: DAY, now: () => NOW }), assertCoded('ERR_INVALID_ARGUMENT'))
    await assert.rejects(sendTlsRptReports({ ...base, store, day: '2026-1-2' }), assertCoded('ERR_INVALID_ARGUMENT'))
    await assert.rejects(sendTlsRptReports({ ...base, store: {} as PolicyStore, day: DAY }), assertCoded('ERR_INVALID_ARGUMENT'))
  })
})

describe('scheduleTlsRptReports', () => {
  it('runs after UTC midnight for the day before, on an unref’d timer, and stops', async () => {
    const store = createMemoryStore()
    recordTlsRptSession(store, { policy: sts('a.test') }, NOW)
    const midnight = Date.UTC(2026, 0, 3)
    const offset = midnight - 20 - Date.now()
    const results: TlsRptSendResult[] = []
    let done!: () => void
    const ran = new Promise<void>((res) => (done = res))
    const schedule = scheduleTlsRptReports({
      ...base,
      store,
      now: () => Date.now() + offset,
      delayMs: [0, 0],
      onResult: (r) => {
        results.push(r)
        done()
      },
    })
    assert.equal(schedule.next.toISOString(), '2026-01-03T00:00:00.000Z')
    // the timer is unref'd: keep the test alive until the run, bounded
    const keep = setTimeout(() => done(), 10_000)
    await ran
    clearTimeout(keep)
    schedule.stop()
    assert.equal(results.length, 1)
    assert.equal(results[0]!.day, DAY)
    assert.equal(byDomain(results[0]!, 'a.test').status, 'sent')
    assert.equal(schedule.next.toISOString(), '2026-01-04T00:00:00.000Z')
  })
})
