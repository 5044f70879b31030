// The socketmap TLS policy server (socketmap_table(5)) in process: answers over the wire against an
// in-process validating DNS server and MTA-STS HTTPS server, hostile clients closed while others are
// served, bounded connections, the idle timeout, and the cache (a store failure never weakens an answer).
import assert from 'node:assert/strict'
import net from 'node:net'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createMemoryStore, createNetstringDecoder, encodeNetstring } from '../../src/index.js'
import type { PolicyStore } from '../../src/store/types.js'
import { createResolver, createSocketmapServer, type SocketmapServer, type SocketmapServerOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'

const TLSA = { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 0xab) }
const records: ZoneRecord[] = [
  ['dane.test', 'MX', { preference: 10, exchange: 'mx.dane.test' }],
  ['mx.dane.test', 'A', '127.0.0.1'],
  ['_25._tcp.mx.dane.test', 'TLSA', TLSA],
  ['half.test', 'MX', { preference: 10, exchange: 'mx.dane.test' }],
  ['half.test', 'MX', { preference: 20, exchange: 'mx2.half.test' }],
  ['mx2.half.test', 'A', '127.0.0.1'],
  ['bogus.test', 'MX', { preference: 10, exchange: 'mx.bogus.test' }],
  ['mx.bogus.test', 'A', '127.0.0.1'],
  ['plain.test', 'MX', { preference: 10, exchange: 'mx.plain.test' }],
  ['mx.plain.test', 'A', '127.0.0.1'],
  ['sts.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
  ['mx.sts.test', 'A', '127.0.0.1'],
  ['_mta-sts.sts.test', 'TXT', 'v=STSv1; id=1'],
  ['mta-sts.sts.test', 'A', '127.0.0.1'],
  // bücher.test: an internationalised domain, published (as DNS knows it) under its A-label
  ['xn--bcher-kva.test', 'MX', { preference: 10, exchange: 'mx.xn--bcher-kva.test' }],
  ['mx.xn--bcher-kva.test', 'A', '127.0.0.1'],
  ['_25._tcp.mx.xn--bcher-kva.test', 'TLSA', TLSA],
]
const zone = validatingZone({ records, insecure: ['plain.test', 'mx.plain.test'], bogus: ['_25._tcp.mx.bogus.test TLSA'] })

let dns: TestDnsServer
let https: TestHttpsServer
let ca: Issued
const servers: SocketmapServer[] = []

async function start(extra: Partial<SocketmapServerOptions> = {}): Promise<SocketmapServer> {
  const s = await createSocketmapServer({
    listen: 'inet:127.0.0.1:0',
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, cache: false }),
    families: [4],
    mtaSts: { ca: ca.pem, port: https.port, allowPrivateAddresses: true, timeoutMs: 2000 },
    ...extra,
  })
  servers.push(s)
  return s
}
const portOf = (s: SocketmapServer): number => Number(s.address.split(':').pop())

interface Client {
  sock: net.Socket
  ask(request: string): Promise<string>
  closed: Promise<void>
}
function client(s: SocketmapServer | string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const sock = typeof s === 'string' ? net.connect(s) : net.connect(portOf(s), '127.0.0.1')
    const decoder = createNetstringDecoder({ maxLength: 100000 })
    const waiting: ((r: string) => void)[] = []
    const closed = new Promise<void>((r) => sock.once('close', () => r()))
    sock.on('error', reject)
    sock.on('data', (d) => {
      for (const m of decoder.push(d)) waiting.shift()?.(Buffer.from(m).toString('latin1'))
    })
    sock.once('connect', () =>
      resolve({
        sock,
        closed,
        ask: (request) =>
          new Promise((r, j) => {
            waiting.push(r)
            closed.then(() => j(new Error('closed before a reply')))
            sock.write(encodeNetstring(request))
          }),
      }),
    )
  })
}

