// diagnostics_channel observability of the driver: connect, starttls, handshake, verdict, in order.
import assert from 'node:assert/strict'
import diagnostics_channel from 'node:diagnostics_channel'
import { describe, it } from 'node:test'
import { createTlsaRecord } from '../../src/index.js'
import { createResolver, probe } from '../../src/node/index.js'
import { startDnsServer, validatingZone } from '../helpers/dns-server.js'
import { makeCert } from '../helpers/openssl.js'
import { startSmtpServer } from '../helpers/smtp-server.js'

describe('diagnostics_channel', () => {
  it('publishes connect, starttls, handshake and verdict for a DANE probe', async () => {
    const cert = makeCert({ key: 'ec256', subject: '/CN=mx.chan.test', dns: ['mx.chan.test'] })
    const smtp = await startSmtpServer({ certPem: cert.pem, keyPem: cert.keyPem })
    const r = createTlsaRecord(cert.der, { usage: 3, selector: 1, matchingType: 1 })
    const dns = await startDnsServer(
      validatingZone({
        records: [
          ['chan.test', 'MX', { preference: 10, exchange: 'mx.chan.test' }],
          ['mx.chan.test', 'A', '127.0.0.1'],
          [`_${smtp.port}._tcp.mx.chan.test`, 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) }],
        ],
      }),
    )
    const seen: string[] = []
    const subs = ['connect', 'starttls', 'handshake', 'verdict'].map((name) => {
      const fn = (m: unknown) => {
        const msg = m as { host: string; servername?: string; verdict?: { status: string } }
        seen.push(`${name} ${msg.host}${msg.servername ? ` sni=${msg.servername}` : ''}${msg.verdict ? ` ${msg.verdict.status}` : ''}`)
      }
      diagnostics_channel.subscribe(`smtp-tls-policy:${name}`, fn)
      return () => diagnostics_channel.unsubscribe(`smtp-tls-policy:${name}`, fn)
    })
    try {
      const report = await probe('chan.test', {
        level: 'dane',
        port: smtp.port,
        ehloName: 'client.test',
        timeoutMs: 5000,
        resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
      })
      assert.equal(report.outcome.status, 'verified')
      // RFC 7672 §8.1: SNI is the TLSA base domain
      assert.deepEqual(seen, [
        'connect mx.chan.test',
        'starttls mx.chan.test sni=mx.chan.test',
        'handshake mx.chan.test',
        'verdict mx.chan.test verified',
      ])
    } finally {
      subs.forEach((u) => u())
      await dns.close()
      await smtp.close()
    }
  })
})
