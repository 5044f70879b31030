// The operations side of `smtp-tls-policy serve`: the YAML configuration file (strict: one line and
// exit 78 for anything wrong in it, 66 when it cannot be opened; flags win over it), SIGHUP reload
// (a changed profile answers at once, a bad file is logged and the running settings stay), and
// `--redis`: two serve processes sharing one real redis-server answer from each other's cache, `dump`
// and `purge` on it, and Redis stopped mid-run (cached answers still served, TEMP where a cached
// MTA-STS policy cannot be ruled out, recovery when Redis returns). Loopback and temp dirs only.
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadServeConfig } from '../../src/cli/config.js'
import { main } from '../../src/cli/main.js'
import { createNetstringDecoder, encodeNetstring } from '../../src/index.js'
import { cliFromSource } from '../helpers/cli.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { tempDir } from '../helpers/openssl.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'

const TLSA = { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 7) }
let dns: TestDnsServer
let tmp: { dir: string; done: () => void }
before(async () => {
  tmp = tempDir()
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['dane.ops.test', 'MX', { preference: 10, exchange: 'mx.dane.ops.test' }],
        ['mx.dane.ops.test', 'A', '127.0.0.1'],
        ['_25._tcp.mx.dane.ops.test', 'TLSA', TLSA],
        ['dane2.ops.test', 'MX', { preference: 10, exchange: 'mx.dane.ops.test' }],
        ['plain.ops.test', 'MX', { preference: 10, exchange: 'mx.plain.ops.test' }],
        ['other.ops.test', 'MX', { preference: 10, exchange: 'mx.plain.ops.test' }],
        ['mx.plain.ops.test', 'A', '127.0.0.1'],
      ],
    }),
  )
})
after(async () => {
  await dns.close()
  tmp.done()
})

let n = 0
function file(text: string | Buffer): string {
  const path = join(tmp.dir, `config-${n++}.yaml`)
  writeFileSync(path, text)
  return path
}

async function run(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}