before(async () => {
  ca = makeCert({ ca: true, subject: '/CN=Test MTA-STS CA' })
  const leaf = makeCert({ issuer: ca, subject: '/CN=mta-sts.sts.test', dns: ['mta-sts.sts.test'] })
  dns = await startDnsServer(zone)
  https = await startHttpsServer(leaf)
  https.routes.set('mta-sts.sts.test', (_q, res) =>
    res
      .writeHead(200, { 'content-type': 'text/plain' })
      .end('version: STSv1\nmode: enforce\nmx: mx.sts.test\nmx: *.sts.test\nmax_age: 86400\n'),
  )
})
after(async () => {
  for (const s of servers) await s.close()
  await https.close()
  await dns.close()
})

describe('socketmap server: answers over the wire', () => {
  const cases: [string, string | RegExp][] = [
    ['dane+sts dane.test', 'OK dane-only'],
    ['dane+sts half.test', 'OK dane'],
    ['dane+sts bogus.test', /^TEMP /],
    ['dane+sts plain.test', 'NOTFOUND '],
    ['dane+sts sts.test', 'OK secure match=mx.sts.test:.sts.test servername=hostname'],
    ['dane sts.test', 'NOTFOUND '],
    ['sts dane.test', 'NOTFOUND '],
    ['dane+sts [mx.dane.test]', 'OK dane-only'],
    ['dane+sts [127.0.0.1]', 'NOTFOUND '],
    ['dane+sts .dane.test', 'NOTFOUND '],
    // Postfix with smtputf8_enable sends the next hop in UTF-8: answered for its A-label
    ['dane+sts bücher.test', 'OK dane-only'],
    ['dane+sts xn--bcher-kva.test', 'OK dane-only'],
    ['dane+sts [mx.Bücher.test]', 'OK dane-only'],
    ['dane+sts \u212aä.test', 'NOTFOUND '],
    ['nosuchmap dane.test', /^PERM /],
    ['nospace', /^PERM /],
  ]
  for (const [request, want] of cases)
    it(`${request} → ${String(want)}`, async () => {
      const s = await start()
      const c = await client(s)
      const reply = await c.ask(request)
      if (typeof want === 'string') assert.equal(reply, want)
      else assert.match(reply, want)
      c.sock.destroy()
    })
  it('several requests on one connection, pipelined, answered in order', async () => {
    const s = await start()
    const c = await client(s)
    const replies = await Promise.all(['dane+sts dane.test', 'dane+sts plain.test', 'dane+sts bogus.test'].map((r) => c.ask(r)))
    assert.deepEqual(
      replies.map((r) => r.split(' ')[0]),
      ['OK', 'NOTFOUND', 'TEMP'],
    )
    c.sock.destroy()
  })
  it('listens on a unix socket with the given mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'socketmap-'))
    try {
      const s = await start({ listen: `unix:${join(dir, 'sock')}`, mode: 0o600 })
      assert.equal(statSync(join(dir, 'sock')).mode & 0o777, 0o600)
      const c = await client(join(dir, 'sock'))
      assert.equal(await c.ask('dane dane.test'), 'OK dane-only')
      c.sock.destroy()
      await s.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('socketmap server: hostile clients', () => {
  const hostile: [string, string | Buffer][] = [
    ['leading zero', '05:dane x,'],
    ['no comma', '5:dane xZ'],
    ['length past the 10,000-byte limit', '10001:'],
    ['a huge length', '9'.repeat(40)],
    ['non-digits', 'GET / HTTP/1.1\r\n'],
    ['binary', Buffer.from([0xff, 0x00, 0x3a])],
  ]
  for (const [name, bytes] of hostile)
    it(`${name}: that connection is closed, another client is still served`, async () => {
      // No idle timeout in play: only the framing error may close the connection.
      const s = await start({ idleTimeoutMs: 3_600_000 })
      const good = await client(s)
      const bad = await client(s)
      let got = ''
      bad.sock.on('data', (d) => (got += d.toString('latin1')))
      bad.sock.write(bytes)
      let timer: NodeJS.Timeout | undefined
      const closed = await Promise.race([
        bad.closed.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10_000))),
      ])
      clearTimeout(timer)
      assert.equal(closed, true, 'the server did not close the connection')
      assert.equal(got, '', 'no reply to a framing error')
      assert.equal(await good.ask('dane dane.test'), 'OK dane-only')
      const fresh = await client(s)
      assert.equal(await fresh.ask('dane plain.test'), 'NOTFOUND ')
      good.sock.destroy()
      fresh.sock.destroy()
    })
  it('a client resetting mid-request does not disturb the server', async () => {
    const s = await start()
    const c = await client(s)
    c.sock.write('18:dane+sts dane')
    c.sock.resetAndDestroy()
    const d = await client(s)
    assert.equal(await d.ask('dane dane.test'), 'OK dane-only')
    d.sock.destroy()
  })
})

describe('socketmap server: connection limits', () => {
  it('1,000 idle connections: at most maxConnections stay open; once they go, a new client is served', async () => {
    const s = await start({ maxConnections: 50 })
    const socks: net.Socket[] = []
    const settled: Promise<void>[] = []
    for (let i = 0; i < 1000; i++) {
      const sock = net.connect(portOf(s), '127.0.0.1')
      sock.on('error', () => {})
      socks.push(sock)
      settled.push(new Promise((r) => (sock.once('connect', () => r()), sock.once('close', () => r()))))
    }
    await Promise.all(settled)
    // Excess connections are closed by the server as they arrive; wait (a bounded number of rounds) until they are gone.
    const open = () => socks.filter((x) => !x.destroyed && !x.readableEnded).length
    for (let round = 0; round < 300 && (open() > 50 || s.connections > 50); round++) await new Promise((r) => setTimeout(r, 20))
    assert.ok(open() <= 50, `${open()} client sockets still open`)
    assert.ok(s.connections <= 50, `${s.connections} open`)
    for (const x of socks) x.destroy()
    for (let round = 0; round < 300 && s.connections > 0; round++) await new Promise((r) => setTimeout(r, 20))
    assert.equal(s.connections, 0)
    const c = await client(s)
    assert.equal(await c.ask('dane dane.test'), 'OK dane-only')
    c.sock.destroy()
  })
  it('an idle connection is closed after idleTimeoutMs', async () => {
    const s = await start({ idleTimeoutMs: 100 })
    const c = await client(s)
    assert.equal(await c.ask('dane dane.test'), 'OK dane-only')
    await c.closed // closed by the server: the test would time out otherwise
    assert.equal(c.sock.destroyed, true)
  })
})

describe('socketmap server: cache', () => {
  it('a cached answer needs no DNS query', async () => {
    const store = createMemoryStore()
    const s = await start({ store })
    assert.deepEqual(await s.lookup('dane+sts', 'dane.test').then((r) => [r.reply, r.cached]), ['OK dane-only', false])
    const before = dns.queries.length
    assert.deepEqual(await s.lookup('dane+sts', 'dane.test').then((r) => [r.reply, r.cached]), ['OK dane-only', true])
    assert.equal(dns.queries.length, before)
  })
  it('TEMP is never cached', async () => {
    const store = createMemoryStore()
    const s = await start({ store })
    assert.match((await s.lookup('dane+sts', 'bogus.test')).reply, /^TEMP /)
    const r = await s.lookup('dane+sts', 'bogus.test')
    assert.equal(r.cached, false)
    assert.match(r.reply, /^TEMP /)
  })
  it('a failing store gives the same answers (a store failure never weakens one)', async () => {
    const fail = (): never => {
      throw new Error('store down')
    }
    const broken: PolicyStore = { get: fail, set: fail, increment: fail, scan: fail, delete: fail }
    const rejecting: PolicyStore = {
      get: () => Promise.reject(new Error('down')),
      set: () => Promise.reject(new Error('down')),
      increment: () => Promise.reject(new Error('down')),
      scan: () => Promise.reject(new Error('down')),
      delete: () => Promise.reject(new Error('down')),
    }
    for (const store of [broken, rejecting]) {
      const s = await start({ store })
      assert.equal((await s.lookup('dane+sts', 'dane.test')).reply, 'OK dane-only')
      assert.match((await s.lookup('dane+sts', 'bogus.test')).reply, /^TEMP /)
      assert.equal((await s.lookup('dane+sts', 'sts.test')).reply, 'OK secure match=mx.sts.test:.sts.test servername=hostname')
    }
  })
  it('a failed store: "no policy" under an MTA-STS profile is TEMP (the cached policy may exist), DANE and a [host] stand', async () => {
    const rejecting: PolicyStore = {
      get: () => Promise.reject(new Error('down')),
      set: () => Promise.reject(new Error('down')),
      increment: () => Promise.reject(new Error('down')),
      scan: () => Promise.reject(new Error('down')),
      delete: () => Promise.reject(new Error('down')),
    }
    const s = await start({ store: rejecting })
    // RFC 8461 §5: plain.test may have an enforce policy in the unreachable cache; NOTFOUND would be a downgrade.
    assert.match((await s.lookup('dane+sts', 'plain.test')).reply, /^TEMP policy store unavailable/)
    assert.match((await s.lookup('sts', 'plain.test')).reply, /^TEMP policy store unavailable/)
    assert.equal((await s.lookup('dane', 'plain.test')).reply, 'NOTFOUND ', 'no MTA-STS in the profile: nothing cached matters')
    assert.equal((await s.lookup('dane+sts', '[mx.plain.test]')).reply, 'NOTFOUND ', 'MTA-STS never applies to a [host]')
    assert.equal((await s.lookup('dane+sts', 'half.test')).reply, 'OK dane')
  })
  it('a garbage cache entry is a miss', async () => {
    const store = createMemoryStore()
    await store.set('socketmap|dane|bogus.test:25', 'OK none')
    await store.set('socketmap|dane+sts|bogus.test:25', 'garbage')
    const s = await start({ store })
    assert.match((await s.lookup('dane+sts', 'bogus.test')).reply, /^TEMP /)
  })
})

describe('socketmap server: reload', () => {
  it('a changed profile answers by its new rule at once (its cached answers go), others keep theirs, clients stay connected', async () => {
    const store = createMemoryStore()
    const profiles = { x: { dane: true, sts: false }, y: { dane: true, sts: false } }
    const s = await start({ store, profiles })
    const c = await client(s)
    assert.equal(await c.ask('x dane.test'), 'OK dane-only')
    assert.equal(await c.ask('y dane.test'), 'OK dane-only')
    await s.reload({
      resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, cache: false }),
      families: [4],
      profiles: { x: { dane: false, sts: true }, y: { dane: true, sts: false } },
    })
    assert.equal(await c.ask('x dane.test'), 'NOTFOUND ', 'x is MTA-STS only now: dane.test has no policy')
    assert.equal((await s.lookup('y', 'dane.test')).cached, true, 'y did not change: its cached answer stays')
    assert.match(String(store.get('socketmap|y|dane.test:25')), /^[0-9]+ [0-9]+ OK dane-only$/, 'stored as <refreshAt> <expiresAt> <reply>')
    await s.reload({ profiles: { y: { dane: true, sts: false } } })
    assert.match(await c.ask('x dane.test'), /^PERM unknown map name x/)
    assert.equal(s.connections, 1)
  })
  it('bad options change nothing and throw ERR_INVALID_ARGUMENT; fixed options are refused', async () => {
    const s = await start({ profiles: { x: { dane: true, sts: false } } })
    for (const bad of [
      null,
      'x',
      { profiles: { x: { dane: 'yes', sts: false } } },
      { listen: 'inet:127.0.0.1:0' },
      { store: createMemoryStore() },
      { cache: { max: -1 } },
    ])
      await assert.rejects(s.reload(bad as never), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT')
    assert.equal((await s.lookup('x', 'dane.test')).reply, 'OK dane-only')
  })
})
