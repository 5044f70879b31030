// Property tests of the policy engine: the verdict never reports more security than the inputs
// support (RFC 7435 §3), no level above `may` ever yields plaintext, every failure is temporary
// except REQUIRETLS's 5.7.30, and the table parser only ever throws coded errors.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  certificateFingerprint,
  decide,
  mustEncrypt,
  parsePolicyTable,
  resolvePolicy,
  lookupPolicy,
  type ConnectionFacts,
  type PolicyOptions,
  type SecurityLevel,
  type TlsaLookupStatus,
} from '../../src/index.js'
import { onlyCoded } from '../helpers/assert-coded.js'
import { ee, eeWrong, facts, leaf, otherLeaf, pinCert, pinWrong, root, stranger, ta, unusable } from './fixtures.js'

const levels: SecurityLevel[] = ['none', 'may', 'encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure']
const policyText = fc.constantFrom(
  ...levels,
  `fingerprint match=${pinCert}`,
  `fingerprint match=${pinWrong}`,
  'verify match=nexthop',
  'secure match=hostname',
  'secure match=.example.com',
  'encrypt protocols=>=TLSv1.2',
  'may bogus',
)
const tlsaStatus = fc.constantFrom<TlsaLookupStatus>('secure', 'secure-denial', 'insecure', 'lookup-failed', 'not-looked-up')
const records = fc.constantFrom([ee], [ta], [eeWrong], [unusable], [unusable, ee], [])
const chains = fc.oneof(
  fc.constantFrom([], [leaf.der, root.der], [leaf.der], [otherLeaf.der, root.der], [stranger.der]),
  // hostile bytes from the peer: a verdict, never an exception (DESIGN.md §3)
  fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 2 }),
  fc.constant([leaf.der.subarray(0, 60)]),
)
const conn: fc.Arbitrary<ConnectionFacts> = fc.oneof(
  fc.constant<ConnectionFacts>({ starttls: 'not-offered' }),
  fc.constant<ConnectionFacts>({ starttls: 'refused', starttlsReply: '454 4.7.0 no' }),
  fc.constant<ConnectionFacts>({ starttls: 'offered', handshake: 'failed' }),
  fc
    .record({
      starttls: fc.constant<'offered'>('offered'),
      handshake: fc.constant<'ok'>('ok'),
      chain: chains,
      pkix: fc.option(fc.record({ trusted: fc.boolean(), error: fc.constantFrom('CERT_HAS_EXPIRED', 'UNABLE_TO_GET_ISSUER_CERT') }), {
        nil: undefined,
      }),
      protocol: fc.constantFrom('TLSv1.3', 'TLSv1.2', 'TLSv1.1', 'SSLv3'),
      requireTlsAdvertised: fc.boolean(),
    })
    .map((c) => {
      const out: ConnectionFacts = {
        starttls: c.starttls,
        handshake: c.handshake,
        chain: c.chain,
        protocol: c.protocol,
        requireTlsAdvertised: c.requireTlsAdvertised,
      }
      if (c.pkix !== undefined) out.pkix = c.pkix
      return out
    }),
)
const options: fc.Arbitrary<PolicyOptions> = fc.record({
  insecureMxPolicy: fc.constantFrom<'may' | 'encrypt' | 'dane'>('may', 'encrypt', 'dane'),
  defaultLevel: fc.constantFrom(...levels),
  saslConfigured: fc.boolean(),
  mtaStsEnforced: fc.boolean(),
})
const uniform = fc.record({
  policy: fc.option(policyText, { nil: undefined }),
  mxSecure: fc.boolean(),
  mxLookup: fc.boolean(),
  host: fc.constantFrom('mx.example.com', 'mail.example.org'),
  domain: fc.constantFrom('example.com', 'example.org'),
  tlsa: tlsaStatus,
  records,
  conn,
  options,
  requireTls: fc.boolean(),
  tlsRequiredNo: fc.boolean(),
})

type Scenario = typeof uniform extends fc.Arbitrary<infer T> ? T : never

/**
 * Uniform scenarios rarely reach a level's interesting path (a half-dane host with a chain that matches its
 * TLSA came up 2 times in 1,500). So every effective level also gets a targeted branch, as often as the
 * uniform one: DNS facts and a policy that land on that level, and mostly a connection that completes TLS
 * with the leaf the records and pins name. `PATHS` lists the (level, verdict) pairs each must reach.
 */
