import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  certificateFingerprint,
  clientCertPermits,
  lookupClientCertificate,
  parseClientCertTable,
  type ClientCertAction,
} from '../../src/index.js'
import { onlyCoded, throwsCoded } from '../helpers/assert-coded.js'
import { makeClientCerts } from '../helpers/clientcerts.js'
import { openssl } from '../helpers/openssl.js'

const certs = makeClientCerts()
const certFp = (pem: string, digest = 'sha256') =>
  openssl(['x509', '-noout', '-fingerprint', `-${digest}`], pem)
    .toString('latin1')
    .trim()
    .split('=')[1]!
const keyFp = (pem: string, digest = 'sha256') => {
  const spki = openssl(['pkey', '-pubin', '-outform', 'DER'], openssl(['x509', '-pubkey', '-noout'], pem))
  return openssl(['dgst', `-${digest}`, '-r'], spki)
    .toString('latin1')
    .split(' ')[0]!
    .toUpperCase()
    .match(/../g)!
    .join(':')
}

describe('parseClientCertTable: values are access(5) actions or labels', () => {
  const fp = certFp(certs.known.pem)
  const cases: [value: string, action: ClientCertAction][] = [
    ['OK', { kind: 'permit' }],
    ['ok', { kind: 'permit' }],
    ['permit', { kind: 'permit' }],
    ['12345', { kind: 'permit' }], // access(5): all-numerical is OK
    ['550', { kind: 'permit' }], // all-numerical even when it looks like a code
    ['DUNNO', { kind: 'dunno' }],
    ['REJECT', { kind: 'reject', code: 554 }], // access_map_reject_code
    ['REJECT not you', { kind: 'reject', code: 554, text: 'not you' }],
    ['DEFER', { kind: 'reject', code: 450 }], // access_map_defer_code
    ['550 5.7.1 go away', { kind: 'reject', code: 550, text: '5.7.1 go away' }],
    ['450 later', { kind: 'reject', code: 450, text: 'later' }],
    ['250 fine', { kind: 'label', text: '250 fine' }],
    ['client1.example', { kind: 'label', text: 'client1.example' }],
  ]
  for (const [value, action] of cases) {
    it(`${JSON.stringify(value)}`, () => {
      const t = parseClientCertTable(`${fp} ${value}\n`)
      assert.deepEqual(t.entries.get(fp)?.action, action)
    })
  }
})

describe('parseClientCertTable: syntax', () => {
  const fp = certFp(certs.known.pem)
  it('comments, blank lines, continuation lines, CRLF; keys case-insensitive', () => {
    const t = parseClientCertTable(`# relay\r\n\r\n${fp.toLowerCase()}   REJECT\r\n   # comment inside\r\n  go away\r\n`)
    const e = t.entries.get(fp)!
    assert.equal(e.line, 3)
    assert.equal(e.value, 'REJECT go away')
    assert.deepEqual(e.action, { kind: 'reject', code: 554, text: 'go away' })
  })
  it('a duplicate key is a warning and the first entry wins (postmap)', () => {
    const t = parseClientCertTable(`${fp} first\n${fp.toLowerCase()} second\n`)
    assert.equal(t.entries.get(fp)?.value, 'first')
    assert.equal(t.warnings.length, 1)
    assert.equal(t.warnings[0]!.line, 2)
  })
  it('md5, sha1 and sha512 fingerprints are keys too', () => {
    for (const d of ['md5', 'sha1', 'sha512']) {
      const k = certFp(certs.known.pem, d)
      assert.ok(parseClientCertTable(`${k} ok`).entries.has(k))
    }
  })
  const bad: [text: string, line: number, column: number, re: RegExp][] = [
    ['AB:CD:ZZ x', 1, 7, /not a fingerprint/], // bad octet: column of the octet
    ['ABCDEF0011223344556677889900AABB x', 1, 1, /not a fingerprint/], // no colons: can never match Postfix's form
    ['AB:CD x', 1, 1, /2 octets is no digest length/],
    [`# c\n${fp}\n`, 2, fp.length + 1, /no value/],
    [`  ${fp} ok`, 1, 1, /continues no entry/],
    [`${fp} ok\nAB::CD x`, 2, 4, /not a fingerprint/],
    ['example.com OK', 1, 1, /not a fingerprint/],
  ]
  for (const [text, line, column, re] of bad) {
    it(`ERR_POLICY_SYNTAX at ${line}:${column} for ${JSON.stringify(text.slice(0, 30))}`, () => {
      const e = throwsCoded(() => parseClientCertTable(text), 'ERR_POLICY_SYNTAX', re)
      assert.equal(e.line, line)
      assert.equal(e.column, column)
      assert.equal(e.temporary, true)
    })
  }
  it('wrong types are coded', () => {
    throwsCoded(() => parseClientCertTable(42 as unknown as string), 'ERR_INVALID_ARGUMENT')
  })
  it('never throws anything but a coded error (fast-check)', () => {
    const alphabet = fc.constantFrom(...'AB:09cd \t\n#xOKREJECT5'.split(''))
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 200 }), (chars) =>
        onlyCoded(() => parseClientCertTable(chars.join('')), ['ERR_POLICY_SYNTAX']),
      ),
      { numRuns: 500 },
    )
  })
})

