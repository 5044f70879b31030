import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createTlsaRecord, parseTlsaRecord, verifyDane, type DaneResult, type DaneVerifyInput, type TlsaRecord } from '../../src/index.js'
import { sliceCertificate } from '../../src/x509/der.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert, openssl, tempDir, type CertOptions, type Issued } from '../helpers/openssl.js'

const DAY = 86_400_000
const cert = (o: CertOptions) => makeCert({ days: 3650, ...o })
const root = cert({ subject: '/CN=Unit Root', ca: true })
const int = cert({ subject: '/CN=Unit Int', ca: true, issuer: root })
const leaf = cert({ subject: '/CN=mx.example.com', dns: ['mx.example.com'], issuer: int, days: 30 })
const chain = [leaf.der, int.der, root.der]
// an hour after the certificates were made (their notBefore is the time of creation)
const now = new Date(Date.now() + 3_600_000)
const rec = (c: Issued, usage: number, selector = 1, matchingType = 1): TlsaRecord =>
  createTlsaRecord(c.der, { usage, selector, matchingType })
const run = (o: Partial<DaneVerifyInput>): DaneResult => verifyDane({ records: [], chain, names: ['mx.example.com'], now, ...o })
const failsWith = (res: DaneResult, code: string, re?: RegExp) => {
  assert.ok(!res.ok, `expected ${code}, got ${JSON.stringify(res)}`)
  assert.equal(res.code, code, res.detail)
  if (re) assert.match(res.detail, re)
}

describe('verifyDane: results', () => {
  it('DANE-EE: success at depth 0, no name', () => {
    const res = run({ records: [rec(leaf, 3)], names: ['unrelated.example'] })
    assert.deepEqual(res, { ok: true, record: rec(leaf, 3), depth: 0, usage: 'DANE-EE' })
  })
  it('DANE-EE ignores expiry and the rest of the chain (RFC 7672 §3.1.1)', () => {
    const garbage = new Uint8Array([1, 2, 3])
    const res = run({ records: [rec(leaf, 3, 0, 2)], chain: [leaf.der, garbage], now: new Date(now.getTime() + 900 * DAY) })
    assert.ok(res.ok && res.depth === 0)
  })
  it('DANE-TA: success with the matched name and anchor source', () => {
    const res = run({ records: [rec(int, 2, 0, 1)], names: ['other.example', 'MX.example.com.'] })
    assert.ok(res.ok)
    assert.equal(res.depth, 1)
    assert.equal(res.usage, 'DANE-TA')
    assert.equal(res.name, 'MX.example.com.')
    assert.equal(res.anchor, 'chain')
  })
  it('Postfix-style .domain reference', () => {
    const res = run({ records: [rec(root, 2)], names: ['.example.com'] })
    assert.ok(res.ok && res.depth === 2 && res.name === '.example.com')
  })
  it('off-chain anchors: 2 0 0 sits above the path, 2 1 0 at the certificate it signed', () => {
    const a = run({ records: [rec(root, 2, 0, 0)], chain: [leaf.der, int.der] })
    assert.ok(a.ok && a.depth === 2 && a.anchor === 'dns-certificate', JSON.stringify(a))
    const b = run({ records: [rec(int, 2, 1, 0)], chain: [leaf.der] })
    assert.ok(b.ok && b.depth === 0 && b.anchor === 'dns-public-key', JSON.stringify(b))
    const c = run({ records: [rec(root, 2, 1, 0)], chain: [leaf.der, int.der] })
    assert.ok(c.ok && c.depth === 1, JSON.stringify(c))
  })
  it('a TA record of the leaf does not authenticate, also as 2 0 0 (RFC 7671 §5.2)', () => {
    failsWith(run({ records: [rec(leaf, 2, 0, 1)] }), 'ERR_DANE_NO_MATCH', /2 0 1 [0-9a-f]{16}…/)
    const ss = cert({ subject: '/CN=mx.example.com' })
    failsWith(run({ records: [rec(ss, 2, 0, 0)], chain: [ss.der] }), 'ERR_DANE_NO_MATCH')
    // … except a 2 1 0 key that signed the (self-signed) leaf: Postfix's special case.
    const res = run({ records: [rec(ss, 2, 1, 0)], chain: [ss.der] })
    assert.ok(res.ok && res.depth === 0)
  })
  it('names the records tried in a failure', () => {
    const res = run({ records: [parseTlsaRecord(`3 1 1 ${'ab'.repeat(32)}`), parseTlsaRecord(`2 0 1 ${'cd'.repeat(32)}`)] })
    failsWith(res, 'ERR_DANE_NO_MATCH', /3 1 1 abababababababab…, 2 0 1 cdcdcdcdcdcdcdcd…/)
  })
})

