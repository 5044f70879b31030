// The self-contained demo (`npm run demo`): no root, no Debian packages, no internet.
//
// In-process: a DNS server on 127.0.0.1 that plays a validating resolver (it sets the AD bit, as
// Unbound does for a signed zone), and two smtp-server instances, one offering STARTTLS and one that
// hides it, as a STARTTLS-stripping middlebox would. Then it probes three destinations at level
// `dane` and prints the verdicts in Postfix's words.
import { createTlsaRecord, formatTlsaRecord } from 'smtp-tls-policy'
import { createResolver, probe, summaryLine } from 'smtp-tls-policy/node'
import { startDnsServer, validatingZone, type ZoneRecord } from '../test/helpers/dns-server.js'
import { startSmtpServer } from '../test/helpers/smtp-server.js'
import { selfSigned } from './lib/self-signed.js'

const good = await selfSigned('mx.good.demo.test')
const stranger = await selfSigned('somebody.else.test')
const tls = await startSmtpServer({ certPem: good.certPem, keyPem: good.keyPem, name: 'mx.good.demo.test' })
const stripped = await startSmtpServer({ certPem: good.certPem, keyPem: good.keyPem, starttls: false, name: 'mx.stripped.demo.test' })

const tlsa = (der: Uint8Array) => {
  const r = createTlsaRecord(der, { usage: 3, selector: 1, matchingType: 1 })
  return { rr: formatTlsaRecord(r), data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) } }
}
const right = tlsa(good.der)
const wrong = tlsa(stranger.der)

// Three signed destinations. The TLSA owner names carry each server's port (_PORT._tcp, RFC 7672 §2.2.3).
const demos = [
  {
    domain: 'good.demo.test',
    mx: 'mx.good.demo.test',
    port: tls.port,
    tlsa: right,
    what: 'TLSA matches the server key',
    expect: 'verified',
  },
  {
    domain: 'mismatch.demo.test',
    mx: 'mx.mismatch.demo.test',
    port: tls.port,
    tlsa: wrong,
    what: 'TLSA names another key',
    expect: 'deferred',
  },
  {
    domain: 'stripped.demo.test',
    mx: 'mx.stripped.demo.test',
    port: stripped.port,
    tlsa: right,
    what: 'STARTTLS stripped',
    expect: 'deferred',
  },
]
const records: ZoneRecord[] = demos.flatMap((d): ZoneRecord[] => [
  [d.domain, 'MX', { preference: 10, exchange: d.mx }],
  [d.mx, 'A', '127.0.0.1'],
  [`_${d.port}._tcp.${d.mx}`, 'TLSA', d.tlsa.data],
])
const dns = await startDnsServer(validatingZone({ records }))
const resolver = createResolver({ servers: [dns.server] })

let surprises = 0
try {
  for (const d of demos) {
    console.log(`\n# ${d.domain} (${d.what})`)
    console.log(`#   _${d.port}._tcp.${d.mx}. IN TLSA ${d.tlsa.rr.slice(0, 24)}…`)
    const r = await probe(d.domain, { level: 'dane', resolver, port: d.port, ehloName: 'demo.client.test', timeoutMs: 5000 })
    const v = r.attempts.at(-1)?.verdict
    if (v?.matched) console.log(`smtp-tls-policy: ${v.matched}`)
    console.log(`smtp-tls-policy: ${summaryLine(r.outcome, [], r.destination)}`)
    console.log(
      `  verdict: ${r.outcome.status}${r.outcome.enhancedStatus ? ` ${r.outcome.enhancedStatus}` : ''}${r.outcome.tlsrptResult ? ` (TLS-RPT ${r.outcome.tlsrptResult})` : ''}`,
    )
    if (r.outcome.status !== d.expect) surprises++
  }
  console.log(`\nThe message is delivered to good.demo.test and stays queued for the other two: never sent in plaintext.`)
} finally {
  await dns.close()
  await tls.close()
  await stripped.close()
}
// The demo checks itself: any verdict other than the expected one is a failure.
process.exitCode = surprises === 0 ? 0 : 1
