// The issue 16 lab: check() and `smtp-tls-policy check` against real Postfix smtpd servers, resolving
// through NSD + Unbound (DNSSEC). Addresses 127.0.101.x only.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { check, createResolver, type CheckReport } from '../../src/node/index.js'
import { makeCert } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const MX1 = '127.0.101.1'
const MX2 = '127.0.101.2'
const PORT = 2525
const leaf = makeCert({ key: 'ec256', subject: '/CN=mx1.good.test', dns: ['mx1.good.test', 'mx2.good.test'] })
const next = makeCert({ key: 'ec256', subject: '/CN=next.good.test' })
const stranger = makeCert({ key: 'ec256', subject: '/CN=stranger.test' })
const rr = (der: Uint8Array) => formatTlsaRecord(createTlsaRecord(der, { usage: 3, selector: 1, matchingType: 1 }))

let dns: DnsLab
let postfix: PostfixLab

before(
  async () => {
    dns = await startDnsLab({
      zones: [
        {
          name: 'good.test',
          records: [
            '@ MX 10 mx1',
            '@ MX 20 mx2',
            `mx1 A ${MX1}`,
            `mx2 A ${MX2}`,
            `_${PORT}._tcp.mx1 TLSA ${rr(leaf.der)}`,
            `_${PORT}._tcp.mx1 TLSA ${rr(next.der)}`,
            // mx2's record names a key nobody serves: DANE fails there
            `_${PORT}._tcp.mx2 TLSA ${rr(stranger.der)}`,
            '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@good.test"',
          ],
        },
        { name: 'bogus.test', records: ['@ MX 10 mx', `mx A ${MX1}`], dnssec: 'expired' },
        { name: 'plain.test', records: ['@ MX 10 mx', `mx A ${MX1}`], dnssec: 'unsigned' },
      ],
    })
    postfix = await startPostfixLab([
      { address: MX1, port: PORT, certPem: leaf.pem, keyPem: leaf.keyPem },
      { address: MX2, port: PORT, certPem: leaf.pem, keyPem: leaf.keyPem },
    ])
  },
  { timeout: 120_000 },
)
after(async () => {
  await postfix?.stop()
  await dns?.stop()
})

const opts = () => ({
  resolver: createResolver({ servers: [dns.resolverAddress] }),
  port: PORT,
  ehloName: 'client.good.test',
  timeoutMs: 10_000,
})
const find = (r: CheckReport, id: string) => [...r.findings, ...r.hosts.flatMap((h) => h.findings)].filter((f) => f.id === id)

describe('check against Postfix + NSD/Unbound (issue 16)', () => {
  it('two MX hosts: mx1 verified with a next key published, mx2 a DANE mismatch', async () => {
    const r = await check('good.test', opts())
    assert.equal(r.mxSecure, true)
    assert.deepEqual(
      r.hosts.map((h) => h.host),
      ['mx1.good.test', 'mx2.good.test'],
    )
    const [h1, h2] = r.hosts as [CheckReport['hosts'][0], CheckReport['hosts'][0]]
    assert.equal(h1.tlsa.status, 'secure')
    assert.equal(h1.addresses[0]!.starttls, true, JSON.stringify(h1.addresses))
    assert.match(h1.addresses[0]!.protocol ?? '', /^TLSv1\.[23]$/)
    assert.deepEqual(h1.addresses[0]!.matchingRecords, [rr(leaf.der)])
    assert.equal(h1.findings.find((f) => f.id === 'dane-match')?.severity, 'ok')
    assert.equal(h1.findings.find((f) => f.id === 'tlsa-rollover')?.severity, 'ok')
    assert.equal(h2.findings.find((f) => f.id === 'dane-match')?.severity, 'error')
    assert.equal(
      h2.findings.find((f) => f.id === 'tlsa-rollover'),
      undefined,
    )
    assert.equal(r.summary.errors >= 1, true)
  })
  it('expired signatures on the zone: the MX lookup is bogus, an error', async () => {
    const r = await check('bogus.test', opts())
    assert.equal(find(r, 'mx-lookup')[0]?.severity, 'error')
  })
  it('an unsigned zone: a warning, STARTTLS still checked', async () => {
    const r = await check('plain.test', opts())
    assert.equal(find(r, 'mx-dnssec')[0]?.severity, 'warning')
    assert.equal(r.hosts[0]!.addresses[0]!.starttls, true)
  })
  it('the CLI: exit 2 and the failing host named', async () => {
    let out = ''
    const status = await main(
      ['check', 'good.test', '--resolver', dns.resolverAddress, '--port', String(PORT), '--ehlo', 'client.good.test'],
      {
        out: (l) => (out += l + '\n'),
        err: (l) => (out += l + '\n'),
      },
    )
    assert.equal(status, 2, out)
    assert.match(out, /MX 20 mx2\.good\.test\n/)
  })
})