describe('verifyDane: failure codes', () => {
  it('no usable records (RFC 7672 §2.2: opportunistic TLS, not a failed match)', () => {
    failsWith(run({ records: [] }), 'ERR_DANE_NO_USABLE_RECORDS', /empty/)
    failsWith(run({ records: [rec(leaf, 1)] }), 'ERR_DANE_NO_USABLE_RECORDS', /PKIX-EE\(1\) is not usable for SMTP/)
    failsWith(run({ records: [parseTlsaRecord(`3 1 1 ${'ab'.repeat(31)}`)] }), 'ERR_DANE_NO_USABLE_RECORDS', /31 bytes/)
  })
  it('digest agility: a stronger digest set aside a matching weaker one (RFC 7671 §9)', () => {
    failsWith(run({ records: [rec(leaf, 3, 1, 1), parseTlsaRecord(`3 1 2 ${'ab'.repeat(64)}`)] }), 'ERR_DANE_NO_MATCH')
    const res = run({ records: [rec(leaf, 3, 1, 1), parseTlsaRecord(`3 1 2 ${'ab'.repeat(64)}`)], digests: ['sha256'] })
    assert.ok(res.ok)
  })
  it('no certificate sent', () => failsWith(run({ records: [rec(leaf, 3)], chain: [] }), 'ERR_DANE_NO_MATCH', /no certificate/))
  it('name mismatch under DANE-TA, and no names at all', () => {
    failsWith(run({ records: [rec(int, 2)], names: ['example.com'] }), 'ERR_DANE_NAME_MISMATCH', /mx\.example\.com/)
    failsWith(run({ records: [rec(int, 2)], names: [] }), 'ERR_DANE_NAME_MISMATCH', /no reference names/)
  })
  it('expired and not yet valid certificates below the anchor', () => {
    failsWith(run({ records: [rec(int, 2)], now: new Date(now.getTime() + 40 * DAY) }), 'ERR_DANE_EXPIRED', /leaf \(depth 0\) has expired/)
    failsWith(run({ records: [rec(int, 2)], now: new Date(now.getTime() - 2 * DAY) }), 'ERR_DANE_EXPIRED', /not yet valid/)
    // the anchor's own dates are not checked (RFC 7671 §5.2.2 / Postfix tafile)
    const shortRoot = cert({ subject: '/CN=Short Root', ca: true, days: 2 })
    const i2 = cert({ subject: '/CN=I2', ca: true, issuer: shortRoot })
    const l2 = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: i2 })
    const later = new Date(now.getTime() + 10 * DAY)
    assert.ok(run({ records: [rec(shortRoot, 2)], chain: [l2.der, i2.der, shortRoot.der], now: later }).ok)
    assert.ok(run({ records: [rec(i2, 2)], chain: [l2.der, i2.der], now: new Date(now.getTime() + 5000 * DAY) }).ok === false)
  })
  it('a bad signature is a chain failure', () => {
    const bad = new Uint8Array(leaf.der)
    const s = sliceCertificate(bad)
    bad[s.signatureEnd - 5] = bad[s.signatureEnd - 5]! ^ 0x55
    failsWith(run({ records: [rec(int, 2)], chain: [bad, int.der, root.der] }), 'ERR_DANE_CHAIN_INVALID', /signature/)
  })
  it('a certificate signed by another key with the same issuer name', () => {
    const impostor = cert({ subject: '/CN=Unit Int', ca: true })
    const forged = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: impostor })
    failsWith(run({ records: [rec(int, 2)], chain: [forged.der, int.der] }), 'ERR_DANE_CHAIN_INVALID', /bad ecdsa-with-SHA256 signature/)
  })
  it('unparsable certificates: leaf, or an issuer when TA records are in play', () => {
    failsWith(
      run({ records: [rec(leaf, 3)], chain: [new Uint8Array([0x30, 0x80])] }),
      'ERR_DANE_CHAIN_INVALID',
      /leaf certificate does not parse/,
    )
    failsWith(run({ records: [rec(int, 2)], chain: [leaf.der, new Uint8Array([0x30, 0x00])] }), 'ERR_DANE_CHAIN_INVALID', /position 1/)
  })
  it('an unknown critical extension below the anchor', () => {
    const odd = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: int, ext: ['1.2.3.4=critical,ASN1:NULL'] })
    failsWith(run({ records: [rec(int, 2)], chain: [odd.der, int.der] }), 'ERR_DANE_CHAIN_INVALID', /1\.2\.3\.4/)
    assert.ok(run({ records: [rec(odd, 3)], chain: [odd.der] }).ok, 'DANE-EE does not look at extensions')
  })
  it('keyUsage without keyCertSign on an intermediate', () => {
    const noSign = cert({ subject: '/CN=No Sign', ca: true, keyUsage: 'critical,digitalSignature', issuer: root })
    const l = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: noSign })
    failsWith(run({ records: [rec(root, 2)], chain: [l.der, noSign.der, root.der] }), 'ERR_DANE_CHAIN_INVALID', /keyCertSign/)
  })
  it('dNSName name constraints of an intermediate (RFC 5280 §4.2.1.10)', () => {
    const nc = cert({ subject: '/CN=NC', ca: true, issuer: root, ext: ['nameConstraints=critical,permitted;DNS:allowed.example'] })
    const inside = cert({ subject: '/CN=mx', dns: ['mx.allowed.example'], issuer: nc })
    const outside = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: nc })
    assert.ok(run({ records: [rec(root, 2)], chain: [inside.der, nc.der, root.der], names: ['mx.allowed.example'] }).ok)
    failsWith(
      run({ records: [rec(root, 2)], chain: [outside.der, nc.der, root.der] }),
      'ERR_DANE_CHAIN_INVALID',
      /outside the permitted name constraints/,
    )
  })
  it('RSA-PSS signatures (RFC 4055)', () => {
    const t = tempDir()
    try {
      const k = join(t.dir, 'k.pem')
      const c = join(t.dir, 'c.der')
      openssl(
        ['req', '-x509', '-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_pss_keygen_md:sha256']
          .concat(['-pkeyopt', 'rsa_pss_keygen_mgf1_md:sha256', '-pkeyopt', 'rsa_pss_keygen_saltlen:32', '-nodes', '-keyout', k])
          .concat(['-out', c, '-outform', 'DER', '-subj', '/CN=pss.example.com', '-days', '10']),
      )
      const der = new Uint8Array(readFileSync(c))
      const res = run({
        records: [createTlsaRecord(der, { usage: 2, selector: 1, matchingType: 0 })],
        chain: [der],
        names: ['pss.example.com'],
      })
      assert.ok(res.ok && res.depth === 0, JSON.stringify(res))
    } finally {
      t.done()
    }
  })
})

