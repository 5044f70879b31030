/**
 * `--ca-file FILE` (probe, check, mta-sts, tlsrpt --send, serve): PEM trust anchors, size-limited and
 * parsed before any network step, so a bad file is one line and exit 65/66, never a failed handshake.
 */
import { sliceCertificate } from '../x509/der.js'
import { pemToDerAll } from '../x509/pem.js'
import { inputData, MiB, readInput } from './common.js'

const MAX_CA_FILE = 8 * MiB

/** The file's PEM text, once every certificate in it has been found to be one. */
export function readCaFile(path: string): string {
  const what = 'CA file'
  const text = inputData(what, path, () => readInput(path, what, MAX_CA_FILE).toString('utf8'))
  inputData(what, path, () => pemToDerAll(text).forEach((der) => sliceCertificate(der)))
  return text
}
