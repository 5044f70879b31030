// `smtp-tls-policy serve --metrics HOST:PORT` as a child process: Prometheus metrics over HTTP after
// real queries, 404 elsewhere, both servers closed on SIGTERM (exit 0); a bad --metrics is a usage error.
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
        ['_25._tcp.mx.dane.cli.test', 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 1) }],
      ],
    }),
  )
})
after(() => dns.close())

describe('smtp-tls-policy serve --metrics', () => {
  for (const bad of ['nope', '127.0.0.1:', '127.0.0.1:70000', 'a b:1'])
    it(`usage error: --metrics ${bad}`, async () => {
      let err = ''
      const status = await main(['serve', '--socketmap', 'inet:127.0.0.1:0', '--metrics', bad], {
        out: () => {},
        err: (l) => (err += l),
      })
      assert.equal(status, 64, err)
    })
  it('serves /metrics on loopback, counts the queries, exits 0 on SIGTERM', async () => {
    const [node, args] = cliFromSource('serve', '--socketmap', 'inet:127.0.0.1:0', '--resolver', dns.server, '--metrics', '127.0.0.1:0')
    const child = spawn(node, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    const ready = new Promise<[string, string]>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString()
        const port = /"address":"inet:127\.0\.0\.1:(\d+)"/.exec(err)
        const url = /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(err)
        if (port && url) resolve([port[1]!, url[1]!])
      })
      child.once('exit', () => reject(new Error(`exited: ${err}`)))
    })
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const [port, url] = await ready
    const sock = net.connect(Number(port), '127.0.0.1')
    sock.on('error', () => {})
    const decoder = createNetstringDecoder({ maxLength: 100000 })
    const waiting: ((r: string) => void)[] = []
    sock.on('data', (c) => {
      for (const m of decoder.push(c)) waiting.shift()?.(Buffer.from(m).toString())
    })
    const ask = (q: string): Promise<string> =>
      new Promise((r) => {
        waiting.push(r)
        sock.write(encodeNetstring(q))
      })
    assert.equal(await ask('dane+sts dane.cli.test'), 'OK dane-only')
    assert.equal(await ask('dane+sts dane.cli.test'), 'OK dane-only')
    const text = await (await fetch(url)).text()
    assert.match(text, /^smtp_tls_policy_socketmap_queries_total\{result="OK",policy="dane-only"\} 2$/m)
    assert.match(text, /^smtp_tls_policy_socketmap_cache_hits_total 1$/m)
    assert.match(text, /^smtp_tls_policy_socketmap_cache_misses_total 1$/m)
    assert.match(text, /^process_cpu_user_seconds_total /m) // prom-client's default metrics
    assert.equal((await fetch(url.replace('/metrics', '/'))).status, 404)
    child.kill('SIGTERM')
    assert.equal(await exited, 0, err)
    sock.destroy()
    await assert.rejects(fetch(url)) // the metrics server closed too
  })
})
