/**
 * What the CLI's modules share: exit statuses, the output sink, the parsed arguments of each
 * command, the error that carries its own exit status, and the size-limited file reader. It
 * imports nothing of the library: the argument parser loads this and nothing else. (One module,
 * not several: each ES module costs about a millisecond of start-up, issue 17.)
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import type { SecurityLevel } from '../policy/levels.js'

/** Exit statuses, sysexits.h. */
export const EX_OK = 0
/** The command line is wrong (an unknown option, a bad value, a bad pin or EHLO name). */
export const EX_USAGE = 64
/** An input file's contents are wrong (not a certificate, a table syntax error, too large). */
export const EX_DATAERR = 65
/** An input file cannot be opened or read. */
export const EX_NOINPUT = 66
/** A permanent failure: delivery would bounce (null MX, unsatisfiable REQUIRETLS). */
export const EX_UNAVAILABLE = 69
/** A bug in this program: an exception nobody expected. */
export const EX_SOFTWARE = 70
/** An output file (`check --html FILE`) cannot be created or written. */
export const EX_CANTCREAT = 73
/** A temporary failure: delivery would be deferred. */
export const EX_TEMPFAIL = 75
/** A configuration file's contents are wrong (YAML syntax, an unknown key, a wrong type, too large). */
export const EX_CONFIG = 78

/** Where the CLI writes; replaceable in tests. */
export interface CliIo {
  out: (line: string) => void
  err: (line: string) => void
}

/** An error the CLI reports as one line and exits with `status`. */
export class CliError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

/** `tlsa` after argument checks. */
export interface TlsaArgs {
  file: string
  usage: number
  selector: number
  mtype: number
  all: boolean
  /** A checked DNS name, when a whole resource record is wanted. */
  host?: string
  port: number
}

/** `probe` after argument checks (the library checks pins, the EHLO name and resolvers in `probe.ts`). */
export interface ProbeArgs {
  destination: string
  level: SecurityLevel
  port?: number
  timeoutMs?: number
  resolvers?: string[]
  ehlo?: string
  caFile?: string
  caPath?: string
  taFile?: string[]
  policyTable?: string
  match?: string[]
  json: boolean
  verbose: boolean
}

/** A profile (map name) of `serve`, as the configuration file writes it. */
export interface ProfileSettings {
  dane: boolean
  sts: boolean
  testing?: 'notfound' | 'may'
  tlsrpt?: boolean
}

/** The settings of `serve`, from flags or the configuration file (flags win). Times in ms, cache times in s. */
export interface ServeSettings {
  /** `unix:PATH` or `inet:HOST:PORT` */
  socketmap?: string
  resolvers?: string[]
  /** unix socket file mode */
  mode?: number
  maxConnections?: number
  idleTimeoutMs?: number
  lookupTimeoutMs?: number
  /** MTA-STS `testing` answers `may` instead of NOTFOUND (profiles that do not say) */
  testingMay?: boolean
  cache?: { negative?: number; dane?: number; max?: number }
  profiles?: Record<string, ProfileSettings>
  /** MTA-STS fetches: trust anchors, HTTPS port, private addresses, timeout */
  caFile?: string
  stsPort?: number
  allowPrivate?: boolean
  stsTimeoutMs?: number
  /** `redis://…`, `rediss://…` or `unix:/path/to/redis.sock` */
  redis?: string
  redisPrefix?: string
  /** `[HOST:]PORT` of the Prometheus metrics HTTP server */
  metrics?: string
}

/** `[HOST:]PORT` (HOST a name, an IPv4 address or a bracketed IPv6 address) for `serve --metrics`. */
export function isMetricsListen(v: string): boolean {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):)?([0-9]{1,5})$/.exec(v)
  return m !== null && Number(m[2]) <= 65535
}

/** `serve` after argument checks. */
export interface ServeArgs extends ServeSettings {
  config?: string
}

