// `npm run bench`: every benchmark in bench/, one after the other. Benchmarks print figures;
// tests never time anything.
import { readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)
for (const f of readdirSync(dir).sort()) {
  if (!f.endsWith('.ts') || f === 'run.ts' || f === 'harness.ts') continue
  if (only.length > 0 && !only.some((o) => f.includes(o))) continue
  console.log(`\n# bench/${f}`)
  const r = spawnSync(process.execPath, ['--import', 'tsx', dir + f], { stdio: 'inherit' })
  if (r.status !== 0) process.exitCode = 1
}
