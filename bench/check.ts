// Issue 16 figure, against the lab's real Postfix smtpd (127.0.101.1-3 and ::1, port 2525) behind NSD +
// a validating Unbound: check() of a domain with 2 MX × 2 addresses versus the slowest single probe,
// i.e. check() of a domain whose one MX host has one of those four addresses (the same DNS, MTA-STS,
// TLS-RPT and session work for one address). The sessions run at once, so the whole check should
// cost about one probe: target ≤ 1.3x the slowest single probe. The sum of the singles is what
// checking the addresses one after the other would cost. Rounds are interleaved (the order rotates),
// each run with a fresh resolver (Unbound's cache is warm, ours is not); medians.
// Twice: straight to Postfix over loopback, where a session is CPU (the handshakes of one check share
// one event loop, and Postfix's smtpd processes the same 2 CPUs), and through a proxy in a child
// process that delays every segment 10 ms each way (a 20 ms round trip, a near mail server), where a
// session is mostly waiting, as on the Internet.
// Needs root and the lab's Debian packages (bash .ci/run installs them). Run: npm run bench -- check
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { cpus, loadavg } from 'node:os'
import { createTlsaRecord, formatTlsaRecord } from '../src/index.js'
import { check, createResolver, probe } from '../src/node/index.js'
import { makeCert, type Issued } from '../test/helpers/openssl.js'
import { startDnsLab } from '../test/lab/dns/lab.js'
import { startPostfixLab } from '../test/lab/postfix.js'

const PORT = 2525
/** The same servers behind a proxy that delays every segment by WAN_DELAY_MS each way. */
const WAN_PORT = 2526
const WAN_DELAY_MS = 10
const ROUNDS = Number(process.env['CHECK_ROUNDS'] ?? 30)
const WAN_ROUNDS = Number(process.env['CHECK_WAN_ROUNDS'] ?? 12)
const ADDRESSES = ['127.0.101.1', '::1', '127.0.101.2', '127.0.101.3'] as const
const SINGLES = ADDRESSES.map((a, i) => ({ address: a, domain: `single${i + 1}.test` }))

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6

console.log(
  `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
// One certificate per MX host, as usual (its IPv4 and IPv6 listeners share it); each single-address
// domain's host uses the certificate of the host that address belongs to.
const certFor = (host: 'mx1' | 'mx2') =>
  makeCert({ key: 'ec256', subject: `/CN=${host}.bench.test`, dns: [`${host}.bench.test`, ...SINGLES.map((s) => `mx.${s.domain}`)] })
const certs = { mx1: certFor('mx1'), mx2: certFor('mx2') }
const hostOf = (i: number) => (i < 2 ? 'mx1' : 'mx2')
const next = makeCert({ key: 'ec256', subject: '/CN=next.bench.test' })
const ee = (der: Uint8Array) => formatTlsaRecord(createTlsaRecord(der, { usage: 3, selector: 1, matchingType: 1 }))
const rr = (host: string, cert: Issued) =>
  [PORT, WAN_PORT].flatMap((p) => [`_${p}._tcp.${host} TLSA ${ee(cert.der)}`, `_${p}._tcp.${host} TLSA ${ee(next.der)}`])
const addr = (host: string, a: string) => `${host} ${a.includes(':') ? 'AAAA' : 'A'} ${a}`
const dns = await startDnsLab({
  zones: [
    {
      name: 'bench.test',
      records: [
        '@ MX 10 mx1',
        '@ MX 20 mx2',
        addr('mx1', ADDRESSES[0]),
        addr('mx1', ADDRESSES[1]),
        addr('mx2', ADDRESSES[2]),
        addr('mx2', ADDRESSES[3]),
        ...rr('mx1', certs.mx1),
        ...rr('mx2', certs.mx2),
        '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@bench.test"',
      ],
    },
    ...SINGLES.map((s, i) => ({
      name: s.domain,
      records: [
        '@ MX 10 mx',
        addr('mx', s.address),
        ...rr('mx', certs[hostOf(i)]),
        `_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@${s.domain}"`,
      ],
    })),
  ],
})
const postfix = await startPostfixLab(
  ADDRESSES.map((address, i) => ({ address, port: PORT, certPem: certs[hostOf(i)].pem, keyPem: certs[hostOf(i)].keyPem })),
)
const proxy = await startDelayProxy(
  ADDRESSES.map((host) => ({ listen: { host, port: WAN_PORT }, target: { host, port: PORT } })),
  WAN_DELAY_MS,
)
try {
  await measure(PORT, ROUNDS, 'loopback (no added latency)')
  await measure(WAN_PORT, WAN_ROUNDS, `a ${2 * WAN_DELAY_MS} ms round trip (delay proxy)`)
} finally {
  proxy.kill('SIGTERM')
  await postfix.stop()
  await dns.stop()
}

