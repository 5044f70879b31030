// The DNS lab (test/lab/README.md): real DNSSEC peers on loopback only.
//
//   NSD (authoritative)  127.0.N.1:P   serves "test." and every lab zone below it, generated and
//                                      signed at start with ldns-keygen / ldns-signzone
//   Unbound (validating) 127.0.N.2:P   trust anchor = the DS of "test."; "test." and the root are
//                                      stubbed to NSD, so no query leaves 127.0.0.0/8
//
// Zones are delegated from "test." with NS (and DS when signed), so each child is secure, insecure
// (unsigned: no DS) or bogus (signed with expired signatures). Later labs (Postfix smtpd instances)
// add their own zones: startDnsLab({ zones: [{ name: 'mail.test', records: ['@ MX 10 mx', ...] }] }).
// Processes are started by this module and stopped by their PID; nothing else is touched.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface LabZone {
  /** a name below "test.", e.g. "secure.test" */
  name: string
  /** zone-file lines relative to the zone origin, e.g. "@ MX 10 mx1", "mx1 A 127.0.0.1", "_25._tcp.mx1 TLSA 3 1 1 ab…" */
  records: string[]
  /** 'signed' (default): DS in the parent, valid signatures; 'unsigned': no DS (insecure); 'expired': DS in the parent, signatures that expired (bogus) */
  dnssec?: 'signed' | 'unsigned' | 'expired'
}

export interface DnsLabOptions {
  zones: LabZone[]
  /** records for the parent zone "test." itself */
  parentRecords?: string[]
  /**
   * port for both servers. Default: a random unprivileged port, so the lab never collides with a system
   * resolver (systemd-resolved, a packaged nsd or unbound). Pass 53 when a peer that only reads
   * /etc/resolv.conf (Postfix, posttls-finger) must use the lab's Unbound.
   */
  port?: number
}

export interface DnsLab {
  /** "127.0.N.2:PORT": give it to createResolver({ servers: [lab.resolverAddress] }) */
  resolverAddress: string
  resolverIp: string
  authoritativeIp: string
  port: number
  dir: string
  /** the DS record of "test." that Unbound uses as its trust anchor */
  trustAnchor: string
  /** run dig against the lab's Unbound: dig(['+dnssec', 'name', 'TLSA']) */
  dig(args: string[]): string
  stop(): Promise<void>
}

const TOOLS = ['nsd', 'unbound', 'ldns-keygen', 'ldns-signzone', 'ldns-key2ds', 'dig']

