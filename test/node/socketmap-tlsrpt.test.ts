// The socketmap server with a `tlsrpt` profile (the TLS-RPT attributes for Postfix ≥ 3.10) over the wire,
// against an in-process validating DNS server and MTA-STS HTTPS server: MTA-STS answers carry the
// attributes, DANE answers do not, a profile without `tlsrpt` is unchanged, a reload that turns it on
// drops the cached answers of that profile, and a `tlsrpt` that is not a boolean is refused.
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createMemoryStore, createNetstringDecoder, encodeNetstring } from '../../src/index.js'
import { createResolver, createSocketmapServer, type SocketmapServer, type SocketmapServerOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { startHttpsServer, type Route, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'

let dns: TestDnsServer
let https: TestHttpsServer
let ca: Issued
const servers: SocketmapServer[] = []
const resolver = (): ReturnType<typeof createResolver> =>
  createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, cache: false })

before(async () => {
  ca = makeCert({ ca: true, subject: '/CN=Test MTA-STS CA' })
  const leaf = makeCert({ issuer: ca, subject: '/CN=mta-sts', dns: ['mta-sts.sts.test', 'mta-sts.testing.test'] })
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['dane.test', 'MX', { preference: 10, exchange: 'mx.dane.test' }],
        ['mx.dane.test', 'A', '127.0.0.1'],
        ['_25._tcp.mx.dane.test', 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 0xab) }],
        ['sts.test', 'MX', { preference: 10, exchange: 'mx.sts.test' }],
        ['mx.sts.test', 'A', '127.0.0.1'],
        ['_mta-sts.sts.test', 'TXT', 'v=STSv1; id=1'],
        ['mta-sts.sts.test', 'A', '127.0.0.1'],
        ['testing.test', 'MX', { preference: 10, exchange: 'mx.testing.test' }],
        ['mx.testing.test', 'A', '127.0.0.1'],
        ['_mta-sts.testing.test', 'TXT', 'v=STSv1; id=1'],
        ['mta-sts.testing.test', 'A', '127.0.0.1'],
      ],
    }),
  )
  https = await startHttpsServer(leaf)
  const policy =
    (text: string): Route =>
    (_q, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end(text)
  // An extension line (RFC 8461 §3.2) with braces and an attribute in it: never copied into the reply.
  https.routes.set(
    'mta-sts.sts.test',
    policy('version: STSv1\nmode: enforce\nmx: mx.sts.test\nmx: *.sts.test\nmax_age: 86400\nx_note: } policy_type=no-policy-found {\n'),
  )
  https.routes.set('mta-sts.testing.test', policy('version: STSv1\nmode: testing\nmx: mx.testing.test\nmax_age: 604800\n'))
})
after(async () => {
  for (const s of servers) await s.close()
  await https.close()
  await dns.close()
})

async function start(extra: Partial<SocketmapServerOptions>): Promise<SocketmapServer> {
  const s = await createSocketmapServer({
    listen: 'inet:127.0.0.1:0',
    resolver: resolver(),
    families: [4],
    mtaSts: { ca: ca.pem, port: https.port, allowPrivateAddresses: true, timeoutMs: 2000 },
    ...extra,
  })
  servers.push(s)
  return s
}
function ask(s: SocketmapServer, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(s.address.split(':').pop()), '127.0.0.1')
    const decoder = createNetstringDecoder({ maxLength: 100000 })
    sock.on('error', reject)
    sock.on('data', (d) => {
      for (const m of decoder.push(d)) {
        resolve(Buffer.from(m).toString('latin1'))
        sock.destroy()
      }
    })
    sock.write(encodeNetstring(request))
  })
}

const STS_POLICY = 'OK secure match=mx.sts.test:.sts.test servername=hostname'
const STS_ATTRS =
  ' policy_type=sts policy_domain=sts.test { policy_string = version: STSv1 } { policy_string = mode: enforce }' +
  ' { policy_string = mx: mx.sts.test } { policy_string = mx: *.sts.test } { policy_string = max_age: 86400 }' +
  ' mx_host_pattern=mx.sts.test mx_host_pattern=*.sts.test'

describe('socketmap server: the tlsrpt profile option', () => {
  const profiles = {
    'dane+sts': { dane: true, sts: true },
    'dane+sts+tlsrpt': { dane: true, sts: true, tlsrpt: true },
    'may+tlsrpt': { dane: false, sts: true, testing: 'may' as const, tlsrpt: true },
  }
  const cases: [string, string][] = [
    ['dane+sts+tlsrpt sts.test', STS_POLICY + STS_ATTRS],
    ['dane+sts sts.test', STS_POLICY],
    ['dane+sts+tlsrpt dane.test', 'OK dane-only'],
    ['dane+sts+tlsrpt [mx.sts.test]', 'NOTFOUND '],
    ['dane+sts+tlsrpt testing.test', 'NOTFOUND '],
    [
      'may+tlsrpt testing.test',
      'OK may policy_type=sts policy_domain=testing.test { policy_string = version: STSv1 } { policy_string = mode: testing }' +
        ' { policy_string = mx: mx.testing.test } { policy_string = max_age: 604800 } mx_host_pattern=mx.testing.test',
    ],
  ]
  for (const [request, want] of cases)
    it(`${request} → ${want.slice(0, 60)}…`, async () => {
      const s = await start({ profiles })
      assert.equal(await ask(s, request), want)
    })
  it('the lookup trace says what was added, and why DANE has nothing', async () => {
    const s = await start({ profiles })
    assert.ok((await s.lookup('dane+sts+tlsrpt', 'sts.test')).trace.some((t) => /^TLS-RPT attributes for Postfix ≥ 3\.10/.test(t.rule)))
    assert.ok((await s.lookup('dane+sts+tlsrpt', 'dane.test')).trace.some((t) => /^TLS-RPT: no attributes for DANE/.test(t.rule)))
  })
  it('a reload that turns tlsrpt on drops the cached answers of that profile', async () => {
    const s = await start({ store: createMemoryStore(), profiles: { p: { dane: true, sts: true } } })
    assert.equal(await ask(s, 'p sts.test'), STS_POLICY)
    assert.equal((await s.lookup('p', 'sts.test')).cached, true)
    await s.reload({
      resolver: resolver(),
      families: [4],
      mtaSts: { ca: ca.pem, port: https.port, allowPrivateAddresses: true, timeoutMs: 2000 },
      profiles: { p: { dane: true, sts: true, tlsrpt: true } },
    })
    assert.equal(await ask(s, 'p sts.test'), STS_POLICY + STS_ATTRS)
  })
  it('tlsrpt that is not a boolean is ERR_INVALID_ARGUMENT', async () => {
    for (const tlsrpt of ['yes', 1, null])
      await assert.rejects(
        createSocketmapServer({
          listen: 'inet:127.0.0.1:0',
          resolver: resolver(),
          profiles: { p: { dane: true, sts: true, tlsrpt } as never },
        }),
        (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT',
      )
  })
})
