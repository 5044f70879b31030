// fast-check properties of pins (DESIGN.md §7): formatting round-trips, parsing only throws coded errors.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { parsePins, type PinDigest } from '../../src/index.js'
import { toHexSeparated } from '../../src/bytes.js'
import { onlyCoded } from '../helpers/assert-coded.js'

const LEN: Record<PinDigest, number> = { sha256: 32, sha512: 64, sha1: 20, md5: 16 }
const digest = fc.constantFrom<PinDigest>('sha256', 'sha512', 'sha1', 'md5')

describe('pin properties', () => {
  it('AB:CD formatting round-trips in every accepted spelling', () => {
    fc.assert(
      fc.property(
        digest.chain((d) =>
          fc.tuple(fc.constant(d), fc.array(fc.uint8Array({ minLength: LEN[d], maxLength: LEN[d] }), { minLength: 1, maxLength: 4 })),
        ),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        ([d, pins], colons, lower, asList) => {
          const texts = pins.map((p) => {
            const t = toHexSeparated(p, colons ? ':' : '')
            return lower ? t.toLowerCase() : t
          })
          const parsed = parsePins(asList ? texts : texts.join('|'), { digest: d })
          assert.deepEqual(
            parsed,
            pins.map((p) => new Uint8Array(p)),
          )
          assert.deepEqual(
            parsed.map((p) => toHexSeparated(p, ':')),
            pins.map((p) => toHexSeparated(p, ':')),
          )
        },
      ),
    )
  })
  it('arbitrary text only ever throws ERR_PIN_SYNTAX', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:| xz'.split('')), maxLength: 140 }), digest, (s, d) => {
        onlyCoded(() => parsePins(s, { digest: d }), ['ERR_PIN_SYNTAX'])
      }),
    )
  })
})
