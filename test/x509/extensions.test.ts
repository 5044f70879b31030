import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sliceCertificate } from '../../src/x509/der.js'
import { EKU_SERVER_AUTH, KU, readCommonNames, readExtensions } from '../../src/x509/extensions.js'
import { signatureMethod } from '../../src/x509/signature.js'
import { hex, throwsCoded } from '../helpers/assert-coded.js'
import { makeCert } from '../helpers/openssl.js'

const ext = (der: Uint8Array) => readExtensions(der, sliceCertificate(der))

describe('readExtensions (RFC 5280 §4.2)', () => {
  it('basicConstraints with pathLen and keyUsage of a CA', () => {
    const ca = makeCert({ ca: true, pathLen: 3 })
    const e = ext(ca.der)
    assert.equal(e.hasBasicConstraints, true)
    assert.equal(e.ca, true)
    assert.equal(e.pathLen, 3)
    assert.ok((e.keyUsage & KU.keyCertSign) !== 0)
    assert.deepEqual(e.unknownCritical, [])
  })
  it('an end entity: CA:FALSE, no pathLen, SANs, EKU', () => {
    const c = makeCert({
      dns: ['a.example', 'b.example'],
      keyUsage: 'critical,digitalSignature',
      ext: ['extendedKeyUsage=serverAuth,clientAuth'],
    })
    const e = ext(c.der)
    assert.equal(e.ca, false)
    assert.equal(e.pathLen, -1)
    assert.equal(e.keyUsage, KU.digitalSignature)
    assert.deepEqual(e.dnsNames, ['a.example', 'b.example'])
    assert.ok(e.extKeyUsage?.includes(EKU_SERVER_AUTH))
    assert.equal(e.extKeyUsage?.length, 2)
  })
  it('name constraints: dNSName subtrees and other forms', () => {
    const c = makeCert({
      ca: true,
      ext: ['nameConstraints=critical,permitted;DNS:allowed.example,excluded;DNS:bad.allowed.example,excluded;IP:10.0.0.0/255.0.0.0'],
    })
    const nc = ext(c.der).nameConstraints
    assert.deepEqual(nc?.permittedDns, ['allowed.example'])
    assert.deepEqual(nc?.excludedDns, ['bad.allowed.example'])
    assert.deepEqual(nc?.otherForms, ['iPAddress'])
  })
  it('reports unknown critical extensions, ignores unknown non-critical ones', () => {
    const c = makeCert({ ext: ['1.2.3.4=critical,ASN1:NULL', '1.2.3.5=ASN1:NULL'] })
    assert.deepEqual(ext(c.der).unknownCritical, ['1.2.3.4'])
  })
  it('reads commonName values in order', () => {
    const c = makeCert({ subject: '/CN=first.example/O=Org/CN=second.example' })
    const s = sliceCertificate(c.der)
    assert.deepEqual(readCommonNames(c.der, s.subjectStart, s.subjectEnd), ['first.example', 'second.example'])
  })
  it('a duplicate extension is an error (RFC 5280 §4.2)', () => {
    const c = makeCert({ dns: ['a.example'] })
    const der = new Uint8Array(c.der)
    const s = sliceCertificate(der)
    // Rename the basicConstraints OID (55 1d 13) to subjectAltName (55 1d 11): two SAN extensions.
    const span = der.subarray(s.extensionsStart, s.extensionsEnd)
    const at = Buffer.from(span).indexOf(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]))
    assert.ok(at > 0)
    span[at + 4] = 0x11
    throwsCoded(() => readExtensions(der, s), 'ERR_CERT_PARSE', /duplicate extension 2\.5\.29\.17/)
  })
})

describe('signatureMethod (RFC 5280 §4.1.1.2)', () => {
  // [AlgorithmIdentifier DER, accepted?, name or reason, why]
  const table: Array<[string, boolean, RegExp, string]> = [
    ['300d06092a864886f70d01010b0500', true, /sha256WithRSAEncryption/, 'RSA PKCS#1 v1.5 SHA-256 with NULL parameters'],
    ['300b06092a864886f70d01010b', true, /sha256WithRSAEncryption/, 'absent parameters tolerated'],
    ['300d06092a864886f70d01010c0500', true, /sha384WithRSAEncryption/, 'RSA SHA-384'],
    ['300d06092a864886f70d01010d0500', true, /sha512WithRSAEncryption/, 'RSA SHA-512'],
    ['300a06082a8648ce3d040302', true, /ecdsa-with-SHA256/, 'ECDSA SHA-256'],
    ['300a06082a8648ce3d040303', true, /ecdsa-with-SHA384/, 'ECDSA SHA-384'],
    ['300a06082a8648ce3d040304', true, /ecdsa-with-SHA512/, 'ECDSA SHA-512'],
    ['300506032b6570', true, /Ed25519/, 'Ed25519'],
    [
      '304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120',
      true,
      /RSASSA-PSS\/sha256/,
      'RSA-PSS SHA-256, MGF1 SHA-256, salt 32',
    ],
    ['300d06092a864886f70d0101050500', false, /sha1WithRSAEncryption is too weak/, 'SHA-1 refused'],
    ['300d06092a864886f70d0101040500', false, /md5WithRSAEncryption is too weak/, 'MD5 refused'],
    ['300906072a8648ce3d0401', false, /ecdsa-with-SHA1 is too weak/, 'ECDSA SHA-1 refused'],
    ['300b06092a864886f70d01010a', false, /RSASSA-PSS without parameters/, 'PSS with SHA-1 defaults refused'],
    ['300c06082a8648ce3d0403020500', false, /parameters \(must be absent\)/, 'ECDSA with parameters'],
    ['300506032a0304', false, /unsupported signature algorithm/, 'unknown OID'],
    ['3003060100', false, /unsupported|malformed/, 'malformed'],
  ]
  for (const [h, ok, re, why] of table) {
    it(why, () => {
      const der = hex(h)
      const m = signatureMethod(der, 0, der.length)
      assert.equal(m.ok, ok)
      assert.match(m.ok ? m.name : m.reason, re)
    })
  }
})
