// fast-check properties of verifyDane (DESIGN.md §3, §7): hostile chain and record bytes give a
// verdict, never an exception.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createTlsaRecord, verifyDane, type TlsaRecord } from '../../src/index.js'
import { makeCert } from '../helpers/openssl.js'

const root = makeCert({ subject: '/CN=P Root', ca: true, key: 'rsa2048' })
const int = makeCert({ subject: '/CN=P Int', ca: true, issuer: root })
const leaf = makeCert({ subject: '/CN=mx.example.com', dns: ['mx.example.com'], issuer: int })
const good = [leaf.der, int.der, root.der]
const realRecords: TlsaRecord[] = [
  createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 }),
  createTlsaRecord(int.der, { usage: 2, selector: 0, matchingType: 1 }),
  createTlsaRecord(root.der, { usage: 2, selector: 1, matchingType: 2 }),
  createTlsaRecord(root.der, { usage: 2, selector: 0, matchingType: 0 }),
  createTlsaRecord(int.der, { usage: 2, selector: 1, matchingType: 0 }),
]
const CODES = ['ERR_DANE_NO_USABLE_RECORDS', 'ERR_DANE_NO_MATCH', 'ERR_DANE_NAME_MISMATCH', 'ERR_DANE_CHAIN_INVALID', 'ERR_DANE_EXPIRED']

const record: fc.Arbitrary<TlsaRecord> = fc.oneof(
  fc.constantFrom(...realRecords),
  fc
    .tuple(
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      fc.uint8Array({ maxLength: 80 }),
    )
    .map(([usage, selector, matchingType, data]) => ({ usage, selector, matchingType, data })),
)

/** A real certificate with a few bytes changed, cut or extended. */
const mutated: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom(...good), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.option(fc.nat()))
  .map(([der, edits, cut]) => {
    const out = new Uint8Array(der)
    for (const [at, v] of edits) out[at % out.length] = v
    return cut === null ? out : out.subarray(0, cut % (out.length + 1))
  })

function check(chain: Uint8Array[], records: TlsaRecord[], profile: 'smtp' | 'generic'): void {
  const res = verifyDane({ records, chain, names: ['mx.example.com'], profile, pkixValid: true, now: new Date(Date.now() + 60_000) })
  if (res.ok) {
    assert.ok(Number.isInteger(res.depth) && res.depth >= 0)
    assert.ok(records.includes(res.record))
  } else {
    assert.ok(CODES.includes(res.code), res.code)
    assert.equal(typeof res.detail, 'string')
  }
}

describe('verifyDane properties', () => {
  it('arbitrary bytes as chain and records: a verdict, never an exception', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 4 }),
        fc.array(record, { maxLength: 4 }),
        fc.constantFrom<'smtp' | 'generic'>('smtp', 'generic'),
        check,
      ),
      { numRuns: 300 },
    )
  })
  it('mutated real chains: a verdict, never an exception', () => {
    fc.assert(
      fc.property(
        fc.array(mutated, { minLength: 1, maxLength: 4 }),
        fc.array(record, { minLength: 1, maxLength: 4 }),
        fc.constantFrom<'smtp' | 'generic'>('smtp', 'generic'),
        check,
      ),
      { numRuns: 300 },
    )
  })
  it('the intact chain verifies with each real record', () => {
    for (const r of realRecords) {
      const res = verifyDane({ records: [r], chain: good, names: ['mx.example.com'], now: new Date(Date.now() + 60_000) })
      assert.ok(res.ok, JSON.stringify(res))
    }
  })
})
