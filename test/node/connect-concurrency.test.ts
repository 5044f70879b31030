// maxConcurrentSessions: concurrent connections queue for a TLS handshake slot and all complete.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parsePolicyTable } from '../../src/index.js'
import { connect, probe, type ConnectOptions } from '../../src/node/index.js'
import { startDestination, type TestDestination } from '../helpers/destination.js'

let dest: TestDestination
let o: ConnectOptions

before(async () => {
  dest = await startDestination('conc.test', { tlsa: true })
  o = { ...dest.options, timeoutMs: 10_000, level: 'dane' }
})
after(() => dest?.close())

describe('maxConcurrentSessions', () => {
  it('one slot: 12 concurrent connections wait their turn and are all verified', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => connect('conc.test', { ...o, maxConcurrentSessions: 1 })))
    assert.deepEqual(
      results.map((c) => c.outcome.status),
      Array(12).fill('verified'),
    )
    for (const c of results) c.socket.destroy()
  })
  it('a failed session gives its slot back (the next connections still complete)', async () => {
    // only TLS 1.0/1.1 allowed: Node's server refuses the handshake
    const policyTable = parsePolicyTable('conc.test encrypt protocols=!TLSv1.2:!TLSv1.3')
    const bad = probe('conc.test', { ...o, maxConcurrentSessions: 1, policyTable })
    const good = probe('conc.test', { ...o, maxConcurrentSessions: 1 })
    const [b, g] = await Promise.all([bad, good])
    assert.equal(b.outcome.status, 'deferred')
    assert.equal(g.outcome.status, 'verified')
  })
  it('64 calls at once begin their DNS discovery at most 16 per turn of the event loop, in order, and all complete', async () => {
    // Which turn of the event loop each call's MX lookup happens in (issue 11: 200 discoveries in one
    // microtask drain stalled the loop for 4-23 ms).
    let turn = 0
    let ticking = true
    const tick = (): void => {
      turn++
      if (ticking) setImmediate(tick)
    }
    setImmediate(tick)
    const inner = o.resolver!
    // turns[i]: the turn of call i's MX lookup (each call gets its own view of the shared resolver)
    const turns: number[] = []
    const resolverFor = (i: number) => ({
      ...inner,
      lookup: ((name: string, type: string, lo?: object) => {
        if (name === 'conc.test' && type === 'MX') turns[i] = turn
        return inner.lookup(name as never, type as never, lo)
      }) as typeof inner.lookup,
    })
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => connect('conc.test', { ...o, resolver: resolverFor(i) })))
    ticking = false
    assert.equal(turns.filter((t) => t !== undefined).length, 64)
    // in order: a later call never begins in an earlier turn
    for (let i = 1; i < 64; i++) assert.ok(turns[i]! >= turns[i - 1]!, JSON.stringify(turns))
    const perTurn = new Map<number, number>()
    for (const t of turns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1)
    assert.ok(Math.max(...perTurn.values()) <= 16, JSON.stringify([...perTurn]))
    assert.ok(perTurn.size >= 4, JSON.stringify([...perTurn]))
    assert.deepEqual(
      results.map((c) => c.outcome.status),
      Array(64).fill('verified'),
    )
    for (const c of results) c.socket.destroy()
  })
  it('rejects a limit below 1', async () => {
    await assert.rejects(connect('conc.test', { ...o, maxConcurrentSessions: 0 }), { code: 'ERR_INVALID_ARGUMENT' })
  })
})
