/**
 * The `smtp-tls-policy` command line, modelled on Postfix's posttls-finger.
 * Exit status (sysexits.h): 0 ok, 64 usage error, 69 permanent failure, 75 temporary failure.
 */
import { parseArgs } from 'node:util'
import { SmtpTlsError } from '../errors.js'
import { readFile } from 'node:fs/promises'
import { probe, summaryLine, type ConnectOptions, type ProbeReport } from '../node/connect.js'
import { readCertificateFile } from '../node/files.js'
import { createResolver } from '../node/resolver/index.js'
import { isSecurityLevel } from '../policy/levels.js'
import { parsePolicyTable } from '../policy/table.js'
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
  probe <domain|[host]|host:port>   probe a destination's SMTP TLS like posttls-finger
  tlsa <cert.pem|cert.der>          print the TLSA record for a certificate

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

const PROBE_HELP = `Usage: smtp-tls-policy probe <domain | [host] | host:port | [host]:port> [options]

Look up the destination's MX hosts, addresses and TLSA records (DNSSEC-aware), connect, run
STARTTLS and judge the TLS session under a security level, like Postfix's posttls-finger.

Options:
  --level L            none, may, encrypt, dane, dane-only, fingerprint, verify, secure (default dane)
  --resolver IP[:PORT] a validating resolver to ask (repeatable; default: /etc/resolv.conf).
                       Its AD bit is trusted only on loopback addresses.
  --port N             SMTP port (default 25)
  --policy-table FILE  a Postfix smtp_tls_policy_maps table (its entry overrides --level)
  --match M            fingerprint pins or verify/secure match names (repeatable)
  --ca-file FILE       trust anchors (PEM) for verify and secure (default: Node's root store)
  --ehlo NAME          our EHLO name (default: this host's name)
  --timeout SECONDS    per network step (default 30)
  --json               print one JSON object instead of text
  -v, --verbose        print the SMTP transcript (< server, > client)
  -h, --help           show this help

Exit status: 0 the level is satisfied, 75 delivery would be deferred, 69 permanent failure
(null MX, no such domain, REQUIRETLS), 64 usage error.`

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

async function probeCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      level: { type: 'string' },
      resolver: { type: 'string', multiple: true },
      port: { type: 'string' },
      'policy-table': { type: 'string' },
      match: { type: 'string', multiple: true },
      'ca-file': { type: 'string' },
      ehlo: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    io.out(PROBE_HELP)
    return EX_OK
  }
  if (positionals.length !== 1) throw new UsageError('probe takes exactly one destination')
  const level = values.level ?? 'dane'
  if (!isSecurityLevel(level))
    throw new UsageError(`--level must be one of none, may, encrypt, dane, dane-only, fingerprint, verify, secure`)
  const opts: ConnectOptions = { level }
  if (values.port !== undefined) {
    const port = intOption(values.port, 'port', 25, 65535)
    if (port === 0) throw new UsageError('--port must be from 1 to 65535')
    opts.port = port
  }
  if (values.timeout !== undefined) opts.timeoutMs = intOption(values.timeout, 'timeout', 30, 3600) * 1000 || 1000
  if (values.resolver) {
    try {
      opts.resolver = createResolver({ servers: values.resolver })
    } catch (e) {
      throw new UsageError(`--resolver: ${(e as Error).message}`)
    }
  }
  if (values.ehlo !== undefined) opts.ehloName = values.ehlo
  if (values['ca-file'] !== undefined) opts.ca = await readText(values['ca-file'], 'CA file')
  if (values['policy-table'] !== undefined) opts.policyTable = parsePolicyTable(await readText(values['policy-table'], 'policy table'))
  if (values.match) {
    if (level === 'fingerprint') opts.policy = { fingerprintMatch: values.match }
    else if (level === 'verify') opts.policy = { verifyMatch: values.match }
    else if (level === 'secure') opts.policy = { secureMatch: values.match }
    else throw new UsageError('--match applies to the fingerprint, verify and secure levels')
  }
  const report = await probe(positionals[0]!, opts)
  if (values.json) io.out(JSON.stringify(report, jsonReplacer, 2))
  else printReport(report, values.verbose, io)
  if (report.outcome.status !== 'deferred') return EX_OK
  return report.outcome.permanent ? EX_UNAVAILABLE : EX_TEMPFAIL
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e })
  }
}

/** TLSA data and certificates are bytes: JSON shows them as hex. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  return value
}

function printReport(r: ProbeReport, verbose: boolean, io: CliIo): void {
  for (const a of r.attempts) {
    const where = `${a.host}[${a.address ?? '?'}]:${a.port}`
    if (a.address === undefined) {
      io.out(`smtp-tls-policy: ${where}: ${a.error?.message ?? 'not tried'}`)
      continue
    }
    io.out(`smtp-tls-policy: Connected to ${where}`)
    if (verbose) for (const line of a.transcript) io.out(`smtp-tls-policy: ${line}`)
    const v = a.verdict
    if (v?.matched) io.out(`smtp-tls-policy: ${where}: Matched ${v.matched}`)
    if (v && v.status !== 'deferred') continue
    const why = v?.reason ?? a.error?.message
    if (why) io.out(`smtp-tls-policy: ${where}: ${v?.enhancedStatus ?? a.error?.enhancedStatus ?? ''} ${why}`.replace(':  ', ': '))
  }
  io.out(`smtp-tls-policy: ${summaryLine(r.outcome, r.outcome.status === 'deferred' ? r.trace : [])}`)
}

/** Run the CLI with `argv` (without `node` and the script) and return the exit status. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'tlsa':
        return await tlsaCommand(rest, io)
      case 'probe':
        return await probeCommand(rest, io)
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
