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

  it('a sender that died holding a claim: in-progress until the claim lapses (an hour), then sent once', async () => {
    let clock = Date.now()
    const store = createMemoryStore({ now: () => clock })
    recordTlsRptSession(store, { policy: sts('a.test') }, NOW)
    const uri = `https://rua.a.test:${https.port}/tlsrpt`
    // what a sender leaves when it dies between its claim and its delivery
    store.increment(`tlsrpt|claim|${DAY}|a.test|${uri}`, 1, 3600)
    posts.length = 0
    const r = await sendTlsRptReports({ ...base, store, day: DAY })
    assert.equal(byDomain(r, 'a.test').status, 'in-progress')
    assert.deepEqual(byDomain(r, 'a.test').uris, [{ uri, status: 'in-progress' }])
    assert.equal(posts.length, 0)
    clock += 3601_000
    const r2 = await sendTlsRptReports({ ...base, store, day: DAY })
    assert.equal(byDomain(r2, 'a.test').status, 'sent')
    assert.equal(posts.length, 1)
    assert.equal(store.get(`tlsrpt|claim|${DAY}|a.test|${uri}`), undefined, 'the claim is released once the marker is written')
    const r3 = await sendTlsRptReports({ ...base, store, day: DAY })
    assert.equal(byDomain(r3, 'a.test').status, 'already-sent')
    assert.equal(posts.length, 1)
  })

  it('delivered but not marked (the store fails on the marker): sent with ERR_STORE, and not sent again while the claim holds', async () => {
    const inner = createMemoryStore()
    recordTlsRptSession(inner, { policy: sts('a.test') }, NOW)
    const store: PolicyStore = {
      get: (k) => inner.get(k),
      set: (k, v, ttl) => {
        if (k.startsWith('tlsrpt|sent|')) throw new Error('READONLY')
        inner.set(k, v, ttl)
      },
      increment: (k, by, ttl) => inner.increment(k, by, ttl),
      scan: (prefix) => inner.scan(prefix),
      delete: (k) => inner.delete(k),
    }
    posts.length = 0
    const r = await sendTlsRptReports({ ...base, store, day: DAY })
    const u = byDomain(r, 'a.test').uris[0]!
    assert.equal(u.status, 'sent')
    assert.equal(u.error?.code, 'ERR_STORE')
    assert.match(u.error!.message, /sent marker.*READONLY/)
    const r2 = await sendTlsRptReports({ ...base, store, day: DAY })
    assert.equal(byDomain(r2, 'a.test').uris[0]!.status, 'in-progress')
    assert.equal(posts.length, 1)
  })

  it('two senders on one store at once: each report goes out once', async () => {
    const store = recorded()
    posts.length = 0
    sink.messages.length = 0
    dFails = false
    const [r1, r2] = await Promise.all([sendTlsRptReports({ ...base, store, day: DAY }), sendTlsRptReports({ ...base, store, day: DAY })])
    for (const d of ['a.test', 'b.test', 'd.test']) {
      // per URI: one sender sent it, the other found it sent or claimed
      const uris = [...byDomain(r1, d).uris, ...byDomain(r2, d).uris]
      for (const uri of new Set(uris.map((u) => u.uri))) {
        const statuses = uris.filter((u) => u.uri === uri).map((u) => u.status)
        assert.equal(statuses.filter((x) => x === 'sent').length, 1, `${uri}: ${statuses.join(', ')}`)
        assert.ok(
          statuses.every((x) => x === 'sent' || x === 'already-sent' || x === 'in-progress'),
          `${uri}: ${statuses.join(', ')}`,
        )
      }
    }
    assert.deepEqual(posts.map((p) => p.host).sort(), ['rua.a.test', 'rua.d.test'])
    assert.equal(sink.messages.length, 2, 'b.test and d.test, once each')
    dFails = true
  })

  it('a URI claimed by an earlier version (a sent|… counter) counts as sent', async () => {
    const store = createMemoryStore()
    recordTlsRptSession(store, { policy: sts('a.test') }, NOW)
    store.increment(`tlsrpt|sent|${DAY}|a.test|https://rua.a.test:${https.port}/tlsrpt`, 1, 8 * 86400)
    posts.length = 0
    const r = await sendTlsRptReports({ ...base, store, day: DAY })
    assert.equal(byDomain(r, 'a.test').status, 'already-sent')
    assert.equal(posts.length, 0)
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
        if (r.day === DAY) done()
      },
    })
    assert.equal(schedule.next.toISOString(), '2026-01-03T00:00:00.000Z')
    // the timer is unref'd: keep the test alive until the run, bounded
    const keep = setTimeout(() => done(), 10_000)
    await ran
    clearTimeout(keep)
    schedule.stop()
    // the day before and, oldest first, the two before it (catchUpDays 3), which had nothing recorded
    assert.deepEqual(
      results.map((r) => [r.day, r.domains.length]),
      [
        ['2025-12-31', 0],
        ['2026-01-01', 0],
        [DAY, 1],
      ],
    )
    assert.equal(byDomain(results[2]!, 'a.test').status, 'sent')
    assert.equal(schedule.next.toISOString(), '2026-01-04T00:00:00.000Z')
  })

  it('each run also sends the days before that are not done, and a run that left a URI failed is retried', async () => {
    const store = createMemoryStore()
    // 2026-01-01 (a day this process missed: it was not running at the midnight after it) and 2026-01-02
    recordTlsRptSession(store, { policy: sts('a.test') }, NOW - 86_400_000)
    recordTlsRptSession(store, { policy: sts('d.test') }, NOW)
    dFails = true
    posts.length = 0
    sink.messages.length = 0
    const midnight = Date.UTC(2026, 0, 3)
    const offset = midnight - 20 - Date.now()
    const results: TlsRptSendResult[] = []
    let retried!: () => void
    const done = new Promise<void>((res) => (retried = res))
    const schedule = scheduleTlsRptReports({
      ...base,
      store,
      now: () => Date.now() + offset,
      delayMs: [0, 0],
      retryMs: 1000,
      onResult: (r) => {
        results.push(r)
        // the first run left d.test's https URI failed; let the retry find the receiver up again
        if (r.day === DAY && byDomain(r, 'd.test').status === 'partial') dFails = false
        if (r.day === DAY && byDomain(r, 'd.test').status === 'sent') retried()
      },
    })
    const keep = setTimeout(() => retried(), 10_000)
    await done
    clearTimeout(keep)
    schedule.stop()
    dFails = true
    const seen = results.filter((r) => r.domains.length > 0).map((r) => [r.day, ...r.domains.map((d) => `${d.policyDomain} ${d.status}`)])
    assert.deepEqual(seen, [
      ['2026-01-01', 'a.test sent'],
      ['2026-01-02', 'd.test partial'],
      ['2026-01-02', 'd.test sent'],
    ])
    // rua.d.test twice: the failed POST (HTTP 500) and the retry's; the retry skipped the days already done
    assert.deepEqual(posts.map((p) => p.host).sort(), ['rua.a.test', 'rua.d.test', 'rua.d.test'])
    assert.equal(sink.messages.length, 1)
    assert.equal(store.get('tlsrpt|done|2026-01-02'), '1')
    assert.equal(results.filter((r) => r.day === '2026-01-01').length, 1, 'a day marked done is not run again')
  })

  it('catchUpDays and retryMs are checked', () => {
    const store = createMemoryStore()
    for (const bad of [{ catchUpDays: 0 }, { catchUpDays: 9 }, { catchUpDays: 1.5 }, { retryMs: 10 }, { retryMs: 86_400_001 }]) {
      assert.throws(() => scheduleTlsRptReports({ ...base, store, ...bad }), assertCoded('ERR_INVALID_ARGUMENT'), JSON.stringify(bad))
    }
  })
})
