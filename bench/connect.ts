// Issue 7 figures, against real peers from the lab (Postfix smtpd, NSD + Unbound on port 53):
//  1. verification overhead of a DANE-EE probe over the same probe with verification switched off
//     (level `encrypt`: TLS required, nothing authenticated), as a share of the connection time;
//     target ≤ 3 %.
//  2. 200 concurrent connect() calls at `dane` versus `encrypt`: throughput ratio (target ≥ 0.9),
//     the longest event-loop stall (target ≤ 20 ms, perf_hooks.monitorEventLoopDelay), peak RSS.
//  3. wall time of `smtp-tls-policy probe` versus `posttls-finger` for the same DANE-EE scenario,
//     process start included.
// Needs root and the lab's Debian packages (bash .ci/run installs them). Run: npm run bench -- connect
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createTlsaRecord, formatTlsaRecord, verifyDane } from '../src/index.js'
import { connect, createResolver, probe, type ConnectOptions } from '../src/node/index.js'
import { makeCert, tempDir } from '../test/helpers/openssl.js'
import { startDnsLab } from '../test/lab/dns/lab.js'
import { posttlsFinger, startPostfixLab } from '../test/lab/postfix.js'
import { measure } from './harness.js'

const ADDRESS = '127.0.101.1'
const CONCURRENT = 200

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6

