// Real peers: Postfix smtpd instances with STARTTLS, an NSD + Unbound DNSSEC lab on port 53, and
// posttls-finger (the reference client) resolving through that Unbound. For every DANE scenario,
// our verifyDane verdict on the chain the server presents must equal posttls-finger's
// (Verified = authenticated; anything else = not). Postfix TLS_README "Mandatory DANE", RFC 7672 §3.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createTlsaRecord, formatTlsaRecord, parseTlsaRecord, verifyDane } from '../../src/index.js'
import { makeCert, tempDir, type Issued } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { posttlsFinger, startPostfixLab, type PostfixLab } from './postfix.js'

const ca = makeCert({ key: 'rsa2048', subject: '/CN=Lab DANE Root', ca: true })
const inter = makeCert({ key: 'ec256', subject: '/CN=Lab DANE Intermediate', ca: true, issuer: ca })
const ee = makeCert({ key: 'ec256', subject: '/CN=mx-ee.dane.test', dns: ['mx-ee.dane.test'] })
const taLeaf = makeCert({ key: 'rsa2048', subject: '/CN=mx-ta.dane.test', dns: ['mx-ta.dane.test'], issuer: inter })
const wrongName = makeCert({ key: 'ec256', subject: '/CN=elsewhere.test', dns: ['elsewhere.test'], issuer: inter })
const wildcard = makeCert({ key: 'ec256', subject: '/CN=wild', dns: ['*.dane.test'], issuer: inter })
const unrelated = makeCert({ key: 'ec256', subject: '/CN=unrelated.test' })
const taLeaf2 = makeCert({ key: 'ec256', subject: '/CN=mx-ta2.dane.test', dns: ['mx-ta2.dane.test'], issuer: inter })
const mixedLeaf = makeCert({ key: 'rsa2048', subject: '/CN=mx-mixed.dane.test', dns: ['mx-mixed.dane.test'], issuer: inter })
const domainNamed = makeCert({ key: 'ec256', subject: '/CN=mx-nexthop', dns: ['mx-nexthop.d.test'], issuer: inter })

const tlsa = (c: Issued, usage: number, selector: number, mtype: number) =>
  formatTlsaRecord(createTlsaRecord(c.der, { usage, selector, matchingType: mtype }))

interface Scenario {
  why: string
  /** MX host label under dane.test, each on its own address */
  host: string
  address: string
  chain: Issued[]
  key: string
  records: string[]
}

