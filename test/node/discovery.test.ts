// Destination discovery (RFC 7672 §2.1-2.2) against the in-process DNS server playing a validating
// resolver: a small zone model answers like Unbound would (CNAME chains expanded, AD only when every
// name on the way is signed, NXDOMAIN/NODATA with a SOA, SERVFAIL for names marked bogus).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatTrace, resolvePolicy } from '../../src/index.js'
import { createResolver, discoverDestination, SmtpTlsError } from '../../src/node/index.js'
import {
  startDnsServer,
  type TestDnsServer,
  validatingZone,
  type ZoneRecord,
  type ZoneSpec as ValidatingZoneSpec,
} from '../helpers/dns-server.js'

type Rec = ZoneRecord
type ZoneSpec = ValidatingZoneSpec
const zone = validatingZone
const mx = (pref: number, exchange: string) => ({ preference: pref, exchange })
const tlsa = (b: number) => ({ usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, b) })

async function discover(spec: ZoneSpec, destination: string, opts: Parameters<typeof discoverDestination>[1] = {}) {
  const s = await startDnsServer(zone(spec))
  try {
    const resolver = createResolver({ servers: [s.server], timeoutMs: 300, attempts: 1 })
    const facts = await discoverDestination(destination, { resolver, ...opts })
    assert.doesNotThrow(() => JSON.stringify(facts), 'facts are plain data')
    return { facts, queries: s.queries.map((q) => `${q.name} ${q.type}`), server: s as TestDnsServer }
  } finally {
    await s.close()
  }
}

const signed: Rec[] = [
  ['example.test', 'MX', mx(10, 'mx1.example.test')],
  ['mx1.example.test', 'A', '127.0.1.1'],
  ['mx1.example.test', 'AAAA', '::1'],
  ['_25._tcp.mx1.example.test', 'TLSA', tlsa(1)],
]

