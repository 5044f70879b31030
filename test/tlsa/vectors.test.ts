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
    // Not a line count: the lines must exercise every usage, selector and matching type the parser knows,
    // so a filter that let only a few through (or none) fails here.
    const fields = new Set<string>()
    for (const l of lines) {
      const r = parseTlsaRecord(l)
      fields.add(`u${r.usage}`).add(`s${r.selector}`).add(`m${r.matchingType}`)
      assert.equal(formatTlsaRecord(r), l.toLowerCase().replace(/^0*(\d) 0*(\d) 0*(\d) /, '$1 $2 $3 '))
      assert.deepEqual(decodeTlsaRdata(encodeTlsaRdata(r)), r)
    }
    assert.deepEqual([...fields].sort(), ['m0', 'm1', 'm2', 's0', 's1', 'u0', 'u1', 'u2', 'u3'])
  })
})
