// maxConcurrentHandshakes: concurrent connections queue for a TLS handshake slot and all complete.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createTlsaRecord, parsePolicyTable } from '../../src/index.js'
import { connect, createResolver, probe, type ConnectOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer } from '../helpers/dns-server.js'
import { makeCert } from '../helpers/openssl.js'
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=mx.conc.test', dns: ['mx.conc.test'] })
let smtp: TestSmtpServer
let dns: TestDnsServer
let o: ConnectOptions

before(async () => {
  smtp = await startSmtpServer({ certPem: cert.pem, keyPem: cert.keyPem })
  const r = createTlsaRecord(cert.der, { usage: 3, selector: 1, matchingType: 1 })
  dns = await startDnsServer(
    validatingZone({
      records: [
        ['conc.test', 'MX', { preference: 10, exchange: 'mx.conc.test' }],
        ['mx.conc.test', 'A', '127.0.0.1'],
        [`_${smtp.port}._tcp.mx.conc.test`, 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) }],
      ],
    }),
  )
  o = {
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
    port: smtp.port,
    ehloName: 'client.test',
    timeoutMs: 10_000,
    level: 'dane',
  }
})
after(async () => {
  await smtp?.close()
  await dns?.close()
})

describe('maxConcurrentHandshakes', () => {
  it('one slot: 12 concurrent connections wait their turn and are all verified', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => connect('conc.test', { ...o, maxConcurrentHandshakes: 1 })))
    assert.deepEqual(
      results.map((c) => c.outcome.status),
      Array(12).fill('verified'),
    )
    for (const c of results) c.socket.destroy()
  })
  it('a failed handshake gives its slot back (the next connections still complete)', async () => {
    // only TLS 1.0/1.1 allowed: Node's server refuses the handshake
    const policyTable = parsePolicyTable('conc.test encrypt protocols=!TLSv1.2:!TLSv1.3')
    const bad = probe('conc.test', { ...o, maxConcurrentHandshakes: 1, policyTable })
    const good = probe('conc.test', { ...o, maxConcurrentHandshakes: 1 })
    const [b, g] = await Promise.all([bad, good])
    assert.equal(b.outcome.status, 'deferred')
    assert.equal(g.outcome.status, 'verified')
  })
  it('rejects a limit below 1', async () => {
    await assert.rejects(connect('conc.test', { ...o, maxConcurrentHandshakes: 0 }), { code: 'ERR_INVALID_ARGUMENT' })
  })
})
