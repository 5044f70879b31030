import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { readPemBlocks } from '../../src/x509/pem-blocks.js'
import { onlyCoded, throwsCoded } from '../helpers/assert-coded.js'

describe('readPemBlocks', () => {
  it('numbers blocks of any label, skips text between them', () => {
    const b = readPemBlocks(
      'x\n-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PUBLIC KEY-----\ny\n-----BEGIN CERTIFICATE-----\nAw==\n-----END CERTIFICATE-----\n',
    )
    assert.deepEqual(
      b.map((x) => [x.label, x.index, [...x.der]]),
      [
        ['PUBLIC KEY', 1, [0, 1, 2]],
        ['CERTIFICATE', 2, [3]],
      ],
    )
  })
  it('a block without END, or with bad base64, is an error naming the block and where', () => {
    throwsCoded(() => readPemBlocks('-----BEGIN X-----\nAA==\n'), 'ERR_PEM_SYNTAX', /PEM block 1 \(X\) has no/)
    throwsCoded(
      () => readPemBlocks('-----BEGIN A-----\nAA==\n-----END A-----\n-----BEGIN B-----\nA===\n-----END B-----', 'ERR_TRUST_STORE', 'f.pem'),
      'ERR_TRUST_STORE',
      /^f\.pem: PEM block 2 \(B\) is not valid base64/,
    )
    throwsCoded(() => readPemBlocks('-----BEGIN A-----\n\n-----END A-----'), 'ERR_PEM_SYNTAX', /not valid base64/)
  })
  it('never throws anything but a coded error, and round-trips (fast-check)', () => {
    const piece = fc.constantFrom(
      '-----BEGIN CERTIFICATE-----',
      '-----END CERTIFICATE-----',
      '-----BEGIN PUBLIC KEY-----',
      '-----END PUBLIC KEY-----',
      'AAAA',
      'A=',
      '\n',
      ' ',
      'x',
    )
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (p) => onlyCoded(() => readPemBlocks(p.join('')), ['ERR_PEM_SYNTAX'])),
      { numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 100 }), { maxLength: 5 }), (ders) => {
        const text = ders
          .map(
            (d) =>
              `-----BEGIN CERTIFICATE-----\n${Buffer.from(d)
                .toString('base64')
                .replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`,
          )
          .join('junk\n')
        assert.deepEqual(
          readPemBlocks(text).map((b) => [...b.der]),
          ders.map((d) => [...d]),
        )
      }),
      { numRuns: 200 },
    )
  })
})
