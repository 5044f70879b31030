// The connection driver end to end: the in-process DNS server playing a validating resolver,
// smtp-server peers with STARTTLS on 127.0.0.1, and the verdicts of the policy engine.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { certificateFingerprint, createTlsaRecord, parsePolicyTable, SmtpTlsError } from '../../src/index.js'
import { connect, createResolver, probe, SmtpTlsConnectError, type ConnectOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type ZoneRecord, type ZoneSpec } from '../helpers/dns-server.js'
import { makeCert } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=mx1.conn.test', dns: ['mx1.conn.test'] })
const other = makeCert({ key: 'ec256', subject: '/CN=other.conn.test', dns: ['other.conn.test'] })
const tlsaOf = (c: typeof cert, usage = 3, selector = 1, matchingType = 1) => {
  const r = createTlsaRecord(c.der, { usage, selector, matchingType })
  return { usage: r.usage, selector: r.selector, matchingType: r.matchingType, certificate: Buffer.from(r.data) }
}

const servers: TestSmtpServer[] = []
after(async () => {
  for (const s of servers) await s.close()
})
const tlsServer = async (starttls = true, c = cert) => {
  const s = await startSmtpServer({ certPem: c.pem, keyPem: c.keyPem, starttls })
  servers.push(s)
  return s
}

async function withDns<T>(spec: ZoneSpec, fn: (o: ConnectOptions) => Promise<T>): Promise<T> {
  const dns = await startDnsServer(validatingZone(spec))
  try {
    return await fn({
      resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
      ehloName: 'client.test',
      timeoutMs: 5000,
    })
  } finally {
    await dns.close()
  }
}

/** a domain with one MX at 127.0.0.1 and, when given, TLSA records at _PORT._tcp */
function oneMx(port: number, tlsa: unknown[] = [], host = 'mx1.conn.test'): ZoneRecord[] {
  return [
    ['conn.test', 'MX', { preference: 10, exchange: host }],
    [host, 'A', '127.0.0.1'],
    ...tlsa.map((t): ZoneRecord => [`_${port}._tcp.${host}`, 'TLSA', t]),
  ]
}

