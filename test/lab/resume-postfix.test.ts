// TLS session resumption against the lab's Postfix smtpd (TLS 1.3 tickets, keys from tlsmgr(8)), DANE
// through NSD + Unbound: with a tlsSessionCache the second probe() resumes (our isSessionReused(), and
// smtpd logs "Reusing old session"), is still verified by the TLSA record, and a changed TLSA RRset
// makes a full handshake again. Addresses 127.0.106.x only.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { createResolver, createTlsSessionCache, probe, type ConnectOptions, type ProbeReport } from '../../src/node/index.js'
import { makeCert } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const ADDRESS = '127.0.106.1'
const leaf = makeCert({ key: 'rsa2048', subject: '/CN=mx.resume.test', dns: ['mx.resume.test'] })
const spare = makeCert({ key: 'ec256', subject: '/CN=spare.resume.test', dns: ['spare.resume.test'] })
const rr = (c: typeof leaf) => formatTlsaRecord(createTlsaRecord(c.der, { usage: 3, selector: 1, matchingType: 1 }))
let dns: DnsLab
let postfix: PostfixLab

before(async () => {
  dns = await startDnsLab({
    zones: [
      { name: 'resume.test', records: ['@ MX 10 mx', `mx A ${ADDRESS}`, `_25._tcp.mx TLSA ${rr(leaf)}`] },
      // the same server under a second name whose TLSA RRset also lists a spare key (a key rollover)
      {
        name: 'rollover.test',
        records: ['@ MX 10 mx', `mx A ${ADDRESS}`, `_25._tcp.mx TLSA ${rr(leaf)}`, `_25._tcp.mx TLSA ${rr(spare)}`],
      },
    ],
  })
  postfix = await startPostfixLab([{ address: ADDRESS, certPem: leaf.pem, keyPem: leaf.keyPem, options: ['smtpd_tls_loglevel=2'] }])
})
after(async () => {
  await postfix?.stop()
  await dns?.stop()
})

const resumed = (r: ProbeReport) => r.trace.some((t) => /TLS session resumed/.test(t.rule))
const reusing = () => postfix.maillog().match(/Reusing old session/g)?.length ?? 0

describe('TLS session resumption with Postfix (smtp_tls_session_cache_database)', () => {
  it('the second probe resumes the session Postfix issued, and is still verified by TLSA', async () => {
    const tlsSessionCache = createTlsSessionCache()
    const o: ConnectOptions = {
      resolver: createResolver({ servers: [dns.resolverAddress] }),
      level: 'dane',
      ehloName: 'client.resume.test',
      tlsSessionCache,
    }
    const first = await probe('resume.test', o)
    assert.equal(first.outcome.status, 'verified', JSON.stringify(first.outcome))
    assert.equal(first.outcome.protocol, 'TLSv1.3')
    assert.equal(resumed(first), false)
    assert.equal(tlsSessionCache.size, 1, 'the verified session was stored')
    const before = reusing()
    for (let i = 0; i < 2; i++) {
      const r = await probe('resume.test', o)
      assert.equal(r.outcome.status, 'verified', JSON.stringify(r.outcome))
      assert.match(r.outcome.match ?? '', /^TLSA 3 1 1/)
      assert.ok(resumed(r), `probe ${i + 2} resumed: ${JSON.stringify(r.trace)}`)
    }
    assert.equal(tlsSessionCache.stats().resumed, 2)
    // smtpd logs its side (tls_server.c, smtpd_tls_loglevel ≥ 2); the log is written asynchronously
    for (let i = 0; i < 50 && reusing() < before + 2; i++) await new Promise((r) => setTimeout(r, 20))
    assert.equal(reusing() - before, 2, postfix.maillog().split('\n').slice(-30).join('\n'))
  })

  it('the same server under another next hop, whose TLSA RRset differs, does not resume', async () => {
    const tlsSessionCache = createTlsSessionCache()
    const o: ConnectOptions = { resolver: createResolver({ servers: [dns.resolverAddress] }), level: 'dane', tlsSessionCache }
    assert.equal(resumed(await probe('resume.test', o)), false)
    const r = await probe('rollover.test', o)
    assert.equal(r.outcome.status, 'verified', JSON.stringify(r.outcome))
    assert.equal(resumed(r), false, 'a TLSA RRset the session was not judged under: full handshake')
    assert.equal(tlsSessionCache.stats().resumed, 0)
  })
})
