// The DNSSEC-aware stub resolver against the in-process DNS server (test/helpers/dns-server.ts):
// query format, AD handling and trust, RCODEs, TC then TCP, timeouts, failover, abort, anti-spoofing,
// CNAME chains, cache and in-flight de-duplication. Hostile bytes are in resolver-wire.test.ts.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  connect,
  createResolver,
  discoverDestination,
  type DnsAnswer,
  extendedErrorName,
  formatExtendedError,
  type Resolver,
  SmtpTlsError,
} from '../../src/node/index.js'
import { type DnsHandler, type DnsReply, encodeReply, soa, startDnsServer, type TestDnsServer, zoneHandler } from '../helpers/dns-server.js'

const A = (name: string, address: string, ttl = 300) => ({ name, type: 'A', ttl, data: address })
const CNAME = (name: string, to: string, ttl = 300) => ({ name, type: 'CNAME', ttl, data: to })
const tlsaData = { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 0xab) }

async function withServer<T>(handler: DnsHandler, fn: (s: TestDnsServer) => Promise<T>): Promise<T> {
  const s = await startDnsServer(handler)
  try {
    return await fn(s)
  } finally {
    await s.close()
  }
}

function resolverFor(s: TestDnsServer | TestDnsServer[], extra: Parameters<typeof createResolver>[0] = {}): Resolver {
  const servers = (Array.isArray(s) ? s : [s]).map((x) => x.server)
  return createResolver({ servers, timeoutMs: 300, attempts: 1, ...extra })
}

async function rejectsCoded(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof SmtpTlsError && e.code === code)
}

describe('resolver: queries on the wire', () => {
  let s: TestDnsServer
  before(async () => {
    s = await startDnsServer(zoneHandler({ 'a.test A': { ad: true, answers: [A('a.test', '127.0.0.2')] } }, { rcode: 'NOERROR', ad: true }))
  })
  after(() => s.close())

  it('sets RD, AD (RFC 6840 §5.7), EDNS0 with a 1232-octet payload and DO (RFC 3225), never CD', async () => {
    await resolverFor(s, { cache: false }).lookup('a.test', 'A')
    const q = s.queries.at(-1)!
    assert.deepEqual([q.rd, q.ad, q.cd, q.dnssecOk, q.udpPayloadSize, q.type, q.name], [true, true, false, true, 1232, 'A', 'a.test'])
  })
  it('uses a random ID and a fresh source port per query (RFC 5452 §9.2)', async () => {
    const r = resolverFor(s, { cache: false })
    const before = s.queries.length
    for (let i = 0; i < 8; i++) await r.lookup('a.test', 'A')
    const qs = s.queries.slice(before)
    assert.ok(new Set(qs.map((q) => q.id)).size >= 7, 'IDs repeat')
    assert.ok(new Set(qs.map((q) => q.clientPort)).size >= 7, 'source ports repeat')
  })
  it('normalises names: case and a trailing dot', async () => {
    const a = await resolverFor(s).lookup('A.TEST.', 'A')
    assert.equal(a.name, 'a.test')
    assert.deepEqual(a.records, ['127.0.0.2'])
  })
  const badNames: Array<[string, unknown]> = [
    ['empty', ''],
    ['empty label', 'a..test'],
    ['label over 63 octets', `${'x'.repeat(64)}.test`],
    ['name over 253 octets', `${'abcdefghi.'.repeat(26)}test`],
    ['space', 'a b.test'],
    ['non-ASCII (IDNA is the caller’s job)', 'bücher.test'],
    ['not a string', 42],
  ]
  for (const [why, name] of badNames) {
    it(`rejects an invalid name: ${why}`, () => rejectsCoded(resolverFor(s).lookup(name as string, 'A'), 'ERR_INVALID_ARGUMENT'))
  }
  it('rejects an unsupported type', () => rejectsCoded(resolverFor(s).lookup('a.test', 'NS' as never), 'ERR_INVALID_ARGUMENT'))
})

