// createTlsaRecord against digests computed independently by the openssl CLI.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert, opensslDigests, type Issued } from '../helpers/openssl.js'

const rsaRoot = makeCert({ key: 'rsa2048', subject: '/CN=Test RSA Root', ca: true })
const ecRoot = makeCert({ key: 'ec256', subject: '/CN=Test EC Root', ca: true })
const certs: Array<[string, Issued]> = [
  ['RSA self-signed', makeCert({ key: 'rsa2048', subject: '/CN=mx.rsa.test', dns: ['mx.rsa.test'] })],
  ['ECDSA self-signed', makeCert({ key: 'ec256', subject: '/CN=mx.ec.test', dns: ['mx.ec.test'] })],
  ['RSA leaf issued by an RSA CA', makeCert({ key: 'rsa2048', subject: '/CN=mx1.test', dns: ['mx1.test'], issuer: rsaRoot })],
  ['ECDSA leaf issued by an RSA CA', makeCert({ key: 'ec256', subject: '/CN=mx2.test', dns: ['mx2.test'], issuer: rsaRoot })],
  ['RSA leaf issued by an ECDSA CA', makeCert({ key: 'rsa2048', subject: '/CN=mx3.test', issuer: ecRoot })],
  ['Ed25519 leaf issued by an ECDSA CA', makeCert({ key: 'ed25519', subject: '/CN=mx4.test', issuer: ecRoot })],
  ['the RSA CA itself', rsaRoot],
]

describe('createTlsaRecord matches openssl for every selector × matching type', () => {
  for (const [why, cert] of certs) {
    const expected = opensslDigests(cert.pem)
    for (const selector of [0, 1]) {
      for (const matchingType of [0, 1, 2]) {
        it(`${why}: ${selector} ${matchingType}`, () => {
          for (const input of [cert.der, cert.pem]) {
            for (const usage of [2, 3]) {
              const r = createTlsaRecord(input, { usage, selector, matchingType })
              assert.equal(formatTlsaRecord(r), `${usage} ${selector} ${matchingType} ${expected[`${selector} ${matchingType}`]}`)
            }
          }
        })
      }
    }
  }
  it('accepts PEM given as bytes, and uses the first certificate of a chain', () => {
    const leaf = certs[2]![1]
    const chainPem = leaf.pem + rsaRoot.pem
    const r = createTlsaRecord(new Uint8Array(Buffer.from(chainPem)), { usage: 3, selector: 1, matchingType: 1 })
    assert.equal(Buffer.from(r.data).toString('hex'), opensslDigests(leaf.pem)['1 1'])
  })
})

describe('createTlsaRecord rejects what it cannot compute', () => {
  const cert = certs[0]![1]
  const bad: Array<[string, () => unknown, 'ERR_INVALID_ARGUMENT' | 'ERR_CERT_PARSE' | 'ERR_PEM_SYNTAX']> = [
    [
      'selector 255 (PrivSel) has no defined input',
      () => createTlsaRecord(cert.der, { usage: 3, selector: 255, matchingType: 1 }),
      'ERR_INVALID_ARGUMENT',
    ],
    ['matching type 3 is undefined', () => createTlsaRecord(cert.der, { usage: 3, selector: 1, matchingType: 3 }), 'ERR_INVALID_ARGUMENT'],
    ['usage 256 is out of range', () => createTlsaRecord(cert.der, { usage: 256, selector: 1, matchingType: 1 }), 'ERR_INVALID_ARGUMENT'],
    ['missing parameters', () => createTlsaRecord(cert.der, undefined as never), 'ERR_INVALID_ARGUMENT'],
    [
      'a number is not a certificate',
      () => createTlsaRecord(42 as never, { usage: 3, selector: 1, matchingType: 1 }),
      'ERR_INVALID_ARGUMENT',
    ],
    ['truncated DER', () => createTlsaRecord(cert.der.subarray(0, 100), { usage: 3, selector: 0, matchingType: 1 }), 'ERR_CERT_PARSE'],
    [
      'DER with a trailing byte',
      () => createTlsaRecord(new Uint8Array([...cert.der, 0]), { usage: 3, selector: 0, matchingType: 0 }),
      'ERR_CERT_PARSE',
    ],
    ['text without a PEM block', () => createTlsaRecord('hello', { usage: 3, selector: 1, matchingType: 1 }), 'ERR_PEM_SYNTAX'],
    [
      'PEM with broken base64',
      () => createTlsaRecord('-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n', { usage: 3, selector: 1, matchingType: 1 }),
      'ERR_PEM_SYNTAX',
    ],
    [
      'PEM without END',
      () => createTlsaRecord('-----BEGIN CERTIFICATE-----\nMIIB\n', { usage: 3, selector: 1, matchingType: 1 }),
      'ERR_PEM_SYNTAX',
    ],
  ]
  for (const [why, fn, code] of bad) it(why, () => void throwsCoded(fn, code))
})
