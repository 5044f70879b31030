/** Certificate files for the CLI and examples. */
import { readFile } from 'node:fs/promises'
import { describeValue, invalidArgument } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { pemToDerAll } from '../x509/pem.js'

/**
 * Read a certificate file, PEM (every certificate in it, in order) or DER (one certificate).
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` when the file cannot be read,
 * `ERR_PEM_SYNTAX` when a PEM file is malformed.
 * @public
 */
export async function readCertificateFile(path: string): Promise<Uint8Array[]> {
  // Checked before any I/O: readFile would also take a Buffer, a URL or a file descriptor.
  if (typeof path !== 'string' || path.length === 0)
    throw invalidArgument(`certificate file path must be a non-empty string, got ${describeValue(path)}`)
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `cannot read certificate file ${path}: ${why}`, { cause: e })
  }
  if (bytes.length > 0 && bytes[0] === 0x30) return [new Uint8Array(bytes)]
  return pemToDerAll(bytes.toString('latin1'))
}
