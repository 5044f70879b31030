// createRedisStore against a real redis-server (Unix socket), over node-redis and ioredis: the
// PolicyStore contract, two processes sharing one MTA-STS policy, counters from concurrent processes
// adding up exactly, and Redis stopped mid-run (fetch-on-miss, never a weaker policy, every error published).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import diagnostics_channel from 'node:diagnostics_channel'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { createRedisStore, type RedisStore } from '../../src/redis/index.js'
import { getMtaStsPolicy } from '../../src/node/mta-sts.js'
import { createResolver } from '../../src/node/resolver/index.js'
import { collectTlsRptDay } from '../../src/tlsrpt/recorder.js'
import type { SmtpTlsError } from '../../src/errors.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { startMailSink } from '../helpers/mail-sink.js'
import { deliver } from '../../src/node/deliver.js'

const run = promisify(execFile)
const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))
const POLICY = 'version: STSv1\nmode: enforce\nmx: *.good.test\nmax_age: 86400\n'

let redis: TestRedis
let dns: TestDnsServer
let https: TestHttpsServer
let ca: Issued
const closers: Array<() => Promise<unknown>> = []

async function nodeRedis(path: string): Promise<ReturnType<typeof createClient>> {
  const c = createClient({ socket: { path, tls: false, reconnectStrategy: () => 50 } })
  c.on('error', () => {})
  await c.connect()
  closers.push(async () => c.destroy())
  return c as never
}

function ioRedis(path: string): Redis {
  const c = new Redis({ path, retryStrategy: () => 50, maxRetriesPerRequest: 1 })
  c.on('error', () => {})
  closers.push(async () => c.disconnect())
  return c
}

before(async () => {
  redis = await startRedis()
  ca = makeCert({ ca: true, subject: '/CN=Test CA' })
  https = await startHttpsServer(makeCert({ issuer: ca, subject: '/CN=mta-sts.good.test', dns: ['mta-sts.good.test'] }))
  https.routes.set('mta-sts.good.test', (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(POLICY))
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['_mta-sts.good.test', 'TXT', 'v=STSv1; id=1'],
        ['mta-sts.good.test', 'A', '127.0.0.1'],
        ['good.test', 'MX', { preference: 10, exchange: 'mx.good.test' }],
        ['mx.good.test', 'A', '127.0.0.1'],
      ],
    }),
  )
})

after(async () => {
  for (const c of closers) await c().catch(() => {})
  await Promise.all([redis?.stop(), dns?.close(), https?.close()])
})

