// `smtp-tls-policy query` in process and `smtp-tls-policy serve` as a child process: answers, exit
// statuses, JSON log lines on stderr and a graceful exit 0 on SIGTERM; usage errors are 64.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { createNetstringDecoder, encodeNetstring } from '../../src/index.js'
import { cliFromSource } from '../helpers/cli.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'

let dns: TestDnsServer
before(async () => {
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['dane.cli.test', 'MX', { preference: 10, exchange: 'mx.dane.cli.test' }],
        ['mx.dane.cli.test', 'A', '127.0.0.1'],
        ['mx.dane.cli.test', 'AAAA', '::1'],
        ['_25._tcp.mx.dane.cli.test', 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 1) }],
        ['bogus.cli.test', 'MX', { preference: 10, exchange: 'mx.bogus.cli.test' }],
        ['mx.bogus.cli.test', 'A', '127.0.0.1'],
      ],
      bogus: ['_25._tcp.mx.bogus.cli.test TLSA'],
    }),
  )
})
after(() => dns.close())

async function run(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}

describe('smtp-tls-policy query', () => {
  it('a DANE domain: OK dane-only and the trace, status 0', async () => {
    const r = await run('query', 'dane.cli.test', '--resolver', dns.server)
    assert.equal(r.status, 0, r.err)
    assert.match(r.out, /^OK dane-only\n {2}.*RFC 7672/)
  })
  it('a bogus TLSA RRset: TEMP, status 75', async () => {
    const r = await run('query', 'bogus.cli.test', '--resolver', dns.server, '--json')
    assert.equal(r.status, 75, r.err)
    assert.match(JSON.parse(r.out).reply, /^TEMP /)
  })
  for (const args of [
    ['query'],
    ['query', 'a', 'b'],
    ['query', 'x', '--map', 'nope'],
    ['serve'],
    ['serve', '--socketmap', 'tcp:1'],
    ['serve', '--socketmap', 'inet:127.0.0.1:1', '--mode', '999'],
  ])
    it(`usage error: ${args.join(' ')}`, async () => assert.equal((await run(...args)).status, 64))
})

describe('smtp-tls-policy serve', () => {
  it('answers over inet, logs JSON lines, exits 0 on SIGTERM', async () => {
    const [node, args] = cliFromSource('serve', '--socketmap', 'inet:127.0.0.1:0', '--resolver', dns.server)
    const child = spawn(node, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    const listening = new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString()
        const m = /"address":"inet:127\.0\.0\.1:(\d+)"/.exec(err)
        if (m) resolve(m[1] as string)
      })
      child.once('exit', () => reject(new Error(`exited: ${err}`)))
    })
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const port = Number(await listening)
    const sock = net.connect(port, '127.0.0.1')
    sock.on('error', () => {})
    const reply = await new Promise<string>((resolve) => {
      const d = createNetstringDecoder({ maxLength: 100000 })
      sock.on('data', (c) => {
        for (const m of d.push(c)) resolve(Buffer.from(m).toString())
      })
      sock.write(encodeNetstring('dane+sts dane.cli.test'))
    })
    assert.equal(reply, 'OK dane-only')
    child.kill('SIGTERM')
    assert.equal(await exited, 0, err)
    sock.destroy()
    const lines = err
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string })
    assert.deepEqual(
      lines.map((l) => l.event),
      ['listening', 'query', 'closed', 'closed'],
    )
  })
})
