// The socketmap answer (socketmap_table(5) replies for smtp_tls_policy_maps): DANE first (RFC 8461 §2),
// a DNSSEC/TLSA failure is TEMP and never a weaker answer (RFC 7672 §2.1.2), MTA-STS enforce as
// `secure match=… servername=hostname`, keys Postfix never sends are NOTFOUND.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  parseSocketmapKey,
  parseTlsaRecord,
  socketmapAnswer,
  SOCKETMAP_PROFILES,
  type DestinationFacts,
  type MxHostFacts,
  type SocketmapKey,
  type TlsaLookupStatus,
} from '../../src/index.js'
import { onlyCoded, throwsCoded } from '../helpers/assert-coded.js'

const usable = parseTlsaRecord('3 1 1 ' + 'ab'.repeat(32))
const unusable = parseTlsaRecord('0 0 1 ' + 'ab'.repeat(32)) // PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3)

function host(name: string, status: TlsaLookupStatus, o: { usable?: boolean; ttl?: number; bogusAddress?: boolean } = {}): MxHostFacts {
  const h: MxHostFacts = {
    host: name,
    preference: 10,
    canonicalHost: name,
    cnames: [],
    addresses: [{ address: '192.0.2.1', family: 4 }],
    addressSecure: status !== 'not-looked-up',
    tlsa: {
      status,
      records: status === 'secure' ? [o.usable === false ? unusable : usable] : [],
      qname: `_25._tcp.${name}`,
      base: name,
      candidates: [name],
      cnames: [],
      ttl: o.ttl ?? 3600,
    },
    referenceNames: [name],
    usable: status !== 'lookup-failed',
  }
  if (status === 'lookup-failed') h.tlsa.error = { code: 'ERR_DNS_BOGUS', message: `TLSA lookup error for ${name}:25`, temporary: true }
  if (o.bogusAddress) h.error = { code: 'ERR_DNS_BOGUS', message: `address lookup failed for ${name}`, temporary: true }
  return h
}
function facts(mx: MxHostFacts[], o: Partial<DestinationFacts> = {}): DestinationFacts {
  return {
    domain: 'example.com',
    port: 25,
    mxLookup: true,
    status: 'ok',
    mxSecure: true,
    nullMx: false,
    implicitMx: false,
    canonicalDomain: 'example.com',
    cnames: [],
    mx,
    ...o,
  }
}
const key = parseSocketmapKey('example.com') as SocketmapKey
const enforce = { policy: { mode: 'enforce' as const, mx: ['mx1.example.com', '*.example.net'] }, expiresAt: 1_000_000 + 86400_000 }
const danests = SOCKETMAP_PROFILES['dane+sts']!

describe('parseSocketmapKey', () => {
  const ok: [string, SocketmapKey][] = [
    ['example.com', { destination: 'example.com', domain: 'example.com', mxLookup: true, port: 25 }],
    ['Example.COM.', { destination: 'example.com', domain: 'example.com', mxLookup: true, port: 25 }],
    ['[mx.example.com]', { destination: '[mx.example.com]', domain: 'mx.example.com', mxLookup: false, port: 25 }],
    ['[mx.example.com]:587', { destination: '[mx.example.com]', domain: 'mx.example.com', mxLookup: false, port: 587 }],
    // UTF-8 next hops (Postfix with smtputf8_enable): their A-labels, as DNS knows them (RFC 5891 §4)
    ['bücher.example', { destination: 'xn--bcher-kva.example', domain: 'xn--bcher-kva.example', mxLookup: true, port: 25 }],
    ['Bücher.Example.', { destination: 'xn--bcher-kva.example', domain: 'xn--bcher-kva.example', mxLookup: true, port: 25 }],
    [
      '[MX.bücher.example]:587',
      { destination: '[mx.xn--bcher-kva.example]', domain: 'mx.xn--bcher-kva.example', mxLookup: false, port: 587 },
    ],
  ]
  for (const [k, want] of ok) it(k, () => assert.deepEqual(parseSocketmapKey(k), want))
  // Keys Postfix never sends to smtp_tls_policy_maps, or that are no DNS name: NOTFOUND.
  for (const k of [
    '.example.com',
    '[192.0.2.1]',
    '[ipv6:2001:db8::1]',
    '192.0.2.1',
    '',
    '[]',
    'a..b',
    'ex ample.com',
    'example.com:25',
    '[mx]:0',
    '[mx]:99999',
    'x'.repeat(254),
    // not genuine U-labels: a character that maps to ASCII (the Kelvin sign), a full-width letter, a
    // zero-width space, a space; and a port without brackets
    '\u212aä.example',
    '\uff42ücher.example',
    'b\u00fc\u200bcher.example',
    'bü cher.example',
    'münchen.de:25',
  ])
    it(`${JSON.stringify(k.slice(0, 30))} → undefined`, () => assert.equal(parseSocketmapKey(k), undefined))
})

