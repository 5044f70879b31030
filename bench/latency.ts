// Issue 11 figures, against the lab's real Postfix (TLS 1.3) and a validating Unbound on port 53:
// Two servers, one Postfix lab: the lab's DANE-EE scenario as issue 11 measured it (an EC P-256 leaf,
// test/lab/dane-postfix.test.ts's mx-ee) and the same with an RSA-2048 leaf, whose signature costs
// the server about 0.35 ms of CPU per handshake on this machine.
//  1. in-process probe() of a DANE-verified destination vs a whole posttls-finger process on the
//     same destination, and vs the same probe() from a baseline revision (default: the commit before
//     the fix), interleaved, medians. Target: probe() ≤ 0.5x posttls-finger.
//  2. 200 concurrent connect() at `dane`, this tree vs the baseline, interleaved bursts: connections/s
//     (target ≥ 2x the baseline) and the longest event-loop stall at the default session bound
//     (target < 20 ms). Two more sides give context, never the verdict: this tree with a TLS session
//     cache (`tlsSessionCache`, opt-in), and `floor`, a minimal node:net + node:tls STARTTLS client
//     (no DNS, no policy, no parsing beyond a regular expression; the same ticket wait and the same
//     16 sessions at a time): what any Node client pays for these sessions on this machine, the
//     ceiling for full handshakes (only resumption goes past it). Figures are taken in steady state,
//     after warm-up bursts; the first burst of each side is printed as the cold figure. Each burst
//     also gives the CPU time per connection of this process and of the Postfix lab (master, its
//     reaped children and live smtpd processes, from /proc): unlike throughput and stalls, that does
//     not depend on what else the machine runs.
// Needs root and the lab's Debian packages (bash .ci/run installs them). Builds this tree's dist/
// and the baseline's into a temporary folder first.
// Run: npm run bench -- latency   [-- --baseline REV]
import { spawnSync } from 'node:child_process'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect, createSecureContext } from 'node:tls'
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createTlsaRecord, formatTlsaRecord } from '../src/index.js'
import type * as NodeApi from '../src/node/index.js'
import { makeCert, tempDir } from '../test/helpers/openssl.js'
import { startDnsLab } from '../test/lab/dns/lab.js'
import { posttlsFinger, startPostfixLab } from '../test/lab/postfix.js'

const ROUNDS = 30
const CONCURRENT = 200
/** bursts per side before any figure is taken (steady state), and measured bursts per side and scenario (even) */
const WARM_BURSTS = 10
const MEASURED = 6
const root = fileURLToPath(new URL('..', import.meta.url))
const argBase = process.argv.indexOf('--baseline')
/** the commit before issue 11's fix (it has issue 10's socket fix, so the baseline cannot crash) */
const BASELINE = argBase > 0 ? process.argv[argBase + 1]! : '74b0190'

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const met = (ok: boolean) => (ok ? 'MET' : 'NOT MET')
const sleep = (t: number) => new Promise((r) => setTimeout(r, t))

/** clock ticks per second of /proc/PID/stat times (USER_HZ) */
const HZ = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/**
 * CPU seconds used so far by a Postfix lab: its master (with its reaped children: cutime, cstime)
 * and every live process below it. Independent of the machine's other load, unlike throughput.
 */
function postfixCpuSeconds(configDir: string): number {
  const stats = new Map<number, { ppid: number; self: number; children: number }>()
  let master: number | undefined
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // fields after the name: state ppid … utime(14) stime(15) cutime(16) cstime(17), 1-based from pid
      stats.set(Number(d), { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) })
      if (master === undefined && stat.includes('(master)')) {
        const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')
        if (cmd.includes(configDir)) master = Number(d)
      }
    } catch {
      // a process that ended while we looked
    }
  }
  if (master === undefined) throw new Error('the Postfix lab master is not running')
  let ticks = stats.get(master)!.self + stats.get(master)!.children
  const below = new Set([master])
  for (let grew = true; grew;) {
    grew = false
    for (const [pid, st] of stats) {
      if (!below.has(pid) && below.has(st.ppid)) {
        below.add(pid)
        ticks += st.self
        grew = true
      }
    }
  }
  return ticks / HZ
}

function sh(cmd: string, args: string[], cwd = root): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

/** This tree's dist/ and the baseline revision's, each built with this tree's TypeScript. */
async function build(tmp: string): Promise<{ current: typeof NodeApi; baseline: typeof NodeApi }> {
  sh('npx', ['tsc', '-p', 'tsconfig.json'])
  const dir = join(tmp, 'baseline')
  mkdirSync(dir)
  const archive = spawnSync('git', ['archive', BASELINE, 'src', 'tsconfig.json', 'package.json'], { cwd: root })
  if (archive.status !== 0) throw new Error(`git archive ${BASELINE}: ${archive.stderr}`)
  spawnSync('tar', ['-x', '-C', dir], { input: archive.stdout })
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
  sh('npx', ['tsc', '-p', join(dir, 'tsconfig.json')], dir)
  const current = (await import(pathToFileURL(join(root, 'dist/node/index.js')).href)) as typeof NodeApi
  const baseline = (await import(pathToFileURL(join(dir, 'dist/node/index.js')).href)) as typeof NodeApi
  return { current, baseline }
}

