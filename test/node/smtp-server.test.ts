// smtpServerClientCertificates with smtp-server, STARTTLS and implicit TLS (port 465 style),
// openssl s_client as the client: which certificate was presented, verified, matched.
import assert from 'node:assert/strict'
import tls from 'node:tls'
import { after, before, describe, it } from 'node:test'
import { clientCertificateFacts, clientCertificateOf, smtpServerClientCertificates, tlsSessionFactsOf } from '../../src/node/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { clientTable, COMMANDS, makeClientCerts, startRelay, type Relay } from '../helpers/clientcerts.js'
import { makeCert, tempDir } from '../helpers/openssl.js'
import { opensslSmtp, rcptReply } from '../helpers/smtp-clients.js'

const certs = makeClientCerts()
const serverCert = makeCert({ subject: '/CN=mx.test', dns: ['mx.test'] })
const { dir, done } = tempDir()

describe('smtpServerClientCertificates with smtp-server', () => {
  const table = clientTable(certs)
  after(done)

  for (const implicit of [false, true]) {
    describe(implicit ? 'implicit TLS (secure: true)' : 'STARTTLS', () => {
      let relay: Relay
      before(async () => (relay = await startRelay({ table, ca: certs.ca.pem, implicit, serverCert })))
      after(() => relay.close())
      const run = async (cert: (typeof certs)['known'] | undefined) => {
        const r = await opensslSmtp({ host: '127.0.0.1', port: relay.port, implicit, dir, commands: COMMANDS, ...(cert ? { cert } : {}) })
        const rcpt = rcptReply(r)
        return { rcpt, facts: relay.seen.at(-1) }
      }
      it('a listed certificate: presented, verified, matched by certificate fingerprint, relays', async () => {
        const { rcpt, facts } = await run(certs.known)
        assert.match(rcpt ?? '', /^250 /)
        assert.equal(facts?.presented, true)
        assert.equal(facts?.verified, true)
        assert.equal(facts?.subjectCN, 'client1.example')
        assert.equal(facts?.issuerCN, 'Lab Client CA')
        assert.ok(facts?.lookup?.found)
        assert.equal(facts.lookup.matched, 'cert_fingerprint')
      })
      it('the same key in a reissued certificate: matched by public-key fingerprint, relays', async () => {
        const { rcpt, facts } = await run(certs.reissued)
        assert.match(rcpt ?? '', /^250 /)
        assert.ok(facts?.lookup?.found)
        assert.equal(facts.lookup.matched, 'pubkey_fingerprint')
        assert.equal(facts.verified, true)
      })
      it('an unknown self-signed certificate: presented, not verified, not found, refused', async () => {
        const { rcpt, facts } = await run(certs.unknown)
        assert.match(rcpt ?? '', /^554 /)
        assert.equal(facts?.presented, true)
        assert.equal(facts?.verified, false)
        assert.ok(facts?.verifyError)
        assert.equal(facts?.lookup?.found, false)
      })
      it('no certificate: requested, not presented, refused', async () => {
        const { rcpt, facts } = await run(undefined)
        assert.match(rcpt ?? '', /^554 /)
        assert.deepEqual(facts, { requested: true, presented: false, verified: false })
      })
    })
  }

  it('a TLS socket made without requestCert (smtp-server < 3.19.23 on implicit TLS) is recorded as not requested', async () => {
    const server = tls.createServer({ key: serverCert.keyPem, cert: serverCert.pem }, (sock) => {
      sock.on('error', () => undefined)
      facts.push(clientCertificateFacts(sock))
      sock.end()
    })
    const facts: ReturnType<typeof clientCertificateFacts>[] = []
    server.on('error', () => undefined)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, cert: certs.known.pem, key: certs.known.keyPem }, () =>
        c.resume(),
      )
      c.on('close', () => resolve())
      c.on('error', reject)
    })
    await new Promise<void>((r) => server.close(() => r()))
    assert.deepEqual(facts, [{ requested: false, presented: false, verified: false }])
  })

  it('the TLS facts for the Received clause are recorded on the session (tlsSessionFactsOf)', async () => {
    let facts: unknown
    const { SMTPServer } = await import('smtp-server')
    const server = new SMTPServer({
      key: serverCert.keyPem,
      cert: serverCert.pem,
      ecdhCurve: 'X25519',
      logger: false,
      authOptional: true,
      ...smtpServerClientCertificates({
        ecdhCurve: 'X25519',
        onSecure(_s, session, cb) {
          facts = tlsSessionFactsOf(session)
          cb()
        },
      }),
    })
    server.on('error', () => undefined)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const port = (server.server.address() as { port: number }).port
    await opensslSmtp({ host: '127.0.0.1', port, implicit: false, dir, commands: ['EHLO client.test', 'QUIT'], cert: certs.known })
    await new Promise<void>((r) => server.close(() => r()))
    const { clientCertificate, ...rest } = facts as { clientCertificate?: { presented: boolean; subjectCN?: string } }
    assert.equal(clientCertificate?.presented, true)
    assert.equal(clientCertificate?.subjectCN, 'client1.example')
    assert.deepEqual(rest, {
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      cipherBits: 256,
      cipherAlgBits: 256,
      keyExchange: { name: 'X25519' },
      serverSignature: { name: 'ECDSA', curve: 'prime256v1', digest: 'SHA256' },
      clientSignature: { name: 'ECDSA', curve: 'prime256v1', digest: 'SHA256' },
    })
  })

  it('bad options are coded errors', () => {
    throwsCoded(() => smtpServerClientCertificates({ table: {} as never }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => smtpServerClientCertificates({ onSecure: 1 as never }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => smtpServerClientCertificates(null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => clientCertificateOf(null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => tlsSessionFactsOf(null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => smtpServerClientCertificates({ ecdhCurve: 1 as never }), 'ERR_INVALID_ARGUMENT')
  })
})