describe('discovery: MX resolution (RFC 7672 §2.2.1)', () => {
  it('secure MX, secure addresses, secure TLSA', async () => {
    const { facts, queries } = await discover({ records: signed }, 'Example.Test')
    assert.equal(facts.status, 'ok')
    assert.equal(facts.mxSecure, true)
    const h = facts.mx[0]!
    assert.equal(h.host, 'mx1.example.test')
    assert.deepEqual(h.addresses, [
      { address: '127.0.1.1', family: 4 },
      { address: '::1', family: 6 },
    ])
    assert.equal(h.addressSecure, true)
    assert.equal(h.tlsa.status, 'secure')
    assert.equal(h.tlsa.qname, '_25._tcp.mx1.example.test')
    assert.equal(h.tlsa.base, 'mx1.example.test')
    assert.equal(h.tlsa.records.length, 1)
    assert.equal(h.usable, true)
    // RFC 7672 §3.2.2: TLSA base domain, then the next-hop domain (secure MX)
    assert.deepEqual(h.referenceNames, ['mx1.example.test', 'example.test'])
    // RFC 7672 §2.2.2: addresses are looked up before TLSA
    assert.ok(queries.indexOf('_25._tcp.mx1.example.test TLSA') > queries.indexOf('mx1.example.test A'))
  })
  it('the TLSA qname uses the real destination port (RFC 7672 §2.2.3)', async () => {
    const { facts } = await discover({ records: [...signed, ['_587._tcp.mx1.example.test', 'TLSA', tlsa(2)]] }, 'example.test', {
      port: 587,
    })
    assert.equal(facts.mx[0]!.tlsa.qname, '_587._tcp.mx1.example.test')
    assert.equal(facts.mx[0]!.tlsa.records[0]!.data[0], 2)
  })
  it('null MX (RFC 7505): permanent "accepts no mail", no host lookups', async () => {
    const { facts, queries } = await discover({ records: [['nomail.test', 'MX', mx(0, '.')]] }, 'nomail.test')
    assert.equal(facts.status, 'null-mx')
    assert.equal(facts.nullMx, true)
    assert.deepEqual(facts.error && [facts.error.code, facts.error.temporary, facts.error.enhancedStatus], [
      'ERR_DNS_NULL_MX',
      false,
      '5.1.10',
    ])
    assert.deepEqual(queries, ['nomail.test MX'])
  })
  it('a null MX among real MX records is ignored, the real ones are used', async () => {
    const { facts } = await discover({ records: [...signed, ['example.test', 'MX', mx(0, '.')]] }, 'example.test')
    assert.equal(facts.status, 'ok')
    assert.deepEqual(
      facts.mx.map((h) => h.host),
      ['mx1.example.test'],
    )
  })
  it('no MX records: implicit MX on the domain (RFC 5321 §5.1), a non-MX destination', async () => {
    const { facts } = await discover(
      {
        records: [
          ['bare.test', 'A', '127.0.1.2'],
          ['_25._tcp.bare.test', 'TLSA', tlsa(3)],
        ],
      },
      'bare.test',
    )
    assert.equal(facts.implicitMx, true)
    assert.equal(facts.mxSecure, true, 'the NODATA was validated')
    assert.equal(facts.mx[0]!.host, 'bare.test')
    assert.equal(facts.mx[0]!.preference, 0)
    assert.equal(facts.mx[0]!.tlsa.status, 'secure')
    assert.deepEqual(facts.mx[0]!.referenceNames, ['bare.test'])
  })
  it('NXDOMAIN: no such domain, permanent', async () => {
    const { facts } = await discover({ records: [] }, 'missing.test')
    assert.equal(facts.status, 'no-such-domain')
    assert.equal(facts.error?.code, 'ERR_DNS_NXDOMAIN')
    assert.equal(facts.error?.temporary, false)
  })
  it('a bogus MX lookup defers the whole destination, no host is looked up (RFC 7672 §2.1.2)', async () => {
    const { facts, queries } = await discover({ records: signed, bogus: ['example.test MX'] }, 'example.test')
    assert.equal(facts.status, 'deferred')
    assert.equal(facts.error?.code, 'ERR_DNS_BOGUS')
    assert.equal(facts.error?.temporary, true)
    assert.deepEqual(queries, ['example.test MX'])
  })
  it('a bogus CNAME on the way to the MX defers too', async () => {
    const { facts } = await discover(
      { records: [['alias.test', 'CNAME', 'example.test'], ...signed], bogus: ['example.test MX'] },
      'alias.test',
    )
    assert.equal(facts.status, 'deferred')
  })
  it('an MX lookup timeout defers', async () => {
    const s = await startDnsServer(() => ({ drop: true }))
    try {
      const facts = await discoverDestination('example.test', {
        resolver: createResolver({ servers: [s.server], timeoutMs: 100, attempts: 1 }),
      })
      assert.equal(facts.status, 'deferred')
      assert.equal(facts.error?.code, 'ERR_DNS_TIMEOUT')
    } finally {
      await s.close()
    }
  })
  it('insecure MX: hosts still examined, reference names only the TLSA base domain (RFC 7672 §3.2.2)', async () => {
    const { facts } = await discover({ records: signed, insecure: ['example.test'] }, 'example.test')
    assert.equal(facts.mxSecure, false)
    assert.equal(facts.mx[0]!.tlsa.status, 'secure')
    assert.deepEqual(facts.mx[0]!.referenceNames, ['mx1.example.test'])
  })
  it('secure MX via a CNAME: the next-hop and its expansion are reference names', async () => {
    const { facts } = await discover({ records: [['alias.test', 'CNAME', 'example.test'], ...signed] }, 'alias.test')
    assert.equal(facts.canonicalDomain, 'example.test')
    assert.deepEqual(facts.cnames, [{ from: 'alias.test', to: 'example.test' }])
    assert.deepEqual(facts.mx[0]!.referenceNames, ['mx1.example.test', 'alias.test', 'example.test'])
  })
  it('sorts by preference; TLSA never lets a worse MX go first (RFC 7672 §2.2.1)', async () => {
    const records: Rec[] = [
      ['pref.test', 'MX', mx(20, 'a.pref.test')],
      ['pref.test', 'MX', mx(5, 'z.pref.test')],
      ['pref.test', 'MX', mx(10, 'm.pref.test')],
      ['a.pref.test', 'A', '127.0.2.1'],
      ['_25._tcp.a.pref.test', 'TLSA', tlsa(4)],
      ['z.pref.test', 'A', '127.0.2.2'],
      ['m.pref.test', 'A', '127.0.2.3'],
    ]
    const { facts } = await discover({ records }, 'pref.test', { families: [4] })
    assert.deepEqual(
      facts.mx.map((h) => [h.preference, h.host, h.tlsa.status]),
      [
        [5, 'z.pref.test', 'secure-denial'],
        [10, 'm.pref.test', 'secure-denial'],
        [20, 'a.pref.test', 'secure'],
      ],
    )
  })
  it('orders equal preferences at random (RFC 5321 §5.1), keeping preference order', async () => {
    const records: Rec[] = [
      ['eq.test', 'MX', mx(10, 'a.eq.test')],
      ['eq.test', 'MX', mx(10, 'b.eq.test')],
      ['eq.test', 'MX', mx(10, 'c.eq.test')],
      ['eq.test', 'MX', mx(30, 'last.eq.test')],
      ...(['a', 'b', 'c', 'last'].map((h) => [`${h}.eq.test`, 'A', '127.0.3.1']) as Rec[]),
    ]
    const s = await startDnsServer(zone({ records }))
    try {
      const resolver = createResolver({ servers: [s.server], timeoutMs: 300 })
      const orders = new Set<string>()
      let seed = 1
      const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647
      for (let i = 0; i < 30; i++) {
        const f = await discoverDestination('eq.test', { resolver, random, families: [4] })
        assert.equal(f.mx.at(-1)!.host, 'last.eq.test')
        orders.add(f.mx.map((h) => h.host).join(','))
      }
      assert.ok(orders.size >= 3, `only ${orders.size} orders seen`)
    } finally {
      await s.close()
    }
  })
  it('the same host listed twice is examined once, at its best preference', async () => {
    const { facts } = await discover({ records: [...signed, ['example.test', 'MX', mx(50, 'mx1.example.test')]] }, 'example.test')
    assert.deepEqual(
      facts.mx.map((h) => [h.host, h.preference]),
      [['mx1.example.test', 10]],
    )
  })
})