console.log(
  `${new Date().toISOString()}: node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; baseline ${BASELINE} (${sh('git', ['log', '-1', '--format=%s', BASELINE]).trim()})`,
)
console.log('client and Postfix share these CPUs: every figure includes the server side of a loopback session')
const tmp = tempDir()
const libs = await build(tmp.dir)
/** The two servers: the EC leaf first, as issue 11 measured (the lab's DANE-EE scenario). */
const SCENARIOS = [
  { label: 'EC P-256 leaf (the lab DANE-EE scenario issue 11 measured)', key: 'ec256', address: '127.0.85.1', domain: 'latency.test' },
  { label: 'RSA-2048 leaf', key: 'rsa2048', address: '127.0.85.2', domain: 'latency-rsa.test' },
] as const
type Scenario = (typeof SCENARIOS)[number]
const certs = SCENARIOS.map((sc) => makeCert({ key: sc.key, subject: `/CN=mx.${sc.domain}`, dns: [`mx.${sc.domain}`] }))
const dns = await startDnsLab({
  port: 53,
  zones: SCENARIOS.map((sc, i) => ({
    name: sc.domain,
    records: [
      '@ MX 10 mx',
      `mx A ${sc.address}`,
      `_25._tcp.mx TLSA ${formatTlsaRecord(createTlsaRecord(certs[i]!.der, { usage: 3, selector: 1, matchingType: 1 }))}`,
    ],
  })),
})
const postfix = await startPostfixLab(
  SCENARIOS.map((sc, i) => ({ address: sc.address, certPem: certs[i]!.pem, keyPem: certs[i]!.keyPem, maxProcesses: 250 })),
  { extraMain: ['default_process_limit = 250', 'smtpd_client_connection_count_limit = 0', 'smtpd_client_connection_rate_limit = 0'] },
)

/**
 * The floor: the least any Node client does for one of these sessions. Plain node:net and node:tls,
 * the shared secure context, TCP_NODELAY, the post-TLS EHLO after the first ticket (or 20 ms), the
 * leaf read once; no DNS, no policy, replies found by a regular expression. At most 16 at a time,
 * as connect()'s default session bound.
 */
