// MX matching (RFC 8461 §4.1), the cache decision (§3.3, §5.1, §10.2), DANE/MTA-STS precedence (§2)
// and the per-connection verdict (§4.2, §5) with its TLS-RPT result type (RFC 8460 §4.3).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  decideMtaStsCache,
  mtaStsMatchesMx,
  mtaStsVerdict,
  parseMtaStsPolicy,
  parseTlsaRecord,
  selectTransportPolicy,
  type CachedMtaStsPolicy,
  type MtaStsConnectionFacts,
} from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

describe('mtaStsMatchesMx (RFC 8461 §4.1)', () => {
  const policy = { mx: ['mail.example.com', '*.example.net', 'xn--mnchen-3ya.example'] }
  const cases: [string, boolean, string][] = [
    ['mail.example.com', true, 'exact'],
    ['MAIL.Example.COM.', true, 'case-insensitive, trailing dot ignored'],
    ['mx1.example.net', true, 'wildcard: one label'],
    ['example.net', false, 'wildcard needs a label'],
    ['a.b.example.net', false, 'wildcard matches exactly one label'],
    ['xexample.net', false, 'suffix must start at a label boundary'],
    ['other.example.com', false, 'exact pattern only'],
    ['münchen.example', true, 'U-label host compared as A-label'],
    ['*.example.net', false, 'a pattern is not a host name'],
    ['', false, 'empty'],
    ['bad name.example.net', false, 'not a DNS name'],
  ]
  for (const [host, want, why] of cases) {
    it(`${JSON.stringify(host)} → ${want} (${why})`, () => assert.equal(mtaStsMatchesMx(policy, host), want))
  }
  it('matches a hand-built policy with upper-case patterns', () => {
    assert.equal(mtaStsMatchesMx({ mx: ['*.Example.NET.'] }, 'mx.example.net'), true)
  })
  it('refuses a malformed policy with a coded error', () => {
    throwsCoded(() => mtaStsMatchesMx(null as never, 'a'), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => mtaStsMatchesMx({ mx: [1] } as never, 'a'), 'ERR_INVALID_ARGUMENT')
  })
})

const policy = parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n')
const T0 = Date.UTC(2026, 0, 1)
const cached: CachedMtaStsPolicy = { policy, id: 'abc', fetchedAt: T0 }
const H = 3600_000

