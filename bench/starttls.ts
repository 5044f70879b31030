// Issue 5 figure: one full greeting → EHLO → STARTTLS → TLS → EHLO exchange through StartTlsClient
// (no I/O), against parsing the same bytes with a naive split('\r\n') baseline.
// Target: at most 30 µs of CPU per exchange.
import { ReplyParser, StartTlsClient, type StartTlsInput } from '../src/index.js'
import { measure, ratio, report } from './harness.js'

const te = new TextEncoder()
const turns = [
  '220 mx.bench.test ESMTP Postfix (Debian/GNU)\r\n',
  '250-mx.bench.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n' +
    '250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n',
  '220 2.0.0 Ready to start TLS\r\n',
  '250-mx.bench.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n' +
    '250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-REQUIRETLS\r\n250 CHUNKING\r\n',
].map((s) => te.encode(s))
const inputs: StartTlsInput[] = [
  { type: 'data', bytes: turns[0]! },
  { type: 'data', bytes: turns[1]! },
  { type: 'data', bytes: turns[2]! },
  { type: 'tlsEstablished' },
  { type: 'data', bytes: turns[3]! },
]

function exchange(): boolean {
  const c = new StartTlsClient({ ehloName: 'client.bench.test', requireTls: true, servername: 'mx.bench.test' })
  let ready = false
  for (const i of inputs) for (const a of c.handle(i)) if (a.type === 'ready') ready = a.secure
  if (!ready) throw new Error('the exchange did not end in a secure ready')
  return ready
}

/** The reply parser alone over the same bytes (bounds, code checks, enhanced status, latin1 lines). */
function parserOnly(): number {
  const p = new ReplyParser()
  let codes = 0
  for (const t of turns) {
    p.push(t)
    for (let r = p.next(); r; r = p.next()) codes += r.code + r.lines.length
  }
  return codes
}

const td = new TextDecoder()
/** What a naive client does: decode, split on CRLF, read the code of each line, nothing else. */
function naive(): number {
  let codes = 0
  for (const t of turns) {
    for (const line of td.decode(t).split('\r\n')) {
      if (line.length >= 3) codes += Number(line.slice(0, 3))
    }
  }
  return codes
}

export function benchStartTls(): { usPerExchange: number; cpuUsPerExchange: number; vsNaive: number } {
  const bytes = turns.reduce((n, t) => n + t.length, 0)
  console.log(`STARTTLS exchange: ${inputs.length} inputs, ${bytes} bytes from the server`)
  const machine = measure('StartTlsClient, full exchange (this library)', exchange)
  const parser = measure('ReplyParser alone, same bytes', parserOnly)
  const baseline = measure("naive split('\\r\\n') of the same bytes", naive)
  report([machine, parser, baseline])
  // CPU time (user + system) of a fixed number of exchanges, the figure the target is about.
  const n = 20000
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < n; i++) exchange()
  const cpu = process.cpuUsage(cpu0)
  const cpuUs = (cpu.user + cpu.system) / n
  console.log(`  CPU per exchange: ${cpuUs.toFixed(3)} µs (target ≤ 30)`)
  const r = ratio('StartTlsClient / naive split baseline', machine, baseline)
  ratio('ReplyParser / naive split baseline', parser, baseline)
  return { usPerExchange: machine.usPerOp, cpuUsPerExchange: cpuUs, vsNaive: r }
}

if (import.meta.url === `file://${process.argv[1]}`) benchStartTls()