const floorContext = createSecureContext({ ca: [], minVersion: 'TLSv1.2' })
function floorSession(sc: Scenario): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: sc.address, port: 25 })
    raw.setNoDelay(true)
    raw.on('error', reject)
    let buf = ''
    let step = 0
    const onData = (d: Buffer) => {
      buf += d.toString('latin1')
      if (!/^\d{3} [^\n]*\n/m.test(buf)) return
      buf = ''
      if (step === 0) raw.write('EHLO bench.client.test\r\n')
      else if (step === 1) raw.write('STARTTLS\r\n')
      else {
        raw.removeListener('data', onData)
        const t = tlsConnect({
          socket: raw,
          secureContext: floorContext,
          servername: `mx.${sc.domain}`,
          rejectUnauthorized: false,
          checkServerIdentity: () => undefined,
        })
        t.on('error', reject)
        t.once('secureConnect', () => {
          if (!t.getPeerX509Certificate()) return reject(new Error('floor: no certificate'))
          let sent = false
          const ehlo = () => {
            if (sent) return
            sent = true
            t.write('EHLO bench.client.test\r\n')
          }
          t.once('session', () => setImmediate(ehlo))
          setTimeout(ehlo, 20)
          let reply = ''
          const onReply = (d: Buffer) => {
            reply += d.toString('latin1')
            if (!/^250 /m.test(reply)) return
            t.removeListener('data', onReply)
            resolve(t)
          }
          t.on('data', onReply)
        })
      }
      step++
    }
    raw.on('data', onData)
  })
}
async function floorBurst(sc: Scenario): Promise<PromiseSettledResult<{ socket: Socket }>[]> {
  const out: PromiseSettledResult<{ socket: Socket }>[] = []
  let next = 0
  const worker = async () => {
    while (next < CONCURRENT) {
      next++
      try {
        out.push({ status: 'fulfilled', value: { socket: await floorSession(sc) } })
      } catch (e) {
        out.push({ status: 'rejected', reason: e })
      }
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  return out
}

try {
  const resolvConf = join(tmp.dir, 'resolv.conf')
  writeFileSync(resolvConf, `nameserver ${dns.resolverIp}\noptions trust-ad\n`)
  const make = (lib: typeof NodeApi) => {
    const resolver = lib.createResolver({ servers: [dns.resolverAddress] })
    return { lib, opts: { resolver, level: 'dane' as const, ehloName: 'bench.client.test', timeoutMs: 30_000 } }
  }
  const cache = libs.current.createTlsSessionCache()
  const sides = {
    current: make(libs.current),
    cached: { lib: libs.current, opts: { ...make(libs.current).opts, tlsSessionCache: cache } },
    baseline: make(libs.baseline),
  }
  type Side = keyof typeof sides
  type BurstSide = Side | 'floor'

  // 1. Sequential, warm resolver caches.
  for (const sc of SCENARIOS) {
    const times: Record<Side | 'finger', number[]> = { current: [], cached: [], baseline: [], finger: [] }
    const once = async (side: Side) => {
      const { lib, opts } = sides[side]
      const t0 = performance.now()
      const r = await lib.probe(sc.domain, opts)
      const dt = performance.now() - t0
      if (r.outcome.status !== 'verified') throw new Error(`${side}: ${JSON.stringify(r.outcome)}`)
      return dt
    }
    const finger = () => {
      const t0 = performance.now()
      const f = posttlsFinger(sc.domain, { configDir: postfix.configDir, level: 'dane', resolvConf })
      const dt = performance.now() - t0
      if (f.trust !== 'Verified') throw new Error(`posttls-finger: ${f.output}`)
      return dt
    }
    for (let i = 0; i < 3; i++) {
      await once('current')
      await once('cached')
      await once('baseline')
      finger()
    }
    for (let i = 0; i < ROUNDS; i++) {
      times.current.push(await once('current'))
      times.cached.push(await once('cached'))
      times.baseline.push(await once('baseline'))
      times.finger.push(finger())
    }
    const unshareOnly = median(
      Array.from({ length: 9 }, () => {
        const t0 = performance.now()
        spawnSync('unshare', ['--mount', 'true'])
        return performance.now() - t0
      }),
    )
    const [cur, cached, base, fin] = [median(times.current), median(times.cached), median(times.baseline), median(times.finger)]
    console.log(`\n1. One DANE-EE probe of ${sc.domain} (Postfix, TLS 1.3, ${sc.label}), ${ROUNDS} interleaved rounds, medians`)
    console.log(`  probe(), this tree          ${cur.toFixed(2)} ms`)
    console.log(`  probe(), this tree, resumed ${cached.toFixed(2)} ms (tlsSessionCache; ${cache.stats().resumed} resumed so far)`)
    console.log(`  probe(), baseline           ${base.toFixed(2)} ms`)
    console.log(
      `  posttls-finger process      ${fin.toFixed(2)} ms (of which unshare + mount for its resolv.conf: about ${unshareOnly.toFixed(1)} ms)`,
    )
    console.log(`  this tree / posttls-finger: ${(cur / fin).toFixed(2)}x (target ≤ 0.5): ${met(cur / fin <= 0.5)}`)
    console.log(`  resumed / posttls-finger:   ${(cached / fin).toFixed(2)}x (with tlsSessionCache)`)
    console.log(`  baseline / posttls-finger:  ${(base / fin).toFixed(2)}x`)
    console.log(`  baseline / this tree:       ${(base / cur).toFixed(1)}x`)
  }

  // 2. Bursts of 200 concurrent connect() at dane, default session bound.
  async function burst(sc: Scenario, side: BurstSide) {
    const h = monitorEventLoopDelay({ resolution: 1 })
    const cpu0 = process.cpuUsage()
    const server0 = postfixCpuSeconds(postfix.configDir)
    h.enable()
    const t0 = performance.now()
    const rs =
      side === 'floor'
        ? await floorBurst(sc)
        : await Promise.allSettled(Array.from({ length: CONCURRENT }, () => sides[side].lib.connect(sc.domain, sides[side].opts)))
    const wall = performance.now() - t0
    h.disable()
    const ok = rs.filter((r) => r.status === 'fulfilled').map((r) => r.value)
    await Promise.all(
      ok.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              c.socket.destroy()
              resolve()
            }, 5000)
            c.socket.on('error', () => undefined)
            c.socket.on('data', () => undefined)
            c.socket.once('close', () => {
              clearTimeout(t)
              resolve()
            })
            c.socket.end('QUIT\r\n')
          }),
      ),
    )
    const cpu = process.cpuUsage(cpu0)
    const serverMs = (postfixCpuSeconds(postfix.configDir) - server0) * 1000
    return {
      side,
      ok: ok.length,
      perSec: (ok.length / wall) * 1000,
      maxStallMs: h.max / 1e6,
      // CPU per connection, client (this process) and Postfix: what the throughput is made of
      clientMs: (cpu.user + cpu.system) / 1000 / CONCURRENT,
      serverMs: serverMs / CONCURRENT,
    }
  }
  // Steady state first. V8 optimises a function once it has run enough, and the library has many
  // that run a few times per connection: TurboFan was still compiling some of them 1,800 connections
  // in (100-240 ms of compile time per 200 connections until then, on CPUs Postfix shares), where a
  // 40-line client is compiled after a few dozen. An MTA runs for days; the figures below are taken
  // after WARM_BURSTS bursts per side, and the first burst of each side is printed as the cold figure.
  // One untimed burst first: Postfix starts its smtpd processes on demand, and the first 200 sessions
  // would otherwise time its process spawning rather than any client.
  await burst(SCENARIOS[0], 'floor')
  const cold = new Map<BurstSide, Awaited<ReturnType<typeof burst>>>()
  for (let i = 0; i < WARM_BURSTS; i++) {
    for (const side of ['current', 'cached', 'baseline', 'floor'] as const) {
      const b = await burst(SCENARIOS[i % SCENARIOS.length]!, side)
      if (i === 0) cold.set(side, b)
    }
  }
  console.log(
    `\n2. Cold: the first burst of each side after one untimed burst that starts Postfix's smtpd processes (this tree's JIT is coldest for \`current\`, which runs first; \`cached\` runs the same code), then ${WARM_BURSTS} warm-up bursts per side`,
  )
  for (const [side, b] of cold) {
    console.log(
      `  ${side.padEnd(8)} ${b.ok}/${CONCURRENT} ok, ${b.perSec.toFixed(0)} connections/s, CPU per connection: client ${b.clientMs.toFixed(2)} ms`,
    )
  }
  for (const sc of SCENARIOS) {
    const bursts: Awaited<ReturnType<typeof burst>>[] = []
    const resumedBefore = cache.stats().resumed
    const order = ['current', 'cached', 'baseline', 'floor', 'floor', 'baseline', 'cached', 'current'] as const
    for (let r = 0; r < MEASURED / 2; r++) {
      for (const side of order) {
        await sleep(200)
        bursts.push(await burst(sc, side))
      }
    }
    console.log(
      `\n2. ${CONCURRENT} concurrent connect() at dane to ${sc.domain} (${sc.label}), default maxConcurrentSessions (16), steady state, ${MEASURED} bursts each, interleaved` +
        ' (cached: this tree with tlsSessionCache; floor: the minimal node:tls client)',
    )
    for (const b of bursts) {
      console.log(
        `  ${b.side.padEnd(8)} ${b.ok}/${CONCURRENT} ok, ${b.perSec.toFixed(0)} connections/s, longest event-loop stall ${b.maxStallMs.toFixed(1)} ms, ` +
          `CPU per connection: client ${b.clientMs.toFixed(2)} ms, Postfix ${b.serverMs.toFixed(2)} ms`,
      )
    }
    const rate = (s: BurstSide) => median(bursts.filter((b) => b.side === s).map((b) => b.perSec))
    for (const side of ['baseline', 'current', 'cached', 'floor'] as const) {
      const of = bursts.filter((b) => b.side === side)
      const c = { client: median(of.map((b) => b.clientMs)), server: median(of.map((b) => b.serverMs)) }
      console.log(
        `  ${side.padEnd(8)} (medians): ${rate(side).toFixed(0)} connections/s; CPU per connection: client ${c.client.toFixed(2)} ms + Postfix ${c.server.toFixed(2)} ms = ` +
          `${(c.client + c.server).toFixed(2)} ms (on ${cpus().length} idle CPUs at most ${((cpus().length * 1000) / (c.client + c.server)).toFixed(0)} connections/s)`,
      )
    }
    const stall = (side: BurstSide) => Math.max(...bursts.filter((b) => b.side === side).map((b) => b.maxStallMs))
    const ratio = (side: BurstSide) => rate(side) / rate('baseline')
    console.log(`  throughput this tree / baseline: ${ratio('current').toFixed(2)}x (target ≥ 2): ${met(ratio('current') >= 2)}`)
    console.log(`  longest stall, this tree: ${stall('current').toFixed(1)} ms (target < 20): ${met(stall('current') < 20)}`)
    console.log(
      `  floor / baseline: ${ratio('floor').toFixed(2)}x, this tree / floor: ${(rate('current') / rate('floor')).toFixed(2)}; ` +
        `longest stall of the floor ${stall('floor').toFixed(1)} ms`,
    )
    console.log(
      `  with tlsSessionCache: throughput / baseline ${ratio('cached').toFixed(2)}x; longest stall ${stall('cached').toFixed(1)} ms; ` +
        `${cache.stats().resumed - resumedBefore} of ${MEASURED * CONCURRENT} connections resumed`,
    )
  }
} finally {
  await postfix.stop()
  await dns.stop()
  tmp.done()
}