describe('discovery: per host (RFC 7672 §2.2.2, §2.2.3)', () => {
  it('insecure addresses: TLSA is not looked up (Postfix smtp_tls_force_insecure_host_tlsa_lookup=no)', async () => {
    const { facts, queries } = await discover({ records: signed, insecure: ['mx1.example.test'] }, 'example.test')
    const h = facts.mx[0]!
    assert.equal(h.addressSecure, false)
    assert.equal(h.tlsa.status, 'not-looked-up')
    assert.equal(h.usable, true)
    assert.ok(!queries.some((q) => q.endsWith(' TLSA')), queries.join(';'))
  })
  it('secure CNAME expansion: TLSA at the expanded name first', async () => {
    const { facts, queries } = await discover(
      {
        records: [
          ['example.test', 'MX', mx(10, 'mx.example.test')],
          ['mx.example.test', 'CNAME', 'real.hoster.test'],
          ['real.hoster.test', 'A', '127.0.4.1'],
          ['_25._tcp.real.hoster.test', 'TLSA', tlsa(5)],
          ['_25._tcp.mx.example.test', 'TLSA', tlsa(6)],
        ],
      },
      'example.test',
      { families: [4] },
    )
    const h = facts.mx[0]!
    assert.equal(h.canonicalHost, 'real.hoster.test')
    assert.equal(h.tlsa.base, 'real.hoster.test')
    assert.deepEqual(h.tlsa.candidates, ['real.hoster.test', 'mx.example.test'])
    assert.equal(h.tlsa.records[0]!.data[0], 5)
    assert.deepEqual(h.referenceNames, ['real.hoster.test', 'example.test'])
    assert.ok(!queries.includes('_25._tcp.mx.example.test TLSA'), 'the original name is not needed')
  })
  it('secure CNAME expansion without TLSA at the expanded name: the original name is tried (RFC 7672 §2.2.3)', async () => {
    const { facts } = await discover(
      {
        records: [
          ['example.test', 'MX', mx(10, 'mx.example.test')],
          ['mx.example.test', 'CNAME', 'real.hoster.test'],
          ['real.hoster.test', 'A', '127.0.4.1'],
          ['_25._tcp.mx.example.test', 'TLSA', tlsa(6)],
        ],
      },
      'example.test',
      { families: [4] },
    )
    assert.equal(facts.mx[0]!.tlsa.status, 'secure')
    assert.equal(facts.mx[0]!.tlsa.base, 'mx.example.test')
    assert.equal(facts.mx[0]!.tlsa.records[0]!.data[0], 6)
  })
  it('insecure expansion, secure CNAME record: TLSA at the original name only ("Insecure CNAME")', async () => {
    const { facts, queries } = await discover(
      {
        records: [
          ['example.test', 'MX', mx(10, 'mx.example.test')],
          ['mx.example.test', 'CNAME', 'unsigned.other'],
          ['unsigned.other', 'A', '127.0.4.2'],
          ['_25._tcp.mx.example.test', 'TLSA', tlsa(7)],
          ['_25._tcp.unsigned.other', 'TLSA', tlsa(8)],
        ],
        insecure: ['unsigned.other', '_25._tcp.unsigned.other'],
      },
      'example.test',
      { families: [4] },
    )
    const h = facts.mx[0]!
    assert.equal(h.addressSecure, false)
    assert.equal(h.cnameSecure, true)
    assert.deepEqual(h.tlsa.candidates, ['mx.example.test'])
    assert.equal(h.tlsa.status, 'secure')
    assert.equal(h.tlsa.records[0]!.data[0], 7)
    assert.ok(queries.includes('mx.example.test CNAME'))
    assert.ok(!queries.includes('_25._tcp.unsigned.other TLSA'))
  })
  it('insecure expansion and an insecure CNAME record: no TLSA at all', async () => {
    const { facts } = await discover(
      {
        records: [
          ['example.test', 'MX', mx(10, 'mx.example.test')],
          ['mx.example.test', 'CNAME', 'unsigned.other'],
          ['unsigned.other', 'A', '127.0.4.2'],
        ],
        insecure: ['mx.example.test', 'unsigned.other'],
      },
      'example.test',
      { families: [4] },
    )
    assert.equal(facts.mx[0]!.cnameSecure, false)
    assert.equal(facts.mx[0]!.tlsa.status, 'not-looked-up')
    assert.equal(facts.mx[0]!.usable, true)
  })
  it('TLSA via a CNAME at the qname: base domain unchanged (RFC 7672 §2.2.3)', async () => {
    const { facts } = await discover(
      {
        records: [
          ['example.test', 'MX', mx(10, 'mx1.example.test')],
          ['mx1.example.test', 'A', '127.0.1.1'],
          ['_25._tcp.mx1.example.test', 'CNAME', 'tlsa201._dane.example.test'],
          ['tlsa201._dane.example.test', 'TLSA', tlsa(9)],
        ],
      },
      'example.test',
      { families: [4] },
    )
    const t = facts.mx[0]!.tlsa
    assert.equal(t.status, 'secure')
    assert.equal(t.base, 'mx1.example.test')
    assert.deepEqual(t.cnames, [{ from: '_25._tcp.mx1.example.test', to: 'tlsa201._dane.example.test' }])
  })
  it('a TLSA lookup failure marks the host unusable (4.7.5), never a downgrade; other hosts go on', async () => {
    const { facts } = await discover(
      {
        records: [
          ['two.test', 'MX', mx(10, 'bad.two.test')],
          ['two.test', 'MX', mx(20, 'good.two.test')],
          ['bad.two.test', 'A', '127.0.5.1'],
          ['good.two.test', 'A', '127.0.5.2'],
        ],
        bogus: ['_25._tcp.bad.two.test TLSA'],
      },
      'two.test',
      { families: [4] },
    )
    assert.equal(facts.status, 'ok')
    const [bad, good] = facts.mx
    assert.equal(bad!.tlsa.status, 'lookup-failed')
    assert.equal(bad!.usable, false)
    assert.equal(bad!.error?.enhancedStatus, '4.7.5')
    assert.match(bad!.unusableReason ?? '', /TLSA lookup error for bad\.two\.test:25/)
    assert.equal(good!.usable, true)
    assert.equal(good!.tlsa.status, 'secure-denial')
  })
  it('a TLSA failure at the expanded name does not fall back to the original name', async () => {
    const { facts, queries } = await discover(
      {
        records: [
          ['example.test', 'MX', mx(10, 'mx.example.test')],
          ['mx.example.test', 'CNAME', 'real.hoster.test'],
          ['real.hoster.test', 'A', '127.0.4.1'],
          ['_25._tcp.mx.example.test', 'TLSA', tlsa(6)],
        ],
        bogus: ['_25._tcp.real.hoster.test TLSA'],
      },
      'example.test',
      { families: [4] },
    )
    assert.equal(facts.mx[0]!.tlsa.status, 'lookup-failed')
    assert.equal(facts.status, 'deferred', 'no usable host left')
    assert.ok(!queries.includes('_25._tcp.mx.example.test TLSA'))
  })
  it('an address lookup failure skips that host only (RFC 7672 §2.1.2 MAY)', async () => {
    const { facts, queries } = await discover(
      {
        records: [
          ['two.test', 'MX', mx(10, 'bad.two.test')],
          ['two.test', 'MX', mx(20, 'good.two.test')],
          ['bad.two.test', 'A', '127.0.5.1'],
          ['good.two.test', 'A', '127.0.5.2'],
        ],
        bogus: ['bad.two.test AAAA'],
      },
      'two.test',
    )
    assert.equal(facts.status, 'ok')
    assert.equal(facts.mx[0]!.usable, false)
    assert.equal(facts.mx[0]!.tlsa.status, 'not-looked-up')
    assert.ok(!queries.includes('_25._tcp.bad.two.test TLSA'))
    assert.equal(facts.mx[1]!.usable, true)
  })
  it('no addresses for any host: deferred with ERR_DNS_NO_ADDRESS', async () => {
    const { facts } = await discover({ records: [['noaddr.test', 'MX', mx(10, 'ghost.noaddr.test')]] }, 'noaddr.test')
    assert.equal(facts.status, 'deferred')
    assert.equal(facts.mx[0]!.usable, false)
    assert.equal(facts.error?.code, 'ERR_DNS_NO_ADDRESS')
  })
  it('insecure TLSA records are reported as insecure, with their records', async () => {
    const { facts } = await discover(
      {
        records: [
          ['example.test', 'MX', mx(10, 'mx1.example.test')],
          ['mx1.example.test', 'A', '127.0.1.1'],
          ['_25._tcp.mx1.example.test', 'TLSA', tlsa(10)],
        ],
        insecure: ['_25._tcp.mx1.example.test'],
      },
      'example.test',
      { families: [4] },
    )
    assert.equal(facts.mx[0]!.tlsa.status, 'insecure')
    assert.equal(facts.mx[0]!.tlsa.records.length, 1)
  })
  it('a TLSA RR of 3 octets next to a good one: the good one is used, the short one is unusable with its reason (RFC 6698 §2.1, Postfix)', async () => {
    const short = { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(0) } // RDATA 03 01 01
    const { facts } = await discover({ records: [...signed, ['_25._tcp.mx1.example.test', 'TLSA', short]] }, 'example.test')
    const h = facts.mx[0]!
    assert.equal(h.usable, true)
    assert.equal(h.tlsa.status, 'secure')
    assert.deepEqual(h.tlsa.records, [{ usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(32).fill(1) }])
    assert.deepEqual(h.tlsa.undecodable, [
      { rdata: '030101', reason: 'TLSA RDATA of 3 octets (030101): no certificate association data (RFC 6698 §2.1), record unusable' },
    ])
    const eff = resolvePolicy({ policy: { level: 'dane' }, destination: facts, host: h })
    assert.equal(eff.level, 'dane')
    assert.equal(eff.error, undefined)
    assert.deepEqual(eff.tlsa?.usable.length, 1)
  })
  it('a secure RRset of only short TLSA RRs (2 octets here) is "secure, all unusable" → encrypt, never "no TLSA" → may (RFC 7672 §2.2)', async () => {
    const s = await startDnsServer((q) => {
      if (q.type !== 'TLSA') return zone({ records: signed })(q)
      // a 3-octet TLSA RR re-framed as 2 octets: RDLENGTH 3 → 2 and the last octet cut
      const full = {
        ad: true,
        answers: [{ name: q.name, type: 'TLSA', data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(0) } }],
      }
      return {
        ...full,
        raw: (qq, encoded) => {
          const at = encoded.indexOf(Buffer.from([0, 52, 0, 1]), 12 + qq.name.length + 6) // TYPE TLSA, CLASS IN of the answer
          const rdlen = at + 8
          const out = Buffer.concat([encoded.subarray(0, rdlen), Buffer.from([0, 2, 3, 1]), encoded.subarray(rdlen + 5)])
          return out
        },
      }
    })
    try {
      const resolver = createResolver({ servers: [s.server], timeoutMs: 300, attempts: 1 })
      const facts = await discoverDestination('example.test', { resolver })
      const h = facts.mx[0]!
      assert.equal(h.tlsa.status, 'secure')
      assert.deepEqual(h.tlsa.records, [])
      assert.deepEqual(h.tlsa.undecodable, [
        { rdata: '0301', reason: 'TLSA RDATA of 2 octets (0301): no certificate association data (RFC 6698 §2.1), record unusable' },
      ])
      const eff = resolvePolicy({ policy: { level: 'dane' }, destination: facts, host: h })
      assert.equal(eff.level, 'encrypt')
      assert.match(formatTrace(eff.trace), /TLSA records unusable \(TLSA RDATA of 2 octets/)
    } finally {
      await s.close()
    }
  })
})

