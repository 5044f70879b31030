// diagnostics_channel observability of the driver: connect, starttls, handshake, verdict, in order.
import assert from 'node:assert/strict'
import diagnostics_channel from 'node:diagnostics_channel'
import { describe, it } from 'node:test'
import { probe } from '../../src/node/index.js'
import { startDestination } from '../helpers/destination.js'

describe('diagnostics_channel', () => {
  it('publishes connect, starttls, handshake and verdict for a DANE probe', async () => {
    const dest = await startDestination('chan.test', { tlsa: true })
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
      const report = await probe('chan.test', { ...dest.options, level: 'dane' })
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
      await dest.close()
    }
  })
})
