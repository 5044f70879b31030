// Every TLSA line of OpenSSL's danetest.in parses (test/vectors/openssl-danetest, Apache-2.0).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { decodeTlsaRdata, encodeTlsaRdata, formatTlsaRecord, parseTlsaRecord } from '../../src/index.js'
import { DANETEST_PATH } from '../helpers/danetest.js'

describe('OpenSSL danetest.in TLSA lines', () => {
  it('all parse, format back to the same text, and round-trip through RDATA', () => {
    const lines = readFileSync(DANETEST_PATH, 'utf8')
      .split('\n')
      .map((l) => l.replace(/^#\s*/, '').trim())
      .filter((l) => /^\d+ \d+ \d+ [0-9a-fA-F]+$/.test(l))
    assert.ok(lines.length >= 70, `only ${lines.length} TLSA lines`)
    for (const l of lines) {
      const r = parseTlsaRecord(l)
      assert.equal(formatTlsaRecord(r), l.toLowerCase().replace(/^0*(\d) 0*(\d) 0*(\d) /, '$1 $2 $3 '))
      assert.deepEqual(decodeTlsaRdata(encodeTlsaRdata(r)), r)
    }
  })
})
