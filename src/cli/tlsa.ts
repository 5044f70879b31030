/**
 * `smtp-tls-policy tlsa`: the TLSA record for a certificate. It loads the certificate, selector and
 * digest code and nothing else (issue 17: each ES module costs start-up time): not the DNS wire
 * format (dns-packet alone costs ~25 ms of CPU), which `formatTlsaRecord` would bring along for its
 * shape check, so the record is formatted here; the RFC 7218 mnemonics only for `--all`.
 */
import { createTlsaRecord } from '../tlsa/create.js'
import { sliceCertificate } from '../x509/der.js'
import { pemToDerAll } from '../x509/pem.js'
import { EX_OK, inputData, MiB, readInput, type CliIo, type TlsaArgs } from './common.js'

/** A certificate chain is a few kilobytes; 1 MiB leaves room for any real one. */
const MAX_CERT_FILE = MiB

/** DER (one certificate, first byte 0x30 SEQUENCE) or PEM (every CERTIFICATE block), each one parsed. */
function certificates(bytes: Buffer): Uint8Array[] {
  const chain = bytes.length > 0 && bytes[0] === 0x30 ? [new Uint8Array(bytes)] : pemToDerAll(bytes.toString('latin1'))
  for (const der of chain) sliceCertificate(der) // ERR_CERT_PARSE, whatever the selector
  return chain
}

export async function tlsaCommand(a: TlsaArgs, io: CliIo): Promise<number> {
  const what = 'certificate file'
  const chain = inputData(what, a.file, () => certificates(readInput(a.file, what, MAX_CERT_FILE)))
  // RFC 7672 §2.2.3 / RFC 6698 §3: _<port>._tcp.<host>. (the name is checked by the argument parser)
  const owner = a.host === undefined ? '' : `_${a.port}._tcp.${a.host.toLowerCase().replace(/\.?$/, '.')} IN TLSA `
  // RFC 6698 §2.2 presentation form: the three fields, then the data in hexadecimal.
  const record = (cert: Uint8Array, usage: number, selector: number, matchingType: number): string => {
    const r = inputData(what, a.file, () => createTlsaRecord(cert, { usage, selector, matchingType }))
    return `${owner}${r.usage} ${r.selector} ${r.matchingType} ${Buffer.from(r.data).toString('hex')}`
  }
  if (!a.all) {
    io.out(record(chain[0]!, a.usage, a.selector, a.mtype))
    return EX_OK
  }
  const { MATCHING_NAMES, SELECTOR_NAMES, USAGE_NAMES } = await import('../tlsa/types.js')
  const lines: string[] = []
  for (const [cert, usage] of [
    [chain[0]!, 3],
    [chain[chain.length - 1]!, 2],
  ] as const) {
    for (const [s, m] of [
      [0, 1],
      [1, 1],
      [1, 2],
    ] as const) {
      lines.push(`${record(cert, usage, s, m)} ; ${USAGE_NAMES[usage]} ${SELECTOR_NAMES[s]} ${MATCHING_NAMES[m]}`)
    }
  }
  for (const l of lines) io.out(l)
  return EX_OK
}
