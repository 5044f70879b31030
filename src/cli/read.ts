/** Input files for the CLI, read with a size limit (issue 10 §4: a 600 MB file is refused, not read). */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { CliError, EX_DATAERR, EX_NOINPUT } from './common.js'

export const MiB = 1024 * 1024

const CHUNK = 64 * 1024

function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES') return 'permission denied'
  if (code === 'EISDIR') return 'is a directory'
  return (e as Error).message
}

/**
 * Read at most `maxBytes` of `path`. A regular file is refused by its size before anything is read;
 * anything else (a pipe, /dev/stdin, a device) is read until the limit is crossed.
 * @throws {@link CliError} EX_NOINPUT (66) when the file cannot be opened or read, EX_DATAERR (65)
 * when it is larger than `maxBytes`.
 */
export function readInput(path: string, what: string, maxBytes: number): Buffer {
  const tooLarge = (): CliError => new CliError(EX_DATAERR, `${what} ${path} is larger than ${maxBytes / MiB} MiB`)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (e) {
    throw new CliError(EX_NOINPUT, `cannot open ${what} ${path}: ${why(e)}`)
  }
  try {
    const st = fstatSync(fd)
    if (st.isDirectory()) throw new CliError(EX_NOINPUT, `cannot open ${what} ${path}: is a directory`)
    if (st.isFile() && st.size > maxBytes) throw tooLarge()
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK)
      const n = readSync(fd, chunk, 0, CHUNK, null)
      if (n === 0) break
      total += n
      if (total > maxBytes) throw tooLarge()
      chunks.push(n === CHUNK ? chunk : chunk.subarray(0, n))
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)
  } catch (e) {
    if (e instanceof CliError) throw e
    throw new CliError(EX_NOINPUT, `cannot read ${what} ${path}: ${why(e)}`)
  } finally {
    closeSync(fd)
  }
}
