/**
 * The `smtp-tls-policy` command line, modelled on Postfix's posttls-finger.
 * Exit status (sysexits.h): 0 ok, 64 usage error, 69 permanent failure, 75 temporary failure.
 */
import { parseArgs } from 'node:util'
import { SmtpTlsError } from '../errors.js'
import { readCertificateFile } from '../node/files.js'
import { createTlsaRecord } from '../tlsa/create.js'
import { formatTlsaRecord, tlsaOwnerName } from '../tlsa/format.js'
import { MATCHING_NAMES, SELECTOR_NAMES, USAGE_NAMES } from '../tlsa/types.js'

export const EX_OK = 0
export const EX_USAGE = 64
export const EX_DATAERR = 65
export const EX_UNAVAILABLE = 69
export const EX_TEMPFAIL = 75

/** Where the CLI writes; replaceable in tests. */
export interface CliIo {
  out: (line: string) => void
  err: (line: string) => void
}

const defaultIo: CliIo = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
}

const MAIN_HELP = `Usage: smtp-tls-policy <command> [options]

Commands:
  tlsa <cert.pem|cert.der>   print the TLSA record for a certificate

Run "smtp-tls-policy <command> --help" for a command's options.`

const TLSA_HELP = `Usage: smtp-tls-policy tlsa <cert.pem|cert.der> [options]

Print the TLSA record (RFC 6698) that matches a certificate. Default: 3 1 1
(DANE-EE, SubjectPublicKeyInfo, SHA2-256), the record RFC 7671 §5.1 recommends.

Options:
  --usage N      certificate usage: 2 (DANE-TA) or 3 (DANE-EE); 0 and 1 are not used for SMTP
  --selector N   0 (whole certificate) or 1 (SubjectPublicKeyInfo)
  --mtype N      matching type: 0 (full data), 1 (SHA2-256), 2 (SHA2-512)
  --all          print the DANE-EE records for the first certificate and the DANE-TA records
                 for the last certificate in the file (Cert SHA2-256, SPKI SHA2-256, SPKI SHA2-512)
  --host NAME    print a whole resource record for _PORT._tcp.NAME
  --port N       port for --host (default 25)
  -h, --help     show this help

A PEM file may hold a chain (leaf first); a DER file holds one certificate.`

class UsageError extends Error {}

function intOption(value: string | undefined, name: string, fallback: number, max = 255): number {
  if (value === undefined) return fallback
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > max)
    throw new UsageError(`--${name} must be a number from 0 to ${max}, got "${value}"`)
  return Number(value)
}

async function tlsaCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      usage: { type: 'string' },
      selector: { type: 'string' },
      mtype: { type: 'string' },
      all: { type: 'boolean', default: false },
      host: { type: 'string' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    io.out(TLSA_HELP)
    return EX_OK
  }
  if (positionals.length !== 1) throw new UsageError('tlsa takes exactly one certificate file')
  const usage = intOption(values.usage, 'usage', 3)
  const selector = intOption(values.selector, 'selector', 1)
  const mtype = intOption(values.mtype, 'mtype', 1)
  const port = intOption(values.port, 'port', 25, 65535)
  if (values.port !== undefined && port === 0) throw new UsageError('--port must be from 1 to 65535')
  if (selector > 1) throw new UsageError('--selector must be 0 or 1')
  if (mtype > 2) throw new UsageError('--mtype must be 0, 1 or 2')
  if (values.all && (values.usage ?? values.selector ?? values.mtype) !== undefined) {
    throw new UsageError('--all cannot be combined with --usage, --selector or --mtype')
  }
  const owner = values.host === undefined ? '' : `${tlsaOwnerName(values.host, port)} IN TLSA `
  const chain = await readCertificateFile(positionals[0]!)
  const line = (cert: Uint8Array, u: number, s: number, m: number, comment: boolean): string => {
    const text = owner + formatTlsaRecord(createTlsaRecord(cert, { usage: u, selector: s, matchingType: m }))
    return comment ? `${text} ; ${USAGE_NAMES[u]} ${SELECTOR_NAMES[s]} ${MATCHING_NAMES[m]}` : text
  }
  if (!values.all) {
    io.out(line(chain[0]!, usage, selector, mtype, false))
    return EX_OK
  }
  const combos: ReadonlyArray<readonly [number, number]> = [
    [0, 1],
    [1, 1],
    [1, 2],
  ]
  for (const [s, m] of combos) io.out(line(chain[0]!, 3, s, m, true))
  for (const [s, m] of combos) io.out(line(chain[chain.length - 1]!, 2, s, m, true))
  return EX_OK
}

/** Run the CLI with `argv` (without `node` and the script) and return the exit status. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'tlsa':
        return await tlsaCommand(rest, io)
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(MAIN_HELP)
        return command === undefined ? EX_USAGE : EX_OK
      default:
        throw new UsageError(`unknown command "${command}"`)
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`smtp-tls-policy: ${(e as Error).message}`)
      io.err('Run "smtp-tls-policy --help" for usage.')
      return EX_USAGE
    }
    if (e instanceof SmtpTlsError) {
      io.err(`smtp-tls-policy: ${e.message} [${e.code}]`)
      return e.code === 'ERR_INVALID_ARGUMENT' ? EX_USAGE : e.temporary ? EX_TEMPFAIL : EX_UNAVAILABLE
    }
    throw e
  }
}
