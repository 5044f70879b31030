// Issue 17 "CLI start-up": wall time of `smtp-tls-policy --help` and `smtp-tls-policy tlsa <cert>`
// against an empty `node -e 0`, process start included. Runs are interleaved (one of each, then
// again) so the machine's load hits every command alike; the figures are medians.
// Target: both at most 1.3x `node -e 0`.
// The machine is shared: wall time moves with its load. The CPU time each process used (user + sys,
// read by a one-line `-r` preload at exit, the same for every command) moves much less, so it is
// printed too, from separate interleaved runs.
// Then what each module costs to import on its own (median minus an empty ESM `node`), which is
// what a command pays for what it loads.
// It runs bin/ and dist/ as installed; it builds dist/ first when a source file is newer.
// Run: npm run bench -- cli-startup   (RUNS=40 for more runs)
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const RUNS = Math.max(3, Number(process.env['RUNS'] ?? 20) | 0)
const TARGET = 1.3

/** Newest mtime of the files under `dir` whose names end in `ext`. */
function newest(dir: string, ext: string): { t: number; file: string } {
  let best = { t: 0, file: '' }
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    const b = e.isDirectory() ? newest(p, ext) : e.name.endsWith(ext) ? { t: statSync(p).mtimeMs, file: p } : best
    if (b.t > best.t) best = b
  }
  return best
}

/** Oldest mtime of the built files, so one stale output is enough to rebuild. */
function oldestBuilt(dir: string): number {
  let t = Infinity
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) t = Math.min(t, oldestBuilt(p))
    else if (e.name.endsWith('.js')) t = Math.min(t, statSync(p).mtimeMs)
  }
  return t
}

