// Issue 17: each command loads only what it needs; `--help` and usage errors load nothing of the
// library. Checked by what the ESM loader loads (a module hook writes every URL to a file), not by
// timing (time belongs in bench/cli-startup.ts). Runs the built bin (dist/, after `npm run build`).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { CLI_LEVELS } from '../../src/cli/main.js'
import { CONFIGURABLE_LEVELS } from '../../src/policy/levels.js'
import { tempDir } from '../helpers/openssl.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const tmp = tempDir()
after(tmp.done)
writeFileSync(
  join(tmp.dir, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs'
let log
export function initialize(data) { log = data.log }
export async function load(url, context, next) { appendFileSync(log, url + '\\n'); return next(url, context) }
`,
)
writeFileSync(
  join(tmp.dir, 'register.mjs'),
  `import { register } from 'node:module'
register(${JSON.stringify(pathToFileURL(join(tmp.dir, 'hooks.mjs')).href)}, { data: { log: process.env.LOAD_LOG } })
`,
)

let n = 0
/** The modules one run of the bin loads: our files relative to the repository, and bare/builtin specifiers. */
function loaded(args: string[], status: number): string[] {
  const log = join(tmp.dir, `load-${++n}.log`)
  writeFileSync(log, '')
  const r = spawnSync(process.execPath, ['--import', join(tmp.dir, 'register.mjs'), 'bin/smtp-tls-policy.js', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, LOAD_LOG: log },
    timeout: 30_000,
  })
  assert.equal(r.status, status, r.stderr)
  const rootUrl = pathToFileURL(root).href
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((u) => u.length > 0 && !u.includes('register.mjs'))
    .map((u) => (u.startsWith(rootUrl) ? u.slice(rootUrl.length) : u))
}

describe('CLI start-up: what each command loads', () => {
  const parserOnly = ['bin/smtp-tls-policy.js', 'dist/cli/common.js', 'dist/cli/main.js', 'node:fs', 'node:util']
  for (const [why, args, status] of [
    ['--help', ['--help'], 0],
    ['no command', [], 64],
    ['tlsa --help', ['tlsa', '--help'], 0],
    ['probe --help', ['probe', '--help'], 0],
    ['mta-sts --help', ['mta-sts', '--help'], 0],
    ['tlsrpt --help', ['tlsrpt', '--help'], 0],
    ['serve --help', ['serve', '--help'], 0],
    ['query --help', ['query', '--help'], 0],
    ['a usage error (serve without --socketmap)', ['serve'], 64],
    ['a usage error (mta-sts without a domain)', ['mta-sts'], 64],
    ['a usage error (tlsrpt with nothing to do)', ['tlsrpt'], 64],
    ['a usage error (no destination)', ['probe'], 64],
    ['a usage error (an unknown level)', ['probe', 'example.com', '--level', 'paranoid'], 64],
    ['a usage error (a newline in --host)', ['tlsa', 'x.pem', '--host', 'a\nb'], 64],
  ] as const) {
    it(`${why}: the argument parser and nothing else`, () => {
      assert.deepEqual(loaded([...args], status).sort(), parserOnly)
    })
  }
  it('tlsa: certificate and digest code, no DNS codec, no driver, no TLS', () => {
    const mods = loaded(['tlsa', 'examples/certs/mx.example.com.pem'], 0)
    assert.ok(mods.includes('dist/cli/tlsa.js'))
    for (const m of mods) {
      assert.doesNotMatch(m, /dns-packet|^dist\/(node|policy|smtp|dane|pin)\/|^node:(tls|net|dgram|dns)$/, m)
    }
  })
  it('tlsrpt --report: the validator, no driver, no TLS, no sockets', () => {
    const mods = loaded(['tlsrpt', '--report', 'test/vectors/tlsrpt/rfc8460-example.json'], 0)
    assert.ok(mods.includes('dist/cli/tlsrpt.js'))
    assert.ok(mods.includes('dist/tlsrpt/validate.js'))
    for (const m of mods) assert.doesNotMatch(m, /^dist\/(policy|smtp|dane|pin)\/|^dist\/node\/connect|^node:(tls|net|dgram)$/, m)
  })
})

describe('--level', () => {
  it('takes exactly the configurable levels of the policy code', () => {
    assert.deepEqual([...CLI_LEVELS], [...CONFIGURABLE_LEVELS])
  })
})