for (const kind of ['node-redis', 'ioredis'] as const) {
  describe(`createRedisStore over ${kind}: the PolicyStore contract`, () => {
    let store: RedisStore
    let raw: (args: string[]) => Promise<unknown>
    before(async () => {
      if (kind === 'node-redis') {
        const c = await nodeRedis(redis.path)
        store = createRedisStore(c, { prefix: `${kind}:` })
        raw = (a) => c.sendCommand(a)
      } else {
        const c = ioRedis(redis.path)
        store = createRedisStore(c, { prefix: `${kind}:` })
        raw = (a) => c.call(a[0]!, ...a.slice(1))
      }
    })
    it('get, set with a TTL in ms (SET PX), delete', async () => {
      assert.equal(await store.get('a'), undefined)
      await store.set('a', 'one', 60)
      assert.equal(await store.get('a'), 'one')
      const pttl = Number(await raw(['PTTL', `${kind}:a`]))
      assert.ok(pttl > 59_000 && pttl <= 60_000, String(pttl))
      await store.set('b', 'two')
      assert.equal(Number(await raw(['PTTL', `${kind}:b`])), -1)
      assert.equal(await store.delete('a'), true)
      assert.equal(await store.delete('a'), false)
      assert.equal(await store.get('a'), undefined)
    })
    it('increment is atomic and sets the TTL only when it creates the key', async () => {
      await raw(['SCRIPT', 'FLUSH']) // the first increment meets NOSCRIPT and sends the script
      const all = await Promise.all(Array.from({ length: 500 }, () => store.increment('n', 2, 100)))
      assert.equal(Math.max(...all), 1000)
      assert.equal(new Set(all).size, 500, 'every increment saw a distinct value')
      await raw(['PEXPIRE', `${kind}:n`, '5000'])
      assert.equal(await store.increment('n', -1, 100), 999)
      const pttl = Number(await raw(['PTTL', `${kind}:n`]))
      assert.ok(pttl <= 5000 && pttl > 0, `the TTL was not reset: ${pttl}`)
      await store.set('s', 'text')
      await assert.rejects(store.increment('s'), (e: SmtpTlsError) => e.code === 'ERR_STORE')
    })
    it('scan by prefix with SCAN MATCH: glob characters in the prefix match only themselves', async () => {
      await store.set('p*[x]|1', 'a')
      await store.set('p*[x]|2', 'b')
      await store.set('pz[x]|3', 'c') // would match an unescaped p*[x]
      for (let i = 0; i < 2500; i++) await store.set(`q|${i}`, String(i), 60)
      const got = (await store.scan('p*[x]|')).sort()
      assert.deepEqual(got, [
        ['p*[x]|1', 'a'],
        ['p*[x]|2', 'b'],
      ])
      assert.equal((await store.scan('q|')).length, 2500)
    })
    it('refuses wrong types with ERR_INVALID_ARGUMENT', async () => {
      for (const f of [
        () => store.get(1 as never),
        () => store.set('k', 1 as never),
        () => store.set('k', 'v', -1),
        () => store.increment('k', 1.5),
        () => store.scan(null as never),
      ]) {
        await assert.rejects(f(), (e: SmtpTlsError) => e.code === 'ERR_INVALID_ARGUMENT')
      }
    })
  })
}

describe('several processes', () => {
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    REDIS_SOCK: redis.path,
    DNS: dns.server,
    CA: ca.pem,
    HTTPS_PORT: String(https.port),
  })
  it('two processes share one MTA-STS policy: the second makes no HTTPS request', async () => {
    const n = https.total()
    const a = await run(process.execPath, ['--import', 'tsx', CHILD, 'fetch', 'ioredis'], { env: env(), timeout: 30_000 })
    assert.equal(a.stdout, 'fetched')
    const b = await run(process.execPath, ['--import', 'tsx', CHILD, 'fetch', 'node-redis'], { env: env(), timeout: 30_000 })
    assert.equal(b.stdout, 'cached')
    assert.equal(https.total(), n + 1)
  })
  it('TLS-RPT counters from three concurrent processes add up exactly', async () => {
    const N = 3000
    const outs = await Promise.all(
      (['ioredis', 'node-redis', 'ioredis'] as const).map((k) =>
        run(process.execPath, ['--import', 'tsx', CHILD, 'count', k, String(N)], { env: env(), timeout: 60_000 }),
      ),
    )
    assert.deepEqual(
      outs.map((o) => o.stdout),
      [String(N), String(N), String(N)],
    )
    const c = ioRedis(redis.path)
    const [day] = await collectTlsRptDay(createRedisStore(c, { prefix: 't:' }), '2026-01-02')
    const p = day!.policies[0]!
    const failed = 3 * Math.ceil(N / 3)
    assert.equal(p.failed, failed)
    assert.equal(p.successful, 3 * N - failed)
    assert.equal(p.failureDetails[0]!.failedSessionCount, failed)
    assert.deepEqual(p.policy.strings, ['version: STSv1'])
  })
})

