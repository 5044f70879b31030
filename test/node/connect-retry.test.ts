// A failed handshake: `may` retries in plaintext on a new connection, `encrypt` defers 4.7.5
// (Postfix TLS_README, PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE; RFC 7435 §3).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parsePolicyTable } from '../../src/index.js'
import { probe, type ConnectOptions } from '../../src/node/index.js'
import { startDestination, type TestDestination } from '../helpers/destination.js'

let dest: TestDestination
let o: ConnectOptions

before(async () => {
  dest = await startDestination('retry.test')
  o = dest.options
})
after(() => dest?.close())

// Only TLS 1.0 and 1.1 allowed by the table: Node's server (TLS 1.2 minimum) refuses the handshake.
const oldOnly = (level: string) => parsePolicyTable(`retry.test ${level} protocols=!TLSv1.2:!TLSv1.3`)

describe('handshake failure', () => {
  it('may: the handshake fails, then a second connection without STARTTLS delivers in plaintext', async () => {
    const r = await probe('retry.test', { ...o, policyTable: oldOnly('may') })
    assert.equal(r.attempts.length, 2, JSON.stringify(r.attempts, null, 1))
    assert.equal(r.attempts[0]!.verdict?.status, 'deferred')
    assert.equal(r.attempts[0]!.verdict?.plaintextRetry, true)
    assert.ok(r.attempts[0]!.transcript.includes('> STARTTLS'))
    assert.ok(!r.attempts[1]!.transcript.includes('> STARTTLS'), 'the retry never sends STARTTLS')
    assert.equal(r.outcome.status, 'plaintext')
  })
  it('encrypt: deferred 4.7.5, no plaintext retry', async () => {
    const r = await probe('retry.test', { ...o, policyTable: oldOnly('encrypt') })
    assert.equal(r.attempts.length, 1)
    assert.equal(r.outcome.status, 'deferred')
    assert.equal(r.outcome.enhancedStatus, '4.7.5')
  })
  it('may with REQUIRETLS on the message: no plaintext retry (RFC 8689 §4.2.1)', async () => {
    const r = await probe('retry.test', { ...o, policyTable: oldOnly('may'), message: { requireTls: true } })
    assert.equal(r.attempts.length, 1)
    assert.equal(r.outcome.status, 'deferred')
  })
})

describe('a deferral decided after the post-TLS EHLO', () => {
  it('REQUIRETLS not advertised: deferred, and the session ends with QUIT (RFC 5321 §4.1.1.10)', async () => {
    const commands: string[] = []
    const d = await startDestination('late.test', { tlsa: true, onCommand: (l) => commands.push(l) })
    try {
      const r = await probe('late.test', { ...d.options, level: 'dane', message: { requireTls: true } })
      assert.equal(r.outcome.status, 'deferred')
      assert.equal(r.outcome.code, 'ERR_REQUIRETLS')
      const t = r.attempts[0]!.transcript
      assert.equal(t.filter((l) => l.startsWith('> EHLO')).length, 2, 'the verdict came after the post-TLS EHLO')
      assert.equal(t.at(-1), '> QUIT')
      // the server read it (smtp-server logs commands; after TLS too)
      for (let i = 0; i < 100 && !commands.includes('QUIT'); i++) await new Promise((res) => setTimeout(res, 10))
      assert.ok(commands.includes('QUIT'), commands.join(' | '))
    } finally {
      await d.close()
    }
  })
})