describe('decideMtaStsCache', () => {
  it('fresh: unexpired, same id → use', () => {
    const d = decideMtaStsCache({ now: T0 + H, cached, txt: { status: 'found', id: 'abc' } })
    assert.equal(d.action, 'use')
    assert.equal(d.action === 'use' && d.reason, 'fresh')
    assert.equal(d.action === 'use' && d.refresh, false)
  })
  it('id changed → fetch; the fetch failing keeps the cached policy', () => {
    const d = decideMtaStsCache({ now: T0 + H, cached, txt: { status: 'found', id: 'def' } })
    assert.deepEqual([d.action, d.reason], ['fetch', 'id-changed'])
    const e = decideMtaStsCache({ now: T0 + H, cached, txt: { status: 'found', id: 'def' }, fetchFailed: true })
    assert.deepEqual([e.action, e.reason], ['use', 'fetch-failed'])
  })
  it('TXT absent or failing does not switch an unexpired policy off (§10.2)', () => {
    for (const status of ['absent', 'failed'] as const) {
      const d = decideMtaStsCache({ now: T0 + H, cached, txt: { status } })
      assert.deepEqual([d.action, d.reason], ['use', 'txt-unavailable'])
    }
  })
  it('expired: discard, then fetch, no policy, or none after a failed fetch (§5)', () => {
    const now = T0 + 86400_000
    const a = decideMtaStsCache({ now, cached, txt: { status: 'found', id: 'abc' } })
    assert.deepEqual([a.action, a.reason, a.discard], ['fetch', 'expired', true])
    const b = decideMtaStsCache({ now, cached, txt: { status: 'absent' } })
    assert.deepEqual([b.action, b.reason, b.discard], ['none', 'no-record', true])
    const c = decideMtaStsCache({ now, cached, txt: { status: 'found', id: 'abc' }, fetchFailed: true })
    assert.deepEqual([c.action, c.reason], ['none', 'fetch-failed'])
    const d = decideMtaStsCache({ now: new Date(now - 1), cached, txt: { status: 'found', id: 'abc' } })
    assert.equal(d.action, 'use') // one ms before expiry
  })
  it('nothing cached: fetch on a record, none without', () => {
    assert.equal(decideMtaStsCache({ now: T0, txt: { status: 'found', id: 'x' } }).reason, 'not-cached')
    assert.equal(decideMtaStsCache({ now: T0, txt: { status: 'failed' } }).reason, 'txt-lookup-failed')
  })
  it('proactive refresh inside [expiry − 2·ahead, expiry − ahead], placed by the jitter', () => {
    // default ahead = max_age / 10 = 8640 s
    const ahead = 8640_000
    const exp = T0 + 86400_000
    const at = (now: number, jitter: number) => {
      const d = decideMtaStsCache({ now, cached, txt: { status: 'found', id: 'abc' }, jitter })
      assert.equal(d.action, 'use')
      return d.action === 'use' && d.refresh
    }
    assert.equal(at(exp - ahead - 1, 0), false)
    assert.equal(at(exp - ahead, 0), true)
    assert.equal(at(exp - 2 * ahead, 1), true)
    assert.equal(at(exp - 2 * ahead - 1, 1), false)
    assert.equal(at(exp - 1.5 * ahead, 0.5), true)
    assert.equal(at(exp - 1.5 * ahead - 1, 0.5), false)
    const d = decideMtaStsCache({ now: exp - 10_000, cached, txt: { status: 'found', id: 'abc' }, refreshAheadSeconds: 5 })
    assert.equal(d.action === 'use' && d.refresh, false)
  })
  it('refuses malformed input with a coded error', () => {
    const bad = [
      null,
      { now: NaN, txt: { status: 'absent' } },
      { now: T0, txt: { status: 'maybe' } },
      { now: T0, txt: { status: 'found' } },
      { now: T0, txt: { status: 'absent' }, jitter: 2 },
      { now: T0, cached: { id: 'a', fetchedAt: T0 }, txt: { status: 'absent' } },
      { now: T0, cached, txt: { status: 'found', id: 'abc' }, refreshAheadSeconds: -1 },
    ]
    for (const b of bad) throwsCoded(() => decideMtaStsCache(b as never), 'ERR_INVALID_ARGUMENT')
  })
})

const usable = parseTlsaRecord('3 1 1 ' + 'ab'.repeat(32))
const unusable = parseTlsaRecord('0 0 1 ' + 'ab'.repeat(32)) // PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3)

