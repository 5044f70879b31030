// Run the CLI as a child process from the sources (through tsx), the way bin/smtp-tls-policy.js runs the
// build: a test that spawns bin/ would test dist/, which `npm test -- <file>` does not rebuild, so it could
// pass against stale code. The twin below must stay the bin script with only its import changed: checked here.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/smtp-tls-policy.js', import.meta.url))
const TWIN = fileURLToPath(new URL('./cli-main.ts', import.meta.url))

function body(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#!') && !l.startsWith('//') && !l.startsWith('import '))
    .join('\n')
    .trim()
}
if (body(readFileSync(BIN, 'utf8')) !== body(readFileSync(TWIN, 'utf8'))) {
  throw new Error('test/helpers/cli-main.ts no longer mirrors bin/smtp-tls-policy.js: copy the bin body over')
}

/** `spawnSync(...cliFromSource('probe', 'example.com'))`: node, then tsx and the source twin of the bin script. */
export function cliFromSource(...args: string[]): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', TWIN, ...args]]
}
