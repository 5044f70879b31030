// Relay permission by client certificate (Postfix relay_clientcerts + permit_tls_clientcerts) in
// smtp-server, with the Received TLS clause Postfix would write. Runnable:
//   npm run build && npx tsx examples/relay-clientcerts.ts
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { SMTPServer } from 'smtp-server'
import { certificateFingerprint, clientCertPermits, formatReceivedTlsClause, parseClientCertTable, receivedProtocol } from 'smtp-tls-policy'
import { clientCertificateOf, smtpServerClientCertificates, tlsSessionFactsOf } from 'smtp-tls-policy/node'
import { selfSigned } from './lib/self-signed.js'

const server = await selfSigned('mx.example.test')
const trusted = await selfSigned('client1.example.test')
const stranger = await selfSigned('stranger.example.test')

// The table, as in Postfix: the public-key fingerprint survives a certificate renewal.
const table = parseClientCertTable(`${certificateFingerprint(trusted.der, { of: 'publicKey' })} client1.example.test\n`)
const isLocal = (address: string) => address.endsWith('@mx.example.test')
const certs = smtpServerClientCertificates({
  table,
  ecdhCurve: 'X25519', // the group the server offers (below): Node cannot tell a server which one was used
  onSecure(_socket, session, cb) {
    // Received: from … (… […])\n\t<clause>\n\tby mx.example.test with ESMTPS
    const clause = formatReceivedTlsClause(tlsSessionFactsOf(session)!, { newline: ' ' })
    console.log(`S: Received: … ${clause} by mx.example.test with ${receivedProtocol({ esmtp: true, tls: true })}`)
    cb()
  },
})
const smtp = new SMTPServer({
  key: server.keyPem,
  cert: server.certPem,
  ecdhCurve: 'X25519', // Node cannot tell a server which group was negotiated; offer one (docs/receiving.md)
  authOptional: true,
  disabledCommands: ['AUTH'],
  logger: false,
  ...certs,
  onRcptTo(address, session, cb) {
    if (isLocal(address.address) || clientCertPermits(clientCertificateOf(session)?.lookup)) return cb()
    cb(Object.assign(new Error('5.7.1 Relay access denied'), { responseCode: 554 }))
  },
})
smtp.on('error', (e) => console.error('server error', e.message))
await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()))
const port = (smtp.server.address() as { port: number }).port

/** A tiny STARTTLS client: returns the reply to RCPT TO for a remote recipient. */
async function tryRelay(client?: { certPem: string; keyPem: string }): Promise<string> {
  const plain: Socket = netConnect(port, '127.0.0.1')
  plain.on('error', () => undefined)
  const read = (s: Socket) =>
    new Promise<string>((resolve) => {
      let buf = ''
      const on = (d: Buffer) => {
        buf += d.toString()
        if (/^\d{3} .*\r\n$/m.test(buf.split('\r\n').slice(-2).join('\r\n'))) {
          s.off('data', on)
          resolve(buf.trim().split('\r\n').at(-1)!)
        }
      }
      s.on('data', on)
    })
  await read(plain)
  for (const c of ['EHLO client.test', 'STARTTLS']) {
    plain.write(c + '\r\n')
    await read(plain)
  }
  const tls: TLSSocket = tlsConnect({
    socket: plain,
    rejectUnauthorized: false,
    ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
  })
  tls.on('error', () => undefined)
  await new Promise((r) => tls.once('secureConnect', r))
  let rcpt = ''
  for (const c of ['EHLO client.test', 'MAIL FROM:<a@client.test>', 'RCPT TO:<b@elsewhere.example>', 'QUIT']) {
    tls.write(c + '\r\n')
    const reply = await read(tls)
    if (c.startsWith('RCPT')) rcpt = reply
  }
  tls.destroy()
  return rcpt
}

console.log('listed client key :', await tryRelay(trusted))
console.log('unknown client    :', await tryRelay(stranger))
console.log('no certificate    :', await tryRelay())
await new Promise<void>((r) => smtp.close(() => r()))
