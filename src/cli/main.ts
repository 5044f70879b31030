/**
 * The `smtp-tls-policy` command line, modelled on Postfix's posttls-finger.
 *
 * This module is the argument parser and nothing else: it imports none of the library, so `--help`
 * and usage errors cost no more than Node's own start-up, and each command loads only its own
 * modules, when it runs (issue 17). Every option is checked before any file or network I/O.
 *
 * Exit status (sysexits.h): 0 ok, 64 usage error, 65 bad input data, 66 input file cannot be
 * opened, 69 permanent failure, 70 internal error (a bug), 75 temporary failure.
 */
import { writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import {
  clean,
  CliError,
  EX_OK,
  EX_SOFTWARE,
  EX_TEMPFAIL,
  EX_UNAVAILABLE,
  EX_USAGE,
  firstLine,
  isCoded,
  isMetricsListen,
  type CliIo,
  type CheckArgs,
  type MtaStsArgs,
  type ProbeArgs,
  type QueryArgs,
  type ServeArgs,
  type StoreArgs,
  type TlsaArgs,
  type TlsRptArgs,
} from './common.js'

export { EX_DATAERR, EX_NOINPUT, EX_OK, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE } from './common.js'
export type { CliIo } from './common.js'

/**
 * Lines go straight to file descriptors 1 and 2: creating `process.stdout` (a stream over a pipe)
 * costs milliseconds of start-up, more than some commands' work (issue 17). A descriptor that is
 * non-blocking and full (EAGAIN) falls back to the stream; a closed reader (EPIPE, `| head`) ends
 * the output quietly, as SIGPIPE would.
 */
function lineWriter(fd: 1 | 2, stream: () => NodeJS.WriteStream): (line: string) => void {
  let mode: 'fd' | 'stream' | 'closed' = 'fd'
  return (line) => {
    let buf = Buffer.from(line + '\n', 'utf8')
    while (mode === 'fd' && buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(fd, buf))
      } catch (e) {
        mode = (e as NodeJS.ErrnoException).code === 'EPIPE' ? 'closed' : 'stream'
      }
    }
    if (mode === 'stream' && buf.length > 0) stream().write(buf)
  }
}

const defaultIo: CliIo = {
  out: lineWriter(1, () => process.stdout),
  err: lineWriter(2, () => process.stderr),
}

const MAIN_HELP = `Usage: smtp-tls-policy <command> [options]

Commands:
  probe <domain|[host]|host:port>   probe a destination's SMTP TLS like posttls-finger
  tlsa <cert.pem|cert.der>          print the TLSA record for a certificate
  mta-sts <domain>                  print a domain's MTA-STS record, policy and the MX hosts it admits
  tlsrpt [<domain>] [--report FILE] print a domain's TLS-RPT record; check a TLS-RPT report file
  check <domain>                    check a domain's DANE, certificates, MTA-STS and TLS-RPT
  serve --socketmap unix:PATH|inet:HOST:PORT   a TLS policy server for Postfix (smtp_tls_policy_maps)
  query <domain|[host]>             the answer the policy server gives, and why
  dump | purge [<domain>]           list or delete the policy server's cached answers (Redis)

Run "smtp-tls-policy <command> --help" for a command's options.

Exit status: 0 ok, 64 usage error, 65 bad input data, 66 input file cannot be opened,
69 permanent failure, 70 internal error, 75 temporary failure, 78 bad configuration file.`

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

A PEM file may hold a chain (leaf first); a DER file holds one certificate. At most 1 MiB.

Exit status: 0 ok, 64 usage error, 65 not a certificate (or larger than 1 MiB),
66 the file cannot be opened.`

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
  --ca-file FILE       CA certificates (PEM) for verify and secure (default: Node's root store)
  --ca-path DIR        an OpenSSL hashed directory of CA certificates (c_rehash), added to --ca-file
  --ta-file FILE       trust anchors (PEM certificates or public keys) for verify and secure, as
                       Postfix smtp_tls_trust_anchor_file: only they are trusted (repeatable)
  --ehlo NAME          our EHLO name (default: this host's name)
  --timeout SECONDS    per network step: each DNS query, the TCP connect, each reply, the TLS
                       handshake (default 30; DNS queries: resolv.conf's timeout, else 5)
  --json               print one JSON object instead of text
  -v, --verbose        print the SMTP transcript (< server, > client)
  -h, --help           show this help

Exit status: 0 the level is satisfied, 75 delivery would be deferred, 69 permanent failure
(null MX, no such domain, REQUIRETLS), 64 usage error, 65 a bad policy table or CA file,
66 a file cannot be opened.`

