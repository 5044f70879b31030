// The memory store: get/set with TTL on an injected clock, atomic increment, prefix scan, LRU bound.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createMemoryStore } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

describe('createMemoryStore', () => {
  it('get / set / delete', () => {
    const s = createMemoryStore({ now: () => 0 })
    assert.equal(s.get('a'), undefined)
    s.set('a', '1')
    assert.equal(s.get('a'), '1')
    assert.equal(s.delete('a'), true)
    assert.equal(s.delete('a'), false)
    assert.equal(s.get('a'), undefined)
  })
  it('expires by the injected clock, checked on access', () => {
    let now = 1000
    const s = createMemoryStore({ now: () => now })
    s.set('k', 'v', 10)
    now += 9999
    assert.equal(s.get('k'), 'v')
    now += 1
    assert.equal(s.get('k'), undefined)
    assert.equal(s.size, 0) // removed when touched
    s.set('k', 'v', 1)
    now += 1000
    assert.deepEqual(s.scan(''), [])
    assert.equal(s.size, 0)
  })
  it('increment counts from 0, keeps the TTL set at creation, and reads back as a string', () => {
    let now = 0
    const s = createMemoryStore({ now: () => now })
    assert.equal(s.increment('c', 1, 10), 1)
    now = 5000
    assert.equal(s.increment('c', 5, 1000), 6)
    assert.equal(s.get('c'), '6')
    now = 10_000
    assert.equal(s.increment('c'), 1) // expired at 10 s (the first TTL), counting starts again
    s.set('n', '41')
    assert.equal(s.increment('n'), 42)
    s.set('t', 'text')
    throwsCoded(() => s.increment('t'), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => s.increment('c', 1.5), 'ERR_INVALID_ARGUMENT')
    s.set('big', String(Number.MAX_SAFE_INTEGER))
    throwsCoded(() => s.increment('big'), 'ERR_INVALID_ARGUMENT')
  })
  it('scan returns the live entries under a prefix', () => {
    const s = createMemoryStore({ now: () => 0 })
    s.set('a|1', 'x')
    s.increment('a|2')
    s.set('b|1', 'y')
    assert.deepEqual(s.scan('a|').sort(), [
      ['a|1', 'x'],
      ['a|2', '1'],
    ])
  })
  it('evicts the least recently used entry beyond maxEntries', () => {
    const s = createMemoryStore({ maxEntries: 3, now: () => 0 })
    s.set('a', '1')
    s.set('b', '2')
    s.set('c', '3')
    s.get('a') // a is now the most recent
    s.increment('d')
    assert.equal(s.size, 3)
    assert.equal(s.get('b'), undefined)
    assert.deepEqual(
      s
        .scan('')
        .map(([k]) => k)
        .sort(),
      ['a', 'c', 'd'],
    )
  })
  it('never holds more than maxEntries (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.tuple(fc.constantFrom('set', 'inc', 'get'), fc.string({ maxLength: 2 })), { maxLength: 60 }),
        (max, ops) => {
          const s = createMemoryStore({ maxEntries: max, now: () => 0 })
          for (const [op, k] of ops) {
            // text and counters under keys of their own: incrementing a text value is a coded error by design
            if (op === 'set') s.set('s:' + k, 'v')
            else if (op === 'inc') s.increment('n:' + k)
            else s.get('s:' + k)
            assert.ok(s.size <= max)
          }
        },
      ),
    )
  })
  it('refuses bad arguments with a coded error', () => {
    const s = createMemoryStore({ now: () => 0 })
    throwsCoded(() => createMemoryStore({ maxEntries: 0 }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => createMemoryStore({ now: 5 as never }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => s.get(1 as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => s.set('k', 1 as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => s.set('k', 'v', 0), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => s.set('k', 'v', NaN), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => s.scan(null as never), 'ERR_INVALID_ARGUMENT')
  })
})
