// Issue 17: the SNI at DANE levels, as a real TLS server receives it, when the TLSA base domain differs
// from the MX host. RFC 7672 §8.1: SNI = the TLSA base domain; RFC 7672 §2.2.2: the MX host
// mx.snilab.test is a CNAME into the signed zone hostlab.test, whose target srv.hostlab.test carries
// the TLSA records, so the base domain is srv.hostlab.test.
//
// The server is `openssl s_server` (test/lab/sserver.ts). It prints the SNI name of every ClientHello,
// and serves the certificate named by the TLSA record only for SNI = the base domain (-servername
// -cert2); any other name (or none) gets a CA-issued certificate for the MX host that no TLSA record
// names. So the SNI is checked twice: in s_server's own report, and by the verdict, which is
// `verified` at `dane` only when the right name was sent. Postfix's posttls-finger, resolving through
// the same NSD + Unbound, is the reference: its SNI at `dane` must be the same name.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createTlsaRecord, formatTlsaRecord, type SecurityLevel } from '../../src/index.js'
import { createResolver, probe, type ConnectOptions, type ProbeReport } from '../../src/node/index.js'
import { makeCert, tempDir, type Issued } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { posttlsFingerAsync } from './postfix.js'
import { startSServer, type SServer } from './sserver.js'

const ADDRESS = '127.0.95.1' // snilab.test: MX mx.snilab.test → CNAME srv.hostlab.test, TLSA at the target
const ADDRESS2 = '127.0.95.2' // origlab.test: MX mx.origlab.test → CNAME srv2.hostlab.test, TLSA at the MX host only
const MX = 'mx.snilab.test'
const BASE = 'srv.hostlab.test'
const MX2 = 'mx.origlab.test'
const TARGET2 = 'srv2.hostlab.test'

const ca = makeCert({ key: 'ec256', subject: '/CN=SNI Lab Root', ca: true })
const byDefault = makeCert({ key: 'ec256', subject: `/CN=${MX}`, dns: [MX, MX2], issuer: ca })
const forBase = makeCert({ key: 'ec256', subject: `/CN=${BASE}`, dns: [BASE, MX2] })
const tlsa = (c: Issued) => formatTlsaRecord(createTlsaRecord(c.der, { usage: 3, selector: 1, matchingType: 1 }))

let dns: DnsLab
let s1: SServer
let s2: SServer
const tmp = tempDir()
const resolvConf = join(tmp.dir, 'resolv.conf')
// posttls-finger needs only a main.cf: no Postfix master runs for this test
const fingerConf = tmp.dir

before(async () => {
  dns = await startDnsLab({
    // port 53: posttls-finger reads /etc/resolv.conf (bind-mounted in its own namespace)
    port: 53,
    zones: [
      { name: 'snilab.test', records: ['@ MX 10 mx', `mx CNAME ${BASE}.`] },
      { name: 'origlab.test', records: ['@ MX 10 mx', `mx CNAME ${TARGET2}.`, `_25._tcp.mx TLSA ${tlsa(forBase)}`] },
      { name: 'hostlab.test', records: [`srv A ${ADDRESS}`, `_25._tcp.srv TLSA ${tlsa(forBase)}`, `srv2 A ${ADDRESS2}`] },
    ],
  })
  writeFileSync(resolvConf, `nameserver ${dns.resolverIp}\noptions trust-ad\n`)
  writeFileSync(
    join(fingerConf, 'main.cf'),
    [
      'compatibility_level = 3.6',
      'smtp_dns_support_level = dnssec',
      'smtp_host_lookup = dns',
      'smtp_tls_session_cache_database =',
      'dnssec_probe =',
      '',
    ].join('\n'),
  )
  const sni = (servername: string) => ({ servername, certPem: forBase.pem, keyPem: forBase.keyPem })
  s1 = await startSServer({ address: ADDRESS, certPem: byDefault.pem + ca.pem, keyPem: byDefault.keyPem, sni: sni(BASE) })
  s2 = await startSServer({ address: ADDRESS2, certPem: byDefault.pem + ca.pem, keyPem: byDefault.keyPem, sni: sni(MX2) })
})
after(async () => {
  await s1?.stop()
  await s2?.stop()
  await dns?.stop()
  tmp.done()
})

/** probe(), then the SNI names s_server reported for that one connection */
async function probeSni(server: SServer, destination: string, level: SecurityLevel): Promise<{ r: ProbeReport; sni: string[] }> {
  server.takeServernames()
  const before = server.closedCount()
  const o: ConnectOptions = {
    level,
    resolver: createResolver({ servers: [dns.resolverAddress], timeoutMs: 3000, attempts: 1 }),
    ehloName: 'client.snilab.test',
    timeoutMs: 10_000,
    ca: ca.pem,
  }
  const r = await probe(destination, o)
  await server.closed(before + r.attempts.filter((a) => a.transcript.includes('> STARTTLS')).length)
  return { r, sni: server.takeServernames() }
}

describe('SNI = TLSA base domain at DANE levels, seen by openssl s_server (RFC 7672 §8.1, §2.2.2)', () => {
  for (const level of ['dane', 'dane-only'] as const) {
    it(`${level}: ${MX} is a CNAME to ${BASE} (TLSA there): the server receives SNI ${BASE}`, async () => {
      const { r, sni } = await probeSni(s1, 'snilab.test', level)
      assert.equal(r.facts?.mx[0]?.tlsa.base, BASE)
      assert.deepEqual(sni, [BASE], `s_server saw SNI ${JSON.stringify(sni)}\n${JSON.stringify(r.outcome)}`)
      assert.equal(r.outcome.status, 'verified', JSON.stringify(r.outcome))
      assert.equal(r.outcome.host, MX)
    })
  }
  it(`dane: ${MX2} is a CNAME to ${TARGET2}, TLSA only at ${MX2}: SNI = ${MX2} (the base domain)`, async () => {
    const { r, sni } = await probeSni(s2, 'origlab.test', 'dane')
    assert.equal(r.facts?.mx[0]?.tlsa.base, MX2)
    assert.deepEqual(sni, [MX2])
    assert.equal(r.outcome.status, 'verified', JSON.stringify(r.outcome))
  })
  it('posttls-finger (Postfix 3.7) sends the same SNI at dane and verifies the same server', async () => {
    s1.takeServernames()
    const before = s1.closedCount()
    const f = await posttlsFingerAsync('snilab.test', { configDir: fingerConf, level: 'dane', resolvConf })
    assert.equal(f.trust, 'Verified', f.output)
    await s1.closed(before + 1)
    assert.deepEqual(s1.takeServernames(), [BASE], f.output)
  })
  const others: Array<[SecurityLevel, string]> = [
    ['may', 'trusted'],
    ['encrypt', 'trusted'],
    ['verify', 'verified'],
  ]
  for (const [level, status] of others) {
    it(`${level}: SNI = ${MX}, the MX host as published (docs/connect.md "TLS parameters")`, async () => {
      const { r, sni } = await probeSni(s1, 'snilab.test', level)
      assert.deepEqual(sni, [MX])
      assert.equal(r.outcome.status, status, JSON.stringify(r.outcome))
    })
  }
})
