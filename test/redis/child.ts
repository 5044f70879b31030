// A second process for test/redis/store.test.ts: it shares a Redis store with the test process.
//   child.ts fetch <ioredis|node-redis>   getMtaStsPolicy('good.test') through env DNS/HTTPS servers; prints the state
//   child.ts count <ioredis|node-redis> N records N TLS-RPT sessions (pipelined, 200 at a time); prints N
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { getMtaStsPolicy } from '../../src/node/mta-sts.js'
import { createResolver } from '../../src/node/resolver/index.js'
import { createRedisStore } from '../../src/redis/index.js'
import { recordTlsRptSession } from '../../src/tlsrpt/recorder.js'

const [mode, kind, n] = process.argv.slice(2)
const env = process.env
const path = env['REDIS_SOCK']!
let close: () => Promise<unknown>
let store
if (kind === 'ioredis') {
  const c = new Redis({ path, lazyConnect: false })
  c.on('error', () => {})
  close = () => c.quit()
  store = createRedisStore(c, { prefix: 't:' })
} else {
  const c = await createClient({ socket: { path, tls: false } })
    .on('error', () => {})
    .connect()
  close = () => c.close()
  store = createRedisStore(c, { prefix: 't:' })
}
if (mode === 'fetch') {
  const r = await getMtaStsPolicy('good.test', {
    store,
    resolver: createResolver({ servers: [env['DNS']!], timeoutMs: 1000, attempts: 1, cache: false }),
    ca: env['CA']!,
    port: Number(env['HTTPS_PORT']),
    allowPrivateAddresses: true,
  })
  process.stdout.write(r.state)
} else if (mode === 'count') {
  const policy = { type: 'sts' as const, domain: 'good.test', strings: ['version: STSv1'] }
  const now = Date.UTC(2026, 0, 2)
  const total = Number(n)
  for (let i = 0; i < total; i += 200) {
    const batch: Array<unknown> = []
    for (let j = i; j < Math.min(total, i + 200); j++) {
      batch.push(
        recordTlsRptSession(
          store,
          j % 3 === 0 ? { policy, failure: { resultType: 'starttls-not-supported', receivingMxHostname: 'mx.good.test' } } : { policy },
          now,
        ),
      )
    }
    await Promise.all(batch)
  }
  process.stdout.write(String(total))
}
await close()
