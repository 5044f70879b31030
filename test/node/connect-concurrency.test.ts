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
  it('rejects a limit below 1', async () => {
    await assert.rejects(connect('conc.test', { ...o, maxConcurrentSessions: 0 }), { code: 'ERR_INVALID_ARGUMENT' })
  })
})