describe('serve --config: strict checks, one line, 78 (EX_CONFIG); 66 when it cannot be opened', () => {
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['an unknown key', 'socketmap: inet:127.0.0.1:0\nlisten: x\n', /unknown key "listen"/],
    ['an unknown key in a profile', 'profiles:\n  x: { dane: true, sts: true, mode: 1 }\n', /profiles\.x: unknown key "mode"/],
    ['a profile without sts', 'profiles:\n  x: { dane: true }\n', /profiles\.x: needs dane: and sts:/],
    ['yes is not a boolean (YAML 1.2)', 'profiles:\n  x: { dane: yes, sts: true }\n', /profiles\.x\.dane: must be true or false/],
    [
      'testing other than notfound or may',
      'profiles:\n  x: { dane: true, sts: true, testing: enforce }\n',
      /testing: must be notfound or may/,
    ],
    ['a map name with a space', 'profiles:\n  "a b": { dane: true, sts: true }\n', /map name must be printable/],
    ['no profiles at all', 'profiles: {}\n', /1 to 100 map names/],
    ['an unquoted mode (0660 is decimal 660 in YAML 1.2)', 'mode: 0660\n', /mode: must be a quoted octal string/],
    ['a mode past 777', 'mode: "1777"\n', /mode: must be at most/],
    ['a number as a string', 'max-connections: "100"\n', /max-connections: must be a whole number from 1 to 65535/],
    ['a fraction', 'idle-timeout: 1.5\n', /idle-timeout: must be a whole number/],
    ['a negative cache time', 'cache: { negative: -1 }\n', /cache\.negative: must be a whole number from 0/],
    ['an unknown cache key', 'cache: { positive: 1 }\n', /cache: unknown key "positive"/],
    ['a bad listen address', 'socketmap: tcp:1\n', /socketmap: must be unix:PATH or inet:HOST:PORT/],
    ['a bad redis URL', 'redis: http://127.0.0.1\n', /redis: must be redis:\/\//],
    ['an unknown mta-sts key', 'mta-sts: { insecure: true }\n', /mta-sts: unknown key "insecure"/],
    ['a list at the top', '- a\n', /must be a mapping, got a list/],
    ['a YAML syntax error', 'a: [\n', /at line \d+, column \d+$/m],
    ['a duplicate key', 'redis: redis://a\nredis: redis://b\n', /Map keys must be unique/],
    ['an unknown tag', 'redis: !env REDIS\n', /Unresolved tag/],
    [
      'an alias bomb',
      `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
      /alias/i,
    ],
    ['not UTF-8', Buffer.from([0x61, 0x3a, 0x20, 0xff, 0x0a]), /not UTF-8/],
    ['larger than 1 MiB', `# ${'x'.repeat(1024 * 1024)}\n`, /larger than 1 MiB/],
    ['a resolver the library refuses', 'socketmap: inet:127.0.0.1:0\nresolver: "1.2.3"\n', /resolver: invalid DNS server "1\.2\.3"/],
  ]
  for (const [what, text, message] of cases)
    it(what, async () => {
      const path = file(text)
      const r = await run('serve', '--config', path)
      assert.equal(r.status, 78, r.err)
      assert.equal(r.err.trim().split('\n').length, 1, r.err)
      assert.ok(r.err.includes(`config file ${path}`), r.err)
      assert.match(r.err, message)
    })
  it('examples/smtp-tls-policy.yaml passes, and means what its comments say', async () => {
    const c = await loadServeConfig(fileURLToPath(new URL('../../examples/smtp-tls-policy.yaml', import.meta.url)))
    assert.equal(c.socketmap, 'unix:/run/smtp-tls-policy/socketmap')
    assert.equal(c.mode, 0o660)
    assert.deepEqual(c.resolvers, ['127.0.0.1'])
    assert.deepEqual(c.cache, { negative: 300, dane: 300, max: 3600 })
    assert.deepEqual(c.profiles?.['sts-may'], { dane: false, sts: true, testing: 'may' })
    assert.equal(c.stsTimeoutMs, 10000)
    assert.equal(c.redis, undefined)
  })
  it('the YAML examples in README.md and docs/socketmap.md pass', async () => {
    for (const doc of ['../../README.md', '../../docs/socketmap.md']) {
      const blocks = [...readFileSync(new URL(doc, import.meta.url), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)]
      assert.ok(blocks.length > 0, doc)
      for (const [, yaml] of blocks) assert.ok((await loadServeConfig(file(yaml!))).profiles, doc)
    }
  })
  it('an empty file is every default; a tlsrpt: false profile is accepted', async () => {
    assert.deepEqual(await loadServeConfig(file('# nothing\n')), {})
    const c = await loadServeConfig(file('profiles:\n  p: { dane: true, sts: true, tlsrpt: false }\n'))
    assert.deepEqual(c.profiles, { p: { dane: true, sts: true, tlsrpt: false } })
  })
  it('a file that cannot be opened: 66', async () => {
    const r = await run('serve', '--config', join(tmp.dir, 'absent.yaml'))
    assert.equal(r.status, 66, r.err)
  })
  for (const args of [
    ['serve', '--idle-timeout', '0', '--socketmap', 'inet:127.0.0.1:0'],
    ['serve', '--cache-max', '99999999999', '--socketmap', 'inet:127.0.0.1:0'],
    ['serve', '--redis', 'http://x', '--socketmap', 'inet:127.0.0.1:0'],
    ['serve', '--resolver', '1.2.3', '--socketmap', 'inet:127.0.0.1:0'],
    ['dump'],
    ['dump', 'x', '--redis', 'redis://127.0.0.1'],
    ['purge', 'a', 'b', '--redis', 'redis://127.0.0.1'],
    ['purge', 'not a domain', '--redis', 'redis://127.0.0.1'],
    ['query', 'x', '--map', 'custom'],
    ['query', 'x', '--map', 'a b', '--config', '/dev/null'],
    ['query', 'x', '--redis', 'ftp://x'],
  ])
    it(`usage error: ${args.join(' ')}`, async () => assert.equal((await run(...args)).status, 64))
  it('dump with a configuration file that names no Redis: 64 (the memory cache lives inside serve)', async () => {
    const r = await run('dump', '--config', file('socketmap: inet:127.0.0.1:0\n'))
    assert.equal(r.status, 64, r.err)
    assert.match(r.err, /names no redis/)
  })
})

interface Serve {
  child: ChildProcessWithoutNullStreams
  lines: Array<Record<string, unknown>>
  port: number
  /** the first log line (from `from` on) that `pred` accepts */
  waitFor(pred: (l: Record<string, unknown>) => boolean, from?: number): Promise<Record<string, unknown>>
  ask(request: string): Promise<string>
  exited: Promise<number | null>
}

async function serve(...args: string[]): Promise<Serve> {
  const [node, argv] = cliFromSource('serve', ...args)
  const child = spawn(node, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: Array<Record<string, unknown>> = []
  const waiters = new Set<() => void>()
  let buf = ''
  child.stderr.on('data', (d: Buffer) => {
    buf += d.toString()
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>)
      buf = buf.slice(i + 1)
    }
    for (const w of waiters) w()
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, from = 0): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const l = lines.slice(from).find(pred)
        if (l) {
          waiters.delete(check)
          resolve(l)
        }
      }
      waiters.add(check)
      void exited.then(() => reject(new Error(`serve exited: ${JSON.stringify(lines)} ${buf}`)))
      check()
    })
  const listening = await waitFor((l) => l['event'] === 'listening')
  const port = Number(/:(\d+)$/.exec(String(listening['address']))![1])
  const ask = (request: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1')
      const d = createNetstringDecoder({ maxLength: 100000 })
      sock.on('error', reject)
      sock.on('data', (c) => {
        for (const m of d.push(c)) {
          resolve(Buffer.from(m).toString())
          sock.destroy()
        }
      })
      sock.write(encodeNetstring(request))
    })
  return { child, lines, port, waitFor, ask, exited }
}