function requireTools(): void {
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)
  if (missing.length > 0) {
    throw new Error(
      `DNS lab tools missing: ${missing.join(', ')}. Run \`bash .ci/run\` (or apt-get install nsd unbound ldnsutils bind9-dnsutils); the lab never skips`,
    )
  }
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`)
  return r.stdout
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14)
}

function soa(origin: string): string[] {
  return [`$ORIGIN ${origin}.`, '$TTL 300', `@ IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60`, `@ IN NS ns.test.`]
}

/** Generate a key, sign `zone`, return the DS (SHA-256) of the key. */
function signZone(dir: string, origin: string, body: string[], validity: 'valid' | 'expired'): string {
  const unsigned = join(dir, `${origin}.zone`)
  writeFileSync(unsigned, body.join('\n') + '\n')
  // one ECDSA P-256 key with the SEP flag signs everything (a combined signing key)
  const base = run('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', origin], dir).trim()
  const now = Date.now()
  const [inception, expiration] =
    validity === 'valid'
      ? [stamp(new Date(now - 3600_000)), stamp(new Date(now + 30 * 86400_000))]
      : [stamp(new Date(now - 60 * 86400_000)), stamp(new Date(now - 30 * 86400_000))]
  run('ldns-signzone', ['-i', inception, '-e', expiration, '-f', `${unsigned}.signed`, unsigned, base], dir)
  const ds = run('ldns-key2ds', ['-n', '-2', `${base}.key`], dir).trim()
  return ds
}

function freeNet(): number {
  // a third octet other labs are unlikely to pick; collisions are retried by the caller
  return 54 + Math.floor(Math.random() * 190)
}

function waitForExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      resolve()
    }, ms)
    child.once('exit', () => {
      clearTimeout(t)
      resolve()
    })
  })
}

async function waitUntil(check: () => boolean, ms: number, what: string, log: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 150))
  }
  throw new Error(`${what} did not come up within ${ms} ms:\n${log()}`)
}

/** Start NSD and Unbound with the given zones. Always call stop(), also on failure paths. */
export async function startDnsLab(opts: DnsLabOptions): Promise<DnsLab> {
  requireTools()
  for (const z of opts.zones) {
    if (!/^([a-z0-9-]+\.)+test$/.test(z.name)) throw new Error(`lab zones live below "test.": ${z.name}`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'stp-dnslab-'))
  const children: ChildProcess[] = []
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    for (const c of children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGTERM')
        } catch {
          // already gone
        }
      }
    }
    await Promise.all(children.map((c) => waitForExit(c, 3000)))
    process.removeListener('exit', onExit)
    rmSync(dir, { recursive: true, force: true })
  }
  const onExit = () => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) c.kill('SIGKILL')
  }
  process.on('exit', onExit)

  try {
    for (let tries = 0; ; tries++) {
      const net = freeNet()
      const port = opts.port ?? 20000 + Math.floor(Math.random() * 20000)
      const auth = `127.0.${net}.1`
      const res = `127.0.${net}.2`
      // zones: children first (their DS goes into the parent)
      const parent = [...soa('test'), `ns IN A ${auth}`, ...(opts.parentRecords ?? [])]
      const zoneFiles: Array<[string, string]> = []
      for (const z of opts.zones) {
        const body = [...soa(z.name), ...z.records]
        parent.push(`${z.name}. IN NS ns.test.`)
        if ((z.dnssec ?? 'signed') === 'unsigned') {
          writeFileSync(join(dir, `${z.name}.zone`), body.join('\n') + '\n')
          zoneFiles.push([z.name, `${z.name}.zone`])
        } else {
          parent.push(signZone(dir, z.name, body, z.dnssec === 'expired' ? 'expired' : 'valid'))
          zoneFiles.push([z.name, `${z.name}.zone.signed`])
        }
      }
      const trustAnchor = signZone(dir, 'test', parent, 'valid')
      zoneFiles.unshift(['test', 'test.zone.signed'])

      writeFileSync(
        join(dir, 'nsd.conf'),
        [
          'server:',
          `  ip-address: ${auth}@${port}`,
          '  do-ip6: no',
          '  username: ""',
          '  chroot: ""',
          `  zonesdir: "${dir}"`,
          '  database: ""',
          `  zonelistfile: "${dir}/zone.list"`,
          `  xfrdfile: "${dir}/xfrd.state"`,
          `  xfrdir: "${dir}"`,
          `  pidfile: "${dir}/nsd.pid"`,
          `  logfile: "${dir}/nsd.log"`,
          '  server-count: 1',
          '  verbosity: 1',
          'remote-control:',
          '  control-enable: no',
          ...zoneFiles.flatMap(([name, file]) => ['zone:', `  name: "${name}"`, `  zonefile: "${file}"`]),
        ].join('\n') + '\n',
      )
      writeFileSync(
        join(dir, 'unbound.conf'),
        [
          'server:',
          `  interface: ${res}@${port}`,
          '  do-ip6: no',
          '  access-control: 127.0.0.0/8 allow',
          '  username: ""',
          '  chroot: ""',
          `  directory: "${dir}"`,
          `  pidfile: "${dir}/unbound.pid"`,
          '  do-daemonize: no',
          '  use-syslog: no',
          `  logfile: ""`,
          '  verbosity: 1',
          '  val-log-level: 2',
          '  ede: yes',
          '  module-config: "validator iterator"',
          // the authoritative server is on loopback; RFC 6761 makes "test." a local zone by default
          '  do-not-query-localhost: no',
          '  local-zone: "test." nodefault',
          '  qname-minimisation: no',
          '  prefetch: no',
          `  trust-anchor: "${trustAnchor.replace(/\s+/g, ' ')}"`,
          'stub-zone:',
          '  name: "test."',
          `  stub-addr: ${auth}@${port}`,
          // nothing leaves the loopback range: the root is "served" by the same NSD (which refuses it)
          'stub-zone:',
          '  name: "."',
          `  stub-addr: ${auth}@${port}`,
          'remote-control:',
          '  control-enable: no',
        ].join('\n') + '\n',
      )

      let nsdLog = ''
      let unboundLog = ''
      const nsd = spawn('nsd', ['-d', '-c', join(dir, 'nsd.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(nsd)
      nsd.stdout.on('data', (d) => (nsdLog += String(d)))
      nsd.stderr.on('data', (d) => (nsdLog += String(d)))
      const unbound = spawn('unbound', ['-d', '-c', join(dir, 'unbound.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(unbound)
      unbound.stdout.on('data', (d) => (unboundLog += String(d)))
      unbound.stderr.on('data', (d) => (unboundLog += String(d)))

      const dig = (args: string[]): string =>
        spawnSync('dig', [`@${res}`, '-p', String(port), '+time=2', '+tries=1', ...args], { encoding: 'utf8' }).stdout ?? ''
      const logs = () => {
        let nsdFile = ''
        try {
          nsdFile = readFileSync(join(dir, 'nsd.log'), 'utf8')
        } catch {
          // not written yet
        }
        return `--- nsd\n${nsdLog}${nsdFile}\n--- unbound\n${unboundLog}`
      }
      try {
        await waitUntil(
          () => {
            if (nsd.exitCode !== null || unbound.exitCode !== null) return true
            return (
              /status: NOERROR/.test(
                spawnSync('dig', [`@${auth}`, '-p', String(port), '+time=1', '+tries=1', 'test.', 'SOA'], { encoding: 'utf8' }).stdout ??
                  '',
              ) && /flags: [^;]*\bad\b/.test(dig(['+dnssec', 'test.', 'SOA']))
            )
          },
          15000,
          'NSD and Unbound',
          logs,
        )
        if (nsd.exitCode !== null || unbound.exitCode !== null) throw new Error(`a lab server exited:\n${logs()}`)
      } catch (e) {
        // an address collision with another lab: retry on another 127.0.N.0/24
        for (const c of children.splice(0)) {
          if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGTERM')
          await waitForExit(c, 3000)
        }
        if (tries < 3 && /already in use|could not open|can't bind|bind/i.test(logs())) continue
        throw e
      }
      return { resolverAddress: `${res}:${port}`, resolverIp: res, authoritativeIp: auth, port, dir, trustAnchor, dig, stop }
    }
  } catch (e) {
    await stop()
    throw e
  }
}
