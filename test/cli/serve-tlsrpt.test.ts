// `tlsrpt: true` in a profile of serve's configuration file reaches the server end to end: `query --config`
// prints the TLS-RPT attributes (Postfix ≥ 3.10) after an MTA-STS answer and says why a DANE answer has
// none; `tlsrpt: false` and profiles without it are unchanged; a non-boolean is one line and 78.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, tempDir } from '../helpers/openssl.js'

let dns: TestDnsServer
let https: TestHttpsServer
let tmp: { dir: string; done: () => void }
let config: string
before(async () => {
  tmp = tempDir()
  const ca = makeCert({ ca: true, subject: '/CN=Test MTA-STS CA' })
  const leaf = makeCert({ issuer: ca, subject: '/CN=mta-sts.sts.rpt.test', dns: ['mta-sts.sts.rpt.test'] })
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['dane.rpt.test', 'MX', { preference: 10, exchange: 'mx.dane.rpt.test' }],
        ['mx.dane.rpt.test', 'A', '127.0.0.1'],
        ['_25._tcp.mx.dane.rpt.test', 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 9) }],
        ['sts.rpt.test', 'MX', { preference: 10, exchange: 'mx.sts.rpt.test' }],
        ['mx.sts.rpt.test', 'A', '127.0.0.1'],
        ['_mta-sts.sts.rpt.test', 'TXT', 'v=STSv1; id=1'],
        ['mta-sts.sts.rpt.test', 'A', '127.0.0.1'],
      ],
    }),
  )
  https = await startHttpsServer(leaf)
  https.routes.set('mta-sts.sts.rpt.test', (_q, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: enforce\nmx: mx.sts.rpt.test\nmax_age: 3600\n'),
  )
  const caFile = join(tmp.dir, 'ca.pem')
  writeFileSync(caFile, ca.pem)
  config = join(tmp.dir, 'serve.yaml')
  writeFileSync(
    config,
    `resolver: "${dns.server}"\nmta-sts: { ca-file: "${caFile}", port: ${https.port}, allow-private: true }\n` +
      'profiles:\n  dane+sts: { dane: true, sts: true, tlsrpt: false }\n  dane+sts+tlsrpt: { dane: true, sts: true, tlsrpt: true }\n',
  )
})
after(async () => {
  await https.close()
  await dns.close()
  tmp.done()
})

async function run(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}

describe('serve --config with tlsrpt: true (TLS-RPT attributes, Postfix ≥ 3.10)', () => {
  it('query prints the attributes after an MTA-STS answer', async () => {
    const r = await run('query', 'sts.rpt.test', '--config', config, '--map', 'dane+sts+tlsrpt', '--json')
    assert.equal(r.status, 0, r.err)
    assert.equal(
      JSON.parse(r.out).reply,
      'OK secure match=mx.sts.rpt.test servername=hostname policy_type=sts policy_domain=sts.rpt.test' +
        ' { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = mx: mx.sts.rpt.test }' +
        ' { policy_string = max_age: 3600 } mx_host_pattern=mx.sts.rpt.test',
    )
  })
  it('tlsrpt: false: the policy alone', async () => {
    const r = await run('query', 'sts.rpt.test', '--config', config, '--map', 'dane+sts')
    assert.equal(r.status, 0, r.err)
    assert.match(r.out, /^OK secure match=mx\.sts\.rpt\.test servername=hostname\n/)
  })
  it('a DANE answer has none, and the trace says why', async () => {
    const r = await run('query', 'dane.rpt.test', '--config', config, '--map', 'dane+sts+tlsrpt')
    assert.equal(r.status, 0, r.err)
    assert.match(r.out, /^OK dane-only\n/)
    assert.match(r.out, /TLS-RPT: no attributes for DANE/)
  })
  it('tlsrpt that is not a boolean: one line, 78', async () => {
    const bad = join(tmp.dir, 'bad.yaml')
    writeFileSync(bad, 'profiles:\n  p: { dane: true, sts: true, tlsrpt: yes }\n')
    const r = await run('query', 'sts.rpt.test', '--config', bad, '--map', 'p')
    assert.equal(r.status, 78, r.err)
    assert.match(r.err, /profiles\.p\.tlsrpt/)
    assert.equal(r.err.trim().split('\n').length, 1)
  })
})
