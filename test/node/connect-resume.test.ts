// TLS session resumption (Postfix smtp_tls_session_cache_database, RFC 8446 §2.2): a session is
// stored only after a connection passed the policy, is resumed only under the same policy key, and a
// resumed session's certificate is judged again by the policy engine.
import assert from 'node:assert/strict'
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { after, describe, it } from 'node:test'
import { certificateFingerprint, createTlsaRecord, parsePolicyTable } from '../../src/index.js'
import {
  connect,
  createResolver,
  createTlsSessionCache,
  probe,
  SmtpTlsConnectError,
  type ConnectOptions,
  type SmtpConnection,
  type TlsSessionCache,
} from '../../src/node/index.js'
import { sessionFields } from '../../src/node/tls-session-cache.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { expiredLeaf } from '../helpers/https-server.js'
import { startDnsServer, validatingZone, type ZoneRecord } from '../helpers/dns-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const HOST = 'mx.resume.test'
const ca = makeCert({ key: 'ec256', subject: '/CN=Resume CA', ca: true })
const leaf = makeCert({ key: 'ec256', subject: `/CN=${HOST}`, dns: [HOST], issuer: ca, days: 30 })
const other = makeCert({ key: 'ec256', subject: '/CN=other.resume.test', dns: ['other.resume.test'] })
const tlsa = (c: Issued, usage: number, selector = 1) => {
  const r = createTlsaRecord(c.der, { usage, selector, matchingType: 1 })
  return { usage, selector, matchingType: 1, certificate: Buffer.from(r.data) }
}

const closers: Array<() => Promise<void>> = []
after(async () => {
  for (const c of closers) await c()
})

/** one smtp-server sending leaf + CA; many zones may point at it */
async function server(): Promise<TestSmtpServer> {
  const s = await startSmtpServer({ certPem: leaf.pem + ca.pem, keyPem: leaf.keyPem })
  closers.push(() => s.close())
  return s
}

/** connect() options whose resolver serves `resume.test MX mx.resume.test` and the given TLSA records */
async function options(port: number, records: unknown[], extra: ConnectOptions = {}): Promise<ConnectOptions> {
  const zone: ZoneRecord[] = [
    ['resume.test', 'MX', { preference: 10, exchange: HOST }],
    [HOST, 'A', '127.0.0.1'],
    ...records.map((t): ZoneRecord => [`_${port}._tcp.${HOST}`, 'TLSA', t]),
  ]
  const dns = await startDnsServer(validatingZone({ records: zone }))
  closers.push(() => dns.close())
  return {
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
    port,
    ehloName: 'client.test',
    timeoutMs: 5000,
    ...extra,
  }
}

const resumedStep = (c: { trace: readonly { rule: string }[] }) => c.trace.some((t) => /TLS session resumed/.test(t.rule))

/** connect, check the verdict, say goodbye; resolves to the connection (socket closed) */
async function once(dest: string, o: ConnectOptions): Promise<SmtpConnection> {
  const c = await connect(dest, o)
  c.socket.destroy()
  return c
}

/** connect until a session is in the cache (a TLS 1.3 ticket arrives after the handshake) */
async function prime(dest: string, o: ConnectOptions, cache: TlsSessionCache): Promise<SmtpConnection> {
  const c = await once(dest, o)
  assert.equal(resumedStep(c), false, 'the first connection is a full handshake')
  for (let i = 0; i < 50 && cache.size === 0; i++) await new Promise((r) => setTimeout(r, 10))
  assert.equal(cache.size, 1, 'a verified connection leaves its session in the cache')
  return c
}

