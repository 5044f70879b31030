import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { decodeTime, isCertificateDer, isSpkiDer, sliceCertificate, spkiOf } from '../../src/x509/der.js'
import { derToPem, pemToDerAll } from '../../src/x509/pem.js'
import { hex, onlyCoded, throwsCoded } from '../helpers/assert-coded.js'
import { readDaneTest } from '../helpers/danetest.js'
import { makeCert } from '../helpers/openssl.js'

const rsa = makeCert({ key: 'rsa2048', subject: '/CN=slice.test', dns: ['slice.test'] })
const ec = makeCert({ key: 'ec256', subject: '/CN=slice-ec.test' })

describe('sliceCertificate', () => {
  for (const [name, c] of [
    ['RSA', rsa],
    ['ECDSA', ec],
  ] as const) {
    it(`${name}: the slices agree with node:crypto's X509Certificate`, () => {
      const s = sliceCertificate(c.der)
      const x = new X509Certificate(c.der)
      const spki = x.publicKey.export({ type: 'spki', format: 'der' })
      assert.deepEqual(Buffer.from(c.der.subarray(s.spkiStart, s.spkiEnd)), spki)
      assert.equal(decodeTime(c.der, s.notBeforeStart, s.notBeforeEnd), Date.parse(x.validFrom))
      assert.equal(decodeTime(c.der, s.notAfterStart, s.notAfterEnd), Date.parse(x.validTo))
      assert.equal(s.version, 2)
      assert.ok(s.extensionsStart > s.spkiEnd)
      assert.equal(s.tbsStart, 4)
      assert.equal(s.signatureEnd, c.der.length)
      // the slice is a view, not a copy
      assert.equal(spkiOf(c.der).buffer, c.der.buffer)
    })
  }
  it('slices every certificate of OpenSSL danetest.in', () => {
    let n = 0
    for (const b of readDaneTest()) {
      for (const der of b.chain) {
        const s = sliceCertificate(der)
        assert.deepEqual(
          Buffer.from(der.subarray(s.spkiStart, s.spkiEnd)),
          new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }),
        )
        n++
      }
    }
    assert.ok(n > 50, `only ${n} certificates found`)
  })

  const bad: Array<[string, Uint8Array, RegExp]> = [
    ['empty input', new Uint8Array(0), /truncated header/],
    ['one byte', hex('30'), /truncated header/],
    ['indefinite length (BER, X.690 §8.1.3.6)', hex('3080000000'), /indefinite length/],
    ['length of five octets', hex('3085ffffffffff'), /length too large/],
    ['non-minimal long form', hex('30810100'), /non-minimal length/],
    ['long form with a leading zero', hex('3082000100'), /non-minimal length/],
    ['length beyond the buffer', hex('3005000000'), /overruns/],
    ['high tag number form', hex('1f0100'), /high tag number/],
    ['not a SEQUENCE', hex('0400'), /expected Certificate SEQUENCE/],
    ['trailing byte after the certificate', new Uint8Array([...rsa.der, 0]), /trailing bytes after certificate/],
    ['truncated certificate', rsa.der.subarray(0, rsa.der.length - 1), /overruns/],
    ['empty SEQUENCE', hex('3000'), /truncated header/],
  ]
  for (const [why, bytes, re] of bad) it(`rejects ${why}`, () => void throwsCoded(() => sliceCertificate(bytes), 'ERR_CERT_PARSE', re))

  it('never reads out of bounds or throws anything but ERR_CERT_PARSE on mutated certificates', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: rsa.der.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: rsa.der.length }),
        (at, byte, cut) => {
          const m = new Uint8Array(rsa.der.subarray(0, Math.max(cut, at + 1)))
          m[at] = byte
          onlyCoded(() => {
            const s = sliceCertificate(m)
            for (const v of Object.values(s)) assert.ok(v >= -1 && v <= m.length)
          }, ['ERR_CERT_PARSE'])
        },
      ),
      { numRuns: 3000 },
    )
  })
  it('random bytes give ERR_CERT_PARSE, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyCoded(() => sliceCertificate(b), ['ERR_CERT_PARSE'])),
      { numRuns: 3000 },
    )
  })
})

describe('isCertificateDer / isSpkiDer', () => {
  it('recognise exactly one structure', () => {
    const s = sliceCertificate(ec.der)
    const spki = ec.der.subarray(s.spkiStart, s.spkiEnd)
    assert.equal(isCertificateDer(ec.der), true)
    assert.equal(isSpkiDer(spki), true)
    assert.equal(isSpkiDer(ec.der), false)
    assert.equal(isCertificateDer(spki), false)
    assert.equal(isSpkiDer(new Uint8Array([...spki, 0])), false)
    assert.equal(isSpkiDer(new Uint8Array(0)), false)
  })
})

describe('decodeTime (RFC 5280 §4.1.2.5)', () => {
  const time = (tag: number, s: string) => new Uint8Array([tag, s.length, ...Buffer.from(s, 'latin1')])
  const good: Array<[string, Uint8Array, string]> = [
    ['UTCTime 49 is 2049', time(0x17, '491231235959Z'), '2049-12-31T23:59:59.000Z'],
    ['UTCTime 50 is 1950', time(0x17, '500101000000Z'), '1950-01-01T00:00:00.000Z'],
    ['GeneralizedTime', time(0x18, '30150415232352Z'), '3015-04-15T23:23:52.000Z'],
    ['GeneralizedTime year 0050', time(0x18, '00500101000000Z'), '0050-01-01T00:00:00.000Z'],
  ]
  for (const [why, b, iso] of good) it(why, () => assert.equal(new Date(decodeTime(b, 0, b.length)).toISOString(), iso))
  const bad: Array<[string, Uint8Array]> = [
    ['local time without Z', time(0x17, '4912312359590')],
    ['UTCTime without seconds', time(0x17, '4912312359Z')],
    ['month 13', time(0x17, '491331235959Z')],
    ['letters in digits', time(0x17, '49123123595aZ')],
    ['not a time tag', time(0x04, '491231235959Z')],
  ]
  for (const [why, b] of bad) it(`rejects ${why}`, () => void throwsCoded(() => decodeTime(b, 0, b.length), 'ERR_CERT_PARSE'))
})

describe('PEM', () => {
  it('round-trips DER through PEM', () => {
    assert.deepEqual(pemToDerAll(derToPem(rsa.der) + derToPem(ec.der)), [rsa.der, ec.der])
  })
})
