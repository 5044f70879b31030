import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  CONFIGURABLE_LEVELS,
  isDaneBased,
  isOpportunistic,
  isSecurityLevel,
  levelRank,
  minLevel,
  mustEncrypt,
  mustMatch,
  mustPkix,
  resolvePolicy,
  SECURITY_LEVELS,
  type DestinationFacts,
  type EffectiveLevel,
  type MxHostFacts,
} from '../../src/index.js'

describe('security levels as data (Postfix tls.h TLS_LEV_*)', () => {
  it('are in Postfix order, half-dane between fingerprint and dane', () => {
    assert.deepEqual(SECURITY_LEVELS, ['none', 'may', 'encrypt', 'fingerprint', 'half-dane', 'dane', 'dane-only', 'verify', 'secure'])
    assert.deepEqual(
      CONFIGURABLE_LEVELS,
      SECURITY_LEVELS.filter((l) => l !== 'half-dane'),
    )
    SECURITY_LEVELS.forEach((l, i) => assert.equal(levelRank(l), i))
  })
  // [level, mustEncrypt (TLS_REQUIRED), mustMatch (TLS_MUST_MATCH), mustPkix (TLS_MUST_PKIX), opportunistic (TLS_OPPORTUNISTIC), dane-based]
  const rows: Array<[EffectiveLevel, boolean, boolean, boolean, boolean, boolean]> = [
    ['none', false, false, false, false, false],
    ['may', false, false, false, true, false],
    ['encrypt', true, false, false, false, false],
    ['fingerprint', true, true, false, false, false],
    ['half-dane', true, true, false, false, true],
    ['dane', true, true, false, true, true],
    ['dane-only', true, true, false, false, true],
    ['verify', true, true, true, false, false],
    ['secure', true, true, true, false, false],
  ]
  for (const [l, enc, match, pkix, opp, dane] of rows) {
    it(`${l}: encrypt=${enc} match=${match} pkix=${pkix} opportunistic=${opp} dane=${dane}`, () => {
      assert.equal(mustEncrypt(l), enc)
      assert.equal(mustMatch(l), match)
      assert.equal(mustPkix(l), pkix)
      assert.equal(isOpportunistic(l), opp)
      assert.equal(isDaneBased(l), dane)
    })
  }
  it('isSecurityLevel accepts configurable names only (tls_level_lookup rejects half-dane)', () => {
    for (const l of CONFIGURABLE_LEVELS) assert.ok(isSecurityLevel(l))
    for (const x of ['half-dane', 'MAY', 'toString', '', undefined, 3]) assert.equal(isSecurityLevel(x), false, String(x))
  })
  it('minLevel caps (TLS-Required: No caps at may)', () => {
    assert.equal(minLevel('secure', 'may'), 'may')
    assert.equal(minLevel('none', 'may'), 'none')
  })
})

describe('resolver facts fit resolvePolicy as they are (src/dns/types.ts)', () => {
  it('DestinationFacts and MxHostFacts are accepted without mapping', () => {
    const host: MxHostFacts = {
      host: 'mx.example.com',
      preference: 10,
      canonicalHost: 'mx.example.com',
      cnames: [],
      addresses: [{ address: '192.0.2.1', family: 4 }],
      addressSecure: true,
      tlsa: {
        status: 'lookup-failed',
        records: [],
        qname: '_25._tcp.mx.example.com',
        base: 'mx.example.com',
        candidates: [],
        cnames: [],
        ttl: 0,
        error: { code: 'ERR_DNS_SERVFAIL', message: 'SERVFAIL from 127.0.0.1', temporary: true },
      },
      referenceNames: ['mx.example.com', 'example.com'],
      usable: false,
    }
    const destination: DestinationFacts = {
      domain: 'example.com',
      port: 25,
      mxLookup: true,
      status: 'ok',
      mxSecure: true,
      nullMx: false,
      implicitMx: false,
      canonicalDomain: 'example.com',
      cnames: [],
      mx: [host],
    }
    const eff = resolvePolicy({ policy: { level: 'dane' }, destination, host: destination.mx[0]! })
    assert.equal(eff.error?.code, 'ERR_DANE_TLSA_LOOKUP')
    assert.match(eff.error?.message ?? '', /TLSA lookup error for mx\.example\.com:25: SERVFAIL from 127\.0\.0\.1/)
  })
})
