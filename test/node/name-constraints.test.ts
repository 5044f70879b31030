// Issue 10 §2 end to end: a CA whose name constraints permit only attacker.test issues leaves whose
// names OpenSSL holds inside attacker.test (so the chain verifies) but that a URL host parser, an IDN
// mapping or a lenient CN check would read as mx.victim.test. connect() at verify and secure with that
// CA must defer 4.7.5 on a name mismatch, never report verified.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect, createResolver, SmtpTlsConnectError, type ConnectOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone } from '../helpers/dns-server.js'
import { makeCert, openssl, tempDir, type Issued } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const ca = makeCert({
  key: 'ec256',
  subject: '/CN=Attacker Constrained CA',
  ca: true,
  ext: ['nameConstraints=critical,permitted;DNS:attacker.test'],
})

/** subjectAltName with dNSName entries holding these exact bytes (UTF-8), written as DER so no config syntax gets in the way. */
function sanDer(names: string[]): string {
  const len = (n: number) => (n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff])
  const body = names.flatMap((n) => {
    const b = [...Buffer.from(n, 'utf8')]
    return [0x82, ...len(b.length), ...b]
  })
  return `subjectAltName=DER:${Buffer.from([0x30, ...len(body.length), ...body]).toString('hex')}`
}

/** A CA whose name constraints exclude victim.test. */
const excluding = makeCert({
  key: 'ec256',
  subject: '/CN=Victim Excluded CA',
  ca: true,
  ext: ['nameConstraints=critical,excluded;DNS:victim.test'],
})

/** OpenSSL's own verdict on leaf ← issuer (the chain check the driver relies on at verify/secure). */
function opensslAccepts(leaf: Issued, issuer = ca): boolean {
  const { dir, done } = tempDir()
  try {
    writeFileSync(join(dir, 'ca.pem'), issuer.pem)
    writeFileSync(join(dir, 'leaf.pem'), leaf.pem)
    openssl(['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'leaf.pem')])
    return true
  } catch {
    return false
  } finally {
    done()
  }
}

const hostile: Array<[string, Issued]> = [
  ...['/', '?', '#', '\\', '@'].map((d): [string, Issued] => [
    `SAN mx.victim.test${d}ä.attacker.test`,
    makeCert({ key: 'ec256', subject: '/CN=x', ext: [sanDer([`mx.victim.test${d}ä.attacker.test`])], issuer: ca }),
  ]),
  [
    'SAN ä@mx.victim.test?.attacker.test',
    makeCert({ key: 'ec256', subject: '/CN=x', ext: [sanDer(['ä@mx.victim.test?.attacker.test'])], issuer: ca }),
  ],
  // CN-only leaves: OpenSSL holds a CN to DNS name constraints only when it looks like a host name.
  ['CN mx.victim.test. (final dot)', makeCert({ key: 'ec256', subject: '/CN=mx.victim.test.', issuer: ca })],
  ['CN *.victim.test (wildcard)', makeCert({ key: 'ec256', subject: '/CN=*.victim.test', issuer: ca })],
  ['CN ＭＸ.victim.test (full-width letters)', makeCert({ key: 'ec256', subject: '/CN=ＭＸ.victim.test', issuer: ca, utf8: true })],
]
const good = makeCert({ key: 'ec256', subject: '/CN=x', dns: ['mx.attacker.test'], issuer: ca })
const idn = makeCert({ key: 'ec256', subject: '/CN=x', dns: ['xn--bcher-kva.attacker.test'], issuer: ca })

const servers: TestSmtpServer[] = []
let dns: Awaited<ReturnType<typeof startDnsServer>>
let base: ConnectOptions
before(async () => {
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['mx.victim.test', 'A', '127.0.0.1'],
        ['mx.attacker.test', 'A', '127.0.0.1'],
        ['xn--bcher-kva.attacker.test', 'A', '127.0.0.1'],
      ],
    }),
  )
  base = {
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
    ehloName: 'client.test',
    timeoutMs: 5000,
    ca: ca.pem,
  }
})
after(async () => {
  for (const s of servers) await s.close()
  await dns.close()
})
async function serve(leaf: Issued, issuer = ca): Promise<number> {
  const s = await startSmtpServer({ certPem: leaf.pem + issuer.pem, keyPem: leaf.keyPem })
  servers.push(s)
  return s.port
}

describe('connect() with a name-constrained CA and hostile names (issue 10 §2)', () => {
  it('control: a leaf inside the constraints is verified at verify and secure', async () => {
    assert.ok(opensslAccepts(good))
    const port = await serve(good)
    for (const level of ['verify', 'secure'] as const) {
      const c = await connect(`[mx.attacker.test]:${port}`, { ...base, level })
      c.socket.destroy()
      assert.equal(c.outcome.status, 'verified', level)
    }
  })
  it('an IDN destination [bücher.attacker.test] is looked up and matched as its A-label: verified', async () => {
    const port = await serve(idn)
    for (const level of ['verify', 'secure'] as const) {
      const c = await connect(`[bücher.attacker.test]:${port}`, { ...base, level })
      c.socket.destroy()
      assert.equal(c.outcome.status, 'verified', level)
    }
  })
  it('SAN mx.victim.test. from a CA excluding victim.test: OpenSSL accepts the chain; verify and secure defer 4.7.5', async () => {
    const leaf = makeCert({ key: 'ec256', subject: '/CN=x', dns: ['mx.victim.test.'], issuer: excluding })
    assert.ok(opensslAccepts(leaf, excluding), 'OpenSSL must accept the chain, or the test proves nothing')
    const port = await serve(leaf, excluding)
    for (const level of ['verify', 'secure'] as const) {
      const e = await connect(`[mx.victim.test]:${port}`, { ...base, ca: excluding.pem, level }).then(
        (c) => {
          c.socket.destroy()
          return assert.fail(`${level}: ${c.outcome.status}`)
        },
        (err: unknown) => err,
      )
      assert.ok(e instanceof SmtpTlsConnectError, String(e))
      assert.equal(e.enhancedStatus, '4.7.5', level)
      assert.equal(e.attempts[0]!.verdict?.error?.code, 'ERR_PKIX_NAME_MISMATCH', level)
    }
  })
  for (const [what, leaf] of hostile) {
    it(`${what}: OpenSSL accepts the chain; verify and secure defer 4.7.5 on the name, never verified`, async () => {
      assert.ok(opensslAccepts(leaf), 'OpenSSL must accept the chain, or the test proves nothing')
      const port = await serve(leaf)
      for (const level of ['verify', 'secure'] as const) {
        const e = await connect(`[mx.victim.test]:${port}`, { ...base, level }).then(
          (c) => {
            c.socket.destroy()
            return assert.fail(`${level}: ${c.outcome.status} for ${what}`)
          },
          (err: unknown) => err,
        )
        assert.ok(e instanceof SmtpTlsConnectError, String(e))
        assert.equal(e.enhancedStatus, '4.7.5', level)
        assert.equal(e.temporary, true)
        const v = e.attempts[0]!.verdict
        assert.equal(v?.status, 'deferred', level)
        assert.equal(v?.error?.code, 'ERR_PKIX_NAME_MISMATCH', `${level}: ${v?.reason}`)
        assert.equal(v?.tlsrpt, 'certificate-host-mismatch')
      }
    })
  }
})
