/** Certificate files for the CLI and examples. */
import { open } from 'node:fs/promises'
import { describeValue, invalidArgument } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { pemToDerAll } from '../x509/pem.js'

/** A certificate chain is a few kilobytes; 1 MiB leaves room for any real one. */
const MAX_CERTIFICATE_FILE = 1024 * 1024

function cannotRead(path: string, e: unknown): SmtpTlsError {
  const code = (e as NodeJS.ErrnoException).code
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message
  return new SmtpTlsError('ERR_INVALID_ARGUMENT', `cannot read certificate file ${path}: ${why}`, { cause: e })
}

/** At most `max` bytes of `path`, refused by size before reading when it is a regular file. */
async function readBounded(path: string, max: number): Promise<Buffer> {
  const tooLarge = () => new SmtpTlsError('ERR_INVALID_ARGUMENT', `certificate file ${path} is larger than ${max} bytes`)
  let fh
  try {
    fh = await open(path, 'r')
  } catch (e) {
    throw cannotRead(path, e)
  }
  try {
    const st = await fh.stat()
    if (st.isFile() && st.size > max) throw tooLarge()
    // Read one byte past the limit: a pipe or device that has more is too large too.
    const buf = Buffer.alloc(max + 1)
    let n = 0
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null)
      if (bytesRead === 0) break
      n += bytesRead
      if (n > max) throw tooLarge()
    }
    return buf.subarray(0, n)
  } catch (e) {
    throw e instanceof SmtpTlsError ? e : cannotRead(path, e)
  } finally {
    await fh.close()
  }
}

/**
 * Read a certificate file, PEM (every certificate in it, in order) or DER (one certificate), of at
 * most 1 MiB.
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` when the file cannot be read or is larger than
 * 1 MiB, `ERR_PEM_SYNTAX` when a PEM file is malformed.
 * @public
 */
export async function readCertificateFile(path: string): Promise<Uint8Array[]> {
  // Checked before any I/O: a Buffer, a URL or a file descriptor would be read too.
  if (typeof path !== 'string' || path.length === 0)
    throw invalidArgument(`certificate file path must be a non-empty string, got ${describeValue(path)}`)
  const bytes = await readBounded(path, MAX_CERTIFICATE_FILE)
  if (bytes.length > 0 && bytes[0] === 0x30) return [new Uint8Array(bytes)]
  return pemToDerAll(bytes.toString('latin1'))
}
