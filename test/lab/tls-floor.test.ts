// Issue 17: the TLS 1.2 floor. A server that speaks only TLS 1.1 (`openssl s_server -tls1_1` at
// OpenSSL security level 0, behind a STARTTLS front: test/lab/sserver.ts) must fail the handshake
// (deferred 4.7.5) at `encrypt` and every level above it (issue 17; docs/connect.md "TLS parameters",
// protocol floor), while the same certificate, DNS and TLSA records on a TLS 1.2-only server are
// accepted. At `may` TLS 1.1 stays allowed unless `protocols=` forbids it, as in Postfix (postconf(5)
// smtp_tls_protocols, default >=TLSv1).
//
// Node's bundled OpenSSL 3 runs at security level 1 by default, where TLS 1.0/1.1 cannot work at all
// ("legacy sigalg disallowed"): that default, not our floor, would fail these handshakes, and removing
// the floor from src/node/connect.ts would go unnoticed. So this process lowers Node's default cipher
// list to security level 0 (as a deployment with a permissive OpenSSL policy would), before any secure
// context exists: then only our `minVersion` stands between the client and TLS 1.1, and the first
// `may` row shows that a TLS 1.1 handshake with this server does succeed when the policy permits it
// (without the override that row fails: Node's default refuses TLS 1.1 and `may` falls back to plaintext).
import tls from 'node:tls'
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { certificateFingerprint, createTlsaRecord, formatTlsaRecord, parsePolicyTable, type SecurityLevel } from '../../src/index.js'
import { createResolver, probe, type ConnectOptions } from '../../src/node/index.js'
import { makeCert } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { startSServer, type SServer } from './sserver.js'

tls.DEFAULT_CIPHERS = 'DEFAULT:@SECLEVEL=0'

const TLS11 = '127.0.96.1' // tls11.test: MX mx.tls11.test, s_server -tls1_1
const TLS12 = '127.0.96.2' // tls12.test: MX mx.tls12.test, s_server -tls1_2 (the control)
const ca = makeCert({ key: 'ec256', subject: '/CN=TLS Floor Lab Root', ca: true })
const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.tls11.test', dns: ['mx.tls11.test', 'mx.tls12.test'], issuer: ca })
const rr = formatTlsaRecord(createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 }))

let dns: DnsLab
let s11: SServer
let s12: SServer

before(async () => {
  dns = await startDnsLab({
    zones: ['tls11', 'tls12'].map((z) => ({
      name: `${z}.test`,
      records: ['@ MX 10 mx', `mx A ${z === 'tls11' ? TLS11 : TLS12}`, `_25._tcp.mx TLSA ${rr}`],
    })),
  })
  const legacy = ['-cipher', 'DEFAULT:@SECLEVEL=0']
  s11 = await startSServer({ address: TLS11, certPem: leaf.pem + ca.pem, keyPem: leaf.keyPem, args: ['-tls1_1', ...legacy] })
  s12 = await startSServer({ address: TLS12, certPem: leaf.pem + ca.pem, keyPem: leaf.keyPem, args: ['-tls1_2', ...legacy] })
})
after(async () => {
  await s11?.stop()
  await s12?.stop()
  await dns?.stop()
})

const options = (o: Partial<ConnectOptions>): ConnectOptions => ({
  resolver: createResolver({ servers: [dns.resolverAddress], timeoutMs: 3000, attempts: 1 }),
  ehloName: 'client.floor.test',
  timeoutMs: 10_000,
  ca: ca.pem,
  ...o,
})

const levels: Array<[SecurityLevel, string, Partial<ConnectOptions>]> = [
  ['encrypt', 'trusted', {}],
  ['dane', 'verified', {}],
  ['dane-only', 'verified', {}],
  ['fingerprint', 'verified', { policy: { fingerprintMatch: [certificateFingerprint(leaf.der)] } }],
  ['verify', 'verified', {}],
  ['secure', 'verified', {}],
]

describe('TLS 1.2 is the floor at encrypt and above (docs/connect.md "TLS parameters")', () => {
  for (const [level, status, extra] of levels) {
    it(`${level}: a TLS 1.1-only server is deferred 4.7.5 (handshake failure); TLS 1.2 with the same certificate is ${status}`, async () => {
      const ok = await probe('tls12.test', options({ ...extra, level }))
      assert.equal(ok.outcome.status, status, `control (TLS 1.2 server): ${JSON.stringify(ok.outcome)}`)
      assert.equal(ok.outcome.protocol, 'TLSv1.2')
      const r = await probe('tls11.test', options({ ...extra, level }))
      const detail = `${JSON.stringify(r.outcome)}\n${r.attempts.map((a) => a.transcript.join('\n')).join('\n--\n')}`
      assert.equal(r.outcome.status, 'deferred', `TLS 1.1 accepted at ${level}: ${detail}`)
      assert.equal(r.outcome.enhancedStatus, '4.7.5', detail)
      assert.equal(r.outcome.code, 'ERR_TLS_HANDSHAKE', detail)
      assert.equal(r.outcome.permanent, undefined)
      // no plaintext retry above `may` (Postfix TLS_README)
      assert.equal(r.attempts.length, 1, detail)
    })
  }
})

describe('may: TLS 1.1 is allowed unless the policy forbids it (Postfix smtp_tls_protocols, default >=TLSv1)', () => {
  it('may: the TLS 1.1 server is used over TLS 1.1 (this also proves the server and client can speak TLS 1.1)', async () => {
    const r = await probe('tls11.test', options({ level: 'may' }))
    assert.equal(r.outcome.status, 'trusted', JSON.stringify(r.outcome))
    assert.equal(r.outcome.protocol, 'TLSv1.1')
  })
  it('may protocols=>=TLSv1.2: the handshake fails, and may retries in plaintext on a new connection', async () => {
    const r = await probe('tls11.test', options({ policyTable: parsePolicyTable('tls11.test may protocols=>=TLSv1.2\n') }))
    assert.equal(r.outcome.status, 'plaintext', JSON.stringify(r.outcome))
    assert.equal(r.attempts.length, 2)
    assert.equal(r.attempts[0]!.error?.code, 'ERR_TLS_HANDSHAKE')
  })
})