const queryOf = (key: string) => (l: Record<string, unknown>) => l['event'] === 'query' && l['key'] === key

describe('serve --config and SIGHUP', () => {
  it('flags win over the file; SIGHUP applies a changed profile at once; a bad file is logged and the old settings stay', async () => {
    const config = file('')
    const write = (x: string): void =>
      writeFileSync(
        config,
        `# the flag --socketmap wins over this\nsocketmap: unix:${join(tmp.dir, 'no', 'such', 'dir')}\nidle-timeout: 5\nprofiles:\n  x: { dane: ${x}, sts: ${x === 'true' ? 'false' : 'true'} }\n  y: { dane: true, sts: false }\n`,
      )
    write('true')
    const s = await serve('--config', config, '--socketmap', 'inet:127.0.0.1:0', '--resolver', dns.server)
    try {
      assert.equal(await s.ask('x dane.ops.test'), 'OK dane-only')
      assert.match(await s.ask('dane+sts dane.ops.test'), /^PERM unknown map name/, 'the file replaces the default profiles')
      // x becomes MTA-STS only: dane.ops.test has no policy. Its cached answer must not outlive the change.
      write('false')
      let mark = s.lines.length
      s.child.kill('SIGHUP')
      const reloaded = await s.waitFor((l) => l['event'] === 'reload' || l['event'] === 'reload-failed', mark)
      assert.equal(reloaded['event'], 'reload', JSON.stringify(reloaded))
      assert.equal(reloaded['restartNeeded'], undefined, 'the flag still decides where to listen')
      assert.equal(await s.ask('x dane.ops.test'), 'NOTFOUND ')
      assert.equal(await s.ask('y dane.ops.test'), 'OK dane-only')
      // A bad file: logged, never an exit, the running profiles stay.
      writeFileSync(config, 'profiles:\n  x: { dane: true, sts: nope }\n')
      mark = s.lines.length
      s.child.kill('SIGHUP')
      const failed = await s.waitFor((l) => l['event'] === 'reload' || l['event'] === 'reload-failed', mark)
      assert.equal(failed['event'], 'reload-failed')
      assert.match(String(failed['error']), /profiles\.x\.sts: must be true or false/)
      assert.equal(await s.ask('x dane2.ops.test'), 'NOTFOUND ', 'x is still MTA-STS only (dane2 is uncached)')
      assert.equal(await s.ask('y dane2.ops.test'), 'OK dane-only')
      // A setting that needs a restart is named, the rest applied.
      writeFileSync(config, 'socketmap: inet:127.0.0.1:1\nredis: redis://127.0.0.1:1\nprofiles:\n  z: { dane: true, sts: false }\n')
      mark = s.lines.length
      s.child.kill('SIGHUP')
      const partly = await s.waitFor((l) => l['event'] === 'reload' || l['event'] === 'reload-failed', mark)
      assert.deepEqual(partly['restartNeeded'], ['redis'], JSON.stringify(partly))
      assert.equal(await s.ask('z dane.ops.test'), 'OK dane-only')
      assert.match(await s.ask('x dane.ops.test'), /^PERM unknown map name/)
    } finally {
      s.child.kill('SIGTERM')
    }
    assert.equal(await s.exited, 0, JSON.stringify(s.lines))
  })
})

