// Issue 12 figures: CPU per small message transaction through SmtpTransaction (no I/O), and the body
// path's throughput (CRLF normalisation + dot-stuffing, chunk by chunk) against a naive
// toString().replace(/\n\./g, '\n..') of the same bytes. Target: a few µs per small transaction.
import { parseEhloCapabilities, SmtpTransaction, type SmtpTransactionInput } from '../src/index.js'
import { BodyEncoder } from '../src/smtp/body.js'
import { measure, report } from './harness.js'

const te = new TextEncoder()
const caps = parseEhloCapabilities([
  'mx.bench.test',
  'PIPELINING',
  'SIZE 10240000',
  'ENHANCEDSTATUSCODES',
  '8BITMIME',
  'DSN',
  'SMTPUTF8',
  'REQUIRETLS',
])
const small = te.encode(
  'From: a@example.org\r\nTo: b@example.com\r\nSubject: hello\r\nMessage-ID: <1@example.org>\r\n\r\n' +
    'Hello,\r\n.this line starts with a dot\r\n' +
    'x'.repeat(300) +
    '\r\n',
)
const inputs: SmtpTransactionInput[] = [
  { type: 'mail', envelope: { from: 'a@example.org', to: ['b@example.com'], size: small.length, body: '8BITMIME' } },
  { type: 'data', bytes: te.encode('250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n') },
  { type: 'data', bytes: te.encode('354 End data with <CR><LF>.<CR><LF>\r\n') },
  { type: 'body', bytes: small },
  { type: 'bodyEnd' },
  { type: 'data', bytes: te.encode('250 2.0.0 Ok: queued as 4ABC123\r\n') },
  { type: 'quit' },
]

function transaction(): number {
  const tx = new SmtpTransaction({ capabilities: caps, secure: true, verified: true, servername: 'mx.bench.test' })
  let accepted = 0
  for (const i of inputs) for (const a of tx.handle(i)) if (a.type === 'done') accepted = a.result.accepted.length
  if (accepted !== 1) throw new Error('the transaction did not deliver')
  return accepted
}

// 4 MiB of mail-like text: 76-byte lines, one in nine starting with ".", fed in 64 KiB chunks.
const line = (i: number) =>
  (i % 9 === 0 ? '.' : '') + 'The quick brown fox jumps over the lazy dog, line ' + String(i).padStart(8, '0') + ' xyz\r\n'
let text = ''
for (let i = 0; text.length < 4 << 20; i++) text += line(i)
const bodyBytes = te.encode(text)
const CHUNK = 64 << 10
const chunks: Uint8Array[] = []
for (let o = 0; o < bodyBytes.length; o += CHUNK) chunks.push(bodyBytes.subarray(o, o + CHUNK))
const mb = bodyBytes.length / 1e6

function stuffChunks(): number {
  const enc = new BodyEncoder(true)
  let n = 0
  for (const c of chunks) {
    const e = enc.encode(c, 0, false)
    n += e.end - e.start
  }
  const e = enc.encode(new Uint8Array(0), 0, true)
  return n + e.end - e.start
}

/** The whole body through the machine's body inputs (the driver's view). */
function machineBody(): number {
  const tx = new SmtpTransaction({ capabilities: caps, secure: true })
  tx.handle({ type: 'mail', envelope: { from: 'a@example.org', to: ['b@example.com'] } })
  tx.handle({ type: 'data', bytes: te.encode('250 ok\r\n250 ok\r\n') })
  tx.handle({ type: 'data', bytes: te.encode('354 go\r\n') })
  let n = 0
  for (const c of chunks) for (const a of tx.handle({ type: 'body', bytes: c })) if (a.type === 'send') n += a.bytes.length
  for (const a of tx.handle({ type: 'bodyEnd' })) if (a.type === 'send') n += a.bytes.length
  return n
}

/** What a naive client does: decode each chunk, regex-replace, encode (no CRLF normalisation, wrong at chunk edges). */
function naive(): number {
  let n = 0
  for (const c of chunks)
    n += Buffer.from(Buffer.from(c.buffer, c.byteOffset, c.length).toString('latin1').replace(/\n\./g, '\n..'), 'latin1').length
  return n
}

/** Best of `rounds` interleaved passes of each function (ms per pass): robust on a shared, loaded machine. */
function bestOf(fns: Record<string, () => number>, rounds: number): Record<string, number> {
  const best: Record<string, number> = {}
  for (const f of Object.values(fns)) for (let i = 0; i < 3; i++) f() // warm up
  for (let r = 0; r < rounds; r++) {
    for (const [name, f] of Object.entries(fns)) {
      const t0 = process.hrtime.bigint()
      f()
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      best[name] = Math.min(best[name] ?? Infinity, ms)
    }
  }
  return best
}

export function benchTransaction(): { cpuUsPerTransaction: number; encoderMBps: number; naiveMBps: number; vsNaive: number } {
  console.log(`Small message transaction: ${inputs.length} inputs, ${small.length}-byte body, PIPELINING`)
  const tx = measure('SmtpTransaction, MAIL+RCPT+DATA+body+QUIT', transaction)
  report([tx])
  // CPU time (user + system) per transaction: the best of 10 batches of 2000.
  let cpuUs = Infinity
  for (let b = 0; b < 10; b++) {
    const cpu0 = process.cpuUsage()
    for (let i = 0; i < 2000; i++) transaction()
    const cpu = process.cpuUsage(cpu0)
    cpuUs = Math.min(cpuUs, (cpu.user + cpu.system) / 2000)
  }
  console.log(`  CPU per small transaction: ${cpuUs.toFixed(3)} µs (best of 10 batches; target: a few µs)`)

  console.log(`\nBody path: ${mb.toFixed(1)} MB of 76-byte lines (1 in 9 starts with "."), ${chunks.length} chunks of 64 KiB`)
  const best = bestOf({ encoder: stuffChunks, machine: machineBody, naive }, 25)
  const mbps = (ms: number) => mb / (ms / 1e3)
  const row = (label: string, ms: number) =>
    console.log(`  ${label.padEnd(52)} ${ms.toFixed(2).padStart(8)} ms  ${mbps(ms).toFixed(0).padStart(5)} MB/s`)
  row('BodyEncoder (CRLF normalisation + dot-stuffing)', best.encoder as number)
  row('SmtpTransaction body inputs (send actions)', best.machine as number)
  row("naive toString().replace(/\\n\\./g, '\\n..') per chunk", best.naive as number)
  const r = (best.naive as number) / (best.encoder as number)
  console.log(`  BodyEncoder speed / naive speed: ${r.toFixed(2)}x (best of 25 interleaved passes each)`)
  return { cpuUsPerTransaction: cpuUs, encoderMBps: mbps(best.encoder as number), naiveMBps: mbps(best.naive as number), vsNaive: r }
}

if (import.meta.url === `file://${process.argv[1]}`) benchTransaction()
