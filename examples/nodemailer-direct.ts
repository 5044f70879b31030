// Nodemailer, direct to MX, with a TLS policy per recipient domain (`npx tsx examples/nodemailer-direct.ts`).
//
// Self-contained: an in-process DNS server plays a validating resolver (AD bit set) for two signed
// domains whose MX is an smtp-server on 127.0.0.1. good.example.test publishes a TLSA record for the
// server's key; mismatch.example.test publishes one for another key. One message to a recipient in
// each: the first is delivered over a DANE-verified session, the second stays queued (4.7.5), and
// not one byte of the message goes to that server.
import nodemailer from 'nodemailer'
import { createTlsaRecord, formatTrace } from 'smtp-tls-policy'
import { createResolver } from 'smtp-tls-policy/node'
import { SmtpTlsTransport, type SmtpTlsSentInfo } from 'smtp-tls-policy/nodemailer'
import { startDnsServer, validatingZone } from '../test/helpers/dns-server.js'
import { startMailSink } from '../test/helpers/mail-sink.js'
import { selfSigned } from './lib/self-signed.js'

const mx = await selfSigned('mx.example.test')
const other = await selfSigned('somebody.else.test')
const sink = await startMailSink({ certPem: mx.certPem, keyPem: mx.keyPem })
const tlsa = (der: Uint8Array) => ({
  usage: 3,
  selector: 1,
  matchingType: 1,
  certificate: Buffer.from(createTlsaRecord(der, { usage: 3, selector: 1, matchingType: 1 }).data),
})
const dns = await startDnsServer(
  validatingZone({
    records: [
      ['good.example.test', 'MX', { preference: 10, exchange: 'mx.good.example.test' }],
      ['mx.good.example.test', 'A', '127.0.0.1'],
      [`_${sink.port}._tcp.mx.good.example.test`, 'TLSA', tlsa(mx.der)],
      ['mismatch.example.test', 'MX', { preference: 10, exchange: 'mx.mismatch.example.test' }],
      ['mx.mismatch.example.test', 'A', '127.0.0.1'],
      [`_${sink.port}._tcp.mx.mismatch.example.test`, 'TLSA', tlsa(other.der)],
    ],
  }),
)

try {
  const transport = new SmtpTlsTransport({
    level: 'dane', // Postfix smtp_tls_security_level: DANE where published, else opportunistic TLS
    destinations: { 'good.example.test': 'dane-only' }, // per-destination overrides, Postfix table syntax
    resolver: createResolver({ servers: [dns.server] }),
    port: sink.port, // the demo's MX listens on a high port; real MX hosts use 25
    ehloName: 'client.example.org',
    timeoutMs: 5000,
  })
  const mailer = nodemailer.createTransport(transport)
  const info = (await mailer.sendMail({
    from: 'alice@example.org',
    to: ['bob@good.example.test', 'carol@mismatch.example.test'],
    subject: 'Hello over DANE',
    text: 'Delivered only where the policy is met.\n',
  })) as unknown as SmtpTlsSentInfo
  console.log(`accepted: ${info.accepted.join(', ')}`)
  console.log(`pending:  ${info.pending.join(', ')}`)
  for (const [domain, d] of Object.entries(info.domains)) {
    const r = d.recipients[0]!
    console.log(`\n${domain}: ${d.status}, ${d.outcome?.status ?? 'no session'}: ${r.enhancedStatus} ${r.text}`)
    if (d.response) console.log(`  ${d.response}`)
    console.log(`  trace: ${formatTrace(d.trace)}`)
  }
  console.log(`\nthe server received ${sink.messages.length} message(s), for ${sink.messages.map((m) => m.to.join(', ')).join('; ')}`)
  process.exitCode = info.accepted.length === 1 && info.pending.length === 1 && sink.messages.length === 1 ? 0 : 1
} finally {
  await dns.close()
  await sink.close()
}
