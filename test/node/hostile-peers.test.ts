// Issue 10 §1: a hostile SMTP/TLS server must never crash the client process. Every shape runs in
// a child process (hostile-peers.child.ts) through connect(), probe() and the CLI's probe; the
// child must live to print its results, with no uncaught exception recorded. Then a soak of 1,000
// failing attempts: no crash, and active handles and heap back to their baseline.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import type { HostileShape } from '../helpers/hostile-smtp.js'

const child = fileURLToPath(new URL('./hostile-peers.child.ts', import.meta.url))

function runChild(args: string[], nodeFlags: string[] = []) {
  const r = spawnSync(process.execPath, [...nodeFlags, '--import', 'tsx', child, ...args], {
    encoding: 'utf8',
    timeout: 100_000,
  })
  assert.equal(r.status, 0, `the child process died (status ${r.status}, signal ${r.signal}):\n${r.stderr}\n${r.stdout}`)
  const last = r.stdout.trim().split('\n').pop() ?? ''
  return JSON.parse(last) as Record<string, unknown>
}

interface Result {
  shape: HostileShape
  via: 'connect' | 'probe' | 'cli'
  status?: string
  code?: string
  temporary?: boolean
  enhancedStatus?: string
  message?: string
  exit?: number
}

/** What each shape must give at its level (encrypt, or may for reset-after-quit). */
const expected: Record<HostileShape, { codes: string[]; status?: RegExp; exit: number }> = {
  'swallow-hello': { codes: ['ERR_SMTP_TIMEOUT'], status: /^4\.4\.2$/, exit: 75 },
  'reset-on-fin': { codes: ['ERR_STARTTLS_NOT_OFFERED'], status: /^4\.7\.4$/, exit: 75 },
  'reset-after-quit': { codes: [], exit: 0 },
  'reset-mid-handshake': { codes: ['ERR_TLS_HANDSHAKE'], status: /^4\.7\.5$/, exit: 75 },
  'close-mid-handshake': { codes: ['ERR_TLS_HANDSHAKE'], status: /^4\.7\.5$/, exit: 75 },
  // issue 10 §5: temporary, so a 4.x.x status, with the server's words kept
  'greeting-554': { codes: ['ERR_SMTP_REJECTED'], status: /^4\.7\.1$/, exit: 75 },
  'reset-at-once': { codes: ['ERR_CONNECT', 'ERR_SMTP_EOF'], status: /^4\.4\.[12]$/, exit: 75 },
}

describe('hostile peers (issue 10 §1)', () => {
  it('every shape, through connect(), probe() and the CLI: the process lives, each failure is coded and temporary', () => {
    const out = runChild(['shapes'])
    assert.deepEqual(out.crashes, [], 'uncaught exceptions in the client process')
    const results = out.results as Result[]
    assert.equal(results.length, Object.keys(expected).length * 3)
    for (const r of results) {
      const want = expected[r.shape]
      const what = `${r.shape} via ${r.via}: ${JSON.stringify(r)}`
      if (r.via === 'cli') {
        assert.equal(r.exit, want.exit, what)
        assert.doesNotMatch(r.message ?? '', /\n\s+at /, `no stack trace: ${what}`)
        continue
      }
      if (want.codes.length === 0) {
        assert.equal(r.status, 'plaintext', what)
        continue
      }
      assert.ok(want.codes.includes(r.code ?? ''), what)
      assert.equal(r.temporary, true, what)
      assert.match(r.enhancedStatus ?? '', want.status!, what)
      if (r.shape === 'greeting-554') assert.match(r.message ?? '', /554 5\.7\.1 hostile\.test no SMTP service here/, what)
    }
  })

  it('soak: 1,000 failing attempts of mixed shapes, no crash, handles and heap back to baseline', () => {
    const out = runChild(['soak', '1000'], ['--expose-gc'])
    assert.deepEqual(out.crashes, [], 'uncaught exceptions in the client process')
    const codes = out.codes as Record<string, number>
    const total = Object.values(codes).reduce((a, b) => a + b, 0)
    assert.equal(total, 1000, JSON.stringify(codes))
    assert.equal(codes['NOT CODED'] ?? 0, 0, JSON.stringify(codes))
    // every attempt ended: the process holds no more handles than before the 1,000
    const before = out.handlesBefore as string[]
    const after = out.handlesAfter as string[]
    assert.ok(after.length <= before.length, `handles before ${before.join(',')} after ${after.join(',')}`)
    // and keeps nothing per attempt: 1,000 attempts that each leaked a socket or a transcript would add megabytes
    const growth = (out.heapAfter as number) - (out.heapBefore as number)
    assert.ok(growth < 4 * 2 ** 20, `heap grew by ${(growth / 2 ** 20).toFixed(2)} MiB over 1,000 attempts`)
  })
})
