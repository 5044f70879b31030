// Prometheus metrics of the socketmap server (issue 15): counted from the server's log events, scraped
// over HTTP from startMetricsServer after real queries over the wire (in-process DNS server, injected
// clock for a prefetch): queries by result and policy, cache hits and misses, prefetch outcomes, store
// errors, the latency histogram; the HTTP server answers only GET /metrics, on loopback by default.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createMemoryStore, createNetstringDecoder, encodeNetstring, SmtpTlsError } from '../../src/index.js'
import type { PolicyStore } from '../../src/store/types.js'
import {
  createResolver,
  createSocketmapMetrics,
  createSocketmapServer,
  startMetricsServer,
  type MetricsServer,
  type SocketmapServer,
  type SocketmapServerOptions,
} from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'

const TLSA = { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 0xab) }
let dns: TestDnsServer
const closers: Array<{ close(): Promise<void> }> = []
before(async () => {
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['dane.test', 'MX', { preference: 10, exchange: 'mx.dane.test' }],
        ['mx.dane.test', 'A', '127.0.0.1'],
        ['_25._tcp.mx.dane.test', 'TLSA', TLSA],
        ['half.test', 'MX', { preference: 10, exchange: 'mx.dane.test' }],
        ['half.test', 'MX', { preference: 20, exchange: 'mx.plain.test' }],
        ['plain.test', 'MX', { preference: 10, exchange: 'mx.plain.test' }],
        ['mx.plain.test', 'A', '127.0.0.1'],
        ['bogus.test', 'MX', { preference: 10, exchange: 'mx.bogus.test' }],
        ['mx.bogus.test', 'A', '127.0.0.1'],
      ],
      insecure: ['plain.test', 'mx.plain.test'],
      bogus: ['_25._tcp.mx.bogus.test TLSA'],
    }),
  )
})
after(async () => {
  for (const c of closers) await c.close()
  await dns.close()
})

async function setup(extra: Partial<SocketmapServerOptions> = {}): Promise<{
  server: SocketmapServer
  http: MetricsServer
  ask(request: string): Promise<string>
  scrape(): Promise<Map<string, number>>
  clock: { now: number }
}> {
  const clock = { now: 1_800_000_000_000 }
  const now = (): number => clock.now
  const metrics = await createSocketmapMetrics()
  const server = await createSocketmapServer({
    listen: 'inet:127.0.0.1:0',
    resolver: createResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 1, cache: false }),
    families: [4],
    store: createMemoryStore({ now }),
    now,
    random: () => 0,
    log: metrics.observe,
    ...extra,
  })
  const http = await startMetricsServer({ listen: '0', metrics })
  closers.push(server, http)
  const sock = net.connect(Number(server.address.split(':').pop()), '127.0.0.1')
  sock.on('error', () => {})
  closers.push({ close: async () => void sock.destroy() })
  await new Promise((r) => sock.once('connect', r))
  const decoder = createNetstringDecoder({ maxLength: 100000 })
  const waiting: ((r: string) => void)[] = []
  sock.on('data', (d) => {
    for (const m of decoder.push(d)) waiting.shift()?.(Buffer.from(m).toString('latin1'))
  })
  return {
    server,
    http,
    clock,
    ask: (request) =>
      new Promise((r) => {
        waiting.push(r)
        sock.write(encodeNetstring(request))
      }),
    async scrape() {
      const res = await fetch(`http://${http.address}/metrics`)
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
      const out = new Map<string, number>()
      for (const line of (await res.text()).split('\n')) {
        const m = /^(smtp_tls_policy_socketmap_\S+) (\S+)$/.exec(line)
        if (m) out.set(m[1]!, Number(m[2]))
      }
      return out
    },
  }
}