describe('discovery: non-MX destinations', () => {
  it('[host]: no MX lookup; a CNAME-expanded base adds the original name (RFC 7672 §3.2.2)', async () => {
    const { facts, queries } = await discover(
      {
        records: [
          ['relay.test', 'CNAME', 'smarthost.test'],
          ['smarthost.test', 'A', '127.0.6.1'],
          ['_25._tcp.smarthost.test', 'TLSA', tlsa(11)],
        ],
      },
      '[relay.test]',
      { families: [4] },
    )
    assert.equal(facts.mxLookup, false)
    assert.ok(!queries.some((q) => q.endsWith(' MX')))
    assert.deepEqual(facts.mx[0]!.referenceNames, ['smarthost.test', 'relay.test'])
  })
  it('[address literal]: no DNS at all, DANE does not apply (RFC 7672 §2.2)', async () => {
    const { facts, queries } = await discover({ records: [] }, '[127.0.0.1]')
    assert.deepEqual(queries, [])
    assert.deepEqual(facts.mx[0]!.addresses, [{ address: '127.0.0.1', family: 4 }])
    assert.equal(facts.mx[0]!.tlsa.status, 'not-looked-up')
  })
  const bad: Array<[string, string, object]> = [
    ['an empty destination', '', {}],
    ['a destination with a space', 'a b.test', {}],
    ['port 0', 'example.test', { port: 0 }],
    ['family 5', 'example.test', { families: [5] }],
  ]
  for (const [why, d, o] of bad) {
    it(`rejects ${why} with ERR_INVALID_ARGUMENT`, async () => {
      await assert.rejects(
        discoverDestination(d, { resolver: createResolver({ servers: ['127.0.0.1:9'] }), ...o }),
        (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_INVALID_ARGUMENT',
      )
    })
  }
  it('rejects with ERR_ABORTED when the signal fires', async () => {
    const s = await startDnsServer(() => ({ drop: true }))
    try {
      const ac = new AbortController()
      const p = discoverDestination('example.test', {
        resolver: createResolver({ servers: [s.server], timeoutMs: 5000 }),
        signal: ac.signal,
      })
      setTimeout(() => ac.abort(), 20)
      await assert.rejects(p, (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_ABORTED')
    } finally {
      await s.close()
    }
  })
})