describe('createRedisStore strict: a failure rejects instead of looking like "not cached"', () => {
  it('get, set and delete reject ERR_STORE when Redis is gone; without strict they answer a miss', async () => {
    const gone = await startRedis()
    const c = await nodeRedis(gone.path)
    const strict = createRedisStore(c, { strict: true, timeoutMs: 200 })
    const lax = createRedisStore(c, { timeoutMs: 200 })
    await strict.set('k', 'v', 60)
    assert.equal(await strict.get('k'), 'v')
    assert.equal(await strict.get('absent'), undefined, 'a real miss is still undefined')
    gone.kill()
    await gone.exited
    const isStore = (e: Error & { code?: string }): boolean => e.code === 'ERR_STORE'
    await assert.rejects(strict.get('k'), isStore)
    await assert.rejects(strict.set('k', 'w'), isStore)
    await assert.rejects(strict.delete('k'), isStore)
    assert.equal(await lax.get('k'), undefined)
    assert.equal(await lax.delete('k'), false)
    await gone.stop()
  })
  it('strict must be a boolean', () => {
    assert.throws(() => createRedisStore({ call: async () => null }, { strict: 1 as never }), { code: 'ERR_INVALID_ARGUMENT' })
  })
})

describe('Redis stopped mid-run', () => {
  it('lookups go on with fetch-on-miss, never a weaker policy, and every store error is published', async () => {
    const seen: Array<{ operation: string; error: SmtpTlsError }> = []
    const onMsg = (m: unknown): void => void seen.push(m as (typeof seen)[number])
    diagnostics_channel.subscribe('smtp-tls-policy:store-error', onMsg)
    try {
      const stores = [
        createRedisStore(await nodeRedis(redis.path), { timeoutMs: 200 }),
        createRedisStore(ioRedis(redis.path), { timeoutMs: 200 }),
      ]
      const resolver = createResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 1, cache: false })
      const o = { resolver, ca: ca.pem, port: https.port, allowPrivateAddresses: true }
      for (const store of stores) assert.ok((await getMtaStsPolicy('good.test', { ...o, store })).policy)
      const before = https.total()
      for (const store of stores) assert.equal((await getMtaStsPolicy('good.test', { ...o, store })).state, 'cached')
      assert.equal(https.total(), before, 'cached in Redis: no request')
      assert.equal(seen.length, 0)
      redis.kill()
      const rounds = 3
      for (let i = 0; i < rounds; i++) {
        for (const store of stores) {
          const r = await getMtaStsPolicy('good.test', { ...o, store })
          assert.equal(r.state, 'fetched', 'a store failure costs a fetch')
          assert.equal(r.policy?.mode, 'enforce', 'never a weaker policy')
        }
      }
      assert.equal(https.total(), before + rounds * stores.length)
      // each lookup: a failed get, then a failed set of the fetched policy
      assert.equal(seen.length, rounds * stores.length * 2, JSON.stringify(seen.map((m) => [m.operation, m.error.message])))
      assert.deepEqual([...new Set(seen.map((m) => m.operation))].sort(), ['get', 'set'])
      for (const m of seen) assert.equal(m.error.code, 'ERR_STORE')
    } finally {
      diagnostics_channel.unsubscribe('smtp-tls-policy:store-error', onMsg)
    }
  })
})

const NOW = Date.UTC(2026, 0, 2, 12)