describe('verifyDane: generic profile (RFC 6698)', () => {
  it('PKIX-EE needs the caller PKIX verdict', () => {
    failsWith(run({ records: [rec(leaf, 1)], profile: 'generic' }), 'ERR_DANE_CHAIN_INVALID', /no PKIX verdict/)
    failsWith(run({ records: [rec(leaf, 1)], profile: 'generic', pkixValid: false }), 'ERR_DANE_CHAIN_INVALID', /PKIX validation failed/)
    const res = run({ records: [rec(leaf, 1)], profile: 'generic', pkixValid: true })
    assert.ok(res.ok && res.usage === 'PKIX-EE' && res.depth === 0 && res.name === 'mx.example.com')
  })
  it('PKIX-TA matches the TLS stack path, whose root the server need not send', () => {
    failsWith(run({ records: [rec(root, 0)], chain: [leaf.der, int.der], profile: 'generic', pkixValid: true }), 'ERR_DANE_NO_MATCH')
    const res = run({ records: [rec(root, 0)], chain: [leaf.der, int.der], profile: 'generic', pkixValid: true, pkixChain: chain })
    assert.ok(res.ok && res.usage === 'PKIX-TA' && res.depth === 2)
  })
  it('DANE usages still rank first', () => {
    const res = run({ records: [rec(leaf, 1), rec(root, 2)], profile: 'generic', pkixValid: true })
    assert.ok(res.ok && res.usage === 'DANE-TA')
  })
})

describe('verifyDane: caller errors throw ERR_INVALID_ARGUMENT', () => {
  const bad: Array<[string, () => unknown]> = [
    ['input not an object', () => verifyDane(null as unknown as DaneVerifyInput)],
    ['records not an array', () => run({ records: 'x' as unknown as TlsaRecord[] })],
    ['chain not an array', () => run({ chain: leaf.der as unknown as Uint8Array[] })],
    ['chain of strings', () => run({ chain: [leaf.pem] as unknown as Uint8Array[] })],
    ['names not an array', () => run({ names: 'mx.example.com' as unknown as string[] })],
    ['invalid date', () => run({ now: new Date(NaN) })],
    ['pkixValid not boolean', () => run({ pkixValid: 1 as unknown as boolean })],
    ['pkixChain not starting with the leaf', () => run({ pkixChain: [int.der] })],
    ['unknown profile', () => run({ records: [rec(leaf, 3)], profile: 'x' as unknown as 'smtp' })],
    ['unknown digest', () => run({ records: [rec(leaf, 3)], digests: ['sha1' as unknown as 'sha256'] })],
  ]
  for (const [why, fn] of bad) {
    it(why, () => {
      throwsCoded(fn, 'ERR_INVALID_ARGUMENT')
    })
  }
  it('the SPKI digest computed here is the one openssl computes', () => {
    const spki = openssl(['pkey', '-pubin', '-outform', 'DER'], openssl(['x509', '-pubkey', '-noout'], leaf.pem))
    assert.equal(Buffer.from(rec(leaf, 3).data).toString('hex'), createHash('sha256').update(spki).digest('hex'))
  })
})
