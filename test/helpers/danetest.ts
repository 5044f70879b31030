// Reader for OpenSSL's danetest.in (test/vectors/openssl-danetest; Apache-2.0, see its NOTICE).
import { readFileSync } from 'node:fs'
import { pemToDerAll } from '../../src/x509/pem.js'

export interface DaneTestBlock {
  /** 1-based number of the block in the file */
  index: number
  /** line of the block header */
  line: number
  tlsaCount: number
  certCount: number
  noNameChecks: boolean
  /** OpenSSL X509_V_* result: 0 ok, 65 DANE_NO_MATCH, 62 HOSTNAME_MISMATCH, … */
  expectedResult: number
  /** -1 means no match */
  expectedDepth: number
  /** the TLSA lines of the block (only the first `tlsaCount` count for OpenSSL) */
  tlsa: string[]
  chain: Uint8Array[]
}

export const DANETEST_PATH = new URL('../vectors/openssl-danetest/danetest.in', import.meta.url)

export function readDaneTest(): DaneTestBlock[] {
  const lines = readFileSync(DANETEST_PATH, 'utf8').split('\n')
  const blocks: DaneTestBlock[] = []
  let i = 0
  while (i < lines.length) {
    const l = lines[i]!.trim()
    if (!/^\d+ \d+ \d+ \d+ -?\d+$/.test(l)) {
      i++
      continue
    }
    const [tlsaCount, certCount, nnc, res, depth] = l.split(' ').map(Number) as [number, number, number, number, number]
    const header = i + 1
    i++
    const tlsa: string[] = []
    while (i < lines.length && /^\d+ \d+ \d+ [0-9a-fA-F]*$/.test(lines[i]!.trim())) tlsa.push(lines[i++]!.trim())
    // certificates follow until the next blank line followed by a comment or header
    const start = i
    let pemText = ''
    let found = 0
    while (i < lines.length && found < certCount) {
      pemText += lines[i] + '\n'
      if (lines[i]!.startsWith('-----END CERTIFICATE-----')) found++
      i++
    }
    void start
    blocks.push({
      index: blocks.length + 1,
      line: header,
      tlsaCount,
      certCount,
      noNameChecks: nnc === 1,
      expectedResult: res,
      expectedDepth: depth,
      tlsa,
      chain: certCount > 0 ? pemToDerAll(pemText) : [],
    })
  }
  return blocks
}