const SERVE_HELP = `Usage: smtp-tls-policy serve [--config FILE] [--socketmap unix:PATH|inet:HOST:PORT] [options]

A TLS policy server for Postfix over the socketmap protocol (socketmap_table(5)):
  smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:dane+sts
Map names: dane (DANE only), sts (MTA-STS only), dane+sts (DANE first), or the profiles of the
configuration file. Answers: OK dane-only, OK dane, OK secure match=... servername=hostname,
NOTFOUND, TEMP (a DNSSEC or TLSA failure). Logs one JSON object per line on stderr; stops on
SIGTERM or SIGINT; SIGHUP reads the configuration file again (a bad one is logged and ignored).

Options (each also a key of the YAML file, without "--"; an option given here wins):
  --config FILE         a YAML configuration file (at most 1 MiB)
  --socketmap ADDR      unix:PATH or inet:HOST:PORT to listen on (here or in the file)
  --resolver IP[:PORT]  a validating resolver to ask (repeatable; default: /etc/resolv.conf)
  --mode OCTAL          file mode of a unix socket (default 666)
  --max-connections N   most open client connections (default 100)
  --idle-timeout S      close a connection idle this long (default 10 seconds)
  --lookup-timeout S    answer TEMP for a lookup that takes longer (default 15 seconds)
  --testing-may         answer "OK may" for an MTA-STS testing policy (default NOTFOUND)
  --cache-negative S    cache NOTFOUND this long (default 300 seconds)
  --cache-dane S        cache a DANE answer this long when no TLSA TTL is known (default 300)
  --cache-max S         cache any answer at most this long (default 3600)
  --ca-file FILE        trust anchors (PEM) for MTA-STS policy hosts (default: Node's root store)
  --sts-port N          HTTPS port of mta-sts.<domain> (default 443; for tests and labs)
  --allow-private       fetch MTA-STS policies from loopback and private addresses too
  --sts-timeout S       for each MTA-STS policy fetch (default 10 seconds)
  --redis URL           share the cache: redis://HOST:PORT, rediss://..., or unix:/path/redis.sock
  --redis-prefix TEXT   prefix of every Redis key (default "smtp-tls-policy:")
  --metrics [HOST:]PORT Prometheus metrics at http://HOST:PORT/metrics (host default 127.0.0.1)
  -h, --help            show this help

Exit status: 0 stopped by a signal, 64 usage error, 66 a file cannot be opened, 69 the redis
package is not installed, 75 cannot listen, 78 bad configuration file.`

const DUMP_HELP = `Usage: smtp-tls-policy dump [--redis URL | --config FILE] [options]
       smtp-tls-policy purge [<domain>] [--redis URL | --config FILE] [options]

dump lists the answers "serve" has cached in Redis, with the seconds each has left:
  <seconds left>  <map name>  <next hop>:<port>  <answer>
purge deletes the cached answers of one domain (its MX next hop and [domain], every map name
and port), or all of them; the next lookup asks DNS (and MTA-STS) again. Cached MTA-STS
policies are kept (RFC 8461 §5: they protect against a downgrade).

Options:
  --redis URL           redis://HOST:PORT, rediss://..., or unix:/path/redis.sock
  --redis-prefix TEXT   prefix of every Redis key (default "smtp-tls-policy:")
  --config FILE         take redis and redis-prefix from serve's configuration file
  --json                print JSON instead of text
  -h, --help            show this help

Exit status: 0 ok, 64 usage error (no Redis given: an in-memory cache lives inside "serve"),
66 the file cannot be opened, 69 the redis package is not installed, 75 Redis cannot be reached,
78 bad configuration file.`