describe('connect(): DANE', () => {
  it('DANE-EE match: verified, and the socket is ready for MAIL FROM', async () => {
    const s = await tlsServer()
    await withDns({ records: oneMx(s.port, [tlsaOf(cert)]) }, async (o) => {
      const c = await connect('conn.test', { ...o, port: s.port, level: 'dane' })
      try {
        assert.equal(c.outcome.status, 'verified')
        assert.equal(c.outcome.level, 'dane')
        assert.equal(c.mx, 'mx1.conn.test')
        assert.match(c.outcome.matched ?? '', /3 1 1/)
        assert.ok('encrypted' in c.socket && c.socket.encrypted)
        const reply = await new Promise<string>((resolve) => {
          c.socket.once('data', (b: Buffer) => resolve(b.toString()))
          c.socket.write('MAIL FROM:<a@client.test>\r\n')
        })
        assert.match(reply, /^250 /)
      } finally {
        c.socket.destroy()
      }
    })
  })
  it('DANE-EE mismatch: deferred 4.7.5 (RFC 7672 §3.2), never delivered, QUIT sent', async () => {
    const s = await tlsServer()
    await withDns({ records: oneMx(s.port, [tlsaOf(other)]) }, async (o) => {
      const e = await connect('conn.test', { ...o, port: s.port, level: 'dane' }).then(
        () => assert.fail('connected'),
        (err: unknown) => err,
      )
      assert.ok(e instanceof SmtpTlsConnectError)
      assert.equal(e.temporary, true)
      assert.equal(e.enhancedStatus, '4.7.5')
      assert.equal(e.attempts.length, 1)
      assert.equal(e.attempts[0]!.verdict?.status, 'deferred')
      assert.equal(e.attempts[0]!.transcript.at(-1), '> QUIT')
    })
  })
  it('TLSA present but STARTTLS not offered: deferred 4.7.4 (RFC 7672 §2.2.3 never plaintext)', async () => {
    const s = await tlsServer(false)
    await withDns({ records: oneMx(s.port, [tlsaOf(cert)]) }, async (o) => {
      const r = await probe('conn.test', { ...o, port: s.port, level: 'dane' })
      assert.equal(r.outcome.status, 'deferred')
      assert.equal(r.outcome.enhancedStatus, '4.7.4')
      assert.equal(r.outcome.tlsrptResult, 'starttls-not-supported')
    })
  })
  it('no TLSA records (secure denial): dane degrades to may and reports untrusted', async () => {
    const s = await tlsServer()
    await withDns({ records: oneMx(s.port) }, async (o) => {
      const r = await probe('conn.test', { ...o, port: s.port, level: 'dane' })
      assert.equal(r.outcome.status, 'untrusted')
      assert.equal(r.effectiveLevel, 'may')
      assert.ok(r.outcome.protocol?.startsWith('TLSv1.'))
    })
  })
  it('insecure MX with secure TLSA: half-dane, authenticated but reported trusted, never verified (RFC 7672 §2.2.1)', async () => {
    const s = await tlsServer()
    await withDns({ records: oneMx(s.port, [tlsaOf(cert)]), insecure: ['conn.test'] }, async (o) => {
      const r = await probe('conn.test', { ...o, port: s.port, level: 'dane' })
      assert.equal(r.effectiveLevel, 'half-dane')
      assert.equal(r.outcome.status, 'trusted')
    })
  })
  it('bogus TLSA: deferred without connecting (RFC 7672 §2.1.2)', async () => {
    const s = await tlsServer()
    await withDns({ records: oneMx(s.port, [tlsaOf(cert)]), bogus: [`_${s.port}._tcp.mx1.conn.test TLSA`] }, async (o) => {
      const r = await probe('conn.test', { ...o, port: s.port, level: 'dane' })
      assert.equal(r.outcome.status, 'deferred')
      assert.equal(r.outcome.enhancedStatus, '4.7.5')
      assert.deepEqual(r.attempts[0]!.transcript, [])
    })
  })
  it('the first MX fails DANE, the second passes: verified through the second (RFC 7672 §2.2.1 order kept)', async () => {
    const s = await tlsServer()
    const records: ZoneRecord[] = [
      ['conn.test', 'MX', { preference: 10, exchange: 'mx1.conn.test' }],
      ['conn.test', 'MX', { preference: 20, exchange: 'mx2.conn.test' }],
      ['mx1.conn.test', 'A', '127.0.0.1'],
      ['mx2.conn.test', 'A', '127.0.0.1'],
      [`_${s.port}._tcp.mx1.conn.test`, 'TLSA', tlsaOf(other)],
      [`_${s.port}._tcp.mx2.conn.test`, 'TLSA', tlsaOf(cert)],
    ]
    await withDns({ records }, async (o) => {
      const r = await probe('conn.test', { ...o, port: s.port, level: 'dane-only' })
      assert.equal(r.outcome.status, 'verified')
      assert.equal(r.outcome.host, 'mx2.conn.test')
      assert.deepEqual(
        r.attempts.map((a) => [a.host, a.verdict?.status]),
        [
          ['mx1.conn.test', 'deferred'],
          ['mx2.conn.test', 'verified'],
        ],
      )
    })
  })
})

