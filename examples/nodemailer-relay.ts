// Nodemailer through a relay (smarthost) pinned by its certificate fingerprint, with AUTH
// (`npx tsx examples/nodemailer-relay.ts`).
//
// Self-contained: the relay is an smtp-server on 127.0.0.1 offering STARTTLS and AUTH; an in-process
// DNS server resolves its name. With the right pin the message goes through (AUTH is sent only over
// the verified session); with a wrong pin Nodemailer gets a temporary error (451, 4.7.5) before AUTH
// and before MAIL FROM: the credentials and the message never reach an impostor.
import nodemailer from 'nodemailer'
import { certificateFingerprint } from 'smtp-tls-policy'
import { createResolver } from 'smtp-tls-policy/node'
import { SmtpTlsTransport, type SmtpTlsSentInfo, type SmtpTlsTransportError } from 'smtp-tls-policy/nodemailer'
import { startDnsServer, validatingZone } from '../test/helpers/dns-server.js'
import { startMailSink } from '../test/helpers/mail-sink.js'
import { selfSigned } from './lib/self-signed.js'

const relayCert = await selfSigned('smtp.relay.test')
const impostor = await selfSigned('impostor.test')
const sink = await startMailSink({ certPem: relayCert.certPem, keyPem: relayCert.keyPem, auth: { username: 'app', password: 's3cret' } })
const dns = await startDnsServer(validatingZone({ records: [['smtp.relay.test', 'A', '127.0.0.1']] }))

const transport = (pin: string) =>
  new SmtpTlsTransport({
    relay: `[smtp.relay.test]:${sink.port}`, // Postfix relayhost syntax: [host]:port, no MX lookup
    relayPolicy: `fingerprint match=${pin}`, // a Postfix smtp_tls_policy_maps right-hand side
    auth: { user: 'app', pass: 's3cret' },
    resolver: createResolver({ servers: [dns.server] }),
    ehloName: 'client.example.org',
    timeoutMs: 5000,
  })
const message = { from: 'app@example.org', to: 'someone@example.net', subject: 'via the relay', text: 'hello\n' }

let ok = true
try {
  const right = certificateFingerprint(relayCert.der) // SHA-256 of the certificate, AB:CD:… (Postfix's format)
  const info = (await nodemailer.createTransport(transport(right)).sendMail(message)) as unknown as SmtpTlsSentInfo
  const d = Object.values(info.domains)[0]!
  console.log(`right pin: accepted ${info.accepted.join(', ')}; ${d.outcome?.status} at ${d.outcome?.level} (${d.outcome?.matched})`)
  console.log(`  ${info.response}`)
  console.log(`  transcript: ${d.transcript.filter((l) => /^> (AUTH|MAIL)/.test(l)).join(' | ')}`)
  try {
    await nodemailer.createTransport(transport(certificateFingerprint(impostor.der))).sendMail(message)
    ok = false
  } catch (e) {
    const err = e as SmtpTlsTransportError
    console.log(`wrong pin: ${err.responseCode} ${err.enhancedStatus} ${err.code} (temporary: ${err.temporary})`)
  }
  const auths = sink.commands.filter((c) => c.startsWith('AUTH')).length
  console.log(`the relay saw AUTH ${auths} time(s) and received ${sink.messages.length} message(s)`)
  ok &&= auths === 1 && sink.messages.length === 1
} finally {
  await dns.close()
  await sink.close()
}
process.exitCode = ok ? 0 : 1