describe('socketmap metrics', () => {
  it('queries by result and policy, cache hits and misses, the latency histogram', async () => {
    const r = await setup()
    const replies = []
    for (const q of [
      'dane+sts dane.test', // miss, OK dane-only
      'dane+sts dane.test', // hit
      'dane+sts dane.test', // hit
      'dane+sts half.test', // miss, OK dane
      'dane+sts plain.test', // miss, NOTFOUND
      'dane+sts plain.test', // hit, NOTFOUND
      'dane+sts bogus.test', // miss, TEMP
      'nosuchmap dane.test', // PERM, the cache is not asked
      'dane+sts [192.0.2.1]', // NOTFOUND, not cacheable
    ])
      replies.push((await r.ask(q)).split(' ')[0])
    assert.deepEqual(replies, ['OK', 'OK', 'OK', 'OK', 'NOTFOUND', 'NOTFOUND', 'TEMP', 'PERM', 'NOTFOUND'])
    const m = await r.scrape()
    const q = 'smtp_tls_policy_socketmap_queries_total'
    assert.equal(m.get(`${q}{result="OK",policy="dane-only"}`), 3)
    assert.equal(m.get(`${q}{result="OK",policy="dane"}`), 1)
    assert.equal(m.get(`${q}{result="NOTFOUND",policy="none"}`), 3)
    assert.equal(m.get(`${q}{result="TEMP",policy="none"}`), 1)
    assert.equal(m.get(`${q}{result="PERM",policy="none"}`), 1)
    assert.equal(m.get('smtp_tls_policy_socketmap_cache_hits_total'), 3)
    assert.equal(m.get('smtp_tls_policy_socketmap_cache_misses_total'), 4)
    assert.equal(m.get('smtp_tls_policy_socketmap_query_duration_seconds_count{cached="true"}'), 3)
    assert.equal(m.get('smtp_tls_policy_socketmap_query_duration_seconds_count{cached="false"}'), 6)
    assert.equal(m.get('smtp_tls_policy_socketmap_query_duration_seconds_bucket{le="+Inf",cached="false"}'), 6)
    assert.ok(m.get('smtp_tls_policy_socketmap_query_duration_seconds_sum{cached="false"}')! > 0, 'latency recorded')
    assert.equal(m.get('smtp_tls_policy_socketmap_store_errors_total'), undefined) // no operation failed: no series
  })
  it('prefetch outcomes and TIMEOUT', async () => {
    const r = await setup({ lookupTimeoutMs: 300 })
    assert.equal(await r.ask('dane dane.test'), 'OK dane-only')
    r.clock.now += 95_000 // TTL 100 s (the resolver's ceiling): the last 10 %
    assert.equal(await r.ask('dane dane.test'), 'OK dane-only')
    let m = await r.scrape()
    for (let i = 0; i < 200 && m.get('smtp_tls_policy_socketmap_prefetch_total{outcome="refreshed"}') !== 1; i++) {
      await new Promise((res) => setTimeout(res, 10))
      m = await r.scrape()
    }
    assert.equal(m.get('smtp_tls_policy_socketmap_prefetch_total{outcome="refreshed"}'), 1)
    // A DNS server that does not answer: the lookup times out.
    const silent = await startDnsServer(() => ({ drop: true }))
    closers.push(silent)
    const t = await setup({ lookupTimeoutMs: 50, resolver: createResolver({ servers: [silent.server], timeoutMs: 1000, attempts: 1 }) })
    assert.match(await t.ask('dane dane.test'), /^TIMEOUT /)
    const n = await t.scrape()
    assert.equal(n.get('smtp_tls_policy_socketmap_queries_total{result="TIMEOUT",policy="none"}'), 1)
    assert.equal(n.get('smtp_tls_policy_socketmap_lookup_errors_total'), 1)
  })
  it('store errors by operation', async () => {
    const down = (): Promise<never> => Promise.reject(new Error('store down'))
    const store: PolicyStore = { get: down, set: down, increment: down, scan: down, delete: down }
    const r = await setup({ store })
    assert.equal(await r.ask('dane dane.test'), 'OK dane-only')
    assert.equal(await r.ask('dane dane.test'), 'OK dane-only')
    await new Promise((res) => setTimeout(res, 20)) // the store writes do not delay the replies
    const m = await r.scrape()
    assert.equal(m.get('smtp_tls_policy_socketmap_store_errors_total{operation="get"}'), 2)
    assert.equal(m.get('smtp_tls_policy_socketmap_store_errors_total{operation="set"}'), 2)
    assert.equal(m.get('smtp_tls_policy_socketmap_cache_misses_total'), 2)
  })
  it('client errors', async () => {
    const r = await setup()
    const bad = net.connect(Number(r.server.address.split(':').pop()), '127.0.0.1')
    bad.on('error', () => {})
    await new Promise((res) => bad.once('connect', res))
    bad.write('05:dane x,')
    await new Promise((res) => bad.once('close', res))
    assert.equal((await r.scrape()).get('smtp_tls_policy_socketmap_client_errors_total'), 1)
  })
})

describe('socketmap metrics: the HTTP server', () => {
  it('listens on loopback by default; GET /metrics only: other paths 404, other methods 405', async () => {
    const metrics = await createSocketmapMetrics({ prefix: 'x_' })
    const http = await startMetricsServer({ listen: '0', metrics })
    closers.push(http)
    assert.match(http.address, /^127\.0\.0\.1:\d+$/)
    const base = `http://${http.address}`
    assert.equal((await fetch(`${base}/`)).status, 404)
    assert.equal((await fetch(`${base}/metrics/x`)).status, 404)
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 405)
    const ok = await fetch(`${base}/metrics?x=1`)
    assert.equal(ok.status, 200)
    assert.match(await ok.text(), /^# HELP x_queries_total /m)
  })
  it('a client sending garbage is closed; the server goes on', async () => {
    const metrics = await createSocketmapMetrics()
    const http = await startMetricsServer({ listen: '127.0.0.1:0', metrics })
    closers.push(http)
    const [host, port] = [http.address.split(':')[0]!, Number(http.address.split(':')[1])]
    const sock = net.connect(port, host)
    sock.on('error', () => {})
    await new Promise((res) => sock.once('connect', res))
    sock.write('\x00\x01 garbage\r\n\r\n')
    await new Promise((res) => sock.once('close', res))
    assert.equal((await fetch(`http://${http.address}/metrics`)).status, 200)
  })
  it('bad options are coded errors', async () => {
    const metrics = await createSocketmapMetrics()
    for (const listen of ['', 'x', '127.0.0.1:99999', 'a:b:1', 1234])
      await assert.rejects(
        startMetricsServer({ listen: listen as string, metrics }),
        (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_INVALID_ARGUMENT',
      )
    await assert.rejects(
      startMetricsServer({ listen: '0', metrics: {} as never }),
      (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_INVALID_ARGUMENT',
    )
    for (const opts of [{ prefix: 'bad name' }, { prefix: 1 }, { defaultMetrics: 'yes' }, { registry: {} }, 'x'])
      await assert.rejects(
        createSocketmapMetrics(opts as never),
        (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_INVALID_ARGUMENT',
      )
  })
  it('a port in use is ERR_CONNECT', async () => {
    const metrics = await createSocketmapMetrics()
    const first = await startMetricsServer({ listen: '127.0.0.1:0', metrics })
    closers.push(first)
    await assert.rejects(
      startMetricsServer({ listen: first.address, metrics }),
      (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_CONNECT',
    )
  })
})