describe('Redis stopped mid-run, in delivery', () => {
  it('deliver() goes on under the MTA-STS policy (fetch-on-miss, never weaker), TLS-RPT recording fails quietly, every store error published', async () => {
    const own = await startRedis() // its own server: the test above kills the shared one
    const mx = makeCert({ issuer: ca, subject: '/CN=mx.good.test', dns: ['mx.good.test'] })
    const sink = await startMailSink({ certPem: mx.pem + ca.pem, keyPem: mx.keyPem })
    const seen: Array<{ operation: string; error: SmtpTlsError }> = []
    const onMsg = (m: unknown): void => void seen.push(m as (typeof seen)[number])
    diagnostics_channel.subscribe('smtp-tls-policy:store-error', onMsg)
    try {
      for (const store of [
        createRedisStore(await nodeRedis(own.path), { timeoutMs: 200, prefix: 'nr:' }),
        createRedisStore(ioRedis(own.path), { timeoutMs: 200, prefix: 'io:' }),
      ]) {
        seen.length = 0
        const resolver = createResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 1, cache: false })
        const o = {
          resolver,
          port: sink.port,
          ehloName: 'client.test',
          timeoutMs: 5000,
          ca: ca.pem,
          mtaSts: { store, ca: ca.pem, allowPrivateAddresses: true, port: https.port },
          tlsRpt: { store, now: () => NOW },
        }
        const message = { envelope: { from: 'a@client.test', to: ['b@good.test'] }, body: 'Subject: t\r\n\r\nhi\r\n' }
        const first = await deliver('good.test', message, o)
        assert.equal(first.outcome.level, 'secure', 'MTA-STS enforce applied')
        const before = https.total()
        await deliver('good.test', message, o)
        assert.equal(https.total(), before, 'the policy came from Redis')
        // the recording is fire-and-forget: wait until both sessions are in Redis
        let successful = 0
        for (let i = 0; i < 100 && successful < 2; i++) {
          await new Promise((r) => setTimeout(r, 20))
          successful = (await collectTlsRptDay(store, '2026-01-02'))[0]?.policies[0]?.successful ?? 0
        }
        assert.equal(successful, 2, 'both sessions recorded in Redis')
        assert.equal(seen.length, 0)
      }
      own.kill()
      await new Promise((r) => setTimeout(r, 50))
      seen.length = 0
      const store = createRedisStore(ioRedis(own.path), { timeoutMs: 200 })
      const resolver = createResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 1, cache: false })
      const o = {
        resolver,
        port: sink.port,
        ehloName: 'client.test',
        timeoutMs: 5000,
        ca: ca.pem,
        mtaSts: { store, ca: ca.pem, allowPrivateAddresses: true, port: https.port },
        tlsRpt: { store },
      }
      const before = https.total()
      const delivered = sink.messages.length
      for (let i = 0; i < 2; i++) {
        const r = await deliver(
          'good.test',
          { envelope: { from: 'a@client.test', to: ['b@good.test'] }, body: 'Subject: t\r\n\r\nhi\r\n' },
          o,
        )
        assert.deepEqual(r.accepted, ['b@good.test'], 'delivery goes on')
        assert.equal(r.outcome.level, 'secure', 'never a weaker policy: MTA-STS enforce still applies')
        assert.equal(r.outcome.status, 'verified')
      }
      assert.equal(https.total(), before + 2, 'fetch-on-miss: one policy fetch per delivery')
      assert.equal(sink.messages.length, delivered + 2)
      // the recordings fail in the background: wait for their errors (bounded)
      const count = (op: string) => seen.filter((m) => m.operation === op).length
      for (let i = 0; i < 100 && count('tlsrpt-record') < 2; i++) await new Promise((r) => setTimeout(r, 20))
      const ops = seen.map((m) => m.operation)
      assert.deepEqual(
        [...new Set(ops)].sort(),
        ['get', 'increment', 'set', 'tlsrpt-record'],
        JSON.stringify(seen.map((m) => [m.operation, m.error?.message])),
      )
      assert.equal(ops.filter((x) => x === 'get').length, 2)
      assert.equal(ops.filter((x) => x === 'set').length, 2)
      assert.equal(ops.filter((x) => x === 'increment').length, 2, 'the adapter: each failed INCR')
      assert.equal(ops.filter((x) => x === 'tlsrpt-record').length, 2, 'the driver: each recording that failed')
      for (const m of seen) assert.equal(m.error.code, 'ERR_STORE')
    } finally {
      diagnostics_channel.unsubscribe('smtp-tls-policy:store-error', onMsg)
      await sink.close()
      await own.stop()
    }
  })
})