/** `dump` and `purge` after argument checks: the store from `--redis` or the configuration file. */
export interface StoreArgs {
  config?: string
  redis?: string
  redisPrefix?: string
  /** purge: one domain (all its next hops, map names and ports); absent: every cached answer */
  domain?: string
  json: boolean
}

/** `query` after argument checks. */
export interface QueryArgs {
  key: string
  map: string
  resolvers?: string[]
  testingMay: boolean
  json: boolean
  /** serve's configuration file: its profiles, resolver, MTA-STS options and Redis cache */
  config?: string
  redis?: string
  redisPrefix?: string
}

/** `mta-sts` after argument checks. */
export interface MtaStsArgs {
  domain: string
  resolvers?: string[]
  caFile?: string
  /** HTTPS port of the policy host (tests and labs; default 443). */
  port?: number
  /** Connect to loopback and private addresses too (tests and labs). */
  allowPrivate: boolean
  timeoutMs?: number
  json: boolean
}

/** `check` after argument checks. */
export interface CheckArgs {
  domain: string
  resolvers?: string[]
  port?: number
  timeoutMs?: number
  ehlo?: string
  /** Write the HTML report to this file. */
  html?: string
  /** MTA-STS: trust anchors for the policy host, its HTTPS port, private addresses (tests and labs). */
  caFile?: string
  stsPort?: number
  allowPrivate: boolean
  json: boolean
}

/** `tlsrpt` after argument checks: a domain, a report file, or both. */
export interface TlsRptArgs {
  domain?: string
  resolvers?: string[]
  report?: string
  timeoutMs?: number
  json: boolean
  /** `--send DAY`: send that UTC day's reports from the Redis store */
  send?: {
    day: string
    redis: string
    redisPrefix?: string
    keyPrefix?: string
    organization: string
    contact: string
    submitter: string
    from: string
    ehloName?: string
    caFile?: string
    allowPrivate: boolean
  }
}

/** Does this look like one of our coded errors (`SmtpTlsError` and subclasses), without importing it? */
export function isCoded(e: unknown): e is Error & { code: string; temporary: boolean } {
  if (!(e instanceof Error)) return false
  const { code, temporary } = e as Error & { code?: unknown; temporary?: unknown }
  return typeof code === 'string' && code.startsWith('ERR_') && typeof temporary === 'boolean'
}

/** The first line of an error's message (a message is never allowed to carry a stack trace out). */
export function firstLine(e: unknown): string {
  if (!(e instanceof Error)) return `${typeof e}: ${String(e).split('\n')[0]}`
  return `${e.name}: ${String(e.message).split('\n')[0]}`
}

/**
 * Errors while reading or parsing an input file's contents are EX_DATAERR, named after the file;
 * an exception that is not coded is a parser bug but still this file's doing (issue 10 §3: a hostile
 * policy table), so it is reported the same way, in one line.
 */
export function inputData<T>(what: string, path: string, parse: () => T): T {
  try {
    return parse()
  } catch (e) {
    if (e instanceof CliError) throw e
    const why = isCoded(e) ? `${e.message} [${e.code}]` : `cannot be parsed (${firstLine(e)})`
    throw new CliError(EX_DATAERR, `${what} ${path}: ${why}`)
  }
}

/** A coded error from checking an option's value is a usage error (EX_USAGE), named after the option; anything else is a bug. */
export function optionValue<T>(option: string, check: () => T): T {
  try {
    return check()
  } catch (e) {
    if (!isCoded(e)) throw e // not the value's fault: a bug (70)
    const why = `${e.message} [${e.code}]`
    throw new CliError(EX_USAGE, option ? `${option}: ${why}` : why)
  }
}

/** Control characters never reach the terminal: a line stays one line. */
export function clean(line: string): string {
  return line.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

// Input files, read with a size limit (issue 10 §4: a 600 MB file is refused, not read).

export const MiB = 1024 * 1024

const CHUNK = 64 * 1024

/** A file system error in a few words. */
export function why(e: unknown): string {
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
