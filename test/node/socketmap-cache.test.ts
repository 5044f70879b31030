// The socketmap server's cache (issue 15): how long each answer lives (DANE: the smallest TTL of the
// validated RRsets; MTA-STS: until the policy expires; NOTFOUND: cache.negative; all capped by
// cache.max), and the prefetch: a hit in the last 10-20 % of an answer's life refreshes it in the
// background with jitter and bounded concurrency, a failed refresh keeps the unexpired answer, close()
// stops it. Time is an injected clock; DNS and HTTPS are in-process servers.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createMemoryStore, createNetstringDecoder, encodeNetstring, type MemoryStore } from '../../src/index.js'
import {
  createResolver,
  createSocketmapServer,
  type SocketmapLogEvent,
  type SocketmapServer,
  type SocketmapServerOptions,
} from '../../src/node/index.js'
import { startDnsServer, validatingZone, type DnsReply, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'

const TLSA = { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 0xab) }
const records: ZoneRecord[] = [
  ['dane.test', 'MX', { preference: 10, exchange: 'mx.dane.test' }],
  ['mx.dane.test', 'A', '127.0.0.1'],
  ['_25._tcp.mx.dane.test', 'TLSA', TLSA],
  ['plain.test', 'MX', { preference: 10, exchange: 'mx.plain.test' }],
  ['mx.plain.test', 'A', '127.0.0.1'],
  ['sts.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
  ['mx.sts.test', 'A', '127.0.0.1'],
  ['_mta-sts.sts.test', 'TXT', 'v=STSv1; id=1'],
  ['mta-sts.sts.test', 'A', '127.0.0.1'],
]
for (let i = 1; i <= 5; i++)
  records.push(
    [`d${i}.test`, 'MX', { preference: 10, exchange: `mx.d${i}.test` }],
    [`mx.d${i}.test`, 'A', '127.0.0.1'],
    [`_25._tcp.mx.d${i}.test`, 'TLSA', TLSA],
  )
const zone = validatingZone({ records, insecure: ['plain.test', 'mx.plain.test'] })

// What each test changes in DNS: TTLs per "name TYPE" (default 300), names answered SERVFAIL (bogus), delays.
const ttls = new Map<string, number>()
const broken = new Set<string>()
const delays = new Map<string, number>()
/** Destinations with delayed queries being answered now, and the most of d1.test…d5.test at once. */
const active = { now: new Map<string, number>(), most: 0 }
let dns: TestDnsServer
let https: TestHttpsServer
let ca: Issued
const policyBody = 'version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n'
let policyUp = true
const servers: SocketmapServer[] = []

before(async () => {
  ca = makeCert({ ca: true, subject: '/CN=Test MTA-STS CA' })
  const leaf = makeCert({ issuer: ca, subject: '/CN=mta-sts.sts.test', dns: ['mta-sts.sts.test'] })
  dns = await startDnsServer(async (q) => {
    const k = `${q.name.toLowerCase()} ${q.type}`
    const delayMs = delays.get(k) ?? delays.get('*')
    if (delayMs) {
      const domain = /d\d\.test$/.exec(q.name)?.[0] ?? q.name
      active.now.set(domain, (active.now.get(domain) ?? 0) + 1)
      active.most = Math.max(active.most, [...active.now.keys()].filter((d) => /^d\d\.test$/.test(d)).length)
      await new Promise((r) => setTimeout(r, delayMs).unref()) // unref'd: a test that closes early does not wait for it
      const left = active.now.get(domain)! - 1
      if (left === 0) active.now.delete(domain)
      else active.now.set(domain, left)
    }
    if (broken.has(k)) return { rcode: 'SERVFAIL', ede: [{ code: 6, text: 'DNSSEC Bogus' }] }
    const r: DnsReply = await zone(q)
    r.answers = (r.answers ?? []).map((a) => ({ ...a, ttl: ttls.get(`${a.name} ${a.type}`) ?? 300 }))
    return r
  })
  https = await startHttpsServer(leaf)
  https.routes.set('mta-sts.sts.test', (_q, res) =>
    policyUp ? res.writeHead(200, { 'content-type': 'text/plain' }).end(policyBody) : res.writeHead(500).end(),
  )
})
after(async () => {
  for (const s of servers) await s.close()
  await https.close()
  await dns.close()
})

const T0 = 1_800_000_000_000
interface Rig {
  server: SocketmapServer
  store: MemoryStore
  events: SocketmapLogEvent[]
  clock: { now: number }
  /** The stored entry of `name key`: refresh point, expiry (ms) and reply. */
  entry(name: string, destination: string): { refreshAt: number; expiresAt: number; reply: string } | undefined
  /** Wait (bounded) until `n` prefetch events with this outcome were logged. */
  prefetched(outcome: string, n?: number): Promise<void>
}

async function rig(extra: Partial<SocketmapServerOptions> = {}): Promise<Rig> {
  ttls.clear()
  broken.clear()
  delays.clear()
  policyUp = true
  const clock = { now: T0 }
  const now = (): number => clock.now
  const store = createMemoryStore({ now })
  const events: SocketmapLogEvent[] = []
  const server = await createSocketmapServer({
    listen: 'inet:127.0.0.1:0',
    resolver: createResolver({
      servers: [dns.server],
      timeoutMs: 2000,
      attempts: 1,
      cache: { maxTtl: 100000 },
      now,
    }),
    families: [4],
    mtaSts: { ca: ca.pem, port: https.port, allowPrivateAddresses: true, timeoutMs: 2000 },
    store,
    now,
    random: () => 0,
    log: (e) => events.push(e),
    ...extra,
  })
  servers.push(server)
  return {
    server,
    store,
    events,
    clock,
    entry(name, destination) {
      const v = store.get(`socketmap|${name}|${destination}:25`)
      if (v === undefined) return undefined
      const m = /^(\d+) (\d+) (.*)$/.exec(v)
      assert.ok(m, `stored entry ${v}`)
      return { refreshAt: Number(m[1]), expiresAt: Number(m[2]), reply: m[3]! }
    },
    async prefetched(outcome, n = 1) {
      const count = () => events.filter((e) => e.event === 'prefetch' && e.outcome === outcome).length
      for (let i = 0; i < 400 && count() < n; i++) await new Promise((r) => setTimeout(r, 10))
      assert.equal(count(), n, `prefetch ${outcome}: ${JSON.stringify(events.filter((e) => e.event === 'prefetch'))}`)
    },
  }
}
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
}

