// The README's main job (`npm run demo`) works and prints the three verdicts. Needs the build that
// `npm test` runs first (the demo imports the package by name, which resolves to dist/).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'

describe('npm run demo', () => {
  it('verifies the good destination and defers the mismatch (4.7.5) and the stripped one (4.7.4)', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /Verified TLS connection established to mx\.good\.demo\.test\[127\.0\.0\.1\]/)
    assert.match(r.stdout, /verdict: deferred 4\.7\.5 \(TLS-RPT tlsa-invalid\)/)
    assert.match(r.stdout, /verdict: deferred 4\.7\.4 \(TLS-RPT starttls-not-supported\)/)
  })
})