describe('resolver: DNSSEC status (RFC 4035 §3.2.3, RFC 7672 §2.1.1)', () => {
  const negative = (rcode: 'NXDOMAIN' | 'NOERROR', ad: boolean): DnsReply => ({ rcode, ad, authorities: [soa('test', 30)] })
  const table: Record<string, DnsReply> = {
    'secure.test A': { ad: true, answers: [A('secure.test', '127.0.0.3')] },
    'insecure.test A': { ad: false, answers: [A('insecure.test', '127.0.0.4')] },
    'mx.test MX': { ad: true, answers: [{ name: 'mx.test', type: 'MX', data: { preference: 10, exchange: 'MX1.Mx.Test' } }] },
    'v6.test AAAA': { ad: true, answers: [{ name: 'v6.test', type: 'AAAA', data: '::1' }] },
    'txt.test TXT': { ad: true, answers: [{ name: 'txt.test', type: 'TXT', data: ['v=STSv1; ', 'id=1'] }] },
    '_25._tcp.mx.test TLSA': { ad: true, answers: [{ name: '_25._tcp.mx.test', type: 'TLSA', data: tlsaData }] },
    'alias.test CNAME': { ad: true, answers: [CNAME('alias.test', 'secure.test')] },
    'gone.test A': negative('NXDOMAIN', true),
    'gone-insecure.test A': negative('NXDOMAIN', false),
    'nodata.test A': negative('NOERROR', true),
    'nodata-insecure.test A': negative('NOERROR', false),
    'bogus.test A': { rcode: 'SERVFAIL' },
    'expired.test A': { rcode: 'SERVFAIL', ede: [{ code: 7, text: 'signature expired' }] },
    'refused.test A': { rcode: 'REFUSED' },
    'formerr.test A': { rcode: 'FORMERR' },
  }
  let s: TestDnsServer
  before(async () => {
    s = await startDnsServer(zoneHandler(table))
  })
  after(() => s.close())

  const rows: Array<[string, string, 'A' | 'AAAA' | 'MX' | 'TXT' | 'TLSA' | 'CNAME', Partial<DnsAnswer>, string?]> = [
    ['AD from a loopback resolver: secure', 'secure.test', 'A', { status: 'secure', secure: true, records: ['127.0.0.3'] }],
    ['no AD: insecure, and the caller is told why', 'insecure.test', 'A', { status: 'insecure', secure: false }, 'did not set AD'],
    ['MX decoded, exchange lower-cased', 'mx.test', 'MX', { status: 'secure', records: [{ preference: 10, exchange: 'mx1.mx.test' }] }],
    ['AAAA', 'v6.test', 'AAAA', { status: 'secure', records: ['::1'] }],
    ['TXT strings concatenated (RFC 8461 §3.1)', 'txt.test', 'TXT', { records: ['v=STSv1; id=1'] }],
    ['CNAME asked for is returned, not followed', 'alias.test', 'CNAME', { status: 'secure', records: ['secure.test'], cnames: [] }],
    ['secure NXDOMAIN is an answer, not an error (RFC 7672 §2.1.1)', 'gone.test', 'A', { status: 'nxdomain', secure: true }],
    ['insecure NXDOMAIN', 'gone-insecure.test', 'A', { status: 'nxdomain', secure: false }],
    ['secure NODATA', 'nodata.test', 'A', { status: 'nodata', secure: true }],
    ['insecure NODATA', 'nodata-insecure.test', 'A', { status: 'nodata', secure: false }],
    ['SERVFAIL from a validating resolver is bogus', 'bogus.test', 'A', { status: 'bogus', secure: false, rcode: 'SERVFAIL' }],
    ['REFUSED is a lookup failure', 'refused.test', 'A', { status: 'error', secure: false }],
    ['FORMERR is a lookup failure', 'formerr.test', 'A', { status: 'error' }],
  ]
  for (const [why, name, type, want, reason] of rows) {
    it(why, async () => {
      const a = await resolverFor(s).lookup(name, type)
      for (const [k, v] of Object.entries(want)) assert.deepEqual(a[k as keyof DnsAnswer], v, `${k} of ${JSON.stringify(a)}`)
      if (reason) assert.match(a.insecureReason ?? '', new RegExp(reason))
      if (a.status === 'secure') assert.equal(a.insecureReason, undefined)
    })
  }
  it('TLSA RDATA becomes a TlsaRecord', async () => {
    const a = await resolverFor(s).lookup('_25._tcp.mx.test', 'TLSA')
    assert.equal(a.status, 'secure')
    const r = a.records[0]!
    assert.deepEqual([r.usage, r.selector, r.matchingType, Buffer.from(r.data).toString('hex')], [3, 1, 1, 'ab'.repeat(32)])
  })
  it('SERVFAIL without a DNSSEC EDE is ERR_DNS_SERVFAIL', async () => {
    const a = await resolverFor(s).lookup('bogus.test', 'A')
    assert.equal(a.error?.code, 'ERR_DNS_SERVFAIL')
    assert.equal(a.error?.temporary, true)
  })
  it('SERVFAIL with RFC 8914 EDE 7 (signature expired) is ERR_DNS_BOGUS and keeps the EDE', async () => {
    const a = await resolverFor(s).lookup('expired.test', 'A')
    assert.equal(a.status, 'bogus')
    assert.equal(a.error?.code, 'ERR_DNS_BOGUS')
    assert.deepEqual(a.extendedErrors, [{ code: 7, text: 'signature expired' }])
  })
  it('the EDE in the message: the registry name leads, the extra text follows quoted (RFC 8914 §2)', async () => {
    const a = await resolverFor(s).lookup('expired.test', 'A')
    assert.match(a.error?.message ?? '', /\(EDE 7 \(Signature Expired\): "signature expired"\)$/)
    const tag = await withServer(
      zoneHandler({ 'tag.test A': { rcode: 'SERVFAIL', ede: [{ code: 7, text: '6GJV' }, { code: 22 }] } }),
      (t) => resolverFor(t).lookup('tag.test', 'A'),
    )
    assert.match(tag.error?.message ?? '', /\(EDE 7 \(Signature Expired\): "6GJV", EDE 22 \(No Reachable Authority\)\)$/)
  })
  it('REFUSED carries ERR_DNS_REFUSED', async () => {
    assert.equal((await resolverFor(s).lookup('refused.test', 'A')).error?.code, 'ERR_DNS_REFUSED')
  })
  it('negative answers take their TTL from the SOA (RFC 2308 §5) within the negative ceiling', async () => {
    const a = await resolverFor(s, { cache: { negativeMaxTtl: 3600 } }).lookup('gone.test', 'A')
    assert.equal(a.ttl, 30)
  })
  it('AD is ignored from a resolver not marked trusted (RFC 4035 §4.9.3)', async () => {
    const a = await resolverFor(s, { trustAd: false }).lookup('secure.test', 'A')
    assert.equal(a.status, 'insecure')
    assert.match(a.insecureReason ?? '', /not a trusted resolver/)
  })
  it('trustAd can be a predicate on the server', async () => {
    const seen: string[] = []
    const r = resolverFor(s, { trustAd: (srv) => (seen.push(`${srv.address}:${srv.port}`), false) })
    assert.equal((await r.lookup('secure.test', 'A')).status, 'insecure')
    assert.deepEqual(seen, [s.server])
    assert.deepEqual((await r.config()).trusted, { [s.server]: false })
  })
  it('loopback servers are trusted by default', async () => {
    assert.deepEqual((await resolverFor(s).config()).trusted, { [s.server]: true })
  })
})

