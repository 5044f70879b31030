// SNI as the server receives it (issue 17). RFC 7672 §8.1: at DANE levels the SNI is the TLSA base
// domain; RFC 7672 §2.2.2: when the MX host is a CNAME whose expansion is secure, TLSA records are
// looked up at the expanded name first, and where found there the base domain is that final target.
// Every other driver test has the base equal to the MX host, so sending the MX host went unnoticed.
//
// The server (smtp-server) records every SNI name it receives and serves a different certificate per
// name: only the certificate served for the base domain is in the TLSA RRset, and the default one (for
// any other name) is a CA-issued certificate for the MX host, so a wrong SNI also changes the verdict.
// docs/connect.md "TLS parameters": SNI = the TLSA base domain at DANE levels, else the MX host; the
// table's `servername=` wins except at DANE levels.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { certificateFingerprint, createTlsaRecord, parsePolicyTable, type SecurityLevel } from '../../src/index.js'
import { createResolver, probe, type ConnectOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const MX = 'mx.sni.test' // CNAME → TARGET, TLSA at the target: base domain = TARGET
const TARGET = 'srv.hosting.test'
const MX2 = 'mx.orig.test' // CNAME → TARGET2, TLSA only at the MX host: base domain = MX2 (RFC 7672 §2.2.2)
const TARGET2 = 'srv2.hosting.test'

const ca = makeCert({ key: 'ec256', subject: '/CN=SNI Test Root', ca: true })
/** served when the SNI is anything but a base domain: PKIX-valid for both MX hosts, in no TLSA RRset */
const byDefault = makeCert({ key: 'ec256', subject: `/CN=${MX}`, dns: [MX, MX2], issuer: ca })
/** served for SNI = TARGET or MX2 only; its key is the one the TLSA records name */
const forBase = makeCert({ key: 'ec256', subject: `/CN=${TARGET}`, dns: [TARGET, MX2] })
const tlsaOf = (c: Issued) => {
  const r = createTlsaRecord(c.der, { usage: 3, selector: 1, matchingType: 1 })
  return { usage: r.usage, selector: r.selector, matchingType: r.matchingType, certificate: Buffer.from(r.data) }
}

let smtp: TestSmtpServer
let dns: TestDnsServer
let base: ConnectOptions
const seen: string[] = []

before(async () => {
  smtp = await startSmtpServer({
    certPem: byDefault.pem,
    keyPem: byDefault.keyPem,
    sni: { [TARGET]: { certPem: forBase.pem, keyPem: forBase.keyPem }, [MX2]: { certPem: forBase.pem, keyPem: forBase.keyPem } },
    onServername: (n) => seen.push(n),
  })
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['sni.test', 'MX', { preference: 10, exchange: MX }],
        [MX, 'CNAME', TARGET],
        [TARGET, 'A', '127.0.0.1'],
        [`_${smtp.port}._tcp.${TARGET}`, 'TLSA', tlsaOf(forBase)],
        ['orig.test', 'MX', { preference: 10, exchange: MX2 }],
        [MX2, 'CNAME', TARGET2],
        [TARGET2, 'A', '127.0.0.1'],
        [`_${smtp.port}._tcp.${MX2}`, 'TLSA', tlsaOf(forBase)],
        ['plain.test', 'MX', { preference: 10, exchange: 'mx.plain.test' }],
        ['mx.plain.test', 'CNAME', TARGET2],
      ],
    }),
  )
  base = {
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
    port: smtp.port,
    ehloName: 'client.test',
    timeoutMs: 5000,
    ca: ca.pem,
  }
})
after(async () => {
  await smtp?.close()
  await dns?.close()
})

/** probe() (connect, verdict, QUIT) and the SNI names the server received during that one probe */
async function sniOf(destination: string, o: ConnectOptions): Promise<{ sni: string[]; status: string; mx: string | undefined }> {
  seen.length = 0
  const r = await probe(destination, { ...base, ...o })
  return { sni: [...seen], status: r.outcome.status, mx: r.outcome.host }
}

describe('SNI at DANE levels is the TLSA base domain (RFC 7672 §8.1)', () => {
  for (const level of ['dane', 'dane-only'] as const) {
    it(`${level}: MX host a secure CNAME, TLSA at the target: SNI = the target, not the MX host`, async () => {
      // the base domain the driver must use comes from discovery (RFC 7672 §2.2.2)
      const r = await probe('sni.test', { ...base, level })
      assert.equal(r.facts?.mx[0]?.host, MX)
      assert.equal(r.facts?.mx[0]?.tlsa.base, TARGET)
      const got = await sniOf('sni.test', { level })
      assert.deepEqual(got.sni, [TARGET], `the server received SNI ${JSON.stringify(got.sni)}`)
      // and only the base domain's certificate (the one in the TLSA RRset) was served
      assert.equal(got.status, 'verified')
      assert.equal(got.mx, MX)
    })
  }
  it('dane: TLSA only at the MX host (not at its CNAME target): SNI = the MX host, the base domain', async () => {
    const r = await probe('orig.test', { ...base, level: 'dane' })
    assert.equal(r.facts?.mx[0]?.tlsa.base, MX2)
    assert.equal(r.facts?.mx[0]?.canonicalHost, TARGET2)
    const got = await sniOf('orig.test', { level: 'dane' })
    assert.deepEqual(got.sni, [MX2])
    assert.equal(got.status, 'verified')
  })
  it('dane with servername= in the table: DANE still fixes the SNI to the base domain', async () => {
    const got = await sniOf('sni.test', { policyTable: parsePolicyTable('sni.test dane servername=other.test\n') })
    assert.deepEqual(got.sni, [TARGET])
    assert.equal(got.status, 'verified')
  })
})

describe('SNI at the other levels is the MX host as published (docs/connect.md "TLS parameters")', () => {
  const cases: Array<[SecurityLevel, Partial<ConnectOptions>, string]> = [
    ['may', {}, 'trusted'],
    ['encrypt', {}, 'trusted'],
    ['verify', {}, 'verified'],
    ['fingerprint', { policy: { fingerprintMatch: [certificateFingerprint(byDefault.der)] } }, 'verified'],
  ]
  for (const [level, extra, status] of cases) {
    it(`${level}: SNI = ${MX} (the MX host, not its CNAME target), served the default certificate`, async () => {
      const got = await sniOf('sni.test', { ...extra, level })
      assert.deepEqual(got.sni, [MX])
      assert.equal(got.status, status)
    })
  }
  it('may with servername=custom.test in the table: SNI = custom.test', async () => {
    const got = await sniOf('sni.test', { policyTable: parsePolicyTable('sni.test may servername=custom.test\n') })
    assert.deepEqual(got.sni, ['custom.test'])
  })
  it('dane with no TLSA records at the CNAME target nor the MX host (degraded to may): SNI = the MX host', async () => {
    const r = await probe('plain.test', { ...base, level: 'dane' })
    assert.equal(r.effectiveLevel, 'may')
    const got = await sniOf('plain.test', { level: 'dane' })
    assert.deepEqual(got.sni, ['mx.plain.test'])
  })
})