const QUERY_HELP = `Usage: smtp-tls-policy query <domain|[host]> [options]

Print the answer "serve" would give Postfix for a lookup key, and the rules that led to it.

Options:
  --map NAME            the map name: dane, sts or dane+sts (default dane+sts), or a profile
                        of the --config file
  --resolver IP[:PORT]  a validating resolver to ask (repeatable; default: /etc/resolv.conf)
  --testing-may         answer "OK may" for an MTA-STS testing policy
  --config FILE         serve's configuration file: its profiles, resolver, MTA-STS options and
                        Redis cache (a cached answer is shown as such; query never writes to it)
  --redis URL           read the cache of "serve --redis URL"
  --redis-prefix TEXT   prefix of every Redis key (default "smtp-tls-policy:")
  --json                print one JSON object instead of text
  -h, --help            show this help

Exit status: 0 OK or NOTFOUND, 75 TEMP (or Redis cannot be reached), 69 PERM, 64 usage error,
66 a file cannot be opened, 78 bad configuration file.`

const MTA_STS_HELP = `Usage: smtp-tls-policy mta-sts <domain> [options]

Look up _mta-sts.<domain> (RFC 8461 §3.1), fetch https://mta-sts.<domain>/.well-known/mta-sts.txt
with strict certificate checks (§3.3: no redirects, text/plain, at most 64 KiB), and print the
record, the policy, its cache lifetime and which of the domain's MX hosts it admits (§4.1).

Options:
  --resolver IP[:PORT]  a validating resolver to ask (repeatable; default: /etc/resolv.conf)
  --ca-file FILE        trust anchors (PEM) for mta-sts.<domain> (default: Node's root store)
  --timeout SECONDS     for each DNS query and for the policy fetch (default 10)
  --port N              HTTPS port of mta-sts.<domain> (default 443; for tests and labs)
  --allow-private       fetch from loopback and private addresses too (refused by default)
  --json                print one JSON object instead of text
  -h, --help            show this help

Exit status: 0 a policy was found, or the domain has no MTA-STS record; 65 the record or the
policy is invalid; 75 a DNS or HTTPS failure (the policy could not be fetched); 64 usage error;
65 a bad CA file; 66 a file cannot be opened.`

const TLSRPT_HELP = `Usage: smtp-tls-policy tlsrpt [<domain>] [--report FILE] [options]
       smtp-tls-policy tlsrpt --send DAY --redis URL --organization NAME --contact ADDR
                              --submitter DOMAIN --from ADDR [options]

Print the TLS-RPT record of a domain (_smtp._tls.<domain>, RFC 8460 §3), and/or check a report
file (JSON, or gzip-compressed JSON) against RFC 8460 §4.4. With --send, send the reports of a
UTC day (YYYY-MM-DD, or "yesterday") recorded in a Redis store (the driver's tlsRpt option with
createRedisStore) to every rua URI of each policy domain, once per day, domain and URI.

Options:
  --report FILE         a TLS-RPT report to check (at most 16 MiB, 64 MiB uncompressed)
  --send DAY            send that day's reports (needs the npm package redis, node-redis 5)
  --redis URL           the store: redis://HOST:PORT[/DB] or unix:/PATH/redis.sock
  --redis-prefix P      createRedisStore's prefix (default smtp-tls-policy:)
  --key-prefix P        the recorder's key prefix (default tlsrpt|)
  --organization NAME   organization-name of the reports
  --contact ADDR        contact-info of the reports
  --submitter DOMAIN    the submitting domain (TLS-Report-Submitter, file names)
  --from ADDR           the sender of report mail
  --ehlo NAME           our EHLO name for report mail (default: the host name)
  --ca-file FILE        trust anchors (PEM) for https: report URIs (default: Node's root store)
  --allow-private       POST to loopback and private addresses too (refused by default)
  --resolver IP[:PORT]  a validating resolver to ask (repeatable; default: /etc/resolv.conf)
  --timeout SECONDS     for each DNS query (default: resolv.conf's timeout, else 5)
  --json                print one JSON object instead of text
  -h, --help            show this help

Exit status: 0 the record was printed (or the domain has none) and the report is valid, or
every report was sent (or had been); 65 the record or the report is invalid; 75 a DNS failure,
or a report URI failed (run again: what was sent is not sent twice); 69 the redis package is
missing; 64 usage error; 66 the report cannot be opened.`

