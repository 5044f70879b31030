// Real peer: Postfix smtpd with STARTTLS, probed by posttls-finger (the reference client) at the
// `fingerprint` level. Our fingerprints must equal the ones Postfix prints, and our pin verdicts
// must equal posttls-finger's (Postfix TLS_README "Certificate fingerprint verification").
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { certificateFingerprint, matchPins, type PinDigest } from '../../src/index.js'
import { makeCert } from '../helpers/openssl.js'
import { posttlsFinger, startPostfixLab, type PostfixLab } from './postfix.js'

const root = makeCert({ key: 'rsa2048', subject: '/CN=Lab Pin Root', ca: true })
const leaf = makeCert({ key: 'ec256', subject: '/CN=mx1.pins.test', dns: ['mx1.pins.test'], issuer: root })
const ADDRESS = '127.0.41.1'
let lab: PostfixLab

before(async () => {
  lab = await startPostfixLab([
    { address: ADDRESS, certPem: leaf.pem + root.pem, keyPem: leaf.keyPem },
    { address: '127.0.41.2', starttls: false },
  ])
})
after(async () => {
  await lab?.stop()
})

describe('fingerprint level against Postfix 3.x (posttls-finger)', () => {
  for (const digest of ['sha256', 'sha1', 'md5', 'sha512'] as PinDigest[]) {
    it(`${digest}: our certificate and public-key fingerprints equal Postfix's`, () => {
      const r = posttlsFinger(`[${ADDRESS}]`, { configDir: lab.configDir, level: 'may', args: ['-d', digest] })
      assert.equal(r.trust, 'Untrusted', r.output)
      assert.equal(certificateFingerprint(leaf.der, { digest }), r.fingerprint)
      assert.equal(certificateFingerprint(leaf.der, { digest, of: 'publicKey' }), r.pkeyFingerprint)
    })
  }

  const other = makeCert({ key: 'ec256', subject: '/CN=other.pins.test' })
  // [why, pins as given to both, digest, expected verdict]
  const cases: Array<[string, string[], PinDigest, boolean]> = [
    ['certificate pin', [certificateFingerprint(leaf.der)], 'sha256', true],
    ['public-key pin', [certificateFingerprint(leaf.der, { of: 'publicKey' })], 'sha256', true],
    ['pin without colons, lower case', [certificateFingerprint(leaf.der).replace(/:/g, '').toLowerCase()], 'sha256', true],
    ['wrong pin only', [certificateFingerprint(other.der)], 'sha256', false],
    [
      'wrong pin then right pin',
      [certificateFingerprint(other.der), certificateFingerprint(leaf.der, { of: 'publicKey' })],
      'sha256',
      true,
    ],
    ['pin of the issuer (leaf only, like 3 x 255)', [certificateFingerprint(root.der)], 'sha256', false],
    ['sha1 pin with digest sha1', [certificateFingerprint(leaf.der, { digest: 'sha1' })], 'sha1', true],
    ['sha512 public-key pin', [certificateFingerprint(leaf.der, { digest: 'sha512', of: 'publicKey' })], 'sha512', true],
  ]
  for (const [why, pins, digest, ok] of cases) {
    it(`${why}: ours ${ok ? 'matches' : 'does not match'}, and so does Postfix`, () => {
      const ours = matchPins(leaf.der, pins, { digest })
      const r = posttlsFinger(`[${ADDRESS}]`, { configDir: lab.configDir, level: 'fingerprint', args: ['-d', digest], match: pins })
      assert.equal(r.trust === 'Verified', ok, r.output)
      assert.equal(ours.ok, ok)
    })
  }

  it('a server without STARTTLS: posttls-finger sees no STARTTLS and establishes no TLS', () => {
    const r = posttlsFinger('[127.0.41.2]', { configDir: lab.configDir, level: 'fingerprint', match: [certificateFingerprint(leaf.der)] })
    assert.equal(r.starttlsOffered, false)
    assert.equal(r.trust, undefined)
  })
})