describe('socketmapAnswer: DANE (RFC 7672)', () => {
  const cases: [string, DestinationFacts, string][] = [
    [
      'every MX with usable validated TLSA → dane-only',
      facts([host('mx1.example.com', 'secure'), host('mx2.example.com', 'secure')]),
      'OK dane-only',
    ],
    ['TLSA at one of two MX → dane', facts([host('mx1.example.com', 'secure'), host('mx2.example.com', 'secure-denial')]), 'OK dane'],
    ['TLSA lookup failure at any MX → TEMP', facts([host('mx1.example.com', 'secure'), host('mx2.example.com', 'lookup-failed')]), 'TEMP '],
    [
      'bogus address answer → TEMP',
      facts([host('mx1.example.com', 'secure'), host('mx2.example.com', 'insecure', { bogusAddress: true })]),
      'TEMP ',
    ],
    [
      'MX lookup failure (deferred) → TEMP',
      facts([], { status: 'deferred', mxSecure: false, error: { code: 'ERR_DNS_BOGUS', message: 'MX lookup failed', temporary: true } }),
      'TEMP ',
    ],
    ['insecure MX → no DANE, no STS → NOTFOUND', facts([host('mx1.example.com', 'not-looked-up')], { mxSecure: false }), 'NOTFOUND '],
    ['secure denial everywhere → NOTFOUND', facts([host('mx1.example.com', 'secure-denial')]), 'NOTFOUND '],
    ['only unusable TLSA → NOTFOUND', facts([host('mx1.example.com', 'secure', { usable: false })]), 'NOTFOUND '],
    ['null MX → NOTFOUND', facts([], { status: 'null-mx', nullMx: true }), 'NOTFOUND '],
  ]
  for (const [name, f, want] of cases)
    it(name, () => {
      const a = socketmapAnswer({ profile: SOCKETMAP_PROFILES.dane!, key, facts: f })
      assert.ok(a.reply.startsWith(want), `${a.reply} (${JSON.stringify(a.trace)})`)
      if (want === 'NOTFOUND ') assert.equal(a.reply, 'NOTFOUND ')
      assert.ok(a.trace.length > 0)
    })
  it('a DANE TEMP is never replaced by an MTA-STS answer (RFC 8461 §2)', () => {
    const a = socketmapAnswer({
      profile: danests,
      key,
      facts: facts([host('mx1.example.com', 'lookup-failed')]),
      sts: enforce,
      now: 1_000_000,
    })
    assert.equal(a.status, 'TEMP')
  })
  it('DANE wins over MTA-STS (RFC 8461 §2)', () => {
    const a = socketmapAnswer({ profile: danests, key, facts: facts([host('mx1.example.com', 'secure')]), sts: enforce, now: 1_000_000 })
    assert.equal(a.reply, 'OK dane-only')
  })
  it('the cache time is the smallest TLSA TTL', () => {
    const a = socketmapAnswer({
      profile: SOCKETMAP_PROFILES.dane!,
      key,
      facts: facts([host('a.example', 'secure', { ttl: 600 }), host('b.example', 'secure', { ttl: 60 })]),
    })
    assert.equal(a.ttl, 60)
  })
})

