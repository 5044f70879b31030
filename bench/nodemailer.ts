// SmtpTlsTransport vs Nodemailer's own SMTP transport (issue 12), in one run:
//  1. throughput of one 25 MB message (a streamed `raw` body of 76-byte mail-like lines, one in nine
//     starting with '.') to the same smtp-server over STARTTLS: ours at `dane` (DANE-EE verified) vs
//     Nodemailer at `requireTLS: true` (certificate not checked); goal ≥ 0.9x;
//  2. peak RSS growth of this process while ours sends that message (the receiving server runs in a
//     child process, so only the sender is measured); goal < 4 MB (streamed, not buffered);
//  3. 1,000 small messages to one destination with session reuse (`pool: true`) vs Nodemailer's
//     `pool: true`: messages per second, and the share of our time spent in policy and
//     verification (destination discovery to TCP connect, and TLS handshake to verdict, from the
//     driver's diagnostics channels); goal < 2 %.
// Run: npm run bench -- nodemailer
import { fork, type ChildProcess } from 'node:child_process'
import diagnostics_channel from 'node:diagnostics_channel'
import { cpus, loadavg } from 'node:os'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import nodemailer from 'nodemailer'
import { createTlsaRecord } from '../src/index.js'
import { createResolver } from '../src/node/index.js'
import { SmtpTlsTransport } from '../src/nodemailer/index.js'
import { startDnsServer, validatingZone } from '../test/helpers/dns-server.js'
import { makeCert } from '../test/helpers/openssl.js'

const SIZE = 25 * 1024 * 1024
const SMALL = 1000

function transports(port: number, dnsServer: string) {
  const resolver = createResolver({ servers: [dnsServer] })
  const common = { resolver, port, ehloName: 'client.bench.test', level: 'dane' as const }
  const ours = nodemailer.createTransport(new SmtpTlsTransport(common))
  const theirs = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    name: 'client.bench.test',
  })
  const send = async (t: typeof ours) => {
    const t0 = process.hrtime.bigint()
    await t.sendMail({ envelope: { from: 'a@example.org', to: ['b@bench.test'] }, raw: bigMessage() })
    return Number(process.hrtime.bigint() - t0) / 1e9
  }
  return { common, ours, theirs, send }
}

if (process.argv[2] === '--memory') {
  const [, , , who, port, dnsServer] = process.argv
  const { ours, theirs, send } = transports(Number(port), dnsServer!)
  const t = who === 'ours' ? ours : theirs
  await send(t)
  await new Promise((r) => setTimeout(r, 100))
  const base = process.memoryUsage.rss()
  let peak = base
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 2)
  await send(t)
  clearInterval(timer)
  peak = Math.max(peak, process.memoryUsage.rss())
  process.send!({ mb: (peak - base) / 1024 / 1024 })
} else if (process.argv[2] === '--sink') {
  // The receiving MTA, in its own process: drains every message.
  const { SMTPServer } = await import('smtp-server')
  const [certPem, keyPem] = JSON.parse(process.argv[3]!) as [string, string]
  const server = new SMTPServer({
    secure: false,
    cert: certPem,
    key: keyPem,
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    size: 100 * 1024 * 1024,
    onData(stream, _s, cb) {
      stream.resume()
      stream.on('end', () => cb(null, 'Ok: queued'))
    },
  })
  server.on('error', () => undefined)
  server.listen(0, '127.0.0.1', () => {
    const a = server.server.address()
    process.send!({ port: typeof a === 'object' && a ? a.port : 0 })
  })
} else {
  await main()
}

/** 25 MB of mail-like text, produced as it is read. */
function bigMessage(): Readable {
  const head = Buffer.from('From: a@example.org\r\nTo: b@bench.test\r\nSubject: big\r\n\r\n')
  const line = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 hello world\r\n')
  const dot = Buffer.from('.bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 hello world\r\n')
  const block = Buffer.concat(Array.from({ length: 900 }, (_, i) => (i % 9 === 0 ? dot : line)))
  let sent = 0
  let first = true
  return new Readable({
    read() {
      if (first) {
        first = false
        this.push(head)
      }
      if (sent >= SIZE) {
        this.push(null)
        return
      }
      sent += block.length
      this.push(block)
    },
  })
}