describe('lookupClientCertificate (Postfix tls_fprint.c fingerprints, smtpd_check.c search order)', () => {
  const cert = certFp(certs.known.pem)
  const key = keyFp(certs.known.pem)
  const table = parseClientCertTable(`${cert} by-cert\n${key} by-key\n`)
  it('fingerprints equal openssl: digest of the DER certificate and of the DER SubjectPublicKeyInfo', () => {
    for (const digest of ['sha256', 'sha1', 'md5'] as const) {
      const r = lookupClientCertificate(table, certs.unknown.der, { digest })
      assert.deepEqual(r.fingerprints, {
        cert_fingerprint: certFp(certs.unknown.pem, digest),
        pubkey_fingerprint: keyFp(certs.unknown.pem, digest),
      })
    }
  })
  it('default order: the certificate fingerprint first', () => {
    const r = lookupClientCertificate(table, certs.known.der)
    assert.ok(r.found)
    assert.equal(r.matched, 'cert_fingerprint')
    assert.equal(r.value, 'by-cert')
    assert.equal(r.fingerprint, cert)
    assert.equal(r.line, 1)
  })
  it('search_order = pubkey_fingerprint, cert_fingerprint: the key first', () => {
    const r = lookupClientCertificate(table, certs.known.pem, { searchOrder: ['pubkey_fingerprint', 'cert_fingerprint'] })
    assert.ok(r.found)
    assert.equal(r.matched, 'pubkey_fingerprint')
    assert.equal(r.value, 'by-key')
  })
  it('a reissued certificate for the same key matches by public key only', () => {
    const r = lookupClientCertificate(table, certs.reissued.der)
    assert.ok(r.found)
    assert.equal(r.matched, 'pubkey_fingerprint')
    assert.equal(lookupClientCertificate(table, certs.reissued.der, { searchOrder: ['cert_fingerprint'] }).found, false)
  })
  it('an unknown certificate is not found', () => {
    const r = lookupClientCertificate(table, certs.unknown.der)
    assert.equal(r.found, false)
    assert.equal(clientCertPermits(r), false)
  })
  it('the digest must be the one the table was written with', () => {
    assert.equal(lookupClientCertificate(table, certs.known.der, { digest: 'md5' }).found, false)
    const md5 = parseClientCertTable(`${certFp(certs.known.pem, 'md5')} old`)
    assert.equal(lookupClientCertificate(md5, certs.known.der, { digest: 'md5' }).found, true)
  })
  it('clientCertPermits: relay_clientcerts ignores the value, check_ccert_access needs a permit action', () => {
    const t = parseClientCertTable(`${cert} REJECT\n${key} OK\n`)
    const r = lookupClientCertificate(t, certs.known.der)
    assert.equal(clientCertPermits(r, 'permit_tls_clientcerts'), true)
    assert.equal(clientCertPermits(r, 'check_ccert_access'), false)
    const r2 = lookupClientCertificate(t, certs.reissued.der)
    assert.equal(clientCertPermits(r2, 'check_ccert_access'), true)
    assert.equal(clientCertPermits(undefined), false)
    throwsCoded(() => clientCertPermits(r, 'x' as 'check_ccert_access'), 'ERR_INVALID_ARGUMENT')
  })
  it('bad arguments are coded errors', () => {
    throwsCoded(() => lookupClientCertificate(table, certs.known.der, { searchOrder: [] }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(
      () => lookupClientCertificate(table, certs.known.der, { searchOrder: ['cert_fingerprint', 'cert_fingerprint'] }),
      'ERR_INVALID_ARGUMENT',
    )
    throwsCoded(() => lookupClientCertificate(table, certs.known.der, { searchOrder: ['x' as 'cert_fingerprint'] }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => lookupClientCertificate(table, certs.known.der, { digest: 'sha3' as 'md5' }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => lookupClientCertificate({} as never, certs.known.der), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => lookupClientCertificate(table, new Uint8Array([0x30, 0])), 'ERR_CERT_PARSE')
    assert.equal(certificateFingerprint(certs.known.der), cert)
  })
})

describe('parseClientCertTable: properties (fast-check)', () => {
  it('any fingerprint, in any case and with any value, is found by its normalised form', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 20, 32, 64),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.boolean(),
        fc.stringMatching(/^[A-Za-z0-9.][A-Za-z0-9. -]{0,20}$/),
        (n, bytes, lower, value) => {
          const fp = [...bytes.subarray(0, n)].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':')
          const t = parseClientCertTable(`${lower ? fp.toLowerCase() : fp}\t${value}\n`)
          assert.equal(t.entries.get(fp)?.value, value.replace(/\s+/g, ' ').trim())
        },
      ),
      { numRuns: 300 },
    )
  })
})