describe('socketmapAnswer: MTA-STS (RFC 8461)', () => {
  const noDane = facts([host('mx1.example.com', 'secure-denial')])
  it('enforce → secure match=<patterns, *.x as .x> servername=hostname', () => {
    const a = socketmapAnswer({ profile: danests, key, facts: noDane, sts: enforce, now: 1_000_000 })
    assert.equal(a.reply, 'OK secure match=mx1.example.com:.example.net servername=hostname')
    assert.equal(a.ttl, 86400)
  })
  it('the sts profile needs no DNS facts', () => {
    assert.equal(socketmapAnswer({ profile: SOCKETMAP_PROFILES.sts!, key, sts: enforce }).status, 'OK')
  })
  it('testing → NOTFOUND, or may when configured', () => {
    const sts = { policy: { mode: 'testing' as const, mx: ['mx1.example.com'] } }
    assert.equal(socketmapAnswer({ profile: danests, key, facts: noDane, sts }).reply, 'NOTFOUND ')
    assert.equal(socketmapAnswer({ profile: { dane: true, sts: true, testing: 'may' }, key, facts: noDane, sts }).reply, 'OK may')
  })
  it('mode none or no policy → NOTFOUND', () => {
    assert.equal(socketmapAnswer({ profile: danests, key, facts: noDane, sts: { policy: { mode: 'none', mx: [] } } }).reply, 'NOTFOUND ')
    assert.equal(socketmapAnswer({ profile: danests, key, facts: noDane }).reply, 'NOTFOUND ')
  })
  it('the dane profile ignores MTA-STS', () => {
    assert.equal(socketmapAnswer({ profile: SOCKETMAP_PROFILES.dane!, key, facts: noDane, sts: enforce }).reply, 'NOTFOUND ')
  })
  it('[host] nexthops get no MTA-STS answer', () => {
    const k = parseSocketmapKey('[mx1.example.com]')!
    assert.equal(socketmapAnswer({ profile: SOCKETMAP_PROFILES.sts!, key: k, sts: enforce }).reply, 'NOTFOUND ')
  })
})

describe('socketmapAnswer: properties and hostile input', () => {
  const status = fc.constantFrom<TlsaLookupStatus>('secure', 'secure-denial', 'insecure', 'lookup-failed', 'not-looked-up')
  const hosts = fc.array(fc.tuple(status, fc.boolean()), { minLength: 1, maxLength: 5 })
  it('any TLSA lookup failure → TEMP, whatever MTA-STS says; dane-only only when every host has usable TLSA', () => {
    fc.assert(
      fc.property(hosts, fc.boolean(), (hs, withSts) => {
        const mx = hs.map(([st, u], i) => host(`mx${i}.example.com`, st, { usable: u }))
        const a = socketmapAnswer({ profile: danests, key, facts: facts(mx), ...(withSts ? { sts: enforce } : {}) })
        const failed = hs.some(([st]) => st === 'lookup-failed')
        if (failed) assert.equal(a.status, 'TEMP')
        else assert.notEqual(a.status, 'TEMP')
        assert.equal(a.reply === 'OK dane-only', !failed && hs.every(([st, u]) => st === 'secure' && u))
        assert.ok(/^(OK \S|NOTFOUND $|TEMP )/.test(a.reply))
      }),
      { numRuns: 300 },
    )
  })
  it('malformed input is a coded error', () => {
    throwsCoded(() => socketmapAnswer(null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => socketmapAnswer({ profile: danests, key } as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(
      () => socketmapAnswer({ profile: SOCKETMAP_PROFILES.sts!, key, sts: { policy: { mode: 'enforce', mx: ['a b'] } } }),
      'ERR_INVALID_ARGUMENT',
    )
    fc.assert(fc.property(fc.anything(), (v) => onlyCoded(() => socketmapAnswer(v as never), ['ERR_INVALID_ARGUMENT'])))
    fc.assert(fc.property(fc.string(), (k) => onlyCoded(() => parseSocketmapKey(k), [])))
    // whatever the key, a parsed domain is ASCII: nothing else reaches DNS or a reply
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'aü.-[]:5\u212a\u00df\u0130Z'.split('')), maxLength: 30 }), (k) => {
        const p = parseSocketmapKey(k)
        if (p !== undefined) assert.match(p.destination, /^[\x21-\x7e]+$/)
      }),
    )
  })
})