console.log(
  `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
const leaf = makeCert({ key: 'rsa2048', subject: '/CN=mx.bench.test', dns: ['mx.bench.test'] })
const rr = formatTlsaRecord(createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 }))
const dns = await startDnsLab({
  port: 53,
  zones: [{ name: 'bench.test', records: ['@ MX 10 mx', `mx A ${ADDRESS}`, `_25._tcp.mx TLSA ${rr}`] }],
})
const postfix = await startPostfixLab([{ address: ADDRESS, certPem: leaf.pem, keyPem: leaf.keyPem, maxProcesses: 250 }], {
  extraMain: ['default_process_limit = 250', 'smtpd_client_connection_count_limit = 0', 'smtpd_client_connection_rate_limit = 0'],
})
const tmp = tempDir()
try {
  const resolver = createResolver({ servers: [dns.resolverAddress] })
  const base: ConnectOptions = { resolver, ehloName: 'bench.client.test', timeoutMs: 30_000 }

  // 1. Sequential probes, interleaved, warm DNS cache.
  for (let i = 0; i < 5; i++) {
    await probe('bench.test', { ...base, level: 'dane' })
    await probe('bench.test', { ...base, level: 'encrypt' })
  }
  const times: Record<'dane' | 'encrypt', number[]> = { dane: [], encrypt: [] }
  for (let i = 0; i < 60; i++) {
    for (const level of i % 2 === 0 ? (['dane', 'encrypt'] as const) : (['encrypt', 'dane'] as const)) {
      const t0 = process.hrtime.bigint()
      const r = await probe('bench.test', { ...base, level })
      times[level].push(ms(t0))
      const want = level === 'dane' ? 'verified' : 'untrusted'
      if (r.outcome.status !== want) throw new Error(`${level}: ${r.outcome.status}, expected ${want}`)
    }
  }
  const dane = median(times.dane)
  const enc = median(times.encrypt)
  const verify = measure('verifyDane 3 1 1 on the served leaf', () =>
    verifyDane({ records: [createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 })], chain: [leaf.der], names: [] }),
  )
  console.log('\n1. DANE-EE probe vs the same probe with verification off (level encrypt), 60 each, interleaved, warm DNS cache')
  console.log(`  probe at dane      median ${dane.toFixed(2)} ms`)
  console.log(`  probe at encrypt   median ${enc.toFixed(2)} ms`)
  console.log(
    `  wall-time difference: ${(dane - enc).toFixed(3)} ms = ${(((dane - enc) / enc) * 100).toFixed(2)} % of the connection (target ≤ 3 %; noise of a loopback handshake is of the same order)`,
  )
  console.log(
    `  verification CPU (verifyDane, ${verify.usPerOp.toFixed(2)} µs) = ${((verify.usPerOp / 1000 / enc) * 100).toFixed(3)} % of the connection`,
  )

  // 2. 200 concurrent connect() calls.
  async function burst(level: 'dane' | 'encrypt') {
    const h = monitorEventLoopDelay({ resolution: 5 })
    h.enable()
    const t0 = process.hrtime.bigint()
    const results = await Promise.allSettled(Array.from({ length: CONCURRENT }, () => connect('bench.test', { ...base, level })))
    const wall = ms(t0)
    h.disable()
    let ok = 0
    for (const r of results) {
      if (r.status === 'fulfilled') {
        ok++
        r.value.socket.end('QUIT\r\n')
        r.value.socket.destroy()
      }
    }
    return { level, ok, wall, perSec: (ok / wall) * 1000, maxStallMs: h.max / 1e6, p99StallMs: h.percentile(99) / 1e6 }
  }
  // warm-up: Postfix starts its smtpd processes on the first burst
  await burst('encrypt')
  const bursts = []
  for (const level of ['encrypt', 'dane', 'encrypt', 'dane'] as const) {
    bursts.push(await burst(level))
    await new Promise((r) => setTimeout(r, 500))
  }
  console.log(`\n2. ${CONCURRENT} concurrent connect() calls to Postfix on ${ADDRESS}`)
  for (const b of bursts) {
    console.log(
      `  ${b.level.padEnd(8)} ${b.ok}/${CONCURRENT} ok in ${b.wall.toFixed(0)} ms = ${b.perSec.toFixed(0)} connections/s; event-loop delay max ${b.maxStallMs.toFixed(1)} ms, p99 ${b.p99StallMs.toFixed(1)} ms`,
    )
  }
  const daneRate = median(bursts.filter((b) => b.level === 'dane').map((b) => b.perSec))
  const encRate = median(bursts.filter((b) => b.level === 'encrypt').map((b) => b.perSec))
  console.log(`  throughput dane / encrypt: ${(daneRate / encRate).toFixed(2)}x (target ≥ 0.9)`)
  console.log(`  longest event-loop stall: ${Math.max(...bursts.map((b) => b.maxStallMs)).toFixed(1)} ms (target ≤ 20 ms)`)
  console.log(`  peak RSS of this process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)

  // 3. Whole-process wall time: our CLI versus posttls-finger, same scenario, same resolver.
  const resolvConf = join(tmp.dir, 'resolv.conf')
  writeFileSync(resolvConf, `nameserver ${dns.resolverIp}\noptions trust-ad\n`)
  const bin = new URL('../bin/smtp-tls-policy.js', import.meta.url).pathname
  const ours: number[] = []
  const theirs: number[] = []
  for (let i = 0; i < 10; i++) {
    let t0 = process.hrtime.bigint()
    const p = spawnSync(process.execPath, [bin, 'probe', 'bench.test', '--level', 'dane', '--resolver', dns.resolverAddress], {
      encoding: 'utf8',
    })
    ours.push(ms(t0))
    if (p.status !== 0) throw new Error(`our probe failed (exit ${p.status}): ${p.stdout}${p.stderr} (run npm run build first)`)
    t0 = process.hrtime.bigint()
    const f = posttlsFinger('bench.test', { configDir: postfix.configDir, level: 'dane', resolvConf })
    theirs.push(ms(t0))
    if (f.trust !== 'Verified') throw new Error(`posttls-finger: ${f.output}`)
  }
  const nodeStart = median(
    Array.from({ length: 5 }, () => {
      const t0 = process.hrtime.bigint()
      spawnSync(process.execPath, ['-e', '0'])
      return ms(t0)
    }),
  )
  console.log('\n3. Wall time of one DANE-EE probe, process start included (10 runs each, medians)')
  console.log(`  smtp-tls-policy probe   ${median(ours).toFixed(1)} ms   (of which an empty node process: ${nodeStart.toFixed(1)} ms)`)
  console.log(`  posttls-finger          ${median(theirs).toFixed(1)} ms   (includes unshare + mount for its private resolv.conf)`)
  console.log(`  ratio ours / posttls-finger: ${(median(ours) / median(theirs)).toFixed(2)}x`)
} finally {
  await postfix.stop()
  await dns.stop()
  tmp.done()
}
