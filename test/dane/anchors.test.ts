// Trust anchors as Postfix loads them (tls_dane_load_trustfile): DANE-TA and DANE-EE, full data.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatTlsaRecord, trustAnchorTlsaRecords, verifyDane } from '../../src/index.js'
import { spkiOf } from '../../src/x509/der.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert } from '../helpers/openssl.js'

const root = makeCert({ subject: '/CN=Anchor Root', ca: true })
const inter = makeCert({ subject: '/CN=Anchor Intermediate', ca: true, issuer: root })
const leaf = makeCert({ subject: '/CN=mx.example.com', dns: ['mx.example.com'], issuer: inter })
const other = makeCert({ subject: '/CN=Other Root', ca: true })
const chain = [leaf.der, inter.der]
const names = ['mx.example.com']

describe('trustAnchorTlsaRecords (Postfix tls_dane_load_trustfile)', () => {
  it('each anchor gives 2 S 0 and 3 S 0, selector 0 for a certificate and 1 for a key', () => {
    const recs = trustAnchorTlsaRecords([
      { type: 'certificate', der: root.der },
      { type: 'publicKey', der: spkiOf(inter.der) },
    ])
    assert.deepEqual(
      recs.map((r) => formatTlsaRecord(r).split(' ').slice(0, 3).join(' ')),
      ['2 0 0', '3 0 0', '2 1 0', '3 1 0'],
    )
    assert.deepEqual(recs[0]!.data, root.der)
    assert.deepEqual(recs[2]!.data, spkiOf(inter.der))
  })
  const cases: [
    name: string,
    anchors: Parameters<typeof trustAnchorTlsaRecords>[0],
    names: string[],
    ok: boolean | string,
    usage?: number,
  ][] = [
    ['an intermediate certificate anchors the chain (DANE-TA)', [{ type: 'certificate', der: inter.der }], names, true, 2],
    ['a root not sent by the server anchors it', [{ type: 'certificate', der: root.der }], names, true, 2],
    ['a root public key alone anchors it', [{ type: 'publicKey', der: spkiOf(root.der) }], names, true, 2],
    ['the leaf itself matches as DANE-EE', [{ type: 'certificate', der: leaf.der }], names, true, 3],
    ['the leaf key matches as DANE-EE', [{ type: 'publicKey', der: spkiOf(leaf.der) }], names, true, 3],
    ['an unrelated anchor: no match', [{ type: 'certificate', der: other.der }], names, 'ERR_DANE_NO_MATCH'],
    ['a TA match keeps the name checks', [{ type: 'certificate', der: inter.der }], ['mail.example.net'], 'ERR_DANE_NAME_MISMATCH'],
  ]
  for (const [name, anchors, refNames, ok, usage] of cases) {
    it(`verifyDane: ${name}`, () => {
      const r = verifyDane({ records: trustAnchorTlsaRecords(anchors), chain, names: refNames })
      if (ok === true) {
        assert.ok(r.ok, r.ok ? '' : r.detail)
        assert.equal(r.record.usage, usage)
      } else {
        assert.equal(r.ok, false)
        if (!r.ok) assert.equal(r.code, ok)
      }
    })
  }
  it('bad anchors are coded errors', () => {
    throwsCoded(() => trustAnchorTlsaRecords('x' as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => trustAnchorTlsaRecords([{ type: 'certificate', der: new Uint8Array([0x30, 0]) }]), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => trustAnchorTlsaRecords([{ type: 'publicKey', der: leaf.der }]), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => trustAnchorTlsaRecords([{ type: 'x', der: leaf.der } as never]), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => trustAnchorTlsaRecords([null as never]), 'ERR_INVALID_ARGUMENT')
  })
})