const CHECK_HELP = `Usage: smtp-tls-policy check <domain> [options]

Check a domain as a sender sees it: DNSSEC of its MX, address and TLSA records, every MX address
over STARTTLS (all at once), the chain each one sends against the TLSA records, rollover
readiness (RFC 7671 §8), certificate expiry, MTA-STS and TLS-RPT. Each finding has a rule and
a remedy.

Options:
  --resolver IP[:PORT]  a validating resolver to ask (repeatable; default: /etc/resolv.conf).
                        Its AD bit is trusted only on loopback addresses.
  --port N              SMTP port (default 25)
  --timeout SECONDS     per network step (default 15)
  --ehlo NAME           our EHLO name (default: this host's name)
  --ca-file FILE        trust anchors (PEM) for mta-sts.<domain> (default: Node's root store)
  --sts-port N          HTTPS port of mta-sts.<domain> (default 443; for tests and labs)
  --allow-private       fetch the MTA-STS policy from loopback and private addresses too
  --json                print one JSON object instead of text
  --html FILE           also write the report as one self-contained HTML page (no scripts, nothing
                        fetched), with a picture of the delivery path
  -h, --help            show this help

Exit status: 0 no errors or warnings, 1 warnings only, 2 errors, 64 usage error,
66 a file cannot be opened, 73 the HTML file cannot be written, 75 the check could not run
(e.g. the resolver is unreachable).`

/** The levels `--level` takes: CONFIGURABLE_LEVELS of src/policy/levels.ts (a test keeps them equal). */
export const CLI_LEVELS: readonly string[] = ['none', 'may', 'encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure']

/** Postfix `smtp_tls_{verify,secure}_cert_match` strategies; anything else is a literal name. */
const MATCH_STRATEGIES = ['hostname', 'nexthop', 'dot-nexthop']

function usage(message: string): never {
  throw new CliError(EX_USAGE, message)
}

function intOption(value: string | undefined, name: string, fallback: number, max = 255): number {
  if (value === undefined) return fallback
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) > max) usage(`--${name} must be a number from 0 to ${max}, got ${JSON.stringify(value)}`)
  return Number(value)
}

function portOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const port = intOption(value, 'port', 25, 65535)
  if (port === 0) usage('--port must be from 1 to 65535')
  return port
}

const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/

/**
 * A DNS name in presentation form, as a zone file takes it: labels of letters, digits, hyphens
 * (RFC 1123 §2.1, no hyphen at either end) and underscores (attribute leaves such as `_25._tcp`,
 * RFC 8552), 1-63 octets each (RFC 1035 §2.3.4), at most 253 characters without the root dot
 * (255 octets on the wire). Nothing a zone file would read as a second field or record.
 */
export function isDnsName(name: string): boolean {
  const n = name.endsWith('.') ? name.slice(0, -1) : name
  if (n.length === 0 || n.length > 253) return false
  return n.split('.').every((l) => LABEL.test(l))
}

function parseTlsa(args: string[]): TlsaArgs | undefined {
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
  if (values.help) return undefined
  if (positionals.length !== 1) usage('tlsa takes exactly one certificate file')
  const a: TlsaArgs = {
    file: positionals[0]!,
    usage: intOption(values.usage, 'usage', 3),
    selector: intOption(values.selector, 'selector', 1),
    mtype: intOption(values.mtype, 'mtype', 1),
    all: values.all,
    port: portOption(values.port) ?? 25,
  }
  if (a.selector > 1) usage('--selector must be 0 or 1')
  if (a.mtype > 2) usage('--mtype must be 0, 1 or 2')
  if (values.all && (values.usage ?? values.selector ?? values.mtype) !== undefined) {
    usage('--all cannot be combined with --usage, --selector or --mtype')
  }
  if (values.host !== undefined) {
    // The name is printed as the owner of a resource record: a newline would start another record.
    if (!isDnsName(values.host)) usage(`--host must be a DNS name (A-labels for IDNs), got ${JSON.stringify(values.host)}`)
    a.host = values.host
  }
  return a
}

