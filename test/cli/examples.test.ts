// The runnable examples stay runnable (they import the package by name: dist/, built by `npm test`).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'

const root = fileURLToPath(new URL('../..', import.meta.url))
const examples: Array<[string, RegExp]> = [
  ['examples/tlsa-quickstart.ts', /IN TLSA 3 1 1 [0-9a-f]{64}\n1 usable\n/],
  ['examples/verify-dane.ts', /ERR_DANE_NO_USABLE_RECORDS/],
  ['examples/pins.ts', /ERR_PIN_SYNTAX/],
  ['examples/policy-table.ts', /example\.com: verified[\s\S]*mail\.example\.net: deferred 4\.7\.5/],
  [
    'examples/nodemailer-direct.ts',
    /accepted: bob@good\.example\.test\npending: {2}carol@mismatch\.example\.test[\s\S]*good\.example\.test: sent, verified[\s\S]*mismatch\.example\.test: deferred, no session: 4\.7\.5/,
  ],
  [
    'examples/nodemailer-relay.ts',
    /right pin: accepted someone@example\.net; verified at fingerprint[\s\S]*wrong pin: 451 4\.7\.5 ERR_PIN_MISMATCH/,
  ],
  [
    'examples/mta-sts-tlsrpt.ts',
    /mode enforce, mx mx\.enforce\.example\.test, fetched\n.*cached\nenforce\.example\.test: verified.*TLS-RPT: success\ntesting\.example\.test: trusted, accepted bob@testing\.example\.test; TLS-RPT: certificate-host-mismatch\nwrong\.example\.test: deferred 4\.7\.5 certificate-host-mismatch[\s\S]*report testing\.example\.test: sent \(0 ok, 1 failed\)[\s\S]*second run: already-sent, already-sent, already-sent; 3 reports received[\s\S]*"result-type": "certificate-host-mismatch"/,
  ],
]

describe('examples', () => {
  for (const [file, expected] of examples) {
    it(`${file} runs`, () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 60_000 })
      assert.equal(r.status, 0, r.stdout + r.stderr)
      assert.match(r.stdout, expected)
    })
  }
})