async function main(): Promise<void> {
  console.log(
    `node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  const cert = makeCert({ key: 'ec256', subject: '/CN=mx.bench.test', dns: ['mx.bench.test'] })
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--sink', JSON.stringify([cert.pem, cert.keyPem])], {
    execArgv: ['--import', 'tsx'],
    stdio: 'inherit',
  })
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)))
  const r = createTlsaRecord(cert.der, { usage: 3, selector: 1, matchingType: 1 })
  const dns = await startDnsServer(
    validatingZone({
      records: [
        ['bench.test', 'MX', { preference: 10, exchange: 'mx.bench.test' }],
        ['mx.bench.test', 'A', '127.0.0.1'],
        [`_${port}._tcp.mx.bench.test`, 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) }],
      ],
    }),
  )
  const { common, ours, theirs, send } = transports(port, dns.server)

  // 1. throughput: alternate, best of 3 each (other load only adds time)
  await send(ours)
  await send(theirs)
  const times = { ours: [] as number[], theirs: [] as number[] }
  for (let i = 0; i < 3; i++) {
    times.ours.push(await send(ours))
    times.theirs.push(await send(theirs))
  }
  const best = (xs: number[]) => Math.min(...xs)
  const mb = SIZE / 1024 / 1024
  const oursMbs = mb / best(times.ours)
  const theirsMbs = mb / best(times.theirs)
  console.log(`\n1. one ${mb} MB message over STARTTLS to smtp-server (best of 3)`)
  console.log(`  SmtpTlsTransport (dane, verified)       ${oursMbs.toFixed(1).padStart(7)} MB/s`)
  console.log(`  Nodemailer SMTP (requireTLS: true)      ${theirsMbs.toFixed(1).padStart(7)} MB/s`)
  console.log(`  ours / Nodemailer: ${(oursMbs / theirsMbs).toFixed(2)}x (goal ≥ 0.9x)`)

  // 2. memory, each in a fresh process with a 1 MB young generation (so that garbage waiting for the
  // scavenger does not pass for buffered data): one warm-up message, then the peak RSS growth of the next
  const growth = (who: 'ours' | 'theirs') =>
    new Promise<number>((resolve) => {
      const c = fork(fileURLToPath(import.meta.url), ['--memory', who, String(port), dns.server], {
        execArgv: ['--import', 'tsx', '--max-semi-space-size=1'],
        stdio: 'inherit',
      })
      c.once('message', (m: { mb: number }) => {
        resolve(m.mb)
        c.kill()
      })
    })
  const g = { ours: [] as number[], theirs: [] as number[] }
  for (let i = 0; i < 3; i++) {
    g.ours.push(await growth('ours'))
    g.theirs.push(await growth('theirs'))
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(`\n2. peak RSS growth while sending ${mb} MB (median of 3 processes, --max-semi-space-size=1)`)
  console.log(`  SmtpTlsTransport        ${median(g.ours).toFixed(2).padStart(6)} MB (goal < 4 MB)`)
  console.log(`  Nodemailer SMTP         ${median(g.theirs).toFixed(2).padStart(6)} MB`)

  // 3. 1,000 small messages, one session reused
  let policyNs = 0n
  let started = 0n
  let handshake = 0n
  const onConnect = () => {
    if (started) policyNs += process.hrtime.bigint() - started
    started = 0n
  }
  const onHandshake = () => (handshake = process.hrtime.bigint())
  const onVerdict = () => {
    if (handshake) policyNs += process.hrtime.bigint() - handshake
    handshake = 0n
  }
  diagnostics_channel.subscribe('smtp-tls-policy:connect', onConnect)
  diagnostics_channel.subscribe('smtp-tls-policy:handshake', onHandshake)
  diagnostics_channel.subscribe('smtp-tls-policy:verdict', onVerdict)
  const small = { from: 'a@example.org', to: 'b@bench.test', subject: 'small', text: 'hello\n'.repeat(40) }
  const pooledOurs = nodemailer.createTransport(new SmtpTlsTransport({ ...common, pool: true }))
  const pooledTheirs = nodemailer.createTransport({
    pool: true,
    maxConnections: 1,
    host: '127.0.0.1',
    port,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    name: 'client.bench.test',
  })
  const run = async (t: typeof ours, counting: boolean) => {
    const t0 = process.hrtime.bigint()
    if (counting) started = t0
    for (let i = 0; i < SMALL; i++) await t.sendMail(small)
    return Number(process.hrtime.bigint() - t0) / 1e9
  }
  const theirsS = await run(pooledTheirs, false)
  const oursS = await run(pooledOurs, true)
  console.log(`\n3. ${SMALL} small messages, one reused session`)
  console.log(`  SmtpTlsTransport (pool)   ${(SMALL / oursS).toFixed(0).padStart(6)} messages/s`)
  console.log(`  Nodemailer (pool)         ${(SMALL / theirsS).toFixed(0).padStart(6)} messages/s`)
  console.log(`  ours / Nodemailer: ${(theirsS / oursS).toFixed(2)}x`)
  console.log(`  policy and verification: ${((Number(policyNs) / 1e9 / oursS) * 100).toFixed(3)} % of the time (goal < 2 %)`)
  pooledOurs.close()
  pooledTheirs.close()
  ours.close()
  theirs.close()
  await dns.close()
  child.kill()
}