function parseProbe(args: string[]): ProbeArgs | undefined {
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
      'ca-path': { type: 'string' },
      'ta-file': { type: 'string', multiple: true },
      ehlo: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  if (positionals.length !== 1) usage('probe takes exactly one destination')
  const level = values.level ?? 'dane'
  if (!CLI_LEVELS.includes(level)) usage(`--level must be one of ${CLI_LEVELS.join(', ')}`)
  const a: ProbeArgs = { destination: positionals[0]!, level: level as ProbeArgs['level'], json: values.json, verbose: values.verbose }
  const port = portOption(values.port)
  if (port !== undefined) a.port = port
  if (values.timeout !== undefined) a.timeoutMs = intOption(values.timeout, 'timeout', 30, 3600) * 1000 || 1000
  if (values.resolver) a.resolvers = values.resolver
  if (values.ehlo !== undefined) a.ehlo = values.ehlo
  if (values['ca-file'] !== undefined) a.caFile = values['ca-file']
  if (values['ca-path'] !== undefined) a.caPath = values['ca-path']
  if (values['ta-file'] !== undefined) a.taFile = values['ta-file']
  if (values['policy-table'] !== undefined) a.policyTable = values['policy-table']
  if (values.match) {
    if (level === 'verify' || level === 'secure') {
      for (const m of values.match) {
        const name = m.startsWith('.') ? m.slice(1) : m
        if (!MATCH_STRATEGIES.includes(m) && !isDnsName(name)) {
          usage(`--match must be hostname, nexthop, dot-nexthop or a DNS name (".domain" for its subdomains), got ${JSON.stringify(m)}`)
        }
      }
    } else if (level !== 'fingerprint') usage('--match applies to the fingerprint, verify and secure levels')
    a.match = values.match
  }
  return a
}

function checkDomainArg(domain: string): string {
  const d = domain.endsWith('.') ? domain.slice(0, -1) : domain
  if (!isDnsName(d) || d.includes('_')) usage(`not a domain name (A-labels for IDNs): ${JSON.stringify(domain)}`)
  return d.toLowerCase()
}

function parseMtaSts(args: string[]): MtaStsArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      resolver: { type: 'string', multiple: true },
      'ca-file': { type: 'string' },
      timeout: { type: 'string' },
      port: { type: 'string' },
      'allow-private': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  if (positionals.length !== 1) usage('mta-sts takes exactly one domain')
  const a: MtaStsArgs = { domain: checkDomainArg(positionals[0]!), allowPrivate: values['allow-private'], json: values.json }
  if (values.resolver) a.resolvers = values.resolver
  if (values['ca-file'] !== undefined) a.caFile = values['ca-file']
  const port = portOption(values.port)
  if (port !== undefined) a.port = port
  if (values.timeout !== undefined) a.timeoutMs = intOption(values.timeout, 'timeout', 10, 3600) * 1000 || 1000
  return a
}

/** Where serve listens: the same check for --socketmap and the configuration file's socketmap. */
export const SOCKETMAP_ADDRESS = /^(?:unix:.|inet:(?:\[[0-9a-fA-F:.]+\]|[^:[\]]+):[0-9]{1,5}$)/

/** A Redis URL: redis://, rediss:// or unix:/path (a socket). */
export const REDIS_URL = /^(?:rediss?:\/\/[^\s]+|unix:\/[^\s]*)$/

/** The most any cache time can be: 366 days, in seconds. */
export const MAX_CACHE_SECONDS = 366 * 86400