describe('resolver: transport', () => {
  it('retries over TCP when the UDP answer is truncated (RFC 7766 §5)', () =>
    withServer(
      (q) => (q.tcp ? { ad: true, answers: [A(q.name, '127.0.0.5'), A(q.name, '127.0.0.6')] } : { tc: true, ad: true }),
      async (s) => {
        const r = resolverFor(s)
        const a = await r.lookup('big.test', 'A')
        assert.equal(a.status, 'secure')
        assert.deepEqual(a.records, ['127.0.0.5', '127.0.0.6'])
        assert.deepEqual(
          s.queries.map((q) => q.tcp),
          [false, true],
        )
        assert.equal(r.stats().tcpSent, 1)
      },
    ))
  it('works over IPv6 loopback ("[::1]:port"), UDP and TCP', async () => {
    const s = await startDnsServer((q) => (q.tcp ? { ad: true, answers: [A(q.name, '127.0.0.21')] } : { tc: true }), { address: '::1' })
    try {
      const r = resolverFor(s)
      const a = await r.lookup('v6.test', 'A')
      assert.equal(a.status, 'secure', 'AD from ::1 is trusted by default')
      assert.equal(a.server, s.server)
      assert.deepEqual([r.stats().udpSent, r.stats().tcpSent], [1, 1])
    } finally {
      await s.close()
    }
  })
  it('a TCP answer that is truncated again is malformed', () =>
    withServer(
      () => ({ tc: true }),
      async (s) => {
        const a = await resolverFor(s).lookup('big.test', 'A')
        assert.equal(a.status, 'error')
        assert.equal(a.error?.code, 'ERR_DNS_MALFORMED')
      },
    ))
  it('TCP: a response cut short inside its framing is malformed', () =>
    withServer(
      (q) => (q.tcp ? { raw: (_q, enc) => enc.subarray(0, 20) } : { tc: true }),
      async (s) => {
        const a = await resolverFor(s).lookup('cut.test', 'A')
        assert.equal(a.status, 'error')
        assert.equal(a.error?.code, 'ERR_DNS_MALFORMED')
      },
    ))
  it('TCP: a server that never answers times out (no hang)', () =>
    withServer(
      (q) => (q.tcp ? { drop: true } : { tc: true }),
      async (s) => {
        const r = resolverFor(s, { timeoutMs: 150 })
        const a = await r.lookup('stall.test', 'A')
        assert.equal(a.error?.code, 'ERR_DNS_TIMEOUT')
        // one UDP try (TC), one TCP try that the per-try timer ended; nothing else was sent
        assert.deepEqual([r.stats().udpSent, r.stats().tcpSent], [1, 1])
        assert.deepEqual(
          s.queries.map((q) => q.tcp),
          [false, true],
        )
      },
    ))
  it('TCP: a length prefix promising more than ever arrives times out (no hang)', () =>
    withServer(
      (q) => (q.tcp ? { tcpRaw: (_q, enc) => Buffer.concat([Buffer.from([0x0f, 0xa0]), enc.subarray(0, 30)]) } : { tc: true }),
      async (s) => {
        const r = resolverFor(s, { timeoutMs: 150 })
        const a = await r.lookup('partial.test', 'A')
        assert.equal(a.error?.code, 'ERR_DNS_TIMEOUT')
        assert.deepEqual([r.stats().udpSent, r.stats().tcpSent], [1, 1])
      },
    ))
  it('TCP: a response for another ID is malformed, not waited for', () =>
    withServer(
      (q) => (q.tcp ? { raw: (_q, enc) => Buffer.concat([Buffer.from([enc[0]! ^ 0xff, enc[1]!]), enc.subarray(2)]) } : { tc: true }),
      async (s) => {
        assert.equal((await resolverFor(s).lookup('id.test', 'A')).error?.code, 'ERR_DNS_MALFORMED')
      },
    ))
  it('times out per try, tries every server `attempts` times, then reports ERR_DNS_TIMEOUT', () =>
    withServer(
      () => ({ drop: true }),
      async (s) => {
        const r = resolverFor(s, { timeoutMs: 100, attempts: 3 })
        const a = await r.lookup('silent.test', 'A')
        assert.equal(a.status, 'error')
        assert.equal(a.error?.code, 'ERR_DNS_TIMEOUT')
        assert.equal(s.queries.length, 3)
        assert.equal(r.stats().udpSent, 3)
      },
    ))
  it('fails over to the next server when one is silent', async () => {
    const silent = await startDnsServer(() => ({ drop: true }))
    const good = await startDnsServer(() => ({ ad: true, answers: [A('x.test', '127.0.0.7')] }))
    try {
      const a = await resolverFor([silent, good], { timeoutMs: 100 }).lookup('x.test', 'A')
      assert.equal(a.status, 'secure')
      assert.equal(a.server, good.server)
      assert.equal(silent.queries.length, 1)
    } finally {
      await Promise.all([silent.close(), good.close()])
    }
  })
  it('fails over on REFUSED; a SERVFAIL elsewhere does not win over an answer', async () => {
    const refusing = await startDnsServer(() => ({ rcode: 'REFUSED' }))
    const failing = await startDnsServer(() => ({ rcode: 'SERVFAIL' }))
    const good = await startDnsServer(() => ({ ad: false, answers: [A('x.test', '127.0.0.8')] }))
    try {
      const a = await resolverFor([refusing, failing, good], { timeoutMs: 100, attempts: 2 }).lookup('x.test', 'A')
      assert.equal(a.status, 'insecure')
      // definitive failures are not asked again in the second round
      assert.deepEqual([refusing.queries.length, failing.queries.length, good.queries.length], [1, 1, 1])
    } finally {
      await Promise.all([refusing.close(), failing.close(), good.close()])
    }
  })
  it('all servers SERVFAIL: bogus, even when another server only timed out', async () => {
    const silent = await startDnsServer(() => ({ drop: true }))
    const failing = await startDnsServer(() => ({ rcode: 'SERVFAIL' }))
    try {
      const a = await resolverFor([silent, failing], { timeoutMs: 80, attempts: 2 }).lookup('x.test', 'A')
      assert.equal(a.status, 'bogus')
    } finally {
      await Promise.all([silent.close(), failing.close()])
    }
  })
  it('a closed port gives a coded error, never a hang', async () => {
    const s = await startDnsServer(() => ({ drop: true }))
    const server = s.server
    await s.close()
    const a = await createResolver({ servers: [server], timeoutMs: 200, attempts: 1 }).lookup('x.test', 'A')
    assert.equal(a.status, 'error')
    assert.ok(['ERR_DNS_NETWORK', 'ERR_DNS_TIMEOUT'].includes(a.error!.code))
  })
  // The abort fires when the query reaches the server; the per-try timeout (10 min) outlasts the test's own
  // bound, so the lookup can only settle because of the abort: no wall-clock assertion needed.
  it('AbortSignal: an abort mid-query rejects with ERR_ABORTED at once', { timeout: 60_000 }, async () => {
    const ac = new AbortController()
    await withServer(
      () => {
        ac.abort()
        return { drop: true }
      },
      async (s) => {
        const r = resolverFor(s, { timeoutMs: 600_000, attempts: 3 })
        await rejectsCoded(r.lookup('slow.test', 'A', { signal: ac.signal }), 'ERR_ABORTED')
        assert.equal(s.queries.length, 1)
        assert.equal(r.stats().udpSent, 1, 'no retry after the abort')
      },
    )
  })
  it('AbortSignal: an already aborted signal rejects without sending', () =>
    withServer(
      () => ({ drop: true }),
      async (s) => {
        await rejectsCoded(resolverFor(s).lookup('x.test', 'A', { signal: AbortSignal.abort() }), 'ERR_ABORTED')
        assert.equal(s.queries.length, 0)
      },
    ))
})

