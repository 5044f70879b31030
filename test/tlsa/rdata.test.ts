import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeTlsaRdata, encodeTlsaRdata } from '../../src/index.js'
import { hex, throwsCoded } from '../helpers/assert-coded.js'

describe('TLSA RDATA (RFC 6698 §2.1)', () => {
  it('decodes usage, selector, matching type and data', () => {
    const r = decodeTlsaRdata(hex('030101abcdef'))
    assert.deepEqual([r.usage, r.selector, r.matchingType, Buffer.from(r.data).toString('hex')], [3, 1, 1, 'abcdef'])
  })
  it('encodes to the same bytes', () => {
    assert.equal(Buffer.from(encodeTlsaRdata({ usage: 2, selector: 0, matchingType: 2, data: hex('0102') })).toString('hex'), '0200020102')
  })
  it('decoded data does not alias the input', () => {
    const wire = hex('03010100')
    const r = decodeTlsaRdata(wire)
    wire[3] = 0xff
    assert.equal(r.data[0], 0)
  })
  const bad: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['only usage', hex('03')],
    ['three bytes: no association data', hex('030101')],
    ['over 65535 bytes', new Uint8Array(65536)],
  ]
  for (const [why, bytes] of bad) it(`rejects ${why}`, () => void throwsCoded(() => decodeTlsaRdata(bytes), 'ERR_TLSA_RDATA'))
  it('rejects non-bytes', () => void throwsCoded(() => decodeTlsaRdata('030101ab' as never), 'ERR_TLSA_RDATA'))
  it('refuses to encode out-of-range fields or empty data', () => {
    throwsCoded(() => encodeTlsaRdata({ usage: 3, selector: 1.5, matchingType: 1, data: hex('ab') }), 'ERR_TLSA_RDATA')
    throwsCoded(() => encodeTlsaRdata({ usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(0) }), 'ERR_TLSA_RDATA')
  })
})