function parseServe(args: string[]): ServeArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      socketmap: { type: 'string' },
      resolver: { type: 'string', multiple: true },
      mode: { type: 'string' },
      'max-connections': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'lookup-timeout': { type: 'string' },
      'testing-may': { type: 'boolean' },
      'cache-negative': { type: 'string' },
      'cache-dane': { type: 'string' },
      'cache-max': { type: 'string' },
      'ca-file': { type: 'string' },
      'sts-port': { type: 'string' },
      'allow-private': { type: 'boolean' },
      'sts-timeout': { type: 'string' },
      redis: { type: 'string' },
      'redis-prefix': { type: 'string' },
      metrics: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  if (positionals.length !== 0) usage('serve takes no arguments, only options')
  const where = values.socketmap
  if (where === undefined && values.config === undefined) usage('serve needs --socketmap unix:PATH or inet:HOST:PORT, or --config FILE')
  if (where !== undefined && !SOCKETMAP_ADDRESS.test(where))
    usage(`--socketmap must be unix:PATH or inet:HOST:PORT, got ${JSON.stringify(where)}`)
  const a: ServeArgs = {}
  if (where !== undefined) a.socketmap = where
  if (values.config !== undefined) a.config = values.config
  if (values['testing-may'] !== undefined) a.testingMay = values['testing-may']
  if (values['allow-private'] !== undefined) a.allowPrivate = values['allow-private']
  if (values.resolver) a.resolvers = values.resolver
  if (values.mode !== undefined) {
    if (!/^[0-7]{1,4}$/.test(values.mode) || parseInt(values.mode, 8) > 0o777)
      usage(`--mode must be octal, e.g. 660, got ${JSON.stringify(values.mode)}`)
    a.mode = parseInt(values.mode, 8)
  }
  if (values['max-connections'] !== undefined) {
    a.maxConnections = intOption(values['max-connections'], 'max-connections', 100, 65535)
    if (a.maxConnections === 0) usage('--max-connections must be at least 1')
  }
  const seconds = (name: 'idle-timeout' | 'lookup-timeout' | 'sts-timeout'): number | undefined => {
    const v = values[name]
    if (v === undefined) return undefined
    const n = intOption(v, name, 0, 3600)
    if (n === 0) usage(`--${name} must be from 1 to 3600 seconds`)
    return n * 1000
  }
  const idle = seconds('idle-timeout')
  if (idle !== undefined) a.idleTimeoutMs = idle
  const lookup = seconds('lookup-timeout')
  if (lookup !== undefined) a.lookupTimeoutMs = lookup
  const sts = seconds('sts-timeout')
  if (sts !== undefined) a.stsTimeoutMs = sts
  for (const k of ['negative', 'dane', 'max'] as const) {
    const v = values[`cache-${k}`]
    if (v !== undefined) (a.cache ??= {})[k] = intOption(v, `cache-${k}`, 0, MAX_CACHE_SECONDS)
  }
  if (values['ca-file'] !== undefined) a.caFile = values['ca-file']
  if (values['sts-port'] !== undefined) {
    const p = intOption(values['sts-port'], 'sts-port', 443, 65535)
    if (p === 0) usage('--sts-port must be from 1 to 65535')
    a.stsPort = p
  }
  if (values.metrics !== undefined) {
    if (!isMetricsListen(values.metrics)) usage(`--metrics must be [HOST:]PORT, got ${JSON.stringify(values.metrics)}`)
    a.metrics = values.metrics
  }
  Object.assign(a, redisOptions(values.redis, values['redis-prefix']))
  return a
}

function redisOptions(url: string | undefined, prefix: string | undefined): { redis?: string; redisPrefix?: string } {
  const out: { redis?: string; redisPrefix?: string } = {}
  if (url !== undefined) {
    if (!REDIS_URL.test(url)) usage(`--redis must be redis://HOST:PORT, rediss://... or unix:/path, got ${JSON.stringify(url)}`)
    out.redis = url
  }
  if (prefix !== undefined) {
    if (!/^[!-~]{0,100}$/.test(prefix)) usage('--redis-prefix must be at most 100 printable characters, no space')
    out.redisPrefix = prefix
  }
  return out
}

function parseStore(command: 'dump' | 'purge', args: string[]): StoreArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      redis: { type: 'string' },
      'redis-prefix': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  if (command === 'dump' && positionals.length !== 0) usage('dump takes no arguments, only options')
  if (positionals.length > 1) usage('purge takes at most one domain')
  if (values.redis === undefined && values.config === undefined)
    usage(`${command} needs --redis URL or --config FILE (the in-memory cache lives inside "serve")`)
  const a: StoreArgs = { json: values.json, ...redisOptions(values.redis, values['redis-prefix']) }
  if (values.config !== undefined) a.config = values.config
  if (positionals.length === 1) a.domain = checkDomainArg(positionals[0]!)
  return a
}

function parseQuery(args: string[]): QueryArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      map: { type: 'string', default: 'dane+sts' },
      resolver: { type: 'string', multiple: true },
      'testing-may': { type: 'boolean', default: false },
      config: { type: 'string' },
      redis: { type: 'string' },
      'redis-prefix': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  if (positionals.length !== 1) usage('query takes exactly one domain or [host]')
  if (values.config === undefined && !['dane', 'sts', 'dane+sts'].includes(values.map))
    usage(`--map must be dane, sts or dane+sts (or a profile of --config), got ${JSON.stringify(values.map)}`)
  if (!/^[!-~]{1,100}$/.test(values.map)) usage(`--map must be a map name (printable, no space), got ${JSON.stringify(values.map)}`)
  const a: QueryArgs = { key: positionals[0]!, map: values.map, testingMay: values['testing-may'], json: values.json }
  if (values.resolver) a.resolvers = values.resolver
  if (values.config !== undefined) a.config = values.config
  Object.assign(a, redisOptions(values.redis, values['redis-prefix']))
  return a
}