describe('TLS session resumption (RFC 8446 §2.2, Postfix smtp_tls_session_cache_database)', () => {
  it('the second connection resumes, is still verified by TLSA, and the trace says so', async () => {
    const s = await server()
    const cache = createTlsSessionCache()
    const o = await options(s.port, [tlsa(leaf, 3)], { level: 'dane', tlsSessionCache: cache })
    await prime('resume.test', o, cache)
    const c = await once('resume.test', o)
    assert.equal(c.outcome.status, 'verified')
    assert.match(c.outcome.matched ?? '', /^TLSA 3 1 1/)
    assert.ok(resumedStep(c), 'the trace says "resumed"')
    assert.equal(cache.stats().resumed, 1)
    const r = await probe('resume.test', o)
    assert.equal(r.outcome.status, 'verified')
    assert.ok(resumedStep(r))
  })

  it('TLS 1.2 resumes too: its session arrives within the handshake and is stored only after the verdict', async () => {
    const s = await server()
    const cache = createTlsSessionCache()
    const o = await options(s.port, [tlsa(leaf, 3)], {
      level: 'dane',
      tlsSessionCache: cache,
      policyTable: parsePolicyTable('resume.test dane protocols=!TLSv1.3\n'),
    })
    const first = await prime('resume.test', o, cache)
    assert.equal(first.outcome.protocol, 'TLSv1.2')
    const c = await once('resume.test', o)
    assert.equal(c.outcome.status, 'verified')
    assert.equal(c.outcome.protocol, 'TLSv1.2')
    assert.ok(resumedStep(c))
  })

  it('no cache, no resumption: the option is opt-in', async () => {
    const s = await server()
    const o = await options(s.port, [tlsa(leaf, 3)], { level: 'dane' })
    for (let i = 0; i < 2; i++) assert.equal(resumedStep(await once('resume.test', o)), false)
  })

  it('a changed TLSA RRset, pin list, level or SNI does not resume (each is part of the key)', async () => {
    const s = await server()
    const cache = createTlsSessionCache()
    const fp = certificateFingerprint(leaf.der, { digest: 'sha256' })
    const fpOther = certificateFingerprint(other.der, { digest: 'sha256' })
    const base = await options(s.port, [tlsa(leaf, 3)], { level: 'dane', tlsSessionCache: cache })
    await prime('resume.test', base, cache)
    const variants: Array<[string, ConnectOptions]> = [
      // still matching, but another RRset: RFC 7672 §3 judges the RRset as published
      ['TLSA RRset', await options(s.port, [tlsa(leaf, 3), tlsa(other, 3)], { level: 'dane', tlsSessionCache: cache })],
      ['level', { ...base, level: 'encrypt' }],
      ['pins', { ...base, policyTable: parsePolicyTable(`resume.test fingerprint match=${fp}\n`) }],
      ['pins', { ...base, policyTable: parsePolicyTable(`resume.test fingerprint match=${fp}|${fpOther}\n`) }],
      ['SNI', { ...base, policyTable: parsePolicyTable('resume.test encrypt servername=a.resume.test\n') }],
      ['SNI', { ...base, policyTable: parsePolicyTable('resume.test encrypt servername=b.resume.test\n') }],
    ]
    for (const [what, o] of variants) {
      const c = await once('resume.test', o)
      assert.notEqual(c.outcome.status, 'deferred', what)
      assert.equal(resumedStep(c), false, `${what} changed: a full handshake`)
    }
    assert.equal(cache.stats().resumed, 0)
    // each variant stored its own session; the original policy still resumes its own
    const c = await once('resume.test', base)
    assert.ok(resumedStep(c), 'the original key still resumes')
  })

  it('sessions are stored without the server certificate (OpenSSL would decode it at every offer), and still resume', async () => {
    const s = await server()
    const cache = createTlsSessionCache()
    const o = await options(s.port, [tlsa(leaf, 3)], { level: 'dane', tlsSessionCache: cache })
    await prime('resume.test', o, cache)
    const c = await connect('resume.test', o)
    const stored = (c.socket as TLSSocket).getSession()
    c.socket.destroy()
    assert.ok(resumedStep(c))
    assert.ok(stored)
    const f = sessionFields(stored)
    assert.equal(f.peer, undefined, 'the resumed session carries no certificate')
  })

  it('the same TLSA RRset in another answer order resumes (an RRset has no order, RFC 2181 §5)', async () => {
    const s = await server()
    const cache = createTlsSessionCache()
    const one = await options(s.port, [tlsa(leaf, 3), tlsa(other, 3)], { level: 'dane', tlsSessionCache: cache })
    const two = await options(s.port, [tlsa(other, 3), tlsa(leaf, 3)], { level: 'dane', tlsSessionCache: cache })
    await prime('resume.test', one, cache)
    assert.ok(resumedStep(await once('resume.test', two)))
  })

  it('a connection that fails the policy stores no session', async () => {
    const s = await server()
    const cache = createTlsSessionCache()
    const o = await options(s.port, [tlsa(other, 3)], { level: 'dane', tlsSessionCache: cache })
    for (let i = 0; i < 2; i++) {
      const e = await connect('resume.test', o).then(
        () => assert.fail('connected'),
        (err: unknown) => err,
      )
      assert.ok(e instanceof SmtpTlsConnectError)
      assert.equal(e.enhancedStatus, '4.7.5')
    }
    // the refused server's tickets had time to arrive
    await new Promise((r) => setTimeout(r, 100))
    assert.equal(cache.size, 0)
    assert.equal(cache.stats().stores, 0)
  })

  it('a resumed session is judged again: DANE-TA at a time after the leaf expired defers, and the session is dropped', async () => {
    const s = await server()
    const cache = createTlsSessionCache()
    const o = await options(s.port, [tlsa(ca, 2, 0)], { level: 'dane', tlsSessionCache: cache })
    const first = await prime('resume.test', o, cache)
    assert.equal(first.outcome.status, 'verified')
    assert.match(first.outcome.matched ?? '', /^TLSA 2 0 1/)
    const later = { ...o, now: () => new Date(Date.now() + 400 * 86_400_000) }
    const e = await connect('resume.test', later).then(
      () => assert.fail('a resumed session passed a check its certificate fails'),
      (err: unknown) => err,
    )
    assert.ok(e instanceof SmtpTlsConnectError)
    assert.equal(e.code, 'ERR_DANE_EXPIRED')
    const v = e.attempts[0]?.verdict
    assert.ok(v && resumedStep(v), 'the refused connection was the resumed one')
    assert.equal(cache.stats().resumed, 1)
    assert.equal(cache.size, 0, 'a session the policy refused is forgotten')
  })

  it('the cache is bounded: the least recently used session goes first', async () => {
    const servers = [await server(), await server(), await server()]
    const cache = createTlsSessionCache({ max: 2 })
    const base = await options(0, [], { level: 'encrypt', tlsSessionCache: cache })
    const dest = (s: TestSmtpServer) => `[127.0.0.1]:${s.port}`
    for (const s of servers) {
      await once(dest(s), base)
      for (let i = 0; i < 50 && cache.stats().stores < 1; i++) await new Promise((r) => setTimeout(r, 10))
      await new Promise((r) => setTimeout(r, 30))
      assert.ok(cache.size <= 2)
    }
    assert.equal(cache.size, 2)
    assert.equal(resumedStep(await once(dest(servers[0]!), base)), false, 'the oldest was evicted')
    assert.ok(resumedStep(await once(dest(servers[2]!), base)), 'the newest is kept')
  })

  it('a session expires ttlSeconds after the full handshake that verified it', async () => {
    const s = await server()
    let now = 1_000_000
    const cache = createTlsSessionCache({ ttlSeconds: 60, clock: () => now })
    const o = await options(s.port, [tlsa(leaf, 3)], { level: 'dane', tlsSessionCache: cache })
    await prime('resume.test', o, cache)
    now += 59_000
    assert.ok(resumedStep(await once('resume.test', o)), 'within the ttl')
    now += 2_000
    assert.equal(resumedStep(await once('resume.test', o)), false, 'past the ttl: a full handshake')
  })

  it("a session is never offered past a certificate's notAfter: an expired DANE-EE leaf verifies (RFC 7672 §3.1.1) but is not stored", async () => {
    const old = await expiredLeaf(ca, [HOST])
    const s = await startSmtpServer({ certPem: old.pem, keyPem: old.keyPem })
    closers.push(() => s.close())
    const cache = createTlsSessionCache()
    const o = await options(s.port, [tlsa(old, 3)], { level: 'dane', tlsSessionCache: cache })
    for (let i = 0; i < 2; i++) {
      const c = await once('resume.test', o)
      assert.equal(c.outcome.status, 'verified')
      assert.equal(resumedStep(c), false)
    }
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(cache.size, 0)
  })

  it('createTlsSessionCache refuses bad options with coded errors', () => {
    throwsCoded(() => createTlsSessionCache({ max: 0 }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => createTlsSessionCache({ ttlSeconds: 604_801 }), 'ERR_INVALID_ARGUMENT', /7 days/)
    throwsCoded(() => createTlsSessionCache({ ttlSeconds: 1.5 }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => createTlsSessionCache(null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => createTlsSessionCache({ clock: 5 as never }), 'ERR_INVALID_ARGUMENT')
  })

  it('connect() refuses a tlsSessionCache that createTlsSessionCache did not make', async () => {
    await assert.rejects(connect('[127.0.0.1]:1', { tlsSessionCache: { size: 0 } as never }), { code: 'ERR_INVALID_ARGUMENT' })
  })

  it("sessionFields reads the server's certificate and the ticket lifetime hint from OpenSSL's session", async () => {
    const srv = createTlsServer({ cert: leaf.pem, key: leaf.keyPem, sessionTimeout: 1234 }, (sock) => {
      sock.on('error', () => undefined)
      sock.end('x')
    })
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    const port = (srv.address() as { port: number }).port
    const session = await new Promise<Buffer>((resolve, reject) => {
      const t: TLSSocket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      t.on('error', reject)
      t.once('session', resolve)
      t.on('data', () => undefined)
    })
    srv.close()
    const f = sessionFields(session)
    assert.deepEqual(Buffer.from(f.peer ?? []), Buffer.from(leaf.der))
    assert.equal(f.lifetimeHint, 1234)
    assert.ok(f.peerAt && f.peerAt[1] > f.peerAt[0], 'the [3] field is located')
    assert.deepEqual(sessionFields(new Uint8Array([0x30, 0x03, 0x02, 0x01])), {})
    assert.deepEqual(sessionFields(new Uint8Array(0)), {})
  })
})
