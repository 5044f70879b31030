import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { certificateFingerprint, matchPins, parsePins, type PinDigest } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert, openssl } from '../helpers/openssl.js'

const leaf = makeCert({ subject: '/CN=mx.example.com', dns: ['mx.example.com'] })
const other = makeCert({ subject: '/CN=other.example' })

/** `openssl x509 -fingerprint` and the digest of `openssl pkey` output: the independent oracle. */
function opensslPrint(digest: PinDigest, of: 'certificate' | 'publicKey'): string {
  if (of === 'certificate') {
    const out = openssl(['x509', '-noout', '-fingerprint', `-${digest}`], leaf.pem).toString('latin1')
    return out.trim().split('=')[1]!
  }
  const spki = openssl(['pkey', '-pubin', '-outform', 'DER'], openssl(['x509', '-pubkey', '-noout'], leaf.pem))
  const hex = openssl(['dgst', `-${digest}`, '-r'], spki)
    .toString('latin1')
    .split(' ')[0]!
  return hex.toUpperCase().match(/../g)!.join(':')
}

describe('certificateFingerprint', () => {
  for (const digest of ['sha256', 'sha512', 'sha1', 'md5'] as const) {
    for (const of of ['certificate', 'publicKey'] as const) {
      it(`${digest} of the ${of} equals openssl's`, () => {
        assert.equal(certificateFingerprint(leaf.der, { digest, of }), opensslPrint(digest, of))
      })
    }
  }
  it('defaults to SHA-256 of the certificate, accepts PEM text and PEM bytes', () => {
    const fp = opensslPrint('sha256', 'certificate')
    assert.equal(certificateFingerprint(leaf.der), fp)
    assert.equal(certificateFingerprint(leaf.pem), fp)
    assert.equal(certificateFingerprint(new TextEncoder().encode(leaf.pem)), fp)
    assert.match(fp, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
  })
  it('rejects bad input with coded errors', () => {
    throwsCoded(() => certificateFingerprint(new Uint8Array([0x30, 0x01, 0x00])), 'ERR_CERT_PARSE')
    throwsCoded(() => certificateFingerprint('not pem'), 'ERR_PEM_SYNTAX')
    throwsCoded(() => certificateFingerprint(leaf.der, { digest: 'sha3' as PinDigest }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => certificateFingerprint(leaf.der, { of: 'key' as 'publicKey' }), 'ERR_INVALID_ARGUMENT')
  })
})

describe('matchPins (Postfix fingerprint level)', () => {
  const certPin = certificateFingerprint(leaf.der)
  const keyPin = certificateFingerprint(leaf.der, { of: 'publicKey' })
  const otherPin = certificateFingerprint(other.der)
  // [pins, matches?, of, why]
  const table: Array<[string | string[], boolean, string | null, string]> = [
    [certPin, true, 'certificate', 'certificate pin, AB:CD form'],
    [keyPin, true, 'publicKey', 'public key pin (acts like 3 1 255)'],
    [certPin.replace(/:/g, ''), true, 'certificate', 'without colons'],
    [certPin.toLowerCase(), true, 'certificate', 'lower case'],
    [` ${otherPin} | ${keyPin} `, true, 'publicKey', 'several pins separated by |, spaces around'],
    [[otherPin, certPin], true, 'certificate', 'a list of pins'],
    [[`${otherPin}|${keyPin.toLowerCase().replace(/:/g, '')}`], true, 'publicKey', 'a list whose items use |'],
    [otherPin, false, null, 'another certificate'],
  ]
  for (const [pins, ok, of, why] of table) {
    it(why, () => {
      const res = matchPins(leaf.der, pins)
      assert.equal(res.ok, ok, JSON.stringify(res))
      if (res.ok) assert.equal(res.of, of)
      else {
        assert.equal(res.code, 'ERR_PIN_MISMATCH')
        assert.ok(res.detail.includes(certPin) && res.detail.includes(keyPin), 'the detail shows what the peer presented')
      }
    })
  }
  it('reports which pin matched, formatted', () => {
    const res = matchPins(leaf.pem, [otherPin, certPin.toLowerCase()])
    assert.deepEqual(res, { ok: true, pin: certPin, index: 1, of: 'certificate' })
  })
  for (const digest of ['sha512', 'sha1', 'md5'] as const) {
    it(`${digest} pins`, () => {
      assert.ok(matchPins(leaf.der, certificateFingerprint(leaf.der, { digest, of: 'publicKey' }), { digest }).ok)
      throwsCoded(() => matchPins(leaf.der, certPin, { digest }), 'ERR_PIN_SYNTAX', /octets/)
    })
  }
  it('hostile leaf bytes are a result, not an exception', () => {
    const res = matchPins(new Uint8Array([0x30, 0x03, 0x01, 0x01, 0xff]), certPin)
    assert.ok(!res.ok && res.code === 'ERR_CERT_PARSE')
    const res2 = matchPins(new Uint8Array([0x41, 0x42]), certPin)
    assert.ok(!res2.ok && res2.code === 'ERR_CERT_PARSE')
  })
})

describe('parsePins syntax', () => {
  const good = 'AB'.repeat(32)
  // [input, error pattern, why]
  const bad: Array<[string | string[], RegExp, string]> = [
    ['', /no pin given/, 'empty'],
    [`${good}|`, /pin 2 is empty/, 'empty item after |'],
    [good.slice(2), /31 octets/, 'too short'],
    [good + 'AB', /33 octets/, 'too long'],
    [good.slice(1), /not hexadecimal/, 'odd number of digits'],
    ['ZZ' + good.slice(2), /not hexadecimal/, 'not hex'],
    ['AB::' + 'CD:'.repeat(30) + 'EF', /not hexadecimal/, 'double colon'],
    ['A:B' + good.slice(3), /not hexadecimal|one colon/, 'colon inside an octet'],
    [good.match(/../g)!.join(':') + ':', /one colon/, 'trailing colon'],
  ]
  for (const [input, re, why] of bad) {
    it(`rejects: ${why}`, () => {
      throwsCoded(() => parsePins(input), 'ERR_PIN_SYNTAX', re)
    })
  }
  it('reports the position of the offending pin', () => {
    const e = throwsCoded(() => parsePins([good, good, 'xx']), 'ERR_PIN_SYNTAX')
    assert.equal(e.position, 2)
  })
  it('an empty list is no pins: nothing matches', () => {
    assert.deepEqual(parsePins([]), [])
    const res = matchPins(leaf.der, [])
    assert.ok(!res.ok && res.code === 'ERR_PIN_MISMATCH')
  })
  it('rejects non-string pins', () => {
    throwsCoded(() => parsePins([1] as unknown as string[]), 'ERR_INVALID_ARGUMENT')
  })
})