const GOOD_TLS: ConnectionFacts = {
  starttls: 'offered',
  handshake: 'ok',
  chain: [leaf.der, root.der],
  pkix: { trusted: true },
  protocol: 'TLSv1.3',
}
const targets: Array<{ level: string; set: Partial<Scenario> }> = [
  { level: 'none', set: { policy: 'none' } },
  { level: 'may', set: { policy: 'may' } },
  { level: 'encrypt', set: { policy: 'encrypt' } },
  { level: 'fingerprint', set: { policy: `fingerprint match=${pinCert}` } },
  { level: 'verify', set: { policy: 'verify', host: 'mx.example.com' } },
  { level: 'secure', set: { policy: 'secure match=hostname', host: 'mx.example.com' } },
  { level: 'dane', set: { policy: 'dane', mxSecure: true, tlsa: 'secure', host: 'mx.example.com' } },
  { level: 'dane-only', set: { policy: 'dane-only', mxSecure: true, tlsa: 'secure', host: 'mx.example.com' } },
  // postconf(5) smtp_tls_dane_insecure_mx_policy=dane: an insecure MX RRset, secure TLSA → half-dane
  { level: 'half-dane', set: { policy: 'dane', mxSecure: false, mxLookup: true, tlsa: 'secure', host: 'mx.example.com' } },
]
function targeted(t: (typeof targets)[number]): fc.Arbitrary<Scenario> {
  return fc
    .tuple(
      uniform,
      fc.constantFrom([ee], [ta], [unusable, ee]),
      fc.oneof({ weight: 3, arbitrary: fc.constant(GOOD_TLS) }, { weight: 1, arbitrary: conn }),
    )
    .map(([s, recs, c]): Scenario => ({
      ...s,
      mxLookup: true,
      records: recs,
      conn: c,
      requireTls: false,
      tlsRequiredNo: false,
      options: { ...s.options, insecureMxPolicy: 'dane' },
      ...t.set,
    }))
}
/** One branch in ten is uniform, each of the nine targeted branches gets one in ten. */
const scenario = fc.oneof(uniform, ...targets.map(targeted))
/** (effective level, verdict) pairs the evidence test must see at least `MIN_HITS` times each in its 1,500 runs. */
const PATHS = [
  'none:plaintext',
  'may:trusted',
  'encrypt:trusted',
  'fingerprint:verified',
  'verify:verified',
  'secure:verified',
  'dane:verified',
  'dane-only:verified',
  'half-dane:trusted',
]
const MIN_HITS = 50

function evaluate(s: Scenario) {
  const f = facts({ mxSecure: s.mxSecure, mxLookup: s.mxLookup, host: s.host, domain: s.domain, tlsa: s.tlsa, records: [...s.records] })
  const policy =
    s.policy === undefined ? undefined : lookupPolicy(parsePolicyTable(`${s.domain} ${s.policy}`, { onError: 'defer' }), s.domain)
  const eff = resolvePolicy({ policy, ...f, options: s.options, message: { requireTls: s.requireTls, tlsRequiredNo: s.tlsRequiredNo } })
  const v = decide(eff, s.conn)
  return { f, eff, v }
}

/** No shrinking: each run verifies real chains, and shrinking a scenario this size outlasts the test's time bound. */
const RUNS = { numRuns: 1500, endOnFailure: true }