describe('connect(): other levels', () => {
  it('may with STARTTLS stripped: plaintext (RFC 7435 opportunistic)', async () => {
    const s = await tlsServer(false)
    await withDns({ records: oneMx(s.port) }, async (o) => {
      const r = await probe('conn.test', { ...o, port: s.port, level: 'may' })
      assert.equal(r.outcome.status, 'plaintext')
    })
  })
  it('encrypt with STARTTLS stripped: deferred 4.7.4', async () => {
    const s = await tlsServer(false)
    await withDns({ records: oneMx(s.port) }, async (o) => {
      const r = await probe('conn.test', { ...o, port: s.port, level: 'encrypt' })
      assert.equal(r.outcome.enhancedStatus, '4.7.4')
    })
  })
  it('fingerprint from a policy table: verified; a wrong pin defers', async () => {
    const s = await tlsServer()
    await withDns({ records: oneMx(s.port) }, async (o) => {
      const good = parsePolicyTable(`conn.test fingerprint match=${certificateFingerprint(cert.der)}`)
      const r = await probe('conn.test', { ...o, port: s.port, policyTable: good })
      assert.equal(r.outcome.status, 'verified')
      const bad = parsePolicyTable(`conn.test fingerprint match=${certificateFingerprint(other.der)}`)
      const r2 = await probe('conn.test', { ...o, port: s.port, policyTable: bad })
      assert.equal(r2.outcome.status, 'deferred')
      assert.equal(r2.outcome.enhancedStatus, '4.7.5')
    })
  })
  it('secure with a private CA given as ca: verified; without it: deferred', async () => {
    const root = makeCert({ key: 'rsa2048', subject: '/CN=Conn Root', ca: true })
    const leaf = makeCert({ key: 'ec256', subject: '/CN=mx1.conn.test', dns: ['mx1.conn.test'], issuer: root })
    const s = await tlsServer(true, leaf)
    await withDns({ records: oneMx(s.port) }, async (o) => {
      // Postfix secure: match=nexthop:dot-nexthop by default; mx1.conn.test matches .conn.test
      const ok = await probe('conn.test', { ...o, port: s.port, level: 'secure', ca: root.pem })
      assert.equal(ok.outcome.status, 'verified', JSON.stringify(ok.outcome))
      const no = await probe('conn.test', { ...o, port: s.port, level: 'secure' })
      assert.equal(no.outcome.status, 'deferred')
      assert.equal(no.outcome.tlsrptResult, 'certificate-not-trusted')
    })
  })
  it('a null MX is a permanent failure (RFC 7505), with no connection', async () => {
    await withDns({ records: [['conn.test', 'MX', { preference: 0, exchange: '.' }]] }, async (o) => {
      const r = await probe('conn.test', { ...o, level: 'dane' })
      assert.equal(r.outcome.status, 'deferred')
      assert.equal(r.outcome.permanent, true)
      assert.equal(r.outcome.enhancedStatus, '5.1.10')
    })
  })
  it('a refused TCP connection is a temporary failure with ERR_CONNECT', async () => {
    const s = await tlsServer()
    const port = s.port
    await s.close()
    servers.splice(servers.indexOf(s), 1)
    await withDns({ records: oneMx(port) }, async (o) => {
      const r = await probe('conn.test', { ...o, port, level: 'may' })
      assert.equal(r.outcome.code, 'ERR_CONNECT')
      assert.equal(r.outcome.permanent, undefined)
    })
  })
  it('bad options are coded errors', async () => {
    await assert.rejects(connect('conn.test', { level: 'paranoid' as never }), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(connect('conn.test:99999'), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(connect('conn.test', { timeoutMs: -1 }), { code: 'ERR_INVALID_ARGUMENT' })
  })
})

describe('connect: the ca option is checked, never silently narrowed (issue 14)', () => {
  for (const [name, ca] of [
    ['a block that is not base64', '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n'],
    ['no PEM block at all', 'just text'],
    [
      'a good certificate and a broken one',
      [makeCert({ key: 'ec256', subject: '/CN=ok' }).pem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
    ],
  ] as const) {
    it(`${name}: ERR_INVALID_ARGUMENT before any I/O`, async () => {
      await assert.rejects(connect('[127.0.0.1]:1', { ca: ca as string | string[], level: 'secure' }), (e) => {
        assert.ok(e instanceof SmtpTlsError, String(e))
        assert.equal(e.code, 'ERR_INVALID_ARGUMENT')
        return true
      })
    })
  }
})