function parseTlsRpt(args: string[]): TlsRptArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      report: { type: 'string' },
      resolver: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      send: { type: 'string' },
      redis: { type: 'string' },
      'redis-prefix': { type: 'string' },
      'key-prefix': { type: 'string' },
      organization: { type: 'string' },
      contact: { type: 'string' },
      submitter: { type: 'string' },
      from: { type: 'string' },
      ehlo: { type: 'string' },
      'ca-file': { type: 'string' },
      'allow-private': { type: 'boolean', default: false },
    },
  })
  if (values.help) return undefined
  if (values.send !== undefined) return parseTlsRptSend(values, positionals)
  for (const k of ['redis', 'redis-prefix', 'key-prefix', 'organization', 'contact', 'submitter', 'from', 'ehlo', 'ca-file'] as const)
    if (values[k] !== undefined) usage(`--${k} needs --send`)
  if (values['allow-private']) usage('--allow-private needs --send')
  if (positionals.length > 1) usage('tlsrpt takes at most one domain')
  if (positionals.length === 0 && values.report === undefined) usage('tlsrpt takes a domain, a --report file, or both')
  const a: TlsRptArgs = { json: values.json }
  if (positionals.length === 1) a.domain = checkDomainArg(positionals[0]!)
  else if (values.resolver) usage('--resolver needs a domain')
  if (values.report !== undefined) a.report = values.report
  if (values.resolver) a.resolvers = values.resolver
  if (values.timeout !== undefined) a.timeoutMs = intOption(values.timeout, 'timeout', 5, 3600) * 1000 || 1000
  return a
}

function parseTlsRptSend(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): TlsRptArgs {
  if (positionals.length > 0 || values.report !== undefined) usage('--send takes no domain and no --report')
  const str = (k: string): string | undefined => values[k] as string | undefined
  let day = str('send')!
  if (day === 'yesterday') day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)))
    usage('--send takes a UTC day YYYY-MM-DD or yesterday')
  const need = (k: string): string => {
    const v = str(k)
    if (v === undefined || v.trim() === '') usage(`--send needs --${k}`)
    return v
  }
  const redis = need('redis')
  if (!/^(rediss?:\/\/|unix:\/)/.test(redis)) usage('--redis takes redis://HOST:PORT or unix:/PATH')
  const send: NonNullable<TlsRptArgs['send']> = {
    day,
    redis,
    organization: need('organization'),
    contact: need('contact'),
    submitter: need('submitter'),
    from: need('from'),
    allowPrivate: values['allow-private'] === true,
  }
  if (str('redis-prefix') !== undefined) send.redisPrefix = str('redis-prefix')!
  if (str('key-prefix') !== undefined) send.keyPrefix = str('key-prefix')!
  if (str('ehlo') !== undefined) send.ehloName = str('ehlo')!
  if (str('ca-file') !== undefined) send.caFile = str('ca-file')!
  const a: TlsRptArgs = { json: values.json === true, send }
  if (values.resolver) a.resolvers = values.resolver as string[]
  if (values.timeout !== undefined) a.timeoutMs = intOption(values.timeout as string, 'timeout', 5, 3600) * 1000 || 1000
  return a
}

function parseCheck(args: string[]): CheckArgs | undefined {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      resolver: { type: 'string', multiple: true },
      port: { type: 'string' },
      timeout: { type: 'string' },
      ehlo: { type: 'string' },
      'ca-file': { type: 'string' },
      'sts-port': { type: 'string' },
      'allow-private': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      html: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  if (positionals.length !== 1) usage('check takes exactly one domain')
  const a: CheckArgs = { domain: checkDomainArg(positionals[0]!), allowPrivate: values['allow-private'], json: values.json }
  if (values.resolver) a.resolvers = values.resolver
  const port = portOption(values.port)
  if (port !== undefined) a.port = port
  if (values['sts-port'] !== undefined) {
    const p = intOption(values['sts-port'], 'sts-port', 443, 65535)
    if (p === 0) usage('--sts-port must be from 1 to 65535')
    a.stsPort = p
  }
  if (values.timeout !== undefined) a.timeoutMs = intOption(values.timeout, 'timeout', 15, 3600) * 1000 || 1000
  if (values.ehlo !== undefined) a.ehlo = values.ehlo
  if (values['ca-file'] !== undefined) a.caFile = values['ca-file']
  if (values.html !== undefined) a.html = values.html
  return a
}

