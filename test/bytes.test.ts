// The byte helpers every parser uses: latin1 decoding agrees with one char per byte on any bytes,
// from a Buffer or a plain Uint8Array, at any offsets.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { latin1 } from '../src/bytes.js'

describe('latin1', () => {
  it('is one char per byte, for Buffers and views at any offset (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 9000 }),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        fc.nat({ max: 16 }),
        (bytes, x, y, asBuffer, pad) => {
          // a view into a larger buffer, as a socket's chunk or a subarray would be
          const backing = new Uint8Array(bytes.length + 2 * pad)
          backing.set(bytes, pad)
          const view = asBuffer ? Buffer.from(backing.buffer, pad, bytes.length) : backing.subarray(pad, pad + bytes.length)
          const start = bytes.length === 0 ? 0 : x % (bytes.length + 1)
          const end = start + (bytes.length === 0 ? 0 : y % (bytes.length - start + 1))
          let expected = ''
          for (let i = start; i < end; i++) expected += String.fromCharCode(bytes[i]!)
          assert.equal(latin1(view, start, end), expected)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('gives the empty string for an empty or reversed range', () => {
    const b = Buffer.from('abc')
    assert.equal(latin1(b, 2, 2), '')
    assert.equal(latin1(b, 3, 1), '')
    assert.equal(latin1(new Uint8Array([0xff, 0x80]), 0, 2), '\u00ff\u0080')
  })
})
