// Oracle: OpenSSL's DANE test file (test/vectors/openssl-danetest/danetest.in, Apache-2.0, see its
// NOTICE). Every block must give OpenSSL's verdict and match depth, except where OpenSSL checks
// names for DANE-EE(3), which RFC 7671 §5.1 / RFC 7672 §3.1.1 forbid (listed below).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseTlsaRecord, verifyDane, type DaneResult, type TlsaRecord } from '../../src/index.js'
import { readDaneTest, type DaneTestBlock } from '../helpers/danetest.js'

const blocks = readDaneTest()
// danetest.c's harness: base domain example.com; it ranks sha256 above sha512 (digest agility).
const NAMES = ['example.com']
const DIGESTS = ['sha256', 'sha512'] as const
// The certificates run to 3015; any date in their window works. Fixed for reproducibility.
const NOW = new Date('2026-01-01T00:00:00Z')

/**
 * Blocks where the RFC overrides OpenSSL: `nonamechecks` is 0 and the record is DANE-EE(3), so
 * OpenSSL also checks names; RFC 7671 §5.1 and RFC 7672 §3.1.1 say a DANE-EE match MUST succeed
 * regardless of names.
 */
const RFC_OVERRIDES: Record<number, string> = {
  54: 'DANE-EE(3) leaf named example.org: OpenSSL checks names because nonamechecks=0 (62); RFC 7672 §3.1.1 forbids name checks, so it must succeed at depth 0',
}

/** OpenSSL X509_V_* result → our failure code. */
const CODE: Record<number, string> = {
  65: 'ERR_DANE_NO_MATCH', // X509_V_ERR_DANE_NO_MATCH
  62: 'ERR_DANE_NAME_MISMATCH', // X509_V_ERR_HOSTNAME_MISMATCH
  20: 'ERR_DANE_CHAIN_INVALID', // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: the PKIX path is incomplete
}

/** Only the first `tlsaCount` TLSA lines count for OpenSSL's harness. */
const recordsOf = (b: DaneTestBlock): TlsaRecord[] => b.tlsa.slice(0, b.tlsaCount).map(parseTlsaRecord)
const usesOnly = (b: DaneTestBlock, usages: number[]) => recordsOf(b).every((r) => usages.includes(r.usage))

// The harness's trust store (danetest.pem) holds "Root CA", which several blocks also send at depth 2.
const rootCa = blocks[18]!.chain[2]!

function expectOpenSsl(b: DaneTestBlock, res: DaneResult): void {
  const why = `block ${b.index} (line ${b.line}): ${JSON.stringify(res)}`
  if (b.expectedResult === 0) {
    assert.ok(res.ok, why)
    assert.equal(res.depth, b.expectedDepth, why)
  } else {
    assert.ok(!res.ok, why)
    assert.equal(res.code, CODE[b.expectedResult], why)
    assert.match(res.detail, /\d \d \d [0-9a-f]/, 'the detail names the record(s) tried')
  }
}

describe('danetest.in, usages 2 and 3 (SMTP profile)', () => {
  const selected = blocks.filter((b) => usesOnly(b, [2, 3]))
  it('covers the expected blocks', () => {
    assert.equal(blocks.length, 54)
    assert.equal(selected.length, 34)
    // Quirk exercised: blocks 43-46 carry a second TLSA line beyond their count of 1.
    for (const i of [43, 44, 45, 46]) assert.ok(blocks[i - 1]!.tlsa.length > blocks[i - 1]!.tlsaCount, `block ${i}`)
  })
  for (const b of selected) {
    const override = RFC_OVERRIDES[b.index]
    it(`block ${b.index}: ${override ?? `OpenSSL ${b.expectedResult} depth ${b.expectedDepth}`}`, () => {
      const res = verifyDane({ records: recordsOf(b), chain: b.chain, names: NAMES, digests: DIGESTS, now: NOW })
      if (override !== undefined) {
        assert.equal(b.noNameChecks, false)
        assert.ok(res.ok && res.depth === 0 && res.usage === 'DANE-EE', JSON.stringify(res))
      } else expectOpenSsl(b, res)
    })
  }
  it('block 51 is the same chain with nonamechecks=1: OpenSSL agrees with the RFC there', () => {
    const b = blocks[50]!
    assert.equal(b.noNameChecks, true)
    const res = verifyDane({ records: recordsOf(b), chain: b.chain, names: NAMES, digests: DIGESTS, now: NOW })
    assert.ok(res.ok && res.depth === 0)
  })
})

describe('danetest.in, usages 0 and 1', () => {
  const selected = blocks.filter((b) => usesOnly(b, [0, 1]))
  it('covers the expected blocks', () => assert.equal(selected.length, 20))
  for (const b of selected) {
    it(`block ${b.index}: unusable under the SMTP profile (RFC 7672 §3.1.3)`, () => {
      const res = verifyDane({ records: recordsOf(b), chain: b.chain, names: NAMES, digests: DIGESTS, now: NOW })
      assert.ok(!res.ok && res.code === 'ERR_DANE_NO_USABLE_RECORDS', JSON.stringify(res))
    })
    it(`block ${b.index}: generic profile gives OpenSSL ${b.expectedResult} depth ${b.expectedDepth}`, () => {
      // pkixValid as the expectation implies: OpenSSL's PKIX path fails only for code 20 (missing
      // intermediate); the PKIX path the TLS stack validated ends at the harness's Root CA.
      const top = b.chain[b.chain.length - 1]!
      const pkixChain = Buffer.compare(top, rootCa) === 0 || b.expectedResult === 20 ? b.chain : [...b.chain, rootCa]
      const res = verifyDane({
        records: recordsOf(b),
        chain: b.chain,
        names: NAMES,
        digests: DIGESTS,
        now: NOW,
        profile: 'generic',
        pkixValid: b.expectedResult !== 20,
        pkixChain,
      })
      expectOpenSsl(b, res)
    })
  }
})