describe('selectTransportPolicy (RFC 8461 §2)', () => {
  const enforce = policy
  const testing = parseMtaStsPolicy('version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 86400\n')
  const none = parseMtaStsPolicy('version: STSv1\nmode: none\nmax_age: 86400\n')
  const cases: [string, Parameters<typeof selectTransportPolicy>[0], string, string][] = [
    ['usable validated TLSA wins over enforce', { tlsa: { status: 'secure', records: [usable] }, sts: enforce }, 'dane', 'tlsa'],
    ['usable given as a fact', { tlsa: { status: 'secure', usable: true }, sts: enforce }, 'dane', 'tlsa'],
    ['TLSA lookup failure defers, never STS', { tlsa: { status: 'lookup-failed' }, sts: enforce }, 'defer', 'tlsa'],
    ['TLSA lookup failure without STS defers', { tlsa: { status: 'lookup-failed' } }, 'defer', 'tlsa'],
    ['all TLSA unusable → STS enforce', { tlsa: { status: 'secure', records: [unusable] }, sts: enforce }, 'sts-enforce', 'sts'],
    ['all TLSA unusable, no STS → DANE (mandatory TLS)', { tlsa: { status: 'secure', records: [unusable] } }, 'dane', 'tlsa'],
    ['secure denial → STS testing', { tlsa: { status: 'secure-denial' }, sts: testing }, 'sts-testing', 'sts'],
    ['insecure TLSA → STS enforce', { tlsa: { status: 'insecure', records: [usable] }, sts: enforce }, 'sts-enforce', 'sts'],
    ['not looked up, mode none', { tlsa: { status: 'not-looked-up' }, sts: none }, 'none', 'sts'],
    ['nothing at all', { tlsa: { status: 'not-looked-up' } }, 'none', 'no-policy-found'],
  ]
  for (const [why, input, applies, type] of cases) {
    it(why, () => {
      const c = selectTransportPolicy(input)
      assert.equal(c.applies, applies)
      assert.equal(c.policyType, type)
      assert.ok(c.trace.length > 0 && c.trace.every((t) => t.rule && t.ref))
    })
  }
  it('a bogus TLSA answer carries dnssec-invalid', () => {
    const c = selectTransportPolicy({ tlsa: { status: 'lookup-failed', error: { code: 'ERR_DNS_BOGUS' } }, sts: enforce })
    assert.deepEqual([c.applies, c.tlsrpt], ['defer', 'dnssec-invalid'])
  })
  it('refuses malformed input with a coded error', () => {
    throwsCoded(() => selectTransportPolicy({} as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => selectTransportPolicy({ tlsa: { status: 'weird' } } as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => selectTransportPolicy({ tlsa: { status: 'secure' } } as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => selectTransportPolicy({ tlsa: { status: 'insecure' }, sts: { mode: 'x', mx: [] } } as never), 'ERR_INVALID_ARGUMENT')
  })
})

describe('mtaStsVerdict (RFC 8461 §4-§5)', () => {
  const ok: MtaStsConnectionFacts = {
    mxHost: 'mx1.example.com',
    starttls: 'offered',
    handshake: 'ok',
    pkix: { trusted: true, nameMatches: true },
  }
  const testing = { ...policy, mode: 'testing' as const }
  it('accepts a matching MX with a PKIX-valid certificate', () => {
    const v = mtaStsVerdict(policy, ok)
    assert.equal(v.ok, true)
    assert.equal(v.ok && v.pattern, '*.example.com')
  })
  it('judges the MX name alone before connecting', () => {
    assert.equal(mtaStsVerdict(policy, { mxHost: 'mx1.example.com' }).ok, true)
  })
  const failures: [string, MtaStsConnectionFacts, string][] = [
    ['MX not in the policy', { ...ok, mxHost: 'mx.evil.example' }, 'validation-failure'],
    ['STARTTLS not offered', { ...ok, starttls: 'not-offered' }, 'starttls-not-supported'],
    ['STARTTLS refused', { ...ok, starttls: 'refused' }, 'starttls-not-supported'],
    ['handshake failed', { ...ok, handshake: 'failed' }, 'validation-failure'],
    ['no PKIX result', { mxHost: 'mx1.example.com', starttls: 'offered', handshake: 'ok' }, 'certificate-not-trusted'],
    [
      'untrusted chain',
      { ...ok, pkix: { trusted: false, nameMatches: true, error: 'UNABLE_TO_GET_ISSUER_CERT' } },
      'certificate-not-trusted',
    ],
    ['expired', { ...ok, pkix: { trusted: false, expired: true, nameMatches: true } }, 'certificate-expired'],
    ['name mismatch', { ...ok, pkix: { trusted: true, nameMatches: false } }, 'certificate-host-mismatch'],
  ]
  for (const [why, facts, result] of failures) {
    it(`${why} → ${result}; enforce refuses, testing delivers`, () => {
      const e = mtaStsVerdict(policy, facts)
      assert.equal(e.ok, false)
      if (e.ok) return
      assert.equal(e.result, result)
      assert.equal(e.deliver, false)
      assert.equal(e.enhancedStatus, '4.7.5')
      const t = mtaStsVerdict(testing, facts)
      assert.equal(!t.ok && t.deliver, true)
    })
  }
  it('carries the stack reason as failure-reason-code', () => {
    const v = mtaStsVerdict(policy, { ...ok, pkix: { trusted: false, nameMatches: true, error: 'SELF_SIGNED_CERT_IN_CHAIN' } })
    assert.equal(!v.ok && v.failureReasonCode, 'SELF_SIGNED_CERT_IN_CHAIN')
  })
  it('mode none checks nothing', () => {
    assert.equal(mtaStsVerdict({ mode: 'none', mx: [] }, { mxHost: 'anything.example', starttls: 'not-offered' }).ok, true)
  })
  it('refuses malformed input with a coded error', () => {
    throwsCoded(() => mtaStsVerdict(policy, null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => mtaStsVerdict({ mode: 'strict', mx: [] } as never, ok), 'ERR_INVALID_ARGUMENT')
  })
})
