// Issue 11: after a TLS 1.3 handshake, Postfix's smtpd sends its session tickets, then holds its
// reply to our EHLO (Nagle) until the ticket segment is acknowledged. When our EHLO left in the same
// segment as our Finished, the client had nothing left to send, so Linux delayed that ACK by 40 ms on
// every connection. This test watches the segments on the loopback interface (tcpdump) during a
// probe() of the lab's Postfix and asserts the mechanism, not a time: the segment just before the
// server's EHLO reply must be our EHLO (carrying data), acknowledging every byte the server had sent,
// never a bare ACK that the server had to wait for.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { createResolver, probe } from '../../src/node/index.js'
import { makeCert } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const ADDRESS = '127.0.84.1'
const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.latency.test', dns: ['mx.latency.test'] })
let dns: DnsLab
let postfix: PostfixLab

before(async () => {
  if (spawnSync('sh', ['-c', 'command -v tcpdump']).status !== 0) {
    throw new Error('tcpdump is not installed: run `bash .ci/run` (or apt-get install tcpdump); the lab never skips')
  }
  const rr = formatTlsaRecord(createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 }))
  dns = await startDnsLab({ zones: [{ name: 'latency.test', records: ['@ MX 10 mx', `mx A ${ADDRESS}`, `_25._tcp.mx TLSA ${rr}`] }] })
  postfix = await startPostfixLab([{ address: ADDRESS, certPem: leaf.pem, keyPem: leaf.keyPem }])
})
after(async () => {
  await postfix?.stop()
  await dns?.stop()
})

interface Segment {
  fromClient: boolean
  flags: string
  /** first sequence number of the payload and its length (absolute, tcpdump -S) */
  seq: number
  length: number
  ack?: number
}

/** One line of `tcpdump -n -S -l` for IPv4 TCP, e.g. `IP 127.0.0.1.4242 > 127.0.84.1.25: Flags [P.], seq 1:116, ack 9, …, length 115`. */
function parseLine(line: string): Segment | undefined {
  const m = /IP (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\](?:, seq (\d+)(?::\d+)?)?(?:, ack (\d+))?.*length (\d+)/.exec(line)
  if (!m) return undefined
  return {
    fromClient: m[4] === '25',
    flags: m[5]!,
    seq: Number(m[6] ?? 0),
    length: Number(m[8]),
    ...(m[7] !== undefined ? { ack: Number(m[7]) } : {}),
  }
}

async function capture(during: () => Promise<void>): Promise<Segment[]> {
  const td = spawn('tcpdump', ['-i', 'lo', '-n', '-S', '-l', '-U', `host ${ADDRESS} and tcp port 25`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  td.on('error', () => undefined)
  let out = ''
  td.stdout.on('data', (b: Buffer) => (out += b.toString()))
  // tcpdump says "listening on lo" once its filter is in place
  await new Promise<void>((resolve, reject) => {
    let err = ''
    td.stderr.on('data', (b: Buffer) => {
      err += b.toString()
      if (err.includes('listening on')) resolve()
    })
    td.once('exit', (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)))
  })
  await during()
  // the session has ended (probe sent QUIT and closed); let tcpdump print the last segments
  await new Promise((r) => setTimeout(r, 300))
  const exited = new Promise<void>((resolve) => td.once('exit', () => resolve()))
  td.kill('SIGINT')
  await exited
  return out
    .split('\n')
    .map(parseLine)
    .filter((s): s is Segment => s !== undefined)
}

describe('post-TLS EHLO and delayed ACK (issue 11)', () => {
  it("Postfix's EHLO reply is released by our EHLO segment, which acknowledges the session tickets", async () => {
    const resolver = createResolver({ servers: [dns.resolverAddress] })
    // one probe to warm the resolver's cache and start an smtpd process, then the one we watch
    await probe('latency.test', { resolver, level: 'dane', ehloName: 'client.latency.test' })
    let transcript: string[] = []
    const segments = await capture(async () => {
      const r = await probe('latency.test', { resolver, level: 'dane', ehloName: 'client.latency.test' })
      assert.equal(r.outcome.status, 'verified', JSON.stringify(r.outcome))
      assert.equal(r.outcome.protocol, 'TLSv1.3')
      transcript = r.attempts[0]!.transcript
    })
    const what = () => segments.map((s) => `${s.fromClient ? 'C' : 'S'} [${s.flags}] ${s.seq}+${s.length} ack ${s.ack}`).join('\n')
    // client data segments: EHLO, STARTTLS, ClientHello, Finished, EHLO, QUIT (TCP_NODELAY: one write, one segment)
    const clientData = segments.filter((s) => s.fromClient && s.length > 0)
    assert.equal(clientData.length, 6, `expected 6 client data segments (${transcript.join(' | ')}):\n${what()}`)
    const [, , , finished, ehlo, quit] = clientData as [Segment, Segment, Segment, Segment, Segment, Segment]
    assert.ok(ehlo.seq === finished.seq + finished.length, 'our EHLO travels in its own segment after the Finished')
    // the server's reply to our EHLO: its last data segment before our QUIT
    const iQuit = segments.indexOf(quit)
    let iReply = iQuit - 1
    while (iReply >= 0 && (segments[iReply]!.fromClient || segments[iReply]!.length === 0)) iReply--
    assert.ok(iReply > segments.indexOf(ehlo), what())
    const beforeReply = segments[iReply - 1]!
    assert.equal(beforeReply, ehlo, `the segment that released the reply must be our EHLO, not a bare (delayed) ACK:\n${what()}`)
    // and our EHLO acknowledged everything the server had sent before it (its tickets)
    const serverBefore = segments.slice(0, segments.indexOf(ehlo)).filter((s) => !s.fromClient && s.length > 0)
    const last = serverBefore[serverBefore.length - 1]!
    assert.equal(ehlo.ack, last.seq + last.length, what())
  })
})
