// `smtp-tls-policy tlsrpt --send DAY --redis URL …` in-process: a day's reports from a real redis-server
// (Unix socket) to an in-process HTTPS rua endpoint (private CA through --ca-file); a second run sends
// nothing twice; usage errors.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createClient } from 'redis'
import { main } from '../../src/cli/main.js'
import { recordTlsRptSession } from '../../src/index.js'
import { createRedisStore } from '../../src/redis/index.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, tempDir } from '../helpers/openssl.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'

const ca = makeCert({ key: 'ec256', subject: '/CN=CLI RUA CA', ca: true })
const web = makeCert({ key: 'ec256', subject: '/CN=rua.cli.test', dns: ['rua.cli.test'], issuer: ca })
const tmp = tempDir()
const caFile = join(tmp.dir, 'ca.pem')
writeFileSync(caFile, ca.pem)

let redis: TestRedis
let dns: TestDnsServer
let https: TestHttpsServer
let posts = 0

before(async () => {
  redis = await startRedis()
  https = await startHttpsServer(web)
  https.routes.set('rua.cli.test', (req, res) => {
    req.resume()
    req.on('end', () => {
      posts++
      res.writeHead(200).end()
    })
  })
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['_smtp._tls.a.cli.test', 'TXT', `v=TLSRPTv1; rua=https://rua.cli.test:${https.port}/r`],
        ['rua.cli.test', 'A', '127.0.0.1'],
      ],
    }),
  )
  const client = createClient({ socket: { path: redis.path, tls: false } })
  client.on('error', () => {})
  await client.connect()
  const store = createRedisStore(client as never)
  const policy = { type: 'sts' as const, domain: 'a.cli.test', strings: ['version: STSv1'], mxHosts: ['mx.a.cli.test'] }
  const day = Date.UTC(2026, 0, 2, 12)
  await recordTlsRptSession(store, { policy }, day)
  await recordTlsRptSession(store, { policy, failure: { resultType: 'certificate-expired', receivingMxHostname: 'mx.a.cli.test' } }, day)
  await recordTlsRptSession(store, { policy }, day + 86_400_000)
  client.destroy()
})
after(async () => {
  await https?.close()
  await dns?.close()
  await redis?.stop()
  tmp.done()
})

async function run(...argv: string[]) {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}
const send = (...more: string[]) => [
  'tlsrpt',
  '--send',
  '2026-01-02',
  '--redis',
  `unix:${redis.path}`,
  '--organization',
  'CLI Test',
  '--contact',
  'tlsrpt@sender.cli.test',
  '--submitter',
  'sender.cli.test',
  '--from',
  'tlsrpt@sender.cli.test',
  '--resolver',
  dns.server,
  '--ca-file',
  caFile,
  '--allow-private',
  ...more,
]

describe('smtp-tls-policy tlsrpt --send', () => {
  it('sends the day’s report to the https rua (exit 0); run again, nothing is sent twice', async () => {
    const r = await run(...send())
    assert.equal(r.status, 0, r.out + r.err)
    assert.match(
      r.out,
      /^report a\.cli\.test 2026-01-02: sent \(1 successful, 1 failed sessions\)\n {2}https:\/\/rua\.cli\.test:\d+\/r: sent\n/,
    )
    assert.equal(posts, 1)
    const again = await run(...send('--json'))
    assert.equal(again.status, 0, again.out + again.err)
    const j = JSON.parse(again.out)
    assert.equal(j.domains[0].status, 'already-sent')
    assert.equal(posts, 1)
  })
  it('without --allow-private the loopback endpoint is refused: exit 75 (run again later)', async () => {
    const r = await run(
      ...send()
        .map((x) => (x === '2026-01-02' ? '2026-01-03' : x))
        .filter((x) => x !== '--allow-private'),
    )
    assert.equal(r.status, 75, r.out + r.err)
    assert.match(r.out, /: failed: .*private.*refused/)
    assert.equal(posts, 1)
  })
  it('a key prefix with no sessions: nothing to send, exit 0', async () => {
    const r = await run(...send('--key-prefix', 'other|'))
    assert.equal(r.status, 0, r.out + r.err)
    assert.match(r.out, /2026-01-02: no sessions recorded/)
  })
  it('usage errors: 64', async () => {
    assert.equal((await run('tlsrpt', '--send', '2026-01-02')).status, 64)
    assert.equal((await run('tlsrpt', '--send', 'tomorrow', '--redis', 'unix:/x')).status, 64)
    assert.equal((await run('tlsrpt', 'a.cli.test', '--redis', 'unix:/x')).status, 64)
    assert.equal((await run(...send().map((x) => (x === '2026-01-02' ? '2999-01-01' : x)))).status, 64, 'a day that has not ended')
  })
})
