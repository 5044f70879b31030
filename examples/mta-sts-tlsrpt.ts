// MTA-STS and TLS-RPT end to end (`npx tsx examples/mta-sts-tlsrpt.ts`): policy lookup, delivery
// verdicts recorded for TLS-RPT, and one day's reports sent.
//
// Self-contained and offline: an in-process DNS server plays a validating resolver for three domains
// that publish MTA-STS and TLS-RPT, an in-process HTTPS server is their policy host (mta-sts.<domain>)
// and their report endpoint, and an smtp-server on 127.0.0.1 is every MX. Certificates come from a
// private CA that the example trusts through options (never by turning verification off); the MX
// certificate names only mx.enforce.example.test.
import { gunzipSync } from 'node:zlib'
import { formatTrace } from 'smtp-tls-policy'
import { createMemoryStore, createResolver, deliver, getMtaStsPolicy, sendTlsRptReports, SmtpTlsConnectError } from 'smtp-tls-policy/node'
import { startDnsServer, validatingZone, type ZoneRecord } from '../test/helpers/dns-server.js'
import { startHttpsServer } from '../test/helpers/https-server.js'
import { startMailSink } from '../test/helpers/mail-sink.js'
import { makeCert } from '../test/helpers/openssl.js'

const DOMAINS = { enforce: 'enforce', testing: 'testing', wrong: 'enforce' } as const
const ca = makeCert({ key: 'ec256', subject: '/CN=Example Private CA', ca: true })
const web = makeCert({
  key: 'ec256',
  subject: '/CN=mta-sts',
  dns: [...Object.keys(DOMAINS).map((d) => `mta-sts.${d}.example.test`), 'reports.example.test'],
  issuer: ca,
})
const mxCert = makeCert({ key: 'ec256', subject: '/CN=mx.enforce.example.test', dns: ['mx.enforce.example.test'], issuer: ca })

const sink = await startMailSink({ certPem: mxCert.pem + ca.pem, keyPem: mxCert.keyPem, smtp: { name: 'mx.enforce.example.test' } })
const https = await startHttpsServer(web)
const reports: Buffer[] = []
for (const [d, mode] of Object.entries(DOMAINS)) {
  // RFC 8461 §3.2: the policy, text/plain, at https://mta-sts.<domain>/.well-known/mta-sts.txt
  const policy = `version: STSv1\nmode: ${mode}\nmx: mx.${d}.example.test\nmax_age: 604800\n`
  https.routes.set(`mta-sts.${d}.example.test`, (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(policy))
}
https.routes.set('reports.example.test', (req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    reports.push(Buffer.concat(chunks))
    res.writeHead(200).end()
  })
})
const records: ZoneRecord[] = [['reports.example.test', 'A', '127.0.0.1']]
for (const d of Object.keys(DOMAINS)) {
  const domain = `${d}.example.test`
  records.push(
    [domain, 'MX', { preference: 10, exchange: `mx.${domain}` }],
    [`mx.${domain}`, 'A', '127.0.0.1'],
    [`_mta-sts.${domain}`, 'TXT', 'v=STSv1; id=20261201'],
    [`mta-sts.${domain}`, 'A', '127.0.0.1'],
    [`_smtp._tls.${domain}`, 'TXT', `v=TLSRPTv1; rua=https://reports.example.test:${https.port}/tlsrpt`],
  )
}
const dns = await startDnsServer(validatingZone({ records }))

try {
  const resolver = createResolver({ servers: [dns.server] })
  const policies = createMemoryStore() // MTA-STS policies; createRedisStore(client) shares them in a fleet
  const sessions = createMemoryStore() // TLS-RPT counters; the same store may hold both
  // The policy host and the MX listen on 127.0.0.1 and high ports, with a private CA: options a real
  // sender leaves out (port 443 and 25, Node's root store, public addresses only).
  const mtaSts = { store: policies, ca: ca.pem, allowPrivateAddresses: true, port: https.port }
  // One clock for the whole example, so that the UTC day cannot change halfway through.
  const clock = Date.now()
  const today = new Date(clock).toISOString().slice(0, 10)

  // 1. Policy lookup: fetched once over HTTPS, then served from the store while fresh (RFC 8461 §3.3).
  for (let i = 0; i < 2; i++) {
    const p = await getMtaStsPolicy('enforce.example.test', { resolver, ...mtaSts })
    console.log(`policy enforce.example.test: mode ${p.policy?.mode}, mx ${p.policy?.mx.join(' ')}, ${p.state}`)
  }

  // 2. Delivery under the policies, each connection attempt recorded for TLS-RPT.
  const options = {
    resolver,
    mtaSts,
    tlsRpt: { store: sessions, now: () => clock },
    ca: ca.pem, // the MX certificates' PKIX trust (RFC 8461 §4.2)
    port: sink.port,
    ehloName: 'mta.sender.example',
    timeoutMs: 5000,
  }
  for (const d of Object.keys(DOMAINS)) {
    const domain = `${d}.example.test`
    const message = { envelope: { from: 'alice@sender.example', to: [`bob@${domain}`] }, body: `Subject: hi\r\n\r\nhello ${domain}\r\n` }
    try {
      const r = await deliver(domain, message, options)
      const recorded = r.attempts.map((a) => a.tlsRpt?.result).join(', ')
      console.log(`${domain}: ${r.outcome.status}, accepted ${r.accepted.join(' ')}; TLS-RPT: ${recorded}`)
    } catch (e) {
      if (!(e instanceof SmtpTlsConnectError)) throw e
      const a = e.attempts.at(-1)
      console.log(`${domain}: deferred ${e.enhancedStatus} ${e.tlsrpt}; TLS-RPT: ${a?.tlsRpt?.result}`)
      console.log(`  ${formatTrace((a?.verdict?.trace ?? []).slice(-1))}`)
    }
  }

  // 3. After the UTC day has ended (here: pretend it is tomorrow), one report per policy domain.
  const report = {
    store: sessions,
    day: today,
    organizationName: 'Sender Inc.',
    contactInfo: 'tlsrpt@sender.example',
    submitter: 'sender.example',
    from: 'tlsrpt@sender.example',
    resolver,
    ca: ca.pem,
    allowPrivateAddresses: true,
    now: () => clock + 86_400_000,
  }
  const result = await sendTlsRptReports(report)
  for (const d of result.domains) {
    console.log(`report ${d.policyDomain}: ${d.status} (${d.sessions.successful} ok, ${d.sessions.failed} failed)`)
  }
  const again = await sendTlsRptReports(report) // idempotent: nothing is sent twice
  console.log(`second run: ${again.domains.map((d) => d.status).join(', ')}; ${reports.length} reports received`)
  const testing = reports
    .map((b) => JSON.parse(gunzipSync(b).toString('utf8')))
    .find((r) => r.policies[0].policy['policy-domain'] === 'testing.example.test')
  console.log(JSON.stringify(testing.policies[0], null, 2))
} finally {
  await sink.close()
  await https.close()
  await dns.close()
}
