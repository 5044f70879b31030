// Netstring framing as Postfix's socketmap protocol uses it (socketmap_table(5)): strict syntax,
// the 10,000-byte query and 100,000-byte reply limits, and an incremental decoder indifferent to splits.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createNetstringDecoder, encodeNetstring, SOCKETMAP_MAX_QUERY, SOCKETMAP_MAX_REPLY } from '../../src/index.js'
import { onlyCoded, throwsCoded } from '../helpers/assert-coded.js'

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1')
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1')
const decodeAll = (input: string, maxLength?: number): string[] =>
  createNetstringDecoder(maxLength === undefined ? undefined : { maxLength })
    .push(b(input))
    .map(s)

describe('netstring decoder: valid framing', () => {
  const cases: [string, string[]][] = [
    ['0:,', ['']],
    ['5:hello,', ['hello']],
    ['3:a,b,', ['a,b']],
    ['1::,', [':']],
    ['10:dane+sts x,', ['dane+sts x']],
    ['1:a,2:bc,', ['a', 'bc']],
    ['0:,0:,', ['', '']],
  ]
  for (const [input, want] of cases) it(JSON.stringify(input), () => assert.deepEqual(decodeAll(input), want))
  it('a partial message stays pending', () => {
    const d = createNetstringDecoder()
    assert.deepEqual(d.push(b('5:hel')), [])
    assert.equal(d.pending, true)
    assert.deepEqual(d.push(b('lo,')).map(s), ['hello'])
    assert.equal(d.pending, false)
  })
})

describe('netstring decoder: hostile framing gives ERR_SOCKETMAP_SYNTAX', () => {
  const cases: [string, string][] = [
    ['00:,', 'leading zero'],
    ['01:a,', 'leading zero'],
    ['007:abcdefg,', 'leading zero'],
    [':,', 'no length'],
    ['-1:a,', 'sign'],
    ['+1:a,', 'sign'],
    [' 1:a,', 'space before the length'],
    ['1 :a,', 'space after the length'],
    ['1:ab', 'no comma after the payload'],
    ['1:a;', 'wrong terminator'],
    ['a:', 'non-digit'],
    ['1e2:', 'exponent'],
    ['0x1:', 'hex'],
    ['\u0661:a,', 'non-ASCII digit'],
    [`${SOCKETMAP_MAX_QUERY + 1}:`, 'length past the query limit'],
    ['99999999999999999999:', 'length past the query limit, long'],
  ]
  for (const [input, why] of cases)
    it(`${why}: ${JSON.stringify(input.slice(0, 30))}`, () => {
      const d = createNetstringDecoder()
      throwsCoded(() => d.push(Buffer.from(input, 'utf8')), 'ERR_SOCKETMAP_SYNTAX')
      // The decoder stays failed: later bytes never resync into a message.
      throwsCoded(() => d.push(b('1:a,')), 'ERR_SOCKETMAP_SYNTAX')
    })
  it('a length at the limit is accepted, one more is refused before any payload arrives', () => {
    const body = 'x'.repeat(SOCKETMAP_MAX_QUERY)
    assert.deepEqual(decodeAll(`${body.length}:${body},`), [body])
    throwsCoded(() => createNetstringDecoder().push(b(`${SOCKETMAP_MAX_QUERY + 1}`)), 'ERR_SOCKETMAP_SYNTAX')
    throwsCoded(() => createNetstringDecoder({ maxLength: 4 }).push(b('5')), 'ERR_SOCKETMAP_SYNTAX')
  })
})

describe('encodeNetstring', () => {
  it('frames strings and bytes', () => {
    assert.equal(s(encodeNetstring('OK dane-only')), '12:OK dane-only,')
    assert.equal(s(encodeNetstring('')), '0:,')
    assert.equal(s(encodeNetstring(new Uint8Array([0x41]))), '1:A,')
    assert.equal(encodeNetstring('é').length, '2:,'.length + 2) // UTF-8 bytes are counted
  })
  it('refuses a reply past the 100,000-byte limit (socketmap_table(5))', () => {
    assert.equal(encodeNetstring('x'.repeat(SOCKETMAP_MAX_REPLY)).length, SOCKETMAP_MAX_REPLY + 8)
    throwsCoded(() => encodeNetstring('x'.repeat(SOCKETMAP_MAX_REPLY + 1)), 'ERR_SOCKETMAP_SYNTAX')
  })
})

describe('netstring properties', () => {
  const payloads = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 })
  it('encode then decode with any split gives the same messages', () => {
    fc.assert(
      fc.property(payloads, fc.array(fc.nat(), { maxLength: 10 }), (msgs, cuts) => {
        const stream = Buffer.concat(msgs.map((m) => encodeNetstring(m)))
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y)
        const d = createNetstringDecoder()
        const out: Uint8Array[] = []
        let at = 0
        for (const p of [...points, stream.length]) {
          out.push(...d.push(stream.subarray(at, p)))
          at = p
        }
        assert.deepEqual(
          out.map((u) => Buffer.from(u)),
          msgs.map((m) => Buffer.from(m)),
        )
        assert.equal(d.pending, false)
      }),
      { numRuns: 300 },
    )
  })
  it('byte-at-a-time decoding equals whole-chunk decoding, or both fail coded', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.constantFrom(0, 1, 5, 100), (bytes, maxLength) => {
        let whole: string[] | string
        try {
          whole = createNetstringDecoder({ maxLength }).push(bytes).map(s)
        } catch (e) {
          whole = (e as { code: string }).code
        }
        const d = createNetstringDecoder({ maxLength })
        let split: string[] | string = []
        try {
          for (const x of bytes) (split as string[]).push(...d.push(new Uint8Array([x])).map(s))
        } catch (e) {
          split = (e as { code: string }).code
        }
        assert.deepEqual(split, whole)
      }),
      { numRuns: 500 },
    )
  })
  it('any input yields messages or ERR_SOCKETMAP_SYNTAX, nothing else', () => {
    const ascii = fc.stringMatching(/^[0-9:,a-z ]{0,40}$/)
    fc.assert(
      fc.property(fc.oneof(ascii.map(b), fc.uint8Array({ maxLength: 40 })), (bytes) => {
        onlyCoded(() => createNetstringDecoder({ maxLength: 50 }).push(bytes), ['ERR_SOCKETMAP_SYNTAX'])
      }),
      { numRuns: 500 },
    )
  })
})