describe('resolver: anti-spoofing (RFC 5452)', () => {
  const real = (q: { name: string }) => ({ ad: false, answers: [A(q.name, '127.0.0.10')] })
  const forged = (q: Parameters<NonNullable<DnsReply['raw']>>[0]) => encodeReply(q, { ad: true, answers: [A(q.name, '127.66.66.66')] })
  const rows: Array<[string, NonNullable<DnsReply['spoof']>[0]]> = [
    ['a forged answer from another port of the same host', { fromOtherPort: true, bytes: (q) => forged(q) }],
    ['a wrong ID from the server address and port', { bytes: (q) => forged({ ...q, id: (q.id + 1) & 0xffff }) }],
    ['the right ID for another name', { bytes: (q) => forged({ ...q, name: 'evil.test' }) }],
    ['the right ID and name for another type', { bytes: (q) => forged({ ...q, type: 'AAAA' }) }],
    [
      'the right ID with QR clear (a query, not a response)',
      { bytes: (q) => Buffer.concat([forged(q).subarray(0, 2), Buffer.from([0x01, 0x20]), forged(q).subarray(4)]) },
    ],
    ['a runt datagram', { bytes: () => Buffer.from([1, 2, 3]) }],
  ]
  for (const [why, spoof] of rows) {
    it(`drops ${why}, then accepts the real answer`, () =>
      withServer(
        (q) => ({ ...real(q), spoof: [spoof] }),
        async (s) => {
          const r = resolverFor(s)
          const a = await r.lookup('victim.test', 'A')
          assert.deepEqual(a.records, ['127.0.0.10'])
          assert.equal(a.status, 'insecure')
          assert.ok(r.stats().dropped >= 1, 'the forged datagram was not counted as dropped')
        },
      ))
  }
  it('forged datagrams alone are never trusted: the lookup times out', () =>
    withServer(
      () => ({ raw: () => Buffer.alloc(0), spoof: [{ fromOtherPort: true, bytes: (qq) => forged(qq) }] }),
      async (s) => {
        const a = await resolverFor(s, { timeoutMs: 150 }).lookup('victim.test', 'A')
        assert.equal(a.status, 'error')
        assert.equal(a.error?.code, 'ERR_DNS_TIMEOUT')
        assert.deepEqual(a.records, [])
      },
    ))
  it('matches the echoed question name case-insensitively (0x20 mixing)', () =>
    withServer(
      (q) => ({
        raw: () => encodeReply({ ...q, name: q.name.toUpperCase() }, { ad: true, answers: [A(q.name.toUpperCase(), '127.0.0.11')] }),
      }),
      async (s) => {
        const a = await resolverFor(s).lookup('mixed.test', 'A')
        assert.equal(a.status, 'secure')
        assert.deepEqual(a.records, ['127.0.0.11'])
      },
    ))
})