describe('socketmap cache: how long answers live', () => {
  const danes: [string, Record<string, number>, number][] = [
    ['the A RRset has the smallest TTL', { 'dane.test MX': 600, 'mx.dane.test A': 120, '_25._tcp.mx.dane.test TLSA': 900 }, 120],
    ['the MX RRset has the smallest TTL', { 'dane.test MX': 70, 'mx.dane.test A': 120, '_25._tcp.mx.dane.test TLSA': 900 }, 70],
    ['the TLSA RRset has the smallest TTL', { 'dane.test MX': 600, 'mx.dane.test A': 120, '_25._tcp.mx.dane.test TLSA': 45 }, 45],
  ]
  for (const [name, set, want] of danes)
    it(`DANE: ${name} → the answer lives ${want} s (RFC 7672 §2.2)`, async () => {
      const r = await rig({ cache: { max: 100000 } })
      for (const [k, v] of Object.entries(set)) ttls.set(k, v)
      assert.equal((await r.server.lookup('dane+sts', 'dane.test')).reply, 'OK dane-only')
      const e = r.entry('dane+sts', 'dane.test')!
      assert.equal(e.expiresAt - T0, want * 1000)
      r.clock.now = T0 + want * 1000 - 1
      assert.equal((await r.server.lookup('dane+sts', 'dane.test')).cached, true)
      r.clock.now = T0 + want * 1000
      assert.equal((await r.server.lookup('dane+sts', 'dane.test')).cached, false)
    })
  it('cache.max caps a DANE answer', async () => {
    const r = await rig({ cache: { max: 30 } })
    assert.equal((await r.server.lookup('dane', 'dane.test')).reply, 'OK dane-only')
    assert.equal(r.entry('dane', 'dane.test')!.expiresAt - T0, 30_000)
  })
  it('MTA-STS: the answer lives until the policy expires (max_age after the fetch, RFC 8461 §3.3)', async () => {
    const r = await rig({ cache: { max: 1_000_000 } })
    const want = 'OK secure match=mx.sts.test servername=hostname'
    assert.equal((await r.server.lookup('sts', 'sts.test')).reply, want)
    assert.equal(r.entry('sts', 'sts.test')!.expiresAt - T0, 86400_000)
    // 1000 s later another map name finds the policy in the store (same id: no fetch): its answer lives for the rest.
    r.clock.now = T0 + 1000_000
    const fetches = https.total()
    assert.equal((await r.server.lookup('dane+sts', 'sts.test')).reply, want)
    assert.equal(https.total(), fetches)
    assert.equal(r.entry('dane+sts', 'sts.test')!.expiresAt - T0, 86400_000)
  })
  it('MTA-STS: cache.max caps the answer', async () => {
    const r = await rig()
    assert.match((await r.server.lookup('sts', 'sts.test')).reply, /^OK secure /)
    assert.equal(r.entry('sts', 'sts.test')!.expiresAt - T0, 3600_000)
  })
  it('NOTFOUND lives for cache.negative', async () => {
    const r = await rig({ cache: { negative: 42 } })
    assert.equal((await r.server.lookup('dane+sts', 'plain.test')).reply, 'NOTFOUND ')
    assert.equal(r.entry('dane+sts', 'plain.test')!.expiresAt - T0, 42_000)
  })
  it('each answer draws its refresh point in the last 10-20 % of its life (jitter)', async () => {
    for (const [random, share] of [
      [0, 0.1],
      [0.5, 0.15],
      [0.999, 0.1999],
    ] as const) {
      const r = await rig({ random: () => random, cache: { max: 100000 } })
      ttls.set('mx.dane.test A', 1000)
      ttls.set('dane.test MX', 1000)
      ttls.set('_25._tcp.mx.dane.test TLSA', 1000)
      await r.server.lookup('dane', 'dane.test')
      const e = r.entry('dane', 'dane.test')!
      assert.ok(Math.abs(e.expiresAt - e.refreshAt - 1000_000 * share) <= 1, `${e.expiresAt - e.refreshAt} ms before expiry`)
    }
  })
  it('a lookup that takes longer than lookupTimeoutMs answers TIMEOUT (socketmap_table(5)), not cached', async () => {
    const r = await rig({ lookupTimeoutMs: 50 })
    delays.set('dane.test MX', 1000)
    const a = await r.server.lookup('dane', 'dane.test')
    assert.match(a.reply, /^TIMEOUT /)
    assert.equal(r.entry('dane', 'dane.test'), undefined)
  })
})

