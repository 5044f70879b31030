import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkTlsaUsability, createTlsaRecord, formatTlsaRecord, parseTlsaRecord, type TlsaRecord } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert } from '../helpers/openssl.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=mx.test' })
const full00 = formatTlsaRecord(createTlsaRecord(cert.der, { usage: 3, selector: 0, matchingType: 0 })).slice(6)
const full10 = formatTlsaRecord(createTlsaRecord(cert.der, { usage: 3, selector: 1, matchingType: 0 })).slice(6)
const d32 = 'ab'.repeat(32)
const d64 = 'cd'.repeat(64)

const r = (s: string): TlsaRecord => parseTlsaRecord(s)

describe('checkTlsaUsability: one record at a time', () => {
  // [record, usable under smtp?, reason pattern when unusable, why]
  const table: Array<[string, boolean, RegExp | null, string]> = [
    [`3 1 1 ${d32}`, true, null, 'DANE-EE SPKI SHA2-256 (RFC 7671 §5.1 recommended form)'],
    [`2 0 1 ${d32}`, true, null, 'DANE-TA Cert SHA2-256'],
    [`3 1 2 ${d64}`, true, null, 'SHA2-512 digest of the right length'],
    [`3 0 0 ${full00}`, true, null, 'Full(0) Cert(0) holding exactly one DER certificate'],
    [`3 1 0 ${full10}`, true, null, 'Full(0) SPKI(1) holding exactly one DER SPKI'],
    [`0 0 1 ${d32}`, false, /PKIX-TA\(0\) is not usable for SMTP \(RFC 7672 §3\.1\.3\)/, 'PKIX-TA under the SMTP profile'],
    [`1 1 1 ${d32}`, false, /PKIX-EE\(1\) is not usable for SMTP/, 'PKIX-EE under the SMTP profile'],
    [`4 1 1 ${d32}`, false, /unknown certificate usage 4/, 'usage 4 is unassigned (RFC 6698 §4.1)'],
    [`3 2 1 ${d32}`, false, /unknown selector 2/, 'selector 2 is unassigned'],
    [`3 1 3 ${d32}`, false, /unknown matching type 3/, 'matching type 3 is unassigned'],
    [`255 1 1 ${d32}`, false, /private-use/, 'PrivCert from DNS'],
    [`3 255 1 ${d32}`, false, /private-use/, 'PrivSel from DNS'],
    [`3 1 255 ${d32}`, false, /private-use/, 'PrivMatch from DNS'],
    [`3 1 1 ${d32}00`, false, /SHA2-256 data is 33 bytes, expected 32/, 'SHA2-256 digest one byte too long'],
    [`3 1 2 ${d32}`, false, /SHA2-512 data is 32 bytes, expected 64/, 'SHA2-256-length data under SHA2-512'],
    [`3 0 0 ${full00}00`, false, /not exactly one DER certificate/, 'Full certificate with a trailing byte (RFC 7671 §10.3)'],
    [`3 0 0 ${full10}`, false, /not exactly one DER certificate/, 'an SPKI where a certificate is expected'],
    [`3 1 0 ${full00}`, false, /not exactly one DER SubjectPublicKeyInfo/, 'a certificate where an SPKI is expected'],
    [`3 1 0 ${full10.slice(0, -2)}`, false, /not exactly one DER SubjectPublicKeyInfo/, 'truncated SPKI'],
    ['3 1 0 3000', false, /not exactly one DER SubjectPublicKeyInfo/, 'empty SEQUENCE is not an SPKI'],
  ]
  for (const [text, usable, reason, why] of table) {
    it(why, () => {
      const res = checkTlsaUsability([r(text)])
      assert.equal(res.usable.length, usable ? 1 : 0)
      assert.equal(res.unusable.length, usable ? 0 : 1)
      if (reason) assert.match(res.unusable[0]!.reason, reason)
    })
  }
  it('the generic profile accepts PKIX usages (RFC 6698)', () => {
    const res = checkTlsaUsability([r(`0 0 1 ${d32}`), r(`1 1 1 ${d32}`)], { profile: 'generic' })
    assert.equal(res.usable.length, 2)
  })
})

describe('checkTlsaUsability: digest agility (RFC 7671 §9)', () => {
  it('keeps only the strongest digest per usage+selector, and Full records regardless', () => {
    const set = [r(`3 1 1 ${d32}`), r(`3 1 2 ${d64}`), r(`3 1 0 ${full10}`), r(`3 0 1 ${d32}`), r(`2 1 1 ${d32}`)]
    const res = checkTlsaUsability(set)
    assert.deepEqual(
      res.usable.map((x) => `${x.usage} ${x.selector} ${x.matchingType}`),
      ['3 1 2', '3 1 0', '3 0 1', '2 1 1'],
    )
    assert.equal(res.unusable.length, 1)
    assert.match(res.unusable[0]!.reason, /superseded by stronger sha512/)
  })
  it('a malformed SHA2-512 record does not supersede a good SHA2-256 one', () => {
    const res = checkTlsaUsability([r(`3 1 1 ${d32}`), r(`3 1 2 ${d32}`)])
    assert.deepEqual(
      res.usable.map((x) => x.matchingType),
      [1],
    )
  })
  it('the digest order is configurable (OpenSSL danetest ranks sha256 first)', () => {
    const res = checkTlsaUsability([r(`3 1 1 ${d32}`), r(`3 1 2 ${d64}`)], { digests: ['sha256', 'sha512'] })
    assert.deepEqual(
      res.usable.map((x) => x.matchingType),
      [1],
    )
  })
  it('a digest left out of the list is unusable', () => {
    const res = checkTlsaUsability([r(`3 1 1 ${d32}`)], { digests: ['sha512'] })
    assert.equal(res.usable.length, 0)
    assert.match(res.unusable[0]!.reason, /not among the enabled digests/)
  })
  it('unusable records keep the order of the RRset', () => {
    const set = [r(`0 1 1 ${d32}`), r(`3 1 1 ${d32}`), r(`3 1 2 ${d64}`), r(`9 1 1 ${d32}`)]
    const res = checkTlsaUsability(set)
    assert.deepEqual(
      res.unusable.map((u) => u.record),
      [set[0], set[1], set[3]],
    )
  })
})

describe('checkTlsaUsability: bad options are coded errors', () => {
  it('records not an array', () => void throwsCoded(() => checkTlsaUsability('3 1 1' as never), 'ERR_INVALID_ARGUMENT'))
  it('unknown profile', () => void throwsCoded(() => checkTlsaUsability([], { profile: 'web' as never }), 'ERR_INVALID_ARGUMENT'))
  it('unknown digest', () => void throwsCoded(() => checkTlsaUsability([], { digests: ['md5' as never] }), 'ERR_INVALID_ARGUMENT'))
  it('a non-record entry is reported unusable, not thrown', () => {
    const res = checkTlsaUsability([null as never, { usage: 3 } as never])
    assert.equal(res.unusable.length, 2)
  })
})