describe('resolver: CNAME (RFC 1034 §3.6.2, RFC 7672 §2.1.3)', () => {
  it('follows a chain in one response; records belong to the end of the chain', () =>
    withServer(
      zoneHandler({
        'a.test A': {
          ad: true,
          answers: [CNAME('a.test', 'b.test', 50), CNAME('b.test', 'c.test'), A('c.test', '127.0.0.12'), A('other.test', '127.9.9.9')],
        },
      }),
      async (s) => {
        const a = await resolverFor(s, { cache: { maxTtl: 1000 } }).lookup('a.test', 'A')
        assert.equal(a.status, 'secure')
        assert.deepEqual(a.records, ['127.0.0.12'])
        assert.equal(a.canonicalName, 'c.test')
        assert.deepEqual(a.cnames, [
          { from: 'a.test', to: 'b.test' },
          { from: 'b.test', to: 'c.test' },
        ])
        assert.equal(a.ttl, 50, 'the TTL is the smallest along the chain')
      },
    ))
  it('repeats the query at the target when the response stops at a CNAME; insecure anywhere makes it insecure', () =>
    withServer(
      zoneHandler({
        'a.test A': { ad: true, answers: [CNAME('a.test', 'b.other')] },
        'b.other A': { ad: false, answers: [A('b.other', '127.0.0.13')] },
      }),
      async (s) => {
        const a = await resolverFor(s).lookup('a.test', 'A')
        assert.deepEqual(a.records, ['127.0.0.13'])
        assert.equal(a.status, 'insecure')
        assert.equal(s.queries.length, 2)
      },
    ))
  it('a CNAME to a NODATA target with a SOA is NODATA, not a new query', () =>
    withServer(zoneHandler({ 'a.test A': { ad: true, answers: [CNAME('a.test', 'b.test')], authorities: [soa('test')] } }), async (s) => {
      const a = await resolverFor(s).lookup('a.test', 'A')
      assert.equal(a.status, 'nodata')
      assert.equal(a.canonicalName, 'b.test')
      assert.equal(s.queries.length, 1)
    }))
  it('detects a loop', () =>
    withServer(zoneHandler({ 'a.test A': { ad: true, answers: [CNAME('a.test', 'b.test'), CNAME('b.test', 'a.test')] } }), async (s) => {
      const a = await resolverFor(s).lookup('a.test', 'A')
      assert.equal(a.status, 'error')
      assert.equal(a.error?.code, 'ERR_DNS_CNAME_LOOP')
    }))
  it('detects a loop across responses', () =>
    withServer(
      zoneHandler({ 'a.test A': { answers: [CNAME('a.test', 'b.test')] }, 'b.test A': { answers: [CNAME('b.test', 'a.test')] } }),
      async (s) => {
        assert.equal((await resolverFor(s).lookup('a.test', 'A')).error?.code, 'ERR_DNS_CNAME_LOOP')
      },
    ))
  it('stops a chain longer than 8 links', () =>
    withServer(
      (q) => {
        const n = Number(/^c(\d+)\.test$/.exec(q.name)?.[1] ?? 0)
        return { ad: true, answers: [CNAME(q.name, `c${n + 1}.test`)] }
      },
      async (s) => {
        const a = await resolverFor(s).lookup('c0.test', 'A')
        assert.equal(a.error?.code, 'ERR_DNS_CNAME_LOOP')
        assert.ok(s.queries.length <= 9)
      },
    ))
  it('two CNAMEs at one name are malformed', () =>
    withServer(zoneHandler({ 'a.test A': { answers: [CNAME('a.test', 'b.test'), CNAME('a.test', 'c.test')] } }), async (s) => {
      assert.equal((await resolverFor(s).lookup('a.test', 'A')).error?.code, 'ERR_DNS_MALFORMED')
    }))
})

