/**
 * `smtp-tls-policy check <domain>`: the operator's validator. Options first (64), then the CA file
 * (65, 66) and the HTML file's folder (73), then DNS, SMTP and HTTPS. Exit 0 when every check passed,
 * 1 with warnings only, 2 with errors, 73 when the HTML report cannot be written (the text or JSON is
 * printed first), 75 when the check could not run (the resolver is unreachable).
 */
import { check, type CheckOptions } from '../node/check/index.js'
import { formatCheckReport } from '../check/format.js'
import { formatCheckReportHtml } from '../check/html.js'
import { createResolver } from '../node/resolver/index.js'
import { StartTlsClient } from '../smtp/starttls.js'
import { readCaFile } from './ca-file.js'
import { closeSync, openSync, statSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { CliError, clean, EX_CANTCREAT, MiB, optionValue, why, type CheckArgs, type CliIo } from './common.js'

/** An HTML report is tens of KiB; this bounds a hostile domain's (thousands of MX hosts and TLSA records). */
const MAX_HTML = 64 * MiB
/** Exit statuses of `check` (issue 16): no findings to act on, warnings only, errors. */
export const CHECK_OK = 0
export const CHECK_WARNINGS = 1
export const CHECK_ERRORS = 2

export async function checkCommand(a: CheckArgs, io: CliIo): Promise<number> {
  const ro = { ...(a.resolvers && { servers: a.resolvers }), ...(a.timeoutMs && { timeoutMs: a.timeoutMs }) }
  const opts: CheckOptions = { resolver: optionValue('--resolver', () => createResolver(ro)) }
  if (a.port !== undefined) opts.port = a.port
  if (a.timeoutMs !== undefined) opts.timeoutMs = a.timeoutMs
  if (a.ehlo !== undefined) {
    const ehloName = a.ehlo
    optionValue('--ehlo', () => new StartTlsClient({ ehloName, requireTls: false, servername: '' }))
    opts.ehloName = ehloName
  }
  const sts: NonNullable<Exclude<CheckOptions['mtaSts'], false>> = { allowPrivateAddresses: a.allowPrivate }
  if (a.stsPort !== undefined) sts.port = a.stsPort
  if (a.timeoutMs !== undefined) sts.timeoutMs = a.timeoutMs
  if (a.caFile !== undefined) sts.ca = readCaFile(a.caFile)
  opts.mtaSts = sts
  if (a.html !== undefined) checkOutputPath(a.html, 'HTML report')
  const report = await check(a.domain, opts)
  if (a.json) io.out(JSON.stringify(report, null, 2))
  else for (const line of formatCheckReport(report)) io.out(clean(line))
  if (a.html !== undefined) writeOutput(a.html, 'HTML report', formatCheckReportHtml(report), MAX_HTML)
  return report.summary.errors > 0 ? CHECK_ERRORS : report.summary.warnings > 0 ? CHECK_WARNINGS : CHECK_OK
}

// The HTML file: checked before the network work, written after it (here, not in common.ts: only `check` loads node:path).

/**
 * Fail early, before a long command runs, when `path` cannot be an output file: its folder is missing
 * or not a folder, or `path` is a folder.
 * @throws {@link CliError} EX_CANTCREAT (73)
 */
export function checkOutputPath(path: string, what: string): void {
  const fail = (reason: string): never => {
    throw new CliError(EX_CANTCREAT, `cannot write ${what} ${path}: ${reason}`)
  }
  if (path === '') fail('empty file name')
  let dir
  try {
    dir = statSync(dirname(path))
  } catch (e) {
    return fail(`its folder: ${why(e)}`)
  }
  if (!dir.isDirectory()) fail('its folder is not a folder')
  try {
    if (statSync(path).isDirectory()) fail('is a directory')
  } catch (e) {
    if (e instanceof CliError) throw e
    // absent: it will be created
  }
}

/**
 * Write `text` (UTF-8) to `path`, created or truncated, mode 0644 before the umask. Refused when larger
 * than `maxBytes`, so that no runaway report fills a disk.
 * @throws {@link CliError} EX_CANTCREAT (73) when it cannot be opened, written or is too large.
 */
export function writeOutput(path: string, what: string, text: string, maxBytes: number): void {
  const bytes = Buffer.from(text, 'utf8')
  if (bytes.length > maxBytes) throw new CliError(EX_CANTCREAT, `cannot write ${what} ${path}: larger than ${maxBytes / MiB} MiB`)
  let fd: number
  try {
    fd = openSync(path, 'w', 0o644)
  } catch (e) {
    throw new CliError(EX_CANTCREAT, `cannot write ${what} ${path}: ${why(e)}`)
  }
  try {
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off)
  } catch (e) {
    throw new CliError(EX_CANTCREAT, `cannot write ${what} ${path}: ${why(e)}`)
  } finally {
    closeSync(fd)
  }
}
