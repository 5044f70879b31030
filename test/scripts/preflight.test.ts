// `npm test` on a machine without the lab's Debian packages stops before any test runs, with one
// line naming the command that installs them (issue 17).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('../../scripts/test.mjs', import.meta.url))

describe('scripts/test.mjs preflight', () => {
  it('missing lab tools: exit 1 at once, one line naming sudo bash .ci/run and the packages', () => {
    // a PATH with nothing but sh in it
    const bin = mkdtempSync(join(tmpdir(), 'stp-path-'))
    symlinkSync('/bin/sh', join(bin, 'sh'))
    const r = spawnSync(process.execPath, [script, 'test/lab/latency.test.ts'], { encoding: 'utf8', env: { PATH: bin } })
    assert.equal(r.status, 1, r.stdout + r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0]!, /^npm test: missing .*nsd.*: run `sudo bash \.ci\/run` \(it runs apt-get install .*postfix.*\)/)
    assert.equal(r.stdout, '', 'no test ran')
  })
})