describe('resolver: cache and de-duplication', () => {
  it('serves a repeated lookup from the cache until the TTL runs out (fake clock)', () =>
    withServer(
      () => ({ ad: true, answers: [A('c.test', '127.0.0.14', 30)] }),
      async (s) => {
        let t = 0
        const r = resolverFor(s, { now: () => t })
        assert.equal((await r.lookup('c.test', 'A')).fromCache, undefined)
        t = 29_000
        const hit = await r.lookup('c.test', 'A')
        assert.equal(hit.fromCache, true)
        assert.equal(hit.ttl, 1)
        assert.equal(s.queries.length, 1)
        t = 30_001
        await r.lookup('c.test', 'A')
        assert.equal(s.queries.length, 2)
        assert.equal(r.stats().cacheHits, 1)
      },
    ))
  it('clamps TTLs: ceiling 100 s and floor 1 s by default (Postfix TLS_DANE_CACHE_TTL_MIN/MAX)', () =>
    withServer(
      zoneHandler({
        'long.test A': { answers: [A('long.test', '127.0.0.15', 86400)] },
        'zero.test A': { answers: [A('zero.test', '127.0.0.16', 0)] },
      }),
      async (s) => {
        const r = resolverFor(s)
        assert.equal((await r.lookup('long.test', 'A')).ttl, 100)
        assert.equal((await r.lookup('zero.test', 'A')).ttl, 1)
      },
    ))
  it('caches negative answers, by default for 1 s', () =>
    withServer(
      () => ({ rcode: 'NXDOMAIN', ad: true, authorities: [soa('test', 600)] }),
      async (s) => {
        let t = 0
        const r = resolverFor(s, { now: () => t })
        assert.equal((await r.lookup('n.test', 'A')).ttl, 1)
        t = 500
        assert.equal((await r.lookup('n.test', 'A')).fromCache, true)
        t = 1001
        await r.lookup('n.test', 'A')
        assert.equal(s.queries.length, 2)
      },
    ))
  it('never caches failures', () =>
    withServer(
      () => ({ rcode: 'SERVFAIL' }),
      async (s) => {
        const r = resolverFor(s)
        await r.lookup('f.test', 'A')
        await r.lookup('f.test', 'A')
        assert.equal(s.queries.length, 2)
      },
    ))
  it('cache: false disables it; lookup { cache: false } bypasses it', () =>
    withServer(
      () => ({ answers: [A('c.test', '127.0.0.17')] }),
      async (s) => {
        const off = resolverFor(s, { cache: false })
        await off.lookup('c.test', 'A')
        await off.lookup('c.test', 'A')
        assert.equal(s.queries.length, 2)
        const on = resolverFor(s)
        await on.lookup('c.test', 'A')
        await on.lookup('c.test', 'A', { cache: false })
        assert.equal(s.queries.length, 4)
        on.clearCache()
        assert.equal(on.stats().cacheSize, 0)
      },
    ))
  it('keeps at most maxEntries, evicting the oldest', () =>
    withServer(
      (q) => ({ answers: [A(q.name, '127.0.0.18')] }),
      async (s) => {
        const r = resolverFor(s, { cache: { maxEntries: 2 } })
        for (const n of ['a.test', 'b.test', 'c.test']) await r.lookup(n, 'A')
        assert.equal(r.stats().cacheSize, 2)
        await r.lookup('a.test', 'A')
        assert.equal(s.queries.length, 4)
      },
    ))
  it('identical concurrent lookups share one query', () =>
    withServer(
      () => ({ delayMs: 50, answers: [A('d.test', '127.0.0.19')] }),
      async (s) => {
        const r = resolverFor(s)
        const [x, y, z] = await Promise.all([r.lookup('d.test', 'A'), r.lookup('D.test.', 'A'), r.lookup('d.test', 'AAAA')])
        assert.deepEqual(x.records, ['127.0.0.19'])
        assert.deepEqual(y.records, ['127.0.0.19'])
        assert.equal(z.type, 'AAAA')
        assert.equal(s.queries.length, 2, 'one A query and one AAAA query')
        assert.equal(r.stats().deduplicated, 1)
      },
    ))
  it('one waiter aborting does not cancel the shared query for the others; the last one cancels it', () =>
    withServer(
      () => ({ delayMs: 80, answers: [A('d.test', '127.0.0.20')] }),
      async (s) => {
        const r = resolverFor(s, { cache: false })
        const ac = new AbortController()
        const p1 = r.lookup('d.test', 'A', { signal: ac.signal })
        const p2 = r.lookup('d.test', 'A')
        ac.abort()
        await rejectsCoded(p1, 'ERR_ABORTED')
        assert.deepEqual((await p2).records, ['127.0.0.20'])
        const solo = new AbortController()
        const p3 = r.lookup('d.test', 'A', { signal: solo.signal })
        solo.abort()
        await rejectsCoded(p3, 'ERR_ABORTED')
        // a new lookup after the cancelled one starts afresh rather than joining it
        assert.deepEqual((await r.lookup('d.test', 'A')).records, ['127.0.0.20'])
      },
    ))
})

