// The socketmap policy server against Postfix's own socketmap client (socketmap_table(5)):
// `postmap -q KEY socketmap:inet:127.0.0.1:PORT:dane+sts` is the simplest real consumer. The server
// resolves through the lab's validating Unbound (random port): a DANE-verified domain answers
// dane-only (RFC 7672 §2.2), a bogus zone makes postmap report a temporary failure (never a weaker
// answer, RFC 7672 §2.1.2), an unsigned domain is not found.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createMemoryStore, createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { createResolver, createSocketmapServer, type SocketmapServer } from '../../src/node/index.js'
import { makeCert, tempDir } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'

const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.sm-dane.test', dns: ['mx.sm-dane.test'] })
const tlsa = formatTlsaRecord(createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 }))

let dns: DnsLab
let server: SocketmapServer
const tmp = tempDir()

before(async () => {
  dns = await startDnsLab({
    zones: [
      { name: 'sm-dane.test', records: ['@ MX 10 mx', 'mx A 127.0.100.1', `_25._tcp.mx TLSA ${tlsa}`] },
      { name: 'sm-bogus.test', records: ['@ MX 10 mx', 'mx A 127.0.100.2', `_25._tcp.mx TLSA ${tlsa}`], dnssec: 'expired' },
      { name: 'sm-plain.test', records: ['@ MX 10 mx', 'mx A 127.0.100.3'], dnssec: 'unsigned' },
      // smbücher.test, published under its A-label
      { name: 'xn--smbcher-p2a.test', records: ['@ MX 10 mx', 'mx A 127.0.100.4', `_25._tcp.mx TLSA ${tlsa}`] },
    ],
  })
  server = await createSocketmapServer({
    listen: 'inet:127.0.0.1:0',
    resolver: createResolver({ servers: [dns.resolverAddress], timeoutMs: 2000, attempts: 2 }),
    store: createMemoryStore(),
    families: [4],
  })
  // Debian's postfix package has no /etc/postfix/main.cf here: postmap gets its own configuration directory.
  writeFileSync(join(tmp.dir, 'main.cf'), 'compatibility_level = 3.6\n')
})
after(async () => {
  await server?.close()
  await dns?.stop()
  tmp.done()
})

/** Asynchronous: the server runs in this process, so a synchronous spawn would block its event loop. */
function postmap(key: string): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      'postmap',
      ['-c', tmp.dir, '-q', key, `socketmap:${server.address}:dane+sts`],
      { encoding: 'utf8', timeout: 30_000 },
      (e, out, err) => resolve({ status: e === null ? 0 : typeof e.code === 'number' ? e.code : null, out, err }),
    )
  })
}

describe('postmap -q against the socketmap server (Postfix socketmap client)', () => {
  it('a DANE-verified domain → dane-only', async () => {
    const r = await postmap('sm-dane.test')
    assert.equal(r.status, 0, r.err)
    assert.equal(r.out, 'dane-only\n')
  })
  it('[host] nexthop with TLSA → dane-only', async () => {
    const r = await postmap('[mx.sm-dane.test]')
    assert.equal(r.status, 0, r.err)
    assert.equal(r.out, 'dane-only\n')
  })
  it('a bogus zone → postmap reports a temporary failure, no answer', async () => {
    const r = await postmap('sm-bogus.test')
    assert.notEqual(r.status, 0)
    assert.equal(r.out, '')
    // Postfix's socketmap client: "socketmap server temporary error: …" then a fatal "query error" (no value).
    assert.match(r.err, /socketmap server temporary error: MX lookup failed for sm-bogus\.test/, r.err)
    assert.match(r.err, /query error/, r.err)
  })
  it('an internationalised domain, as Postfix (smtputf8_enable) looks it up in UTF-8 → its A-label policy, dane-only', async () => {
    const r = await postmap('SMBücher.test')
    assert.equal(r.status, 0, r.err)
    assert.equal(r.out, 'dane-only\n')
  })
  it('an unsigned domain → not found (postmap status 1, no output, no error)', async () => {
    const r = await postmap('sm-plain.test')
    assert.equal(r.status, 1, r.err)
    assert.equal(r.out, '')
    assert.doesNotMatch(r.err, /warning|fatal|error/i)
  })
})
