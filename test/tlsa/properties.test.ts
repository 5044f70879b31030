// fast-check properties of the TLSA parsers (DESIGN.md §7).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  decodeTlsaRdata,
  encodeTlsaRdata,
  formatTlsaRecord,
  formatTlsaRecordMnemonic,
  parseTlsaRecord,
  type TlsaRecord,
} from '../../src/index.js'
import { onlyCoded } from '../helpers/assert-coded.js'

const record: fc.Arbitrary<TlsaRecord> = fc
  .tuple(
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 255 }),
    fc.uint8Array({ minLength: 1, maxLength: 200 }),
  )
  .map(([usage, selector, matchingType, data]) => ({ usage, selector, matchingType, data }))

describe('TLSA properties', () => {
  it('parse(format(r)) round-trips, also through mnemonics', () => {
    fc.assert(
      fc.property(record, (r) => {
        assert.deepEqual(parseTlsaRecord(formatTlsaRecord(r)), r)
        assert.deepEqual(parseTlsaRecord(formatTlsaRecordMnemonic(r)), r)
      }),
    )
  })
  it('decode(encode(r)) round-trips', () => {
    fc.assert(fc.property(record, (r) => assert.deepEqual(decodeTlsaRdata(encodeTlsaRdata(r)), r)))
  })
  it('hex with arbitrary whitespace between digits parses to the same data', () => {
    fc.assert(
      fc.property(record, fc.array(fc.constantFrom(' ', '\t', '\n', '  '), { minLength: 1 }), fc.nat(), (r, ws, seed) => {
        const h = Buffer.from(r.data).toString('hex')
        let s = ''
        for (let i = 0; i < h.length; i++) s += h[i] + ((seed + i) % 3 === 0 ? ws[i % ws.length]! : '')
        assert.deepEqual(parseTlsaRecord(`${r.usage} ${r.selector} ${r.matchingType} ${s.toUpperCase()}`).data, r.data)
      }),
    )
  })
  it('any string: parseTlsaRecord returns or throws ERR_TLSA_SYNTAX, nothing else', () => {
    const alphabet = fc.constantFrom(...'0123456789abcdefABCDEF \t\n;()#\\-TLSAINxyz'.split(''))
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 80 })), (s) =>
        onlyCoded(() => parseTlsaRecord(s), ['ERR_TLSA_SYNTAX']),
      ),
      {
        numRuns: 5000,
      },
    )
  })
  it('any bytes: decodeTlsaRdata returns or throws ERR_TLSA_RDATA, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => onlyCoded(() => decodeTlsaRdata(b), ['ERR_TLSA_RDATA'])),
      { numRuns: 3000 },
    )
  })
})
