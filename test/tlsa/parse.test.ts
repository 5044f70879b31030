import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatTlsaRecord, formatTlsaRecordMnemonic, parseTlsaRecord, tlsaOwnerName } from '../../src/index.js'
import { hex, throwsCoded } from '../helpers/assert-coded.js'

const H32 = '8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1'

describe('parseTlsaRecord: good input', () => {
  const good: Array<[string, string, [number, number, number, string]]> = [
    ['plain numeric', `3 1 1 ${H32}`, [3, 1, 1, H32]],
    ['upper-case hex', `3 1 1 ${H32.toUpperCase()}`, [3, 1, 1, H32]],
    ['hex split by whitespace (RFC 6698 §2.2)', `3 1 1 ${H32.slice(0, 10)} ${H32.slice(10, 40)}\n\t${H32.slice(40)}`, [3, 1, 1, H32]],
    ['RFC 7218 mnemonics', `DANE-EE SPKI SHA2-256 ${H32}`, [3, 1, 1, H32]],
    ['mnemonics in any case', `dane-ta cert sha2-256 ${H32}`, [2, 0, 1, H32]],
    ['PKIX mnemonics', `PKIX-TA Cert Full 3000`, [0, 0, 0, '3000']],
    ['private-use mnemonics', 'PrivCert PrivSel PrivMatch ab', [255, 255, 255, 'ab']],
    ['mixed numeric and mnemonic', `3 SPKI 1 ${H32}`, [3, 1, 1, H32]],
    ['zone-file line', `_25._tcp.mx.example.com. 300 IN TLSA 3 1 1 ${H32}`, [3, 1, 1, H32]],
    ['dig answer line with tabs', `_25._tcp.mx.example.com.\t3600\tIN\tTLSA\t2 0 1 ${H32}`, [2, 0, 1, H32]],
    [
      'zone-file line with parentheses and comment',
      `_25._tcp.mx IN TLSA ( 3 1 1 ; DANE-EE\n ${H32.slice(0, 32)}\n ${H32.slice(32)} )`,
      [3, 1, 1, H32],
    ],
    ['RFC 3597 generic form', `\\# 35 030101${H32}`, [3, 1, 1, H32]],
    ['RFC 3597 in a zone line with TYPE52', `_25._tcp.mx. IN TYPE52 \\# 35 030101 ${H32}`, [3, 1, 1, H32]],
    ['leading and trailing whitespace', `  3 1 1 ${H32}  \n`, [3, 1, 1, H32]],
    ['unknown but in-range values parse (usability is separate)', '4 2 3 00', [4, 2, 3, '00']],
    ['leading zeros in a field', '003 001 001 00', [3, 1, 1, '00']],
  ]
  for (const [why, text, [u, s, m, h]] of good) {
    it(why, () => {
      const r = parseTlsaRecord(text)
      assert.deepEqual([r.usage, r.selector, r.matchingType, Buffer.from(r.data).toString('hex')], [u, s, m, h])
    })
  }
})

describe('parseTlsaRecord: bad input gives ERR_TLSA_SYNTAX with the position', () => {
  const bad: Array<[string, string, RegExp, number?]> = [
    ['empty string', '', /empty record/],
    ['whitespace only', '   \n', /empty record/],
    ['missing selector', '3', /missing selector/],
    ['missing matching type', '3 1', /missing matching type/],
    ['missing data', '3 1 1', /missing certificate association data/],
    ['odd number of hex digits', '3 1 1 abc', /odd number of hex digits/],
    ['non-hex character', '3 1 1 abzz', /non-hex character "z"/, 8],
    ['usage out of range', '256 1 1 ab', /certificate usage 256 is out of range/, 0],
    ['selector out of range', '3 999 1 ab', /selector 999 is out of range/, 2],
    ['negative field', '3 -1 1 ab', /selector "-1"/, 2],
    ['unknown mnemonic', 'DANE-XX SPKI SHA2-256 ab', /neither a number 0-255 nor an RFC 7218 mnemonic/, 0],
    ['four-digit field', '1000 1 1 ab', /neither a number/, 0],
    ['RFC 3597 length mismatch', '\\# 5 030101ab', /RDATA length 5 does not match 4 bytes/],
    ['RFC 3597 with 3-byte RDATA', '\\# 3 030101', /at least 4 are needed/],
    ['RFC 3597 without length', '\\#', /missing RDATA length/],
    ['RFC 3597 with bad length', '\\# x 00', /is not a decimal number/],
    ['zone line without rdata', '_25._tcp.mx. IN TLSA', /empty record/],
    ['data too long', '3 1 1 ' + 'ab'.repeat(65533), /longer than 65532 bytes/],
  ]
  for (const [why, text, re, pos] of bad) {
    it(why, () => {
      const e = throwsCoded(() => parseTlsaRecord(text), 'ERR_TLSA_SYNTAX', re)
      assert.equal(typeof e.position, 'number')
      if (pos !== undefined) assert.equal(e.position, pos)
      assert.equal(e.temporary, true)
    })
  }
  it('non-string input', () => {
    throwsCoded(() => parseTlsaRecord(42 as unknown as string), 'ERR_TLSA_SYNTAX')
  })
})

describe('formatting', () => {
  it('formats numerically with lower-case hex', () => {
    assert.equal(formatTlsaRecord({ usage: 3, selector: 1, matchingType: 1, data: hex(H32.toUpperCase()) }), `3 1 1 ${H32}`)
  })
  it('formats RFC 7218 mnemonics, falling back to numbers', () => {
    assert.equal(formatTlsaRecordMnemonic({ usage: 2, selector: 0, matchingType: 2, data: hex('ab') }), 'DANE-TA Cert SHA2-512 ab')
    assert.equal(formatTlsaRecordMnemonic({ usage: 7, selector: 1, matchingType: 0, data: hex('ab') }), '7 SPKI Full ab')
  })
  it('rejects records it cannot format', () => {
    throwsCoded(() => formatTlsaRecord({ usage: 256, selector: 1, matchingType: 1, data: hex('ab') }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => formatTlsaRecord({ usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(0) }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => formatTlsaRecord(null as never), 'ERR_INVALID_ARGUMENT')
  })
  it('builds the TLSA owner name (RFC 7672 §2.2.3)', () => {
    assert.equal(tlsaOwnerName('MX.Example.COM'), '_25._tcp.mx.example.com.')
    assert.equal(tlsaOwnerName('mx.example.com.', 587), '_587._tcp.mx.example.com.')
    throwsCoded(() => tlsaOwnerName('mx', 0), 'ERR_INVALID_ARGUMENT')
  })
})
