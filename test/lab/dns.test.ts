// Real peers (test/lab/dns/lab.ts): NSD authoritative for DNSSEC-signed zones generated now, Unbound
// validating them with the DS of "test." as trust anchor, both on 127.0.N.x. The resolver's verdicts
// must equal `dig +dnssec` against the same Unbound, and discovery must follow RFC 7672 §2.2.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createResolver, type DnsAnswer, type DnsRecordType, discoverDestination, type Resolver } from '../../src/node/index.js'
import { type DnsLab, startDnsLab } from './dns/lab.js'

const h = (s: string) => createHash('sha256').update(s).digest('hex')
const H1 = h('mx1')
const H2 = h('mxi')
const H3 = h('nomx')

const ZONES = [
  {
    name: 'sec.test',
    records: [
      '@ MX 10 mx1',
      'mx1 A 127.0.0.1',
      'mx1 AAAA ::1',
      `_25._tcp.mx1 TLSA 3 1 1 ${H1}`,
      // CNAME'd MX host, secure expansion
      'cnamed MX 10 alias',
      'alias CNAME mx1',
      // CNAME'd MX host, insecure expansion (the target zone is unsigned)
      'insec MX 10 mxi',
      'mxi CNAME host.unsig.test.',
      `_25._tcp.mxi TLSA 3 1 1 ${H2}`,
      // null MX (RFC 7505)
      'nullmx MX 0 .',
      // no MX: implicit MX
      'nomx A 127.0.0.3',
      `_25._tcp.nomx TLSA 3 1 1 ${H3}`,
      // an RRset too large for a 1232-octet UDP answer: TC, then TCP
      ...Array.from({ length: 100 }, (_, i) => `big A 127.0.1.${i + 1}`),
    ],
  },
  { name: 'unsig.test', dnssec: 'unsigned' as const, records: ['@ MX 10 mx', 'mx A 127.0.0.4', 'host A 127.0.0.5'] },
  { name: 'expired.test', dnssec: 'expired' as const, records: ['@ MX 10 mx', 'mx A 127.0.0.6'] },
]

interface DigVerdict {
  status: string
  secure: boolean
  records: string[]
}

/** What `dig +dnssec` says: RCODE, AD flag, and the RDATA of records of the asked type. */
function digVerdict(lab: DnsLab, name: string, type: string): DigVerdict {
  const out = lab.dig(['+dnssec', '+nocmd', '+nostats', name, type])
  const rcode = /status: (\w+)/.exec(out)?.[1] ?? 'NO-RESPONSE'
  const ad = /flags:[^;]*\bad\b/.test(out)
  const answer = out.split(';; ANSWER SECTION:')[1]?.split('\n\n')[0] ?? ''
  const records = answer
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] === type)
    // dig splits long hex into groups: join them again
    .map((f) => (type === 'TLSA' ? `${f.slice(4, 7).join(' ')} ${f.slice(7).join('')}` : f.slice(4).join(' ')).toLowerCase())
  const status =
    rcode === 'SERVFAIL'
      ? 'bogus'
      : rcode === 'NXDOMAIN'
        ? 'nxdomain'
        : rcode !== 'NOERROR'
          ? 'error'
          : records.length === 0
            ? 'nodata'
            : ad
              ? 'secure'
              : 'insecure'
  return { status, secure: ad, records: records.sort() }
}

function ours(a: DnsAnswer): DigVerdict {
  const records = a.records.map((r) => {
    if (typeof r === 'string') return a.type === 'CNAME' ? `${r}.` : r
    if ('exchange' in r) return `${r.preference} ${r.exchange === '.' ? '.' : `${r.exchange}.`}`
    return `${r.usage} ${r.selector} ${r.matchingType} ${Buffer.from(r.data).toString('hex')}`
  })
  return { status: a.status, secure: a.secure, records: records.sort() }
}