const scenarios: Scenario[] = [
  {
    why: 'DANE-EE 3 1 1 matches the leaf',
    host: 'mx-ee',
    address: '127.0.61.1',
    chain: [ee],
    key: ee.keyPem,
    records: [tlsa(ee, 3, 1, 1)],
  },
  {
    why: 'DANE-EE 3 0 1 mismatch',
    host: 'mx-ee-bad',
    address: '127.0.61.2',
    chain: [ee],
    key: ee.keyPem,
    records: [tlsa(unrelated, 3, 0, 1)],
  },
  {
    why: 'DANE-TA 2 0 1 on the intermediate',
    host: 'mx-ta',
    address: '127.0.61.3',
    chain: [taLeaf, inter],
    key: taLeaf.keyPem,
    records: [tlsa(inter, 2, 0, 1)],
  },
  {
    why: 'DANE-TA 2 1 1 on the root, sent in the chain',
    host: 'mx-ta2',
    address: '127.0.61.4',
    chain: [taLeaf2, inter, ca],
    key: taLeaf2.keyPem,
    records: [tlsa(ca, 2, 1, 1)],
  },
  {
    why: 'DANE-TA with a leaf naming another host',
    host: 'mx-ta-name',
    address: '127.0.61.5',
    chain: [wrongName, inter],
    key: wrongName.keyPem,
    records: [tlsa(inter, 2, 0, 1)],
  },
  {
    why: 'DANE-TA with a wildcard leaf (*.dane.test)',
    host: 'mx-wild',
    address: '127.0.61.6',
    chain: [wildcard, inter],
    key: wildcard.keyPem,
    records: [tlsa(inter, 2, 0, 1)],
  },
  {
    why: 'DANE-TA record matching only the leaf',
    host: 'mx-ta-leaf',
    address: '127.0.61.7',
    chain: [taLeaf, inter],
    key: taLeaf.keyPem,
    records: [tlsa(taLeaf, 2, 0, 1)],
  },
  {
    why: 'mismatching DANE-EE plus matching DANE-TA 2 1 2',
    host: 'mx-mixed',
    address: '127.0.61.8',
    chain: [mixedLeaf, inter],
    key: mixedLeaf.keyPem,
    records: [tlsa(unrelated, 3, 1, 1), tlsa(inter, 2, 1, 2)],
  },
  {
    why: 'DANE-EE 3 1 2 with a leaf naming another host (no name checks for DANE-EE)',
    host: 'mx-ee2',
    address: '127.0.61.9',
    chain: [wrongName, inter],
    key: wrongName.keyPem,
    records: [tlsa(wrongName, 3, 1, 2)],
  },
  {
    why: 'DANE-TA with a leaf naming the next-hop domain (secure MX: RFC 7672 §3.2.2)',
    host: 'mx-nexthop',
    address: '127.0.61.10',
    chain: [domainNamed, inter],
    key: domainNamed.keyPem,
    records: [tlsa(inter, 2, 0, 1)],
  },
  {
    why: 'DANE-TA 2 0 1 on a root that the server does not send',
    host: 'mx-ta-missing',
    address: '127.0.61.11',
    chain: [taLeaf, inter],
    key: taLeaf.keyPem,
    records: [tlsa(ca, 2, 0, 1)],
  },
]

let dns: DnsLab
let postfix: PostfixLab
const tmp = tempDir()
const resolvConf = join(tmp.dir, 'resolv.conf')

before(async () => {
  dns = await startDnsLab({
    port: 53,
    zones: [
      {
        name: 'dane.test',
        records: scenarios.flatMap((s) => [`${s.host} A ${s.address}`, ...s.records.map((r) => `_25._tcp.${s.host} TLSA ${r}`)]),
      },
      // one domain per scenario, each with a secure MX pointing at its host
      ...scenarios.map((s) => ({ name: `${s.host}.d.test`, records: [`@ MX 10 ${s.host}.dane.test.`] })),
    ],
  })
  // glibc strips the AD bit unless trust-ad is set (posttls-finger needs it for DANE)
  writeFileSync(resolvConf, `nameserver ${dns.resolverIp}\noptions trust-ad\n`)
  postfix = await startPostfixLab(
    scenarios.map((s) => ({ address: s.address, certPem: s.chain.map((c) => c.pem).join(''), keyPem: s.key })),
  )
})
after(async () => {
  await postfix?.stop()
  await dns?.stop()
  tmp.done()
})

describe('verifyDane agrees with posttls-finger on real Postfix servers', () => {
  for (const s of scenarios) {
    it(s.why, (t) => {
      const domain = `${s.host}.d.test`
      const mx = `${s.host}.dane.test`
      const finger = posttlsFinger(domain, { configDir: postfix.configDir, level: 'dane-only', resolvConf })
      const ours = verifyDane({
        records: s.records.map(parseTlsaRecord),
        chain: s.chain.map((c) => c.der),
        // RFC 7672 §3.2.2 with a secure MX: the TLSA base domain and the next-hop domain
        names: [mx, domain],
      })
      // posttls-finger reached the server over TLS in every scenario: only the authentication differs
      assert.notEqual(finger.trust, undefined, finger.output)
      t.diagnostic(`posttls-finger ${finger.trust ?? 'no TLS'}, ours ${ours.ok ? 'ok' : ours.code}`)
      assert.equal(ours.ok, finger.trust === 'Verified', `ours: ${JSON.stringify(ours)}\nposttls-finger:\n${finger.output}`)
    })
  }
})