function ensureBuilt(): void {
  const src = newest(join(root, 'src'), '.ts')
  let built = -Infinity
  try {
    built = oldestBuilt(join(root, 'dist'))
  } catch {
    // no dist/ yet
  }
  if (src.t <= built) return
  console.log(`building dist/ (${relative(root, src.file)} is newer): npm run build`)
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
  if (r.status !== 0) {
    console.error('build failed: the figures below would measure stale code')
    process.exit(1)
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'cli-startup-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))
const cpuPreload = join(scratch, 'cpu.cjs')
writeFileSync(
  cpuPreload,
  "process.on('exit', () => { const u = process.cpuUsage(); require('fs').writeSync(3, String((u.user + u.system) / 1000)) })\n",
)

/**
 * Wall time of one process run, ms, or with `cpu` the CPU time it reports at exit; the exit status
 * is checked so a broken CLI is not "fast".
 */
function once(args: readonly string[], expect: number, cpu = false): number {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, cpu ? ['-r', cpuPreload, ...args] : args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== expect) {
    throw new Error(`node ${args.join(' ')} exited ${r.status ?? r.signal}, expected ${expect}: ${r.stderr.toString()}`)
  }
  return cpu ? Number(r.output[3]!.toString()) : ms
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

interface Case {
  name: string
  args: string[]
  expect: number
}

/** Interleaved runs of every case; returns the median per case. */
function interleaved(cases: readonly Case[], runs: number, cpu = false): Map<string, number> {
  const times = new Map(cases.map((c) => [c.name, [] as number[]]))
  for (const c of cases) once(c.args, c.expect) // warm the file cache
  for (let i = 0; i < runs; i++) for (const c of cases) times.get(c.name)!.push(once(c.args, c.expect, cpu))
  return new Map([...times].map(([k, v]) => [k, median(v)]))
}

ensureBuilt()
console.log(
  `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}, ${RUNS} interleaved runs each, medians`,
)

const bin = 'bin/smtp-tls-policy.js'
const cert = 'examples/certs/mx.example.com.pem'
const startup: Case[] = [
  { name: 'node -e 0', args: ['-e', '0'], expect: 0 },
  { name: 'smtp-tls-policy --help', args: [bin, '--help'], expect: 0 },
  { name: `smtp-tls-policy tlsa ${cert}`, args: [bin, 'tlsa', cert], expect: 0 },
  { name: 'smtp-tls-policy probe (usage error)', args: [bin, 'probe'], expect: 64 },
]
const m = interleaved(startup, RUNS)
const base = m.get('node -e 0')!
const w = Math.max(...startup.map((c) => c.name.length))
let met = true
for (const c of startup) {
  const t = m.get(c.name)!
  const r = t / base
  const goal = c.name === 'node -e 0' ? '' : r <= TARGET ? `  MET (≤ ${TARGET}x)` : `  NOT MET (> ${TARGET}x)`
  if (c.name.includes('--help') || c.name.includes(' tlsa ')) met &&= r <= TARGET
  console.log(`  ${c.name.padEnd(w)}  ${t.toFixed(1).padStart(7)} ms  ${r.toFixed(2)}x${goal}`)
}
console.log(`  goal (--help and tlsa ≤ ${TARGET}x node -e 0, wall time): ${met ? 'MET' : 'NOT MET'}`)

console.log(`\nCPU time (user + sys at exit), ${RUNS} more interleaved runs each, medians`)
const c = interleaved(startup, RUNS, true)
const cbase = c.get('node -e 0')!
for (const k of startup) {
  const t = c.get(k.name)!
  console.log(`  ${k.name.padEnd(w)}  ${t.toFixed(1).padStart(7)} ms  ${(t / cbase).toFixed(2)}x`)
}

// What each import costs, timed inside the process (less noisy than whole runs): a fresh `node`
// first loads an empty file module (the ESM loader's own start, paid by every command), then the
// module under test with everything it imports; wall and CPU time of that import alone.
const dist = (p: string) => pathToFileURL(join(root, 'dist', p)).href
const emptyModule = join(scratch, 'empty.mjs')
writeFileSync(emptyModule, '')
const modules: Array<[string, string]> = [
  ['(the ESM loader: an empty file module)', ''],
  ['node:util (parseArgs)', 'node:util'],
  ['node:fs', 'node:fs'],
  ['node:crypto', 'node:crypto'],
  ['node:tls + node:net', 'node:tls'],
  ['dns-packet', 'dns-packet'],
  ['dist/cli/main.js (the argument parser)', dist('cli/main.js')],
  ['dist/cli/tlsa.js (the tlsa command)', dist('cli/tlsa.js')],
  ['dist/tlsa/create.js (+ x509, node:crypto)', dist('tlsa/create.js')],
  ['dist/tlsa/format.js (+ dns-packet)', dist('tlsa/format.js')],
  ['dist/cli/probe.js (the probe command)', dist('cli/probe.js')],
  ['dist/node/connect.js (the driver)', dist('node/connect.js')],
]
function importCost(url: string): [number, number] {
  const target = url === '' ? pathToFileURL(emptyModule).href : url
  const warm = url === '' ? '' : `await import(${JSON.stringify(pathToFileURL(emptyModule).href)});`
  const code = `${warm} const t = performance.now(), c = process.cpuUsage(); await import(${JSON.stringify(target)});
    const u = process.cpuUsage(c); process.stdout.write(JSON.stringify([performance.now() - t, (u.user + u.system) / 1000]))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`import ${target}: ${r.stderr}`)
  return JSON.parse(r.stdout) as [number, number]
}
const runs2 = Math.max(5, Math.round(RUNS / 2))
console.log(`\nimport cost of one module and all it imports, inside a fresh node (${runs2} interleaved runs each, medians)`)
const costs = new Map(modules.map(([name]) => [name, { wall: [] as number[], cpu: [] as number[] }]))
for (let i = 0; i < runs2; i++) {
  for (const [name, url] of modules) {
    const [wall, cpu] = importCost(url)
    costs.get(name)!.wall.push(wall)
    costs.get(name)!.cpu.push(cpu)
  }
}
const w2 = Math.max(...modules.map(([n]) => n.length))
for (const [name] of modules) {
  const k = costs.get(name)!
  console.log(`  ${name.padEnd(w2)}  ${median(k.wall).toFixed(1).padStart(6)} ms wall  ${median(k.cpu).toFixed(1).padStart(6)} ms CPU`)
}
