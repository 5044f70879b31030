// Real Postfix smtpd instances for the lab (test/lab/README.md). Debian's postfix package, run
// without a system configuration: one master(8) per lab in a private config directory, its smtpd
// services bound to 127.0.x.y addresses only, stopped by the PID we started.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface SmtpdSpec {
  /** 127.0.x.y, or ::1 (then the lab's Postfix listens on IPv6 too) */
  address: string
  port?: number
  /** PEM chain (leaf first) and key; required when STARTTLS is offered */
  certPem?: string
  keyPem?: string
  /** default true */
  starttls?: boolean
  /** master.cf process limit of this smtpd service (default: Postfix's default_process_limit, 100) */
  maxProcesses?: number
  /** extra master.cf `-o name=value` overrides of this service (no spaces in a value) */
  options?: string[]
}

export interface PostfixLabOptions {
  /** extra main.cf lines, e.g. for benchmarks */
  extraMain?: string[]
  /**
   * Accept mail: run cleanup(8) and trivial-rewrite(8) with an incoming queue, so that MAIL FROM
   * and RCPT TO get answers (without them smtpd waits for cleanup forever). Nothing is delivered.
   */
  acceptMail?: boolean
  /**
   * Also deliver: run qmgr(8), the smtp(8) client and the bounce/defer/trace, error and scache
   * services (implies `acceptMail`). Mail goes where transport_maps/relayhost in `extraMain` say.
   */
  deliverMail?: boolean
  /** extra master.cf lines, e.g. smtp(8) transports with their own `-o` settings */
  extraMaster?: string[]
  /** extra master.cf lines, e.g. the queue manager and a delivery agent for a lab that receives mail */
  services?: string[]
  /**
   * A resolv.conf (with `options trust-ad`) bind-mounted over /etc/resolv.conf for this master and
   * every process it starts, in a private mount namespace (`unshare --mount`): smtp(8) then resolves
   * (and validates DNSSEC) through the lab's Unbound on port 53, as posttls-finger does with `resolvConf`.
   */
  resolvConf?: string
}

/**
 * The master.cf services that take a message from smtpd to a mailbox (cleanup, qmgr, trivial-rewrite,
 * bounce, the error agents, virtual(8)), chroot off like the rest of the lab; pass as `services`.
 */
export const DELIVERY_SERVICES: readonly string[] = [
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'scache unix - - n - 1 scache',
  'virtual unix - n n - - virtual',
]

export interface PostfixLab {
  dir: string
  /** the private config directory (MAIL_CONFIG for posttls-finger) */
  configDir: string
  maillog(): string
  stop(): Promise<void>
}

const MASTER = '/usr/lib/postfix/sbin/master'

function requirePostfix(): void {
  if (!existsSync(MASTER) || spawnSync('which', ['posttls-finger']).status !== 0) {
    throw new Error('Postfix is not installed: run `bash .ci/run` (or apt-get install postfix) first; the lab never skips')
  }
}

function assertLoopback(address: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address) && address !== '::1')
    throw new Error(`lab addresses must be in 127.0.0.0/8 or ::1, got ${address}`)
}

function uid(user: string): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(user + ':'))
  if (!line) throw new Error(`no ${user} user: is postfix installed?`)
  return Number(line.split(':')[2])
}

function waitForPort(address: string, port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect({ host: address, port })
      s.once('connect', () => {
        s.destroy()
        resolve()
      })
      s.once('error', () => {
        s.destroy()
        if (Date.now() > deadline) reject(new Error(`Postfix did not listen on ${address}:${port} within ${ms} ms`))
        else setTimeout(attempt, 100)
      })
    }
    attempt()
  })
}