/**
 * Report an error in one line on `err` and return its exit status: a {@link CliError} carries its
 * own; the argument parser's errors are 64; a coded library error is 64 for a bad argument, else 75
 * when temporary and 69 when permanent; anything else is a bug, 70 (set SMTP_TLS_POLICY_DEBUG=1
 * for its stack trace).
 */
export function exitStatusOf(e: unknown, err: (line: string) => void): number {
  const code = (e as { code?: unknown } | null)?.code
  let status: number
  if (e instanceof CliError) {
    err(clean(`smtp-tls-policy: ${e.message}`))
    status = e.status
  } else if (e instanceof Error && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
    err(clean(`smtp-tls-policy: ${e.message}`))
    status = EX_USAGE
  } else if (isCoded(e)) {
    err(clean(`smtp-tls-policy: ${e.message} [${e.code}]`))
    status = e.code === 'ERR_INVALID_ARGUMENT' ? EX_USAGE : e.temporary ? EX_TEMPFAIL : EX_UNAVAILABLE
  } else {
    internalError(e, err)
    return EX_SOFTWARE
  }
  if (status === EX_USAGE) err('Run "smtp-tls-policy --help" for usage.')
  return status
}

/** One line for a bug (the stack trace only with SMTP_TLS_POLICY_DEBUG set). */
export function internalError(e: unknown, err: (line: string) => void = defaultIo.err): void {
  err(clean(`smtp-tls-policy: internal error: ${firstLine(e)}`))
  if (process.env['SMTP_TLS_POLICY_DEBUG'] && e instanceof Error && e.stack) err(e.stack)
}

/** Run the CLI with `argv` (without `node` and the script) and return the exit status. Never rejects. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'tlsa': {
        const a = parseTlsa(rest)
        if (a === undefined) return help(TLSA_HELP, io)
        const { tlsaCommand } = await import('./tlsa.js')
        return await tlsaCommand(a, io)
      }
      case 'probe': {
        const a = parseProbe(rest)
        if (a === undefined) return help(PROBE_HELP, io)
        const { probeCommand } = await import('./probe.js')
        return await probeCommand(a, io)
      }
      case 'mta-sts': {
        const a = parseMtaSts(rest)
        if (a === undefined) return help(MTA_STS_HELP, io)
        const { mtaStsCommand } = await import('./mta-sts.js')
        return await mtaStsCommand(a, io)
      }
      case 'tlsrpt': {
        const a = parseTlsRpt(rest)
        if (a === undefined) return help(TLSRPT_HELP, io)
        const { tlsRptCommand } = await import('./tlsrpt.js')
        return await tlsRptCommand(a, io)
      }
      case 'check': {
        const a = parseCheck(rest)
        if (a === undefined) return help(CHECK_HELP, io)
        const { checkCommand } = await import('./check.js')
        return await checkCommand(a, io)
      }
      case 'serve': {
        const a = parseServe(rest)
        if (a === undefined) return help(SERVE_HELP, io)
        const { serveCommand } = await import('./serve.js')
        return await serveCommand(a, io)
      }
      case 'dump':
      case 'purge': {
        const a = parseStore(command, rest)
        if (a === undefined) return help(DUMP_HELP, io)
        const { storeCommand } = await import('./store.js')
        return await storeCommand(command, a, io)
      }
      case 'query': {
        const a = parseQuery(rest)
        if (a === undefined) return help(QUERY_HELP, io)
        const { queryCommand } = await import('./serve.js')
        return await queryCommand(a, io)
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(MAIN_HELP)
        return command === undefined ? EX_USAGE : EX_OK
      default:
        usage(`unknown command ${JSON.stringify(command)}`)
    }
  } catch (e) {
    return exitStatusOf(e, io.err)
  }
}

function help(text: string, io: CliIo): number {
  io.out(text)
  return EX_OK
}
