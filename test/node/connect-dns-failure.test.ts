// A destination whose MX cannot be looked up defers 4.4.3 (RFC 7672 §2.1.2). Only a DNSSEC failure
// (SERVFAIL, bogus) is a TLS-RPT `dnssec-invalid`; a resolver that never answers is no TLS failure.
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import { connect, createResolver, SmtpTlsConnectError } from '../../src/node/index.js'

const silent = createSocket('udp4')
let port = 0
before(async () => {
  silent.on('error', () => undefined)
  silent.on('message', () => undefined) // reads every query, answers none
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve))
  port = silent.address().port
})
after(() => silent.close())

describe('connect: the MX lookup times out', () => {
  it('deferred 4.4.3, temporary, without a TLS-RPT result type', async () => {
    const resolver = createResolver({ servers: [`127.0.0.1:${port}`], timeoutMs: 100, attempts: 1 })
    await assert.rejects(connect('timeout.test', { resolver, timeoutMs: 1000 }), (e) => {
      assert.ok(e instanceof SmtpTlsConnectError, String(e))
      assert.equal(e.code, 'ERR_DNS_TIMEOUT')
      assert.equal(e.temporary, true)
      assert.equal(e.enhancedStatus, '4.4.3')
      assert.equal(e.tlsrpt, undefined)
      return true
    })
  })
})