describe('verdict properties (RFC 7435 §3: never claim more than was achieved)', () => {
  it('no effective level above may yields plaintext; plaintext never follows a completed handshake except at none', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { eff, v } = evaluate(s)
        if (mustEncrypt(eff.level)) assert.notEqual(v.status, 'plaintext')
        if (v.status === 'plaintext') assert.ok(eff.level === 'none' || s.conn.starttls !== 'offered')
      }),
      RUNS,
    )
  })

  it('a configured level above may never yields plaintext unless DNS facts or TLS-Required: No lowered it', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { eff, v } = evaluate(s)
        if (v.status !== 'plaintext') return
        const lowered = eff.level !== eff.configuredLevel || s.tlsRequiredNo
        assert.ok(!mustEncrypt(eff.configuredLevel) || lowered, `${eff.configuredLevel} → ${eff.level}`)
        assert.ok(eff.trace.some((t) => /→ may|→ none|TLS-Required/.test(t.rule)) || !mustEncrypt(eff.configuredLevel))
      }),
      RUNS,
    )
  })

  it('verified, trusted, untrusted and anonymous each need the evidence they name', () => {
    const hits = new Map<string, number>()
    fc.assert(
      fc.property(scenario, (s) => {
        const { f, eff, v } = evaluate(s)
        const path = `${eff.level}:${v.status}`
        hits.set(path, (hits.get(path) ?? 0) + 1)
        const c = s.conn
        const tlsUp = c.starttls === 'offered' && c.handshake === 'ok'
        const leafPresent = (c.chain?.length ?? 0) > 0
        if (v.status === 'verified') {
          assert.ok(tlsUp && leafPresent)
          assert.ok(['fingerprint', 'dane', 'dane-only', 'verify', 'secure'].includes(eff.level))
          if (eff.level === 'dane' || eff.level === 'dane-only') {
            // DANE "verified" only with a secure TLSA RRset and (when MX matters) a secure MX RRset.
            assert.equal(f.host.tlsa.status, 'secure')
            assert.ok(s.mxSecure || !s.mxLookup)
          }
          if (eff.level === 'verify' || eff.level === 'secure') assert.equal(c.pkix?.trusted, true)
          if (eff.level === 'fingerprint') {
            const pins = [certificateFingerprint(c.chain![0]!), certificateFingerprint(c.chain![0]!, { of: 'publicKey' })]
            assert.ok(
              pins.some((p) => v.matched?.includes(p) && eff.pins?.includes(p)),
              'a configured pin of the presented leaf',
            )
          }
        }
        if (v.status === 'trusted') {
          assert.ok(tlsUp && leafPresent)
          assert.ok(c.pkix?.trusted === true || eff.level === 'half-dane')
        }
        if (v.status === 'untrusted') assert.ok(tlsUp && leafPresent)
        if (v.status === 'anonymous') assert.ok(tlsUp && !leafPresent)
        assert.notEqual(eff.level === 'half-dane' && v.status === 'verified', true, 'half-dane is never verified')
      }),
      RUNS,
    )
    // The paths above were exercised, not just reachable: a half-dane host whose chain matched its TLSA
    // (the only way to tempt "verified"), and each level's own success path.
    for (const p of PATHS) assert.ok((hits.get(p) ?? 0) >= MIN_HITS, `${p} reached ${hits.get(p) ?? 0} times (< ${MIN_HITS})`)
  })

  it('every deferral is temporary 4.7.x, except REQUIRETLS 5.7.30; plaintext retry only at may', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { eff, v } = evaluate(s)
        assert.equal(v.deliver, v.status !== 'deferred')
        if (v.status === 'deferred') {
          const e = v.error!
          if (e.temporary) assert.match(e.enhancedStatus ?? '', /^4\.7\.\d$/)
          else {
            assert.equal(e.code, 'ERR_REQUIRETLS')
            assert.equal(e.enhancedStatus, '5.7.30')
            assert.ok(s.requireTls)
          }
        } else assert.equal(v.error, undefined)
        if (v.plaintextRetry) {
          assert.equal(eff.level, 'may')
          assert.equal(v.status, 'deferred')
          assert.ok(!s.requireTls && !s.options.saslConfigured)
        }
      }),
      RUNS,
    )
  })

  it('with REQUIRETLS, delivery happens only over DANE- or MTA-STS-verified TLS with REQUIRETLS advertised', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        if (!s.requireTls) return
        const { v } = evaluate(s)
        if (v.deliver) {
          assert.equal(v.status, 'verified')
          assert.equal(s.conn.requireTlsAdvertised, true)
          assert.ok(['dane', 'dane-only'].includes(v.level) || s.options.mtaStsEnforced)
        }
      }),
      RUNS,
    )
  })
})

describe('policy table parser properties', () => {
  const tableChars = fc.constantFrom(
    ...'ab.-_:[]|=,{}# \t\n\r0123456789>!<'.split(''),
    'may',
    'secure',
    'match=',
    'fingerprint',
    'protocols=',
    'TLSv1.2',
  )
  const tableText = fc.array(tableChars, { maxLength: 60 }).map((a) => a.join(''))
  it('throws nothing but ERR_POLICY_SYNTAX', () => {
    fc.assert(
      fc.property(fc.oneof(tableText, fc.string({ maxLength: 80 })), (t) => onlyCoded(() => parsePolicyTable(t), ['ERR_POLICY_SYNTAX'])),
      { numRuns: 3000 },
    )
  })
  it('lenient mode never throws, and every lookup of a defective entry defers', () => {
    fc.assert(
      fc.property(tableText, (t) => {
        const table = parsePolicyTable(t, { onError: 'defer' })
        for (const [key, e] of table.entries) {
          if (e.policy.defect === undefined) continue
          const eff = resolvePolicy({ policy: e.policy, ...facts({ domain: key }) })
          assert.equal(eff.error?.code, 'ERR_POLICY_SYNTAX')
          assert.equal(decide(eff, { starttls: 'not-offered' }).status, 'deferred')
        }
      }),
      { numRuns: 2000 },
    )
  })
  it('a strict parse that succeeds equals the lenient parse', () => {
    fc.assert(
      fc.property(tableText, (t) => {
        let strict
        try {
          strict = parsePolicyTable(t)
        } catch {
          return
        }
        const lenient = parsePolicyTable(t, { onError: 'defer' })
        assert.deepEqual([...lenient.entries], [...strict.entries])
        assert.equal(lenient.errors.length, 0)
      }),
      { numRuns: 2000 },
    )
  })
})
