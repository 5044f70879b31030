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

const only = process.argv.slice(2)
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
