#!/usr/bin/env node
// The one test command (README: `npm test`): type-check, build, lint, format check, API report
// check, then every test file under test/ with Node's test runner. Exits non-zero on any failure.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

function run(title, cmd, args) {
  process.stdout.write(`\n== ${title}\n`)
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: process.env })
  if (r.status !== 0) {
    process.stderr.write(`\n${title} failed (exit ${r.status ?? r.signal})\n`)
    process.exit(r.status || 1)
  }
}

function findTests(dir) {
  const out = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...findTests(p))
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

/**
 * The real peers the lab tests drive (test/lab/README.md), and the Debian package of each. Checked
 * before any test runs, so a machine without them fails at once with one line instead of in the
 * middle of the suite (no test is ever skipped for a missing tool).
 */
const TOOLS = [
  ['openssl', 'openssl'],
  ['posttls-finger', 'postfix'],
  ['/usr/lib/postfix/sbin/master', 'postfix'],
  ['nsd', 'nsd'],
  ['unbound', 'unbound'],
  ['ldns-signzone', 'ldnsutils'],
  ['dig', 'bind9-dnsutils'],
  ['tcpdump', 'tcpdump'],
  ['redis-server', 'redis-server'],
  ['chromium', 'chromium'],
]

function preflight() {
  const missing = TOOLS.filter(([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
  const packages = [...new Set(missing.map(([, pkg]) => pkg))]
  if (packages.length > 0) {
    process.stderr.write(
      `npm test: missing ${missing.map(([t]) => t).join(', ')}: run \`sudo bash .ci/run\` (it runs apt-get install ${packages.join(' ')}, then the tests)\n`,
    )
    process.exit(1)
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write(
      'npm test: the lab tests start Postfix, NSD and Unbound on 127.0.x.y ports 25 and 53: run as root (`sudo bash .ci/run`)\n',
    )
    process.exit(1)
  }
}

const only = process.argv.slice(2)
if (only.length === 0 || only.some((f) => f.includes('test/lab/'))) preflight()
if (only.length === 0) {
  run('build', 'npx', ['tsc', '-p', 'tsconfig.json'])
  run('type-check (src, test, bench, examples)', 'npx', ['tsc', '-p', 'tsconfig.check.json'])
  run('lint', 'npx', ['eslint', '.'])
  run('format', 'npx', ['prettier', '--check', '.'])
  run('API report', 'node', ['scripts/api-report.mjs', '--check'])
}
const files = only.length > 0 ? only : findTests('test')
run(`tests (${files.length} files)`, process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  '--test-timeout=120000',
  ...files,
])