async function measure(port: number, rounds: number, label: string): Promise<void> {
  const opts = () => ({
    resolver: createResolver({ servers: [dns.resolverAddress] }),
    port,
    ehloName: 'bench.client.test',
    timeoutMs: 10_000,
  })
  const runCheck = async (domain: string, sessions: number) => {
    const t0 = process.hrtime.bigint()
    const r = await check(domain, opts())
    const t = ms(t0)
    const n = r.hosts.reduce((k, h) => k + h.addresses.length, 0)
    if (r.summary.errors + r.summary.warnings > 0 || n !== sessions)
      throw new Error(`${domain}: ${r.summary.errors} errors, ${r.summary.warnings} warnings, ${n} addresses (lab broken?)`)
    return t
  }
  const runProbe = async (domain: string) => {
    const t0 = process.hrtime.bigint()
    const r = await probe(domain, { ...opts(), level: 'dane' })
    const t = ms(t0)
    if (r.outcome.status !== 'verified') throw new Error(`probe ${domain}: ${r.outcome.status}`)
    return t
  }
  // Warm-up: Postfix starts its smtpd processes, Unbound fills its cache.
  for (let i = 0; i < 3; i++) {
    await runCheck('bench.test', 4)
    for (const s of SINGLES) await runCheck(s.domain, 1)
  }
  const whole: number[] = []
  const single: number[][] = SINGLES.map(() => [])
  const probes: number[][] = SINGLES.map(() => [])
  for (let round = 0; round < rounds; round++) {
    // Rotate the order, so that no one measurement always follows the same other one.
    const jobs: (() => Promise<void>)[] = [
      async () => void whole.push(await runCheck('bench.test', 4)),
      ...SINGLES.map((s, i) => async () => void single[i]!.push(await runCheck(s.domain, 1))),
      ...SINGLES.map((s, i) => async () => void probes[i]!.push(await runProbe(s.domain))),
    ]
    for (let k = 0; k < jobs.length; k++) await jobs[(k + round) % jobs.length]!()
  }
  const singles = single.map(median)
  const slowest = Math.max(...singles)
  const wholeMedian = median(whole)
  console.log(`\n${label}: check() of 2 MX × 2 addresses vs one address alone, port ${port}, ${rounds} interleaved rounds, medians (ms)`)
  console.log(
    `  check bench.test (mx1: ${ADDRESSES[0]}, ${ADDRESSES[1]}; mx2: ${ADDRESSES[2]}, ${ADDRESSES[3]})  ${wholeMedian.toFixed(1)}`,
  )
  SINGLES.forEach((s, i) =>
    console.log(
      `  check ${s.domain} (${s.address.padEnd(11)})   ${singles[i]!.toFixed(1)}    probe() at dane ${median(probes[i]!).toFixed(1)}`,
    ),
  )
  console.log(
    `  slowest single check: ${slowest.toFixed(1)}; the four one after the other: ${singles.reduce((a, b) => a + b, 0).toFixed(1)}`,
  )
  const ratio = wholeMedian / slowest
  console.log(`  ratio 2×2 / slowest single: ${ratio.toFixed(2)}x (target ≤ 1.3x: ${ratio <= 1.3 ? 'MET' : 'NOT MET'})`)
  console.log(
    `  ratio 2×2 / slowest probe(): ${(wholeMedian / Math.max(...probes.map(median))).toFixed(2)}x (probe() stops at the first address that passes and skips MTA-STS and TLS-RPT)`,
  )
}

/**
 * A TCP proxy in a child process (so that its work is not on our event loop) that passes every
 * segment on after `delayMs`, both ways, and the end of each direction after the data. Killed by its PID.
 */
async function startDelayProxy(
  pairs: { listen: { host: string; port: number }; target: { host: string; port: number } }[],
  delayMs: number,
) {
  const code = `
    const net = require('node:net')
    const [pairs, delay] = JSON.parse(process.argv[1])
    let listening = 0
    for (const p of pairs) {
      const server = net.createServer((client) => {
        const upstream = net.connect(p.target)
        const pipe = (from, to) => {
          from.on('data', (d) => setTimeout(() => to.destroyed || to.write(d), delay))
          from.on('end', () => setTimeout(() => to.destroyed || to.end(), delay))
          from.on('close', () => setTimeout(() => to.destroy(), delay + 5))
          from.on('error', () => {})
        }
        pipe(client, upstream)
        pipe(upstream, client)
      })
      server.on('error', (e) => { console.error(e.message); process.exit(1) })
      server.listen(p.listen.port, p.listen.host, () => { if (++listening === pairs.length) console.log('ready') })
    }`
  const child = spawn(process.execPath, ['-e', code, JSON.stringify([pairs, delayMs])], { stdio: ['ignore', 'pipe', 'inherit'] })
  child.on('error', () => {})
  const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => ['exit'])])) as [Buffer | string]
  if (String(line).trim() !== 'ready') throw new Error('the delay proxy did not start')
  return child
}
