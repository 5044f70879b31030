/**
 * `smtp-tls-policy probe`: like Postfix's posttls-finger. Three steps in this order: check every
 * option (64), read and parse the input files (65, 66), then DNS and SMTP (0, 69, 75).
 */
import { parseNexthop, probe, summaryLine, type ConnectOptions, type ProbeReport } from '../node/connect.js'
import { createResolver } from '../node/resolver/index.js'
import { parsePins } from '../pin/match.js'
import { parsePolicyTable } from '../policy/table.js'
import { StartTlsClient } from '../smtp/starttls.js'
import { readCaFile } from './ca-file.js'
import {
  clean,
  CliError,
  EX_DATAERR,
  EX_NOINPUT,
  EX_OK,
  EX_TEMPFAIL,
  EX_UNAVAILABLE,
  firstLine,
  inputData,
  isCoded,
  optionValue,
  type CliIo,
  type ProbeArgs,
  MiB,
  readInput,
} from './common.js'

/** Root stores are a few hundred kilobytes (Debian's ca-certificates.crt: ~220 KB). */
/** Postfix policy tables of thousands of destinations are a few megabytes at most. */
const MAX_POLICY_TABLE = 16 * MiB

/** Every option, before any I/O (issue 10 §4: a bad EHLO name must not wait for DNS to fail first). */
function options(a: ProbeArgs): ConnectOptions {
  const opts: ConnectOptions = { level: a.level }
  optionValue('', () => parseNexthop(a.destination, a.port ?? 25))
  if (a.port !== undefined) opts.port = a.port
  if (a.timeoutMs !== undefined) opts.timeoutMs = a.timeoutMs
  if (a.resolvers !== undefined || a.timeoutMs !== undefined) {
    // --timeout bounds each DNS query too (a network step), not only the SMTP steps.
    const ro = { ...(a.resolvers && { servers: a.resolvers }), ...(a.timeoutMs && { timeoutMs: a.timeoutMs }) }
    opts.resolver = optionValue('--resolver', () => createResolver(ro))
  }
  if (a.ehlo !== undefined) {
    const ehloName = a.ehlo
    // The STARTTLS client's own check (RFC 5321 §4.1.1.1), without connecting.
    optionValue('--ehlo', () => new StartTlsClient({ ehloName, requireTls: false, servername: '' }))
    opts.ehloName = ehloName
  }
  if (a.match !== undefined) {
    const match = a.match
    if (a.level === 'fingerprint') {
      optionValue('--match', () => parsePins(match)) // a bad pin is a usage error, not a deferral
      opts.policy = { fingerprintMatch: match }
    } else if (a.level === 'verify') opts.policy = { verifyMatch: match }
    else opts.policy = { secureMatch: match }
  }
  return opts
}

export async function probeCommand(a: ProbeArgs, io: CliIo): Promise<number> {
  const opts = options(a)
  if (a.caFile !== undefined) opts.ca = readCaFile(a.caFile)
  if (a.caPath !== undefined || a.taFile !== undefined) {
    // Postfix smtp_tls_CApath and smtp_tls_trust_anchor_file; a missing file or a bad block names itself.
    const { loadTrustStore } = await import('../node/trust-store.js')
    const path = a.caPath ?? a.taFile!.join(', ')
    let store: Awaited<ReturnType<typeof loadTrustStore>>
    try {
      store = await loadTrustStore({
        ...(a.caPath !== undefined ? { caPath: a.caPath } : {}),
        ...(a.taFile !== undefined ? { taFile: a.taFile } : {}),
      })
    } catch (e) {
      throw new CliError(
        isCoded(e) && /no such file|cannot (open|read)|ENOENT/i.test(e.message) ? EX_NOINPUT : EX_DATAERR,
        `trust store ${path}: ${firstLine(e)}`,
      )
    }
    if (store.caPem.length > 0) opts.ca = [...(typeof opts.ca === 'string' ? [opts.ca] : (opts.ca ?? [])), ...store.caPem]
    if (store.anchors.length > 0) opts.trustAnchors = store.anchors
  }
  if (a.policyTable !== undefined) {
    const what = 'policy table'
    const path = a.policyTable
    const text = inputData(what, path, () => readInput(path, what, MAX_POLICY_TABLE).toString('utf8'))
    opts.policyTable = inputData(what, path, () => parsePolicyTable(text))
  }
  const report = await probe(a.destination, opts)
  if (a.json) io.out(JSON.stringify(report, jsonReplacer, 2))
  else printReport(report, a.verbose, (l) => io.out(clean(l)))
  if (report.outcome.status !== 'deferred') return EX_OK
  return report.outcome.permanent ? EX_UNAVAILABLE : EX_TEMPFAIL
}

/** TLSA data and certificates are bytes: JSON shows them as hex. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  return value
}

function printReport(r: ProbeReport, verbose: boolean, out: (line: string) => void): void {
  for (const a of r.attempts) {
    const where = `${a.host}[${a.address ?? '?'}]:${a.port}`
    if (a.address === undefined) {
      out(`smtp-tls-policy: ${where}: ${a.error?.message ?? 'not tried'}`)
      continue
    }
    out(`smtp-tls-policy: Connected to ${where}`)
    if (verbose) for (const line of a.transcript) out(`smtp-tls-policy: ${line}`)
    const v = a.verdict
    if (v?.matched) out(`smtp-tls-policy: ${where}: ${v.matched}`)
    // Why the level fell back (RFC 7672 §2.2: MX or TLSA RRset not validated), as --json shows it.
    if (v && v.level !== r.level && v.status !== 'deferred') {
      const why = v.trace.find((t) => t.rule.endsWith(`→ ${v.level}`) || t.rule.includes(`→ ${v.level} `))
      out(`smtp-tls-policy: ${where}: level ${r.level} applied as ${v.level}${why ? ` (${why.rule})` : ''}`)
    }
    if (v && v.status !== 'deferred') continue
    const why = v?.reason ?? a.error?.message
    if (why) out(`smtp-tls-policy: ${where}: ${v?.enhancedStatus ?? a.error?.enhancedStatus ?? ''} ${why}`.replace(':  ', ': '))
  }
  out(`smtp-tls-policy: ${summaryLine(r.outcome, r.outcome.status === 'deferred' ? r.trace : [], r.destination)}`)
}