describe('resolver: configuration', () => {
  it('takes timeoutMs and attempts from the options', async () => {
    const c = await createResolver({ servers: ['127.0.0.1', '[::1]:5353'], timeoutMs: 1234, attempts: 3 }).config()
    assert.deepEqual(
      c.servers.map((x) => [x.address, x.port, x.family]),
      [
        ['127.0.0.1', 53, 4],
        ['::1', 5353, 6],
      ],
    )
    assert.deepEqual([c.timeoutMs, c.attempts], [1234, 3])
  })
  const bad: Array<[string, Parameters<typeof createResolver>[0]]> = [
    ['a host name as server', { servers: ['localhost'] }],
    ['port 0', { servers: ['127.0.0.1:0'] }],
    ['empty server list', { servers: [] }],
    ['timeout 0', { servers: ['127.0.0.1'], timeoutMs: 0 }],
    ['fractional attempts', { servers: ['127.0.0.1'], attempts: 1.5 }],
  ]
  for (const [why, o] of bad) {
    it(`refuses ${why} with ERR_DNS_CONFIG`, () => {
      assert.throws(
        () => createResolver(o),
        (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_DNS_CONFIG',
      )
    })
  }
})

describe('resolver: RFC 8914 names', () => {
  // IANA "Extended DNS Error Codes" registry, codes 0-29, as the registry spells them.
  const iana: Array<[number, string]> = [
    [0, 'Other Error'],
    [1, 'Unsupported DNSKEY Algorithm'],
    [2, 'Unsupported DS Digest Type'],
    [3, 'Stale Answer'],
    [4, 'Forged Answer'],
    [5, 'DNSSEC Indeterminate'],
    [6, 'DNSSEC Bogus'],
    [7, 'Signature Expired'],
    [8, 'Signature Not Yet Valid'],
    [9, 'DNSKEY Missing'],
    [10, 'RRSIGs Missing'],
    [11, 'No Zone Key Bit Set'],
    [12, 'NSEC Missing'],
    [13, 'Cached Error'],
    [14, 'Not Ready'],
    [15, 'Blocked'],
    [16, 'Censored'],
    [17, 'Filtered'],
    [18, 'Prohibited'],
    [19, 'Stale NXDomain Answer'],
    [20, 'Not Authoritative'],
    [21, 'Not Supported'],
    [22, 'No Reachable Authority'],
    [23, 'Network Error'],
    [24, 'Invalid Data'],
    [25, 'Signature Expired before Valid'],
    [26, 'Too Early'],
    [27, 'Unsupported NSEC3 Iterations Value'],
    [28, 'Unable to conform to policy'],
    [29, 'Synthesized'],
  ]
  for (const [code, name] of iana) it(`EDE ${code} is "${name}"`, () => assert.equal(extendedErrorName(code), name))
  it('a code outside the table says so instead of guessing', () => {
    assert.equal(formatExtendedError({ code: 4000, text: '' }), 'EDE 4000 (unknown code)')
  })
  it('extra text is quoted as data: control characters escaped, long text cut at 120 characters', () => {
    assert.equal(formatExtendedError({ code: 6, text: 'a"b\nc' }), 'EDE 6 (DNSSEC Bogus): "a\\"b\\nc"')
    assert.equal(formatExtendedError({ code: 0, text: 'x'.repeat(500) }), `EDE 0 (Other Error): "${'x'.repeat(120)}…"`)
  })
})

describe('resolver: one bogus zone, two resolvers (RFC 7672 §2.1.1)', () => {
  // The same failure: a resolver that answers a plain SERVFAIL, and one that adds EDE 7. The codes differ
  // (ERR_DNS_SERVFAIL, ERR_DNS_BOGUS); what a caller may act on does not: temporary, 4.4.3, dnssec-invalid.
  const plain: DnsHandler = () => ({ rcode: 'SERVFAIL' })
  const withEde: DnsHandler = () => ({ rcode: 'SERVFAIL', ede: [{ code: 7, text: 'example.test. RRSIG expired' }] })
  const cases: Array<[string, DnsHandler, string]> = [
    ['plain SERVFAIL', plain, 'ERR_DNS_SERVFAIL'],
    ['SERVFAIL + EDE 7', withEde, 'ERR_DNS_BOGUS'],
  ]
  for (const [why, handler, code] of cases) {
    it(`${why}: ${code}, temporary, 4.4.3, TLS-RPT dnssec-invalid, at the lookup, the destination and the connection`, () =>
      withServer(handler, async (t) => {
        const resolver = resolverFor(t)
        const a = await resolver.lookup('example.test', 'MX')
        assert.equal(a.status, 'bogus')
        assert.deepEqual(
          [a.error?.code, a.error?.temporary, a.error?.enhancedStatus, a.error?.tlsrpt],
          [code, true, '4.4.3', 'dnssec-invalid'],
        )
        const facts = await discoverDestination('example.test', { resolver })
        assert.equal(facts.status, 'deferred')
        const f = facts.error
        assert.deepEqual([f?.code, f?.temporary, f?.enhancedStatus, f?.tlsrpt], [code, true, '4.4.3', 'dnssec-invalid'])
        await assert.rejects(connect('example.test', { resolver }), (e: unknown) => {
          assert.ok(e instanceof SmtpTlsError)
          assert.deepEqual([e.code, e.temporary, e.enhancedStatus, e.tlsrpt], [code, true, '4.4.3', 'dnssec-invalid'])
          return true
        })
      }))
  }
})