describe('serve --redis: two servers share one redis-server', () => {
  let redis: TestRedis
  let again: TestRedis | undefined
  before(async () => {
    redis = await startRedis()
  })
  after(async () => {
    await again?.stop()
    await redis.stop()
  })

  it("answers from each other's cache; dump and purge; Redis stopped: cached answers served, TEMP where a cached MTA-STS policy may hide, recovery", async () => {
    const url = `unix:${redis.path}`
    const config = file(`redis: ${url}\nresolver: "${dns.server}"\n`)
    const a = await serve('--socketmap', 'inet:127.0.0.1:0', '--config', config)
    const b = await serve('--socketmap', 'inet:127.0.0.1:0', '--redis', url, '--resolver', dns.server)
    try {
      await a.waitFor((l) => l['event'] === 'store-ready')
      await b.waitFor((l) => l['event'] === 'store-ready')
      assert.equal(await a.ask('dane+sts dane.ops.test'), 'OK dane-only')
      assert.equal((await a.waitFor(queryOf('dane.ops.test')))['cached'], false)
      assert.equal(await a.ask('dane+sts plain.ops.test'), 'NOTFOUND ')
      // b never looked these up: its first answers come from a's entries in Redis.
      const queries = dns.queries.length
      assert.equal(await b.ask('dane+sts dane.ops.test'), 'OK dane-only')
      assert.equal(await b.ask('dane+sts plain.ops.test'), 'NOTFOUND ')
      assert.equal((await b.waitFor(queryOf('dane.ops.test')))['cached'], true)
      assert.equal((await b.waitFor(queryOf('plain.ops.test')))['cached'], true)
      assert.equal(dns.queries.length, queries, 'no DNS query for an answer in the shared cache')

      // query reads the same cache (and never writes to it): with the file, or with --redis.
      const q = await run('query', 'plain.ops.test', '--config', config, '--json')
      assert.equal(q.status, 0, q.err)
      assert.deepEqual([JSON.parse(q.out).reply, JSON.parse(q.out).cached], ['NOTFOUND ', true])
      const q2 = await run('query', 'other.ops.test', '--redis', url, '--resolver', dns.server, '--json')
      assert.deepEqual([JSON.parse(q2.out).reply, JSON.parse(q2.out).cached], ['NOTFOUND ', false])

      // dump lists both answers with the seconds they have left (not other.ops.test: query wrote nothing).
      const dump = await run('dump', '--config', config, '--json')
      assert.equal(dump.status, 0, dump.err)
      const rows = JSON.parse(dump.out) as Array<{ map: string; destination: string; ttl: number; reply: string }>
      assert.deepEqual(
        rows.map((r) => [r.map, r.destination, r.reply]),
        [
          ['dane+sts', 'dane.ops.test:25', 'OK dane-only'],
          ['dane+sts', 'plain.ops.test:25', 'NOTFOUND '],
        ],
      )
      for (const r of rows) assert.ok(r.ttl > 0 && r.ttl <= 3600, String(r.ttl))
      const text = await run('dump', '--redis', url)
      assert.match(text.out, /^ +\d+ {2}dane\+sts {2}dane\.ops\.test:25 {2}OK dane-only$/m)
      const purged = await run('purge', 'dane.ops.test', '--redis', url)
      assert.equal(purged.status, 0, purged.err)
      assert.match(purged.out, /^purged 1 cached answer of dane\.ops\.test$/m)
      assert.equal(JSON.parse((await run('dump', '--redis', url, '--json')).out).length, 1)
      let mark = b.lines.length
      assert.equal(await b.ask('dane+sts dane.ops.test'), 'OK dane-only')
      assert.equal((await b.waitFor(queryOf('dane.ops.test'), mark))['cached'], false, 'purged: b asks DNS again')

      // Redis stops. Answers each server has seen are still served, from its own copy.
      redis.kill()
      await redis.exited
      await a.waitFor((l) => l['event'] === 'store-error')
      for (const [s, key] of [
        [a, 'plain.ops.test'],
        [b, 'plain.ops.test'],
        [b, 'dane.ops.test'],
      ] as const) {
        mark = s.lines.length
        assert.equal(await s.ask(`dane+sts ${key}`), key === 'plain.ops.test' ? 'NOTFOUND ' : 'OK dane-only')
        assert.equal((await s.waitFor(queryOf(key), mark))['cached'], true)
      }
      // Uncached: no DANE, and a cached MTA-STS policy cannot be ruled out → TEMP, never NOTFOUND.
      assert.match(await a.ask('dane+sts other.ops.test'), /^TEMP policy store unavailable/)
      // DANE needs no cache: DNSSEC is its own proof.
      assert.equal(await a.ask('dane+sts dane2.ops.test'), 'OK dane-only')
      assert.equal(a.child.exitCode, null)
      assert.equal(b.child.exitCode, null)

      // Redis returns (empty, at the same socket): both servers reconnect and answer again.
      mark = a.lines.length
      const markB = b.lines.length
      again = await startRedis(redis.path)
      await a.waitFor((l) => l['event'] === 'store-ready', mark)
      assert.equal(await a.ask('dane+sts other.ops.test'), 'NOTFOUND ')
      await b.waitFor((l) => l['event'] === 'store-ready', markB)
      assert.equal(await b.ask('dane+sts other.ops.test'), 'NOTFOUND ')
      assert.equal(JSON.parse((await run('dump', '--redis', url, '--json')).out).length, 1)
    } finally {
      a.child.kill('SIGTERM')
      b.child.kill('SIGTERM')
    }
    assert.equal(await a.exited, 0, JSON.stringify(a.lines))
    assert.equal(await b.exited, 0, JSON.stringify(b.lines))
  })
  it('dump, purge and query against a Redis that is not there: 75', async () => {
    const url = `unix:${join(tmp.dir, 'nothing.sock')}`
    for (const args of [['dump'], ['purge'], ['query', 'dane.ops.test', '--resolver', dns.server]]) {
      const r = await run(...args, '--redis', url)
      assert.equal(r.status, 75, r.err)
      assert.match(r.err, /cannot reach Redis/)
    }
  })
  it('serve starts without Redis, never crashes on its errors, and answers (TEMP only where a cached policy may hide)', async () => {
    const s = await serve('--socketmap', 'inet:127.0.0.1:0', '--redis', `unix:${join(tmp.dir, 'none.sock')}`, '--resolver', dns.server)
    try {
      const e = await s.waitFor((l) => l['event'] === 'store-error')
      assert.equal(e['operation'], 'connect')
      assert.equal(await s.ask('dane+sts dane.ops.test'), 'OK dane-only')
      assert.match(await s.ask('dane+sts plain.ops.test'), /^TEMP policy store unavailable/)
      assert.equal(await s.ask('dane plain.ops.test'), 'NOTFOUND ')
      // The failed connect and the failed gets and sets of the lookups (6 in all) are thinned to one line
      // per 10 s (the count allows for a very slow machine).
      const n = s.lines.filter((l) => l['event'] === 'store-error').length
      assert.ok(n >= 1 && n <= 2, JSON.stringify(s.lines))
    } finally {
      s.child.kill('SIGTERM')
    }
    assert.equal(await s.exited, 0, JSON.stringify(s.lines))
  })
  it("query --config answers by the file's profiles", async () => {
    const config = file(`resolver: "${dns.server}"\nprofiles:\n  only-sts: { dane: false, sts: true }\n`)
    const r = await run('query', 'dane.ops.test', '--config', config, '--map', 'only-sts')
    assert.equal(r.status, 0, r.err)
    assert.match(r.out, /^NOTFOUND \n/)
    assert.equal((await run('query', 'dane.ops.test', '--config', config)).status, 69, 'dane+sts is not in the file: PERM')
  })
})