describe('DNS lab: NSD + Unbound, DNSSEC-signed zones on loopback', () => {
  let lab: DnsLab
  let resolver: Resolver
  before(async () => {
    lab = await startDnsLab({ zones: ZONES })
    resolver = createResolver({ servers: [lab.resolverAddress], timeoutMs: 3000, attempts: 1, cache: false })
  })
  after(async () => {
    await lab?.stop()
  })

  const queries: Array<[string, DnsRecordType, string]> = [
    ['sec.test', 'MX', 'secure'],
    ['mx1.sec.test', 'A', 'secure'],
    ['mx1.sec.test', 'AAAA', 'secure'],
    ['_25._tcp.mx1.sec.test', 'TLSA', 'secure'],
    ['alias.sec.test', 'A', 'secure'],
    ['mxi.sec.test', 'A', 'insecure'],
    ['mxi.sec.test', 'CNAME', 'secure'],
    ['nullmx.sec.test', 'MX', 'secure'],
    ['nomx.sec.test', 'MX', 'nodata'],
    ['missing.sec.test', 'A', 'nxdomain'],
    ['unsig.test', 'MX', 'insecure'],
    ['mx.unsig.test', 'A', 'insecure'],
    ['_25._tcp.mx.unsig.test', 'TLSA', 'nxdomain'],
    ['expired.test', 'MX', 'bogus'],
    ['mx.expired.test', 'A', 'bogus'],
  ]
  for (const [name, type, expected] of queries) {
    it(`${name} ${type}: ${expected}, the same verdict as dig +dnssec`, async () => {
      const a = await resolver.lookup(name, type)
      const d = digVerdict(lab, name, type)
      assert.deepEqual(ours(a), d)
      assert.equal(a.status, expected)
    })
  }
  it('denials in the signed zone are secure, in the unsigned zone insecure', async () => {
    assert.equal((await resolver.lookup('nomx.sec.test', 'MX')).secure, true)
    assert.equal((await resolver.lookup('missing.sec.test', 'A')).secure, true)
    assert.equal((await resolver.lookup('_25._tcp.mx.unsig.test', 'TLSA')).secure, false)
  })
  it('expired signatures: SERVFAIL with an RFC 8914 DNSSEC EDE (7 fresh, 6 from the bogus cache), ERR_DNS_BOGUS', async () => {
    const a = await resolver.lookup('mx.expired.test', 'MX')
    assert.equal(a.status, 'bogus')
    assert.equal(a.error?.code, 'ERR_DNS_BOGUS', JSON.stringify(a))
    assert.ok(
      a.extendedErrors?.some((e) => e.code === 7 || e.code === 6),
      JSON.stringify(a.extendedErrors),
    )
  })

  it('discovery: secure MX + TLSA', async () => {
    const f = await discoverDestination('sec.test', { resolver })
    assert.equal(f.status, 'ok')
    assert.equal(f.mxSecure, true)
    const mx = f.mx[0]!
    assert.equal(mx.host, 'mx1.sec.test')
    assert.equal(mx.addressSecure, true)
    assert.deepEqual(mx.addresses.map((x) => x.address).sort(), ['127.0.0.1', '::1'])
    assert.equal(mx.tlsa.status, 'secure')
    assert.equal(Buffer.from(mx.tlsa.records[0]!.data).toString('hex'), H1)
    assert.deepEqual(mx.referenceNames, ['mx1.sec.test', 'sec.test'])
  })
  it('discovery: unsigned child zone: insecure MX and addresses, TLSA not looked up', async () => {
    const f = await discoverDestination('unsig.test', { resolver })
    assert.equal(f.status, 'ok')
    assert.equal(f.mxSecure, false)
    assert.equal(f.mx[0]!.addressSecure, false)
    assert.equal(f.mx[0]!.tlsa.status, 'not-looked-up')
    assert.equal(f.mx[0]!.usable, true)
  })
  it('discovery: expired signatures defer the destination', async () => {
    const f = await discoverDestination('expired.test', { resolver })
    assert.equal(f.status, 'deferred')
    assert.equal(f.error?.code, 'ERR_DNS_BOGUS')
  })
  it('discovery: CNAME’d MX host with a secure expansion: TLSA at the expanded name', async () => {
    const f = await discoverDestination('cnamed.sec.test', { resolver })
    const mx = f.mx[0]!
    assert.equal(mx.host, 'alias.sec.test')
    assert.equal(mx.canonicalHost, 'mx1.sec.test')
    assert.equal(mx.tlsa.status, 'secure')
    assert.equal(mx.tlsa.base, 'mx1.sec.test')
    assert.deepEqual(mx.referenceNames, ['mx1.sec.test', 'cnamed.sec.test'])
  })
  it('discovery: CNAME’d MX host with an insecure expansion: TLSA at the original name (secure CNAME)', async () => {
    const f = await discoverDestination('insec.sec.test', { resolver })
    const mx = f.mx[0]!
    assert.equal(mx.canonicalHost, 'host.unsig.test')
    assert.equal(mx.addressSecure, false)
    assert.equal(mx.cnameSecure, true)
    assert.equal(mx.tlsa.status, 'secure')
    assert.equal(mx.tlsa.base, 'mxi.sec.test')
    assert.equal(Buffer.from(mx.tlsa.records[0]!.data).toString('hex'), H2)
  })
  it('discovery: null MX', async () => {
    const f = await discoverDestination('nullmx.sec.test', { resolver })
    assert.equal(f.status, 'null-mx')
    assert.equal(f.mxSecure, true)
  })
  it('discovery: no MX: implicit MX with TLSA', async () => {
    const f = await discoverDestination('nomx.sec.test', { resolver, families: [4] })
    assert.equal(f.implicitMx, true)
    assert.equal(f.mx[0]!.host, 'nomx.sec.test')
    assert.equal(f.mx[0]!.tlsa.status, 'secure')
    assert.equal(Buffer.from(f.mx[0]!.tlsa.records[0]!.data).toString('hex'), H3)
  })
  it('an RRset too large for UDP: TC from Unbound, then the same answer over TCP', async () => {
    const r = createResolver({ servers: [lab.resolverAddress], timeoutMs: 3000, attempts: 1, cache: false })
    const a = await r.lookup('big.sec.test', 'A')
    assert.equal(a.status, 'secure')
    assert.equal(a.records.length, 100)
    assert.deepEqual([r.stats().udpSent, r.stats().tcpSent], [1, 1])
    assert.deepEqual(ours(a), digVerdict(lab, 'big.sec.test', 'A'))
  })
})
