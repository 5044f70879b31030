// summaryLine: Postfix's one-line summary (tls_misc.c tls_log_summary); with no connection at all it
// names the destination, never a placeholder like "?[?]:25" (issue 17).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { summaryLine } from '../../src/node/index.js'

describe('summaryLine', () => {
  it('a connection: host[address]:port and the TLS parameters', () => {
    const line = summaryLine({
      status: 'verified',
      host: 'mx1.example',
      address: '192.0.2.1',
      port: 25,
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
    })
    assert.equal(line, 'Verified TLS connection established to mx1.example[192.0.2.1]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384')
  })
  it('no connection at all: the destination is named', () => {
    const line = summaryLine({ status: 'deferred', port: 25, enhancedStatus: '4.4.3', reason: 'cannot choose servers' }, [], 'example.com')
    assert.equal(line, 'Delivery deferred for example.com: 4.4.3 cannot choose servers')
    assert.doesNotMatch(summaryLine({ status: 'deferred', port: 25 }), /\?/)
  })
  it('a host that was never connected to (no address): host:port', () => {
    assert.match(
      summaryLine({ status: 'deferred', host: 'mx1.example', port: 25, reason: 'TLSA lookup failed' }),
      /^Delivery deferred for mx1\.example:25: /,
    )
  })
})
