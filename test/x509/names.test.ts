import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { certificateDnsNames, matchCertificateName } from '../../src/index.js'
import { matchPresentedNames, normalizeDnsName } from '../../src/x509/names.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert } from '../helpers/openssl.js'

describe('name matching rules (RFC 7672 §3.2.3, RFC 6125 §6.4)', () => {
  // [presented name in the certificate, reference name, matches?, why]
  const table: Array<[string, string, boolean, string]> = [
    ['mx.example.com', 'mx.example.com', true, 'exact'],
    ['MX.Example.COM', 'mx.example.com', true, 'case-insensitive (RFC 6125 §6.4.1)'],
    ['mx.example.com', 'MX.EXAMPLE.COM', true, 'case-insensitive reference'],
    ['mx.example.com.', 'mx.example.com', false, 'a final dot in the certificate is no name (it escapes excluded name constraints)'],
    ['mx.example.com.', 'mx.example.com.', false, 'a final dot in the certificate is no name, whatever the reference'],
    ['mx.example.com', 'mx.example.com.', true, 'trailing dot in the reference ignored'],
    ['mx.example.com', 'example.com', false, 'a parent domain is a different name'],
    ['example.com', 'mx.example.com', false, 'a subdomain is a different name'],
    ['*.example.com', 'mx.example.com', true, 'wildcard as the whole leftmost label'],
    ['*.example.com', 'a.b.example.com', false, 'wildcard matches exactly one label'],
    ['*.example.com', 'example.com', false, 'wildcard does not match the parent'],
    ['*.example.com', '.example.com', true, 'Postfix .domain: a wildcard names hosts below example.com'],
    ['mx*.example.com', 'mx1.example.com', false, 'partial-label wildcard (RFC 7672 §3.2.3)'],
    ['*mx.example.com', 'amx.example.com', false, 'partial-label wildcard, other side'],
    ['m*x.example.com', 'max.example.com', false, 'partial-label wildcard, middle'],
    ['mx.*.example.com', 'mx.a.example.com', false, 'wildcard not in the leftmost label'],
    ['*.com', 'example.com', false, 'wildcard needs two labels after it'],
    ['*.*.example.com', 'a.b.example.com', false, 'two wildcards'],
    ['mx.example.com', '.example.com', true, 'Postfix .domain: any name below the domain'],
    ['a.b.example.com', '.example.com', true, 'Postfix .domain: several labels below'],
    ['example.com', '.example.com', false, 'Postfix .domain: not the domain itself'],
    ['badexample.com', '.example.com', false, 'Postfix .domain: label boundary respected'],
    ['xn--bcher-kva.example', 'bücher.example', true, 'IDN reference compared as A-label'],
    ['xn--bcher-kva.example', 'BÜCHER.example', true, 'IDN reference, upper case U-label'],
    ['*.xn--bcher-kva.example', 'mx.bücher.example', true, 'wildcard over an IDN domain'],
    ['bücher.example', 'bücher.example', false, 'a presented U-label is no name (RFC 5280 §7.2: A-labels in certificates)'],
    ['mx.example.com', '*.example.com', false, 'a reference is never a pattern'],
    ['mx example.com', 'mx example.com', false, 'not a host name'],
    ['', '', false, 'empty names never match'],
  ]
  for (const [presented, reference, expected, why] of table) {
    it(`${why}: ${JSON.stringify(presented)} vs ${JSON.stringify(reference)}`, () => {
      assert.equal(matchPresentedNames([presented], [reference]), expected ? reference : undefined)
    })
  }
  it('returns the first reference name that matches, as given', () => {
    assert.equal(matchPresentedNames(['mx.example.com'], ['other.example', 'MX.example.com.', 'mx.example.com']), 'MX.example.com.')
  })
  it('normalises DNS names', () => {
    assert.equal(normalizeDnsName('MX.Example.com.'), 'mx.example.com')
    assert.equal(normalizeDnsName('bücher.example'), 'xn--bcher-kva.example')
    assert.equal(normalizeDnsName('a..b'), undefined)
    assert.equal(normalizeDnsName('.'), undefined)
  })
  it('rejects reference names that are not strings', () => {
    throwsCoded(() => matchPresentedNames(['a.example'], [1 as unknown as string]), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => matchPresentedNames(['a.example'], 'a.example' as unknown as string[]), 'ERR_INVALID_ARGUMENT')
  })
})

describe('certificate names (RFC 6125 §6.4.4: CN only without DNS SANs)', () => {
  const sanAndCn = makeCert({ subject: '/CN=cn.example.com', dns: ['mx.example.com', '*.mail.example.com'] })
  const cnOnly = makeCert({ subject: '/O=Example/CN=cn.example.com' })
  const ipOnly = makeCert({ subject: '/CN=cn.example.com', ext: ['subjectAltName=IP:192.0.2.1'] })
  const none = makeCert({ subject: '/O=No Names' })
  it('lists DNS SANs and ignores the CN when there are some', () => {
    assert.deepEqual(certificateDnsNames(sanAndCn.der), ['mx.example.com', '*.mail.example.com'])
    assert.equal(matchCertificateName(sanAndCn.der, ['cn.example.com']), undefined)
    assert.equal(matchCertificateName(sanAndCn.der, ['smtp.mail.example.com']), 'smtp.mail.example.com')
  })
  it('falls back to the CN without DNS SANs', () => {
    assert.deepEqual(certificateDnsNames(cnOnly.der), ['cn.example.com'])
    assert.equal(matchCertificateName(cnOnly.der, ['CN.example.com']), 'CN.example.com')
  })
  it('an IP-only SAN is not a DNS-ID: the CN is used', () => {
    assert.deepEqual(certificateDnsNames(ipOnly.der), ['cn.example.com'])
  })
  it('a certificate without names matches nothing', () => {
    assert.deepEqual(certificateDnsNames(none.der), [])
    assert.equal(matchCertificateName(none.der, ['example.com', '.example.com']), undefined)
  })
  it('malformed certificates give a coded error', () => {
    throwsCoded(() => certificateDnsNames(new Uint8Array([0x30, 0x03, 0x02, 0x01])), 'ERR_CERT_PARSE')
    throwsCoded(() => matchCertificateName(sanAndCn.der.subarray(0, 100), ['mx.example.com']), 'ERR_CERT_PARSE')
  })
})