describe('socketmap cache: prefetch', () => {
  // TTL 100 s everywhere; random 0: the refresh point is 90 s after the answer was stored.
  const short = (): void => {
    for (const k of ['dane.test MX', 'mx.dane.test A', '_25._tcp.mx.dane.test TLSA']) ttls.set(k, 100)
  }
  it('a hit before the window refreshes nothing; a hit inside it refreshes in the background, past the old expiry', async () => {
    const r = await rig()
    short()
    await r.server.lookup('dane+sts', 'dane.test')
    const asked = dns.queries.length
    r.clock.now = T0 + 89_000
    assert.equal((await r.server.lookup('dane+sts', 'dane.test')).cached, true)
    await settle()
    assert.equal(dns.queries.length, asked, 'no refresh before the window')
    r.clock.now = T0 + 95_000
    const hit = await r.server.lookup('dane+sts', 'dane.test')
    assert.deepEqual([hit.reply, hit.cached], ['OK dane-only', true]) // the hit does not wait for the refresh
    await r.prefetched('refreshed')
    assert.ok(dns.queries.length > asked, 'the refresh asked DNS')
    // The refresh bypassed the resolver's cache (whose entries had 5 s left): a full 100 s from now.
    assert.equal(r.entry('dane+sts', 'dane.test')!.expiresAt, T0 + 195_000)
    r.clock.now = T0 + 150_000
    const later = dns.queries.length
    assert.equal((await r.server.lookup('dane+sts', 'dane.test')).cached, true)
    assert.equal(dns.queries.length, later)
  })
  it('several hits inside the window start one refresh', async () => {
    const r = await rig()
    short()
    await r.server.lookup('dane', 'dane.test')
    r.clock.now = T0 + 95_000
    delays.set('*', 100)
    const asked = dns.queries.length
    for (let i = 0; i < 10; i++) assert.equal((await r.server.lookup('dane', 'dane.test')).cached, true)
    await r.prefetched('refreshed')
    assert.equal(dns.queries.filter((q, i) => i >= asked && q.type === 'MX').length, 1)
  })
  it('the jitter moves the window: random 0.999 refreshes at 81 % of the life, random 0 does not', async () => {
    for (const [random, refreshes] of [
      [0.999, 1],
      [0, 0],
    ] as const) {
      const r = await rig({ random: () => random })
      short()
      await r.server.lookup('dane', 'dane.test')
      r.clock.now = T0 + 81_000
      await r.server.lookup('dane', 'dane.test')
      await settle()
      if (refreshes) await r.prefetched('refreshed')
      else {
        await new Promise((res) => setTimeout(res, 50))
        assert.equal(r.events.filter((e) => e.event === 'prefetch').length, 0)
      }
    }
  })
  it('a failed refresh (TEMP) keeps the unexpired answer, is retried after half the remaining life, and the answer still expires', async () => {
    const r = await rig()
    short()
    await r.server.lookup('dane', 'dane.test')
    broken.add('_25._tcp.mx.dane.test TLSA')
    r.clock.now = T0 + 94_000
    assert.equal((await r.server.lookup('dane', 'dane.test')).reply, 'OK dane-only')
    await r.prefetched('failed')
    assert.deepEqual(r.entry('dane', 'dane.test'), { refreshAt: T0 + 90_000, expiresAt: T0 + 100_000, reply: 'OK dane-only' })
    // 6 s were left: no new try for 3 s.
    r.clock.now = T0 + 96_999
    const asked = dns.queries.length
    const a = await r.server.lookup('dane', 'dane.test')
    assert.deepEqual([a.reply, a.cached], ['OK dane-only', true])
    await new Promise((res) => setTimeout(res, 50))
    assert.equal(dns.queries.length, asked, 'no new try yet')
    r.clock.now = T0 + 97_000
    await r.server.lookup('dane', 'dane.test')
    await r.prefetched('failed', 2)
    r.clock.now = T0 + 100_000
    assert.match((await r.server.lookup('dane', 'dane.test')).reply, /^TEMP /)
  })
  it('a refresh that cannot fetch the MTA-STS policy (none cached) keeps the cached answer instead of NOTFOUND', async () => {
    const r = await rig()
    const want = 'OK secure match=mx.sts.test servername=hostname'
    assert.equal((await r.server.lookup('sts', 'sts.test')).reply, want)
    r.store.delete('mta-sts|sts.test')
    policyUp = false
    r.clock.now = T0 + 3500_000
    assert.equal((await r.server.lookup('sts', 'sts.test')).reply, want)
    await r.prefetched('failed')
    assert.equal(r.entry('sts', 'sts.test')!.reply, want)
  })
  it('a refresh with a new, valid answer replaces the cached one, even a weaker one', async () => {
    const r = await rig()
    short()
    await r.server.lookup('dane', 'dane.test')
    r.clock.now = T0 + 95_000
    // The domain adds an MX host without DANE (its address is unsigned): TLSA at some MX only → dane.
    records.push(['dane.test', 'MX', { preference: 5, exchange: 'mx.plain.test' }])
    try {
      await r.server.lookup('dane', 'dane.test')
      await r.prefetched('refreshed')
    } finally {
      records.pop()
    }
    assert.equal(r.entry('dane', 'dane.test')!.reply, 'OK dane')
  })
  it('bounded concurrency: 2 at once, 1 queued, the rest dropped', async () => {
    const r = await rig({ prefetch: { concurrency: 2, queue: 1 } })
    for (let i = 1; i <= 5; i++) ttls.set(`d${i}.test MX`, 100)
    for (let i = 1; i <= 5; i++) assert.equal((await r.server.lookup('dane', `d${i}.test`)).reply, 'OK dane-only')
    r.clock.now = T0 + 95_000
    delays.set('*', 50)
    active.most = 0
    for (let i = 1; i <= 5; i++) assert.equal((await r.server.lookup('dane', `d${i}.test`)).cached, true)
    await r.prefetched('dropped', 2)
    await r.prefetched('refreshed', 3)
    assert.equal(active.most, 2, 'destinations being refreshed at once')
    assert.deepEqual(
      r.events.filter((e) => e.event === 'prefetch').map((e) => `${String(e.outcome)} ${String(e.key)}`),
      [
        'dropped socketmap|dane|d4.test:25',
        'dropped socketmap|dane|d5.test:25',
        'refreshed socketmap|dane|d1.test:25',
        'refreshed socketmap|dane|d2.test:25',
        'refreshed socketmap|dane|d3.test:25',
      ],
    )
  })
  it('prefetch: false refreshes nothing', async () => {
    const r = await rig({ prefetch: false })
    short()
    await r.server.lookup('dane', 'dane.test')
    r.clock.now = T0 + 95_000
    const asked = dns.queries.length
    await r.server.lookup('dane', 'dane.test')
    await new Promise((res) => setTimeout(res, 50))
    assert.equal(dns.queries.length, asked)
  })
  it('close() ends a refresh in flight at once and stores nothing after', async () => {
    const r = await rig()
    short()
    await r.server.lookup('dane', 'dane.test')
    r.clock.now = T0 + 95_000
    delays.set('*', 30_000)
    const asked = dns.queries.length
    await r.server.lookup('dane', 'dane.test')
    for (let i = 0; i < 200 && dns.queries.length === asked; i++) await new Promise((res) => setTimeout(res, 5))
    assert.ok(dns.queries.length > asked, 'the refresh started')
    await r.server.close() // would take 30 s if the refresh were not aborted (the test would time out)
    assert.deepEqual(r.entry('dane', 'dane.test'), { refreshAt: T0 + 90_000, expiresAt: T0 + 100_000, reply: 'OK dane-only' })
    assert.deepEqual(
      r.events.filter((e) => e.event === 'prefetch'),
      [],
    )
  })
})

describe('socketmap cache: the wire path', () => {
  it('cached answers over one connection, pipelined with uncached ones, keep the request order', async () => {
    const r = await rig()
    await r.server.lookup('dane', 'dane.test')
    const port = Number(r.server.address.split(':').pop())
    const sock = net.connect(port, '127.0.0.1')
    sock.on('error', () => {})
    await new Promise((res) => sock.once('connect', res))
    const got: string[] = []
    const decoder = createNetstringDecoder({ maxLength: 100000 })
    const all = new Promise<void>((res) =>
      sock.on('data', (d) => {
        for (const m of decoder.push(d)) got.push(Buffer.from(m).toString('latin1'))
        if (got.length === 4) res()
      }),
    )
    delays.set('plain.test MX', 50)
    sock.write(
      Buffer.concat(['dane dane.test', 'dane plain.test', 'dane dane.test', 'nosuchmap x'].map((q) => Buffer.from(encodeNetstring(q)))),
    )
    await all
    sock.destroy()
    assert.deepEqual(
      got.map((g) => g.split(' ')[0]),
      ['OK', 'NOTFOUND', 'OK', 'PERM'],
    )
  })
})