/** Start one Postfix master with an smtpd service per spec. */
export async function startPostfixLab(specs: readonly SmtpdSpec[], options: PostfixLabOptions = {}): Promise<PostfixLab> {
  requirePostfix()
  const dir = mkdtempSync(join(tmpdir(), 'stp-postfix-'))
  chmodSync(dir, 0o755) // postfix-owned processes must reach the queue directory
  const conf = join(dir, 'conf')
  const queue = join(dir, 'queue')
  const data = join(dir, 'data')
  for (const d of [conf, queue, data, join(queue, 'pid'), join(queue, 'public'), join(queue, 'private')]) mkdirSync(d, { recursive: true })
  const postfixUid = uid('postfix')
  const accept = options.acceptMail === true || options.deliverMail === true
  // the queue manager's directories (postfix-files), which `postfix start` would create
  const queueDirs =
    accept || options.services
      ? ['incoming', 'active', 'deferred', 'hold', 'corrupt', 'maildrop', 'bounce', 'defer', 'trace', 'flush', 'saved'].map((d) =>
          join(queue, d),
        )
      : []
  for (const d of queueDirs) mkdirSync(d, { recursive: true, mode: 0o700 })
  for (const d of [queue, data, join(queue, 'public'), join(queue, 'private'), ...queueDirs]) chownSync(d, postfixUid, -1)
  const services: string[] = []
  specs.forEach((s, i) => {
    assertLoopback(s.address)
    const port = s.port ?? 25
    const opts: string[] = []
    if (s.starttls === false) opts.push('-o smtpd_tls_security_level=none')
    else {
      if (!s.certPem || !s.keyPem) throw new Error(`smtpd ${s.address}: STARTTLS needs certPem and keyPem`)
      writeFileSync(join(conf, `chain${i}.pem`), s.keyPem + s.certPem, { mode: 0o600 })
      opts.push('-o smtpd_tls_security_level=may', `-o smtpd_tls_chain_files=${join(conf, `chain${i}.pem`)}`)
    }
    for (const o of s.options ?? []) opts.push(`-o ${o}`)
    const listen = s.address.includes(':') ? `[${s.address}]` : s.address
    services.push(`${listen}:${port} inet n - n - ${s.maxProcesses ?? '-'} smtpd ${opts.join(' ')}`)
  })
  writeFileSync(
    join(conf, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${queue}`,
      `data_directory = ${data}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = lab.test',
      'mydestination =',
      // the smtpd services name their own 127.0.x.y address in master.cf
      'inet_interfaces = loopback-only',
      `inet_protocols = ${specs.some((x) => x.address.includes(':')) ? 'all' : 'ipv4'}`,
      `maillog_file_prefixes = ${dir}`,
      `maillog_file = ${join(dir, 'maillog')}`,
      'smtpd_relay_restrictions = reject',
      'smtpd_tls_session_cache_database =',
      'alias_maps =',
      'alias_database =',
      // for posttls-finger, which reads this main.cf through MAIL_CONFIG
      'smtp_dns_support_level = dnssec',
      'smtp_host_lookup = dns',
      'smtp_tls_session_cache_database =',
      // the lab's resolver serves no root zone; Postfix's DNSSEC self-test would only warn
      'dnssec_probe =',
      ...(options.extraMain ?? []),
      '',
    ].join('\n'),
  )
  writeFileSync(
    join(conf, 'master.cf'),
    [
      ...services,
      'tlsmgr unix - - n 1000? 1 tlsmgr',
      'anvil unix - - n - 1 anvil',
      'proxymap unix - - n - - proxymap',
      'postlog unix-dgram n - n - 1 postlogd',
      ...(accept ? ['cleanup unix n - n - 0 cleanup', 'rewrite unix - - n - - trivial-rewrite'] : []),
      ...(options.deliverMail
        ? [
            'qmgr unix n - n 300 1 qmgr',
            'smtp unix - - n - - smtp',
            'bounce unix - - n - 0 bounce',
            'defer unix - - n - 0 bounce',
            'trace unix - - n - 0 bounce',
            'error unix - - n - - error',
            'retry unix - - n - - error',
            'scache unix - - n - 1 scache',
            'flush unix n - n 1000? 0 flush',
          ]
        : []),
      ...(options.extraMaster ?? []),
      ...(options.services ?? []),
      '',
    ].join('\n'),
  )
  // unshare and sh exec: the PID we hold is master's, so stop() signals master itself
  const master: ChildProcess = options.resolvConf
    ? spawn(
        'unshare',
        ['--mount', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', options.resolvConf, MASTER, '-c', conf, '-d'],
        { env: { ...process.env, MAIL_CONFIG: conf }, stdio: 'ignore' },
      )
    : spawn(MASTER, ['-c', conf, '-d'], { env: { ...process.env, MAIL_CONFIG: conf }, stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => master.once('exit', () => resolve()))
  const stop = async () => {
    if (master.exitCode === null && master.signalCode === null) {
      master.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
      if (master.exitCode === null && master.signalCode === null) master.kill('SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (const s of specs) await waitForPort(s.address, s.port ?? 25, 10_000)
  } catch (e) {
    const log = existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : '(no maillog)'
    await stop()
    throw new Error(`${(e as Error).message}\n${log}`)
  }
  return { dir, configDir: conf, maillog: () => (existsSync(join(dir, 'maillog')) ? readFileSync(join(dir, 'maillog'), 'utf8') : ''), stop }
}

export interface FingerResult {
  status: number | null
  output: string
  /** Postfix's word for the connection: Verified, Trusted, Untrusted, Anonymous; undefined when no TLS */
  trust?: 'Verified' | 'Trusted' | 'Untrusted' | 'Anonymous'
  /** the server's EHLO reply (before TLS) advertised STARTTLS */
  starttlsOffered: boolean
  /** fingerprint= and pkey_fingerprint= of the leaf, as printed */
  fingerprint?: string
  pkeyFingerprint?: string
}

export interface FingerOptions {
  configDir: string
  level?: string
  /** extra posttls-finger arguments, e.g. ['-F', cafile] or ['-o', 'x=y'] */
  args?: string[]
  /** a resolv.conf to bind-mount over /etc/resolv.conf in a private mount namespace */
  resolvConf?: string
  /** match arguments after the destination (fingerprints, names) */
  match?: string[]
}

/** Run posttls-finger (the reference client) against `destination` and read its verdict. */
export function posttlsFinger(destination: string, o: FingerOptions): FingerResult {
  const args = ['-t', '10', '-T', '10', '-l', o.level ?? 'may', ...(o.args ?? []), destination, ...(o.match ?? [])]
  const env = { ...process.env, MAIL_CONFIG: o.configDir }
  const r = o.resolvConf
    ? spawnSync(
        'unshare',
        ['--mount', 'sh', '-c', `mount --bind "$0" /etc/resolv.conf && exec posttls-finger "$@"`, o.resolvConf, ...args],
        {
          env,
          encoding: 'utf8',
          timeout: 60_000,
        },
      )
    : spawnSync('posttls-finger', args, { env, encoding: 'utf8', timeout: 60_000 })
  return fingerResult(r.status, (r.stdout ?? '') + (r.stderr ?? ''))
}

function fingerResult(status: number | null, output: string): FingerResult {
  const res: FingerResult = { status, output, starttlsOffered: /< 250[- ]STARTTLS\b/i.test(output) }
  const t = /\b(Verified|Trusted|Untrusted|Anonymous) TLS connection established/.exec(output)
  if (t) res.trust = t[1] as NonNullable<FingerResult['trust']>
  const f = /[ ,]fingerprint=([0-9A-F:]+)/.exec(output)
  if (f) res.fingerprint = f[1]!
  const p = /pkey_fingerprint=([0-9A-F:]+)/.exec(output)
  if (p) res.pkeyFingerprint = p[1]!
  return res
}

/**
 * {@link posttlsFinger} without blocking the event loop, for servers that run in this process
 * (test/lab/sserver.ts's STARTTLS front). Killed after 60 s.
 */
export function posttlsFingerAsync(destination: string, o: FingerOptions): Promise<FingerResult> {
  const args = ['-t', '10', '-T', '10', '-l', o.level ?? 'may', ...(o.args ?? []), destination, ...(o.match ?? [])]
  const env = { ...process.env, MAIL_CONFIG: o.configDir }
  const child = o.resolvConf
    ? spawn('unshare', ['--mount', 'sh', '-c', `mount --bind "$0" /etc/resolv.conf && exec posttls-finger "$@"`, o.resolvConf, ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn('posttls-finger', args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (b: Buffer) => (output += b.toString()))
  child.stderr.on('data', (b: Buffer) => (output += b.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) => {
    child.on('error', (e) => {
      clearTimeout(timer)
      resolve(fingerResult(null, `${output}${e.message}`))
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve(fingerResult(code, output))
    })
  })
}
