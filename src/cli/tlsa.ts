/**
 * `smtp-tls-policy tlsa`: the TLSA record for a certificate. Loads the certificate, selector and
 * digest code only: no DNS wire format (dns-packet costs ~30 ms to load, issue 17), which is why
 * the record is formatted here rather than by `formatTlsaRecord` (whose shape check lives next to
 * the wire codec).
 */
import { createTlsaRecord } from '../tlsa/create.js'
import { toHex } from '../tlsa/hex.js'
import { MATCHING_NAMES, SELECTOR_NAMES, USAGE_NAMES } from '../tlsa/types.js'
import { sliceCertificate } from '../x509/der.js'
import { pemToDerAll } from '../x509/pem.js'
import { EX_OK, inputData, type CliIo, type TlsaArgs } from './common.js'
import { MiB, readInput } from './read.js'

/** A certificate chain is a few kilobytes; 1 MiB leaves room for any real one. */
const MAX_CERT_FILE = MiB

/** DER (one certificate, first byte 0x30 SEQUENCE) or PEM (every CERTIFICATE block), each one parsed. */
function certificates(bytes: Buffer): Uint8Array[] {
  const chain = bytes.length > 0 && bytes[0] === 0x30 ? [new Uint8Array(bytes)] : pemToDerAll(bytes.toString('latin1'))
  for (const der of chain) sliceCertificate(der) // ERR_CERT_PARSE, whatever the selector
  return chain
}

export function tlsaCommand(a: TlsaArgs, io: CliIo): number {
  const what = 'certificate file'
  const chain = inputData(what, a.file, () => certificates(readInput(a.file, what, MAX_CERT_FILE)))
  // RFC 7672 §2.2.3 / RFC 6698 §3: _<port>._tcp.<host>. (the name is checked by the argument parser)
  const owner = a.host === undefined ? '' : `_${a.port}._tcp.${a.host.toLowerCase().replace(/\.?$/, '.')} IN TLSA `
  const line = (cert: Uint8Array, usage: number, selector: number, matchingType: number, comment: boolean): string => {
    const r = inputData(what, a.file, () => createTlsaRecord(cert, { usage, selector, matchingType }))
    const text = `${owner}${r.usage} ${r.selector} ${r.matchingType} ${toHex(r.data)}`
    return comment ? `${text} ; ${USAGE_NAMES[usage]} ${SELECTOR_NAMES[selector]} ${MATCHING_NAMES[matchingType]}` : text
  }
  if (!a.all) {
    io.out(line(chain[0]!, a.usage, a.selector, a.mtype, false))
    return EX_OK
  }
  const combos: ReadonlyArray<readonly [number, number]> = [
    [0, 1],
    [1, 1],
    [1, 2],
  ]
  const lines = [
    ...combos.map(([s, m]) => line(chain[0]!, 3, s, m, true)),
    ...combos.map(([s, m]) => line(chain[chain.length - 1]!, 2, s, m, true)),
  ]
  for (const l of lines) io.out(l)
  return EX_OK
}
