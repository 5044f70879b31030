// The Received TLS clause (issue 14): Postfix smtpd with smtpd_tls_received_header = yes writes it
// into the queue file of a message it accepted (read back with postcat(1)); our formatter, fed
// tlsSessionFacts of the same client's session with smtp-server, must give the same text.
// Same server certificate, same client (openssl s_client -starttls smtp), same certificates.
// Addresses: Postfix 127.0.97.4 (asks for a certificate), 127.0.97.5 (does not);
// smtp-server 127.0.98.4 (asks), 127.0.98.5 (does not).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { SMTPServer } from 'smtp-server'
import { formatReceivedTlsClause } from '../../src/index.js'
import { smtpServerClientCertificates, tlsSessionFacts, tlsSessionFactsOf } from '../../src/node/index.js'
import { makeCert, tempDir, type Issued } from '../helpers/openssl.js'
import { opensslSmtp } from '../helpers/smtp-clients.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const serverCert = makeCert({ subject: '/CN=mx.lab.test', dns: ['mx.lab.test'], key: 'rsa2048' })
const ca = makeCert({ subject: '/CN=Lab Client CA', ca: true })
const clients: [name: string, cert: Issued | undefined][] = [
  ['no client certificate', undefined],
  ['a self-signed EC certificate (not verified)', makeCert({ subject: '/CN=client.example', key: 'ec256' })],
  ['an RSA certificate from the CA (verified OK)', makeCert({ subject: '/CN=relay (east)', key: 'rsa2048', issuer: ca })],
]

function message(tag: string): string[] {
  return ['EHLO client.test', 'MAIL FROM:<a@client.test>', 'RCPT TO:<b@remote.example>', 'DATA', `Subject: ${tag}`, '', 'hi', '.', 'QUIT']
}

/** The TLS clause of the Received header Postfix wrote for the message with this Subject. */
function postfixClause(lab: PostfixLab, tag: string): string {
  const out = spawnSync(
    'bash',
    ['-c', `for f in $(find "$0" -type f); do postcat -c "$1" -h "$f"; echo '@@'; done`, join(lab.dir, 'queue', 'incoming'), lab.configDir],
    {
      encoding: 'utf8',
    },
  ).stdout
  const msg = out.split('@@').find((m) => m.includes(`\nSubject: ${tag}\n`))
  assert.ok(msg, `no queued message with Subject ${tag}:\n${out}\n${lab.maillog()}`)
  const lines = msg.trim().split('\n')
  const start = lines.findIndex((l) => l.startsWith('Received: from '))
  const by = lines.findIndex((l, i) => i > start && l.startsWith('\tby '))
  assert.match(lines[by]!, / with ESMTPS id /)
  return lines
    .slice(start + 1, by)
    .join('\n')
    .slice(1)
}

describe('Received TLS clause: Postfix smtpd and formatReceivedTlsClause agree', () => {
  const { dir, done } = tempDir()
  let lab: PostfixLab
  const ours = new Map<string, string>()
  const servers: SMTPServer[] = []
  before(async () => {
    chmodSync(dir, 0o755)
    writeFileSync(join(dir, 'ca.pem'), ca.pem, { mode: 0o644 })
    lab = await startPostfixLab(
      [
        { address: '127.0.97.4', certPem: serverCert.pem, keyPem: serverCert.keyPem },
        { address: '127.0.97.5', certPem: serverCert.pem, keyPem: serverCert.keyPem, options: ['smtpd_tls_ask_ccert=no'] },
      ],
      {
        acceptMail: true,
        extraMain: [
          'smtpd_tls_received_header = yes',
          'smtpd_tls_ask_ccert = yes',
          `smtpd_tls_CAfile = ${join(dir, 'ca.pem')}`,
          'mynetworks = 127.0.0.0/8',
          'smtpd_relay_restrictions = permit_mynetworks, reject',
        ],
      },
    )
    for (const [address, ask] of [
      ['127.0.98.4', true],
      ['127.0.98.5', false],
    ] as const) {
      // asking: the helper records the TLS facts (tlsSessionFactsOf); not asking: tlsSessionFacts directly
      const hooks = ask
        ? smtpServerClientCertificates({
            ca: ca.pem,
            ecdhCurve: 'X25519',
            onSecure(_socket, session, cb) {
              ;(session as unknown as { clause: string }).clause = formatReceivedTlsClause(tlsSessionFactsOf(session)!, { newline: '\n' })
              cb()
            },
          })
        : {
            onSecure(socket: Socket, session: object, cb: (err?: Error | null) => void) {
              const facts = tlsSessionFacts(socket as TLSSocket, { ecdhCurve: 'X25519' })
              ;(session as unknown as { clause: string }).clause = formatReceivedTlsClause(facts, { newline: '\n' })
              cb()
            },
          }
      const server = new SMTPServer({
        name: 'mx.lab.test',
        key: serverCert.keyPem,
        cert: serverCert.pem,
        // Node cannot read the negotiated group on the server side: offer one (docs/receiving.md)
        ecdhCurve: 'X25519',
        authOptional: true,
        disabledCommands: ['AUTH'],
        logger: false,
        ...hooks,
        onData(stream, session, cb) {
          let text = ''
          stream.on('data', (d: Buffer) => (text += d.toString('latin1')))
          stream.on('end', () => {
            const tag = /Subject: (\S+)/.exec(text)?.[1] ?? '?'
            ours.set(tag, (session as unknown as { clause: string }).clause)
            cb()
          })
        },
      })
      server.on('error', () => undefined)
      await new Promise<void>((r) => server.listen(25, address, () => r()))
      servers.push(server)
    }
  })
  after(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()))
    await lab?.stop()
    done()
  })

  for (const ask of [true, false]) {
    for (const [i, [name, cert]] of clients.entries()) {
      it(`${ask ? 'certificate requested' : 'not requested'}, ${name}`, async () => {
        const tag = `m${ask ? 'a' : 'n'}${i}`
        for (const host of ask ? ['127.0.97.4', '127.0.98.4'] : ['127.0.97.5', '127.0.98.5']) {
          const r = await opensslSmtp({ host, port: 25, implicit: false, dir, commands: message(tag), ...(cert ? { cert } : {}) })
          assert.ok(
            r.replies.some((l) => l.startsWith('250') && /queued|Accepted|OK/i.test(l)),
            `${host}: ${r.output}`,
          )
        }
        const theirs = postfixClause(lab, tag)
        assert.equal(ours.get(tag), theirs)
        // the cases are what they claim to be
        if (!ask) assert.match(theirs, /\(No client certificate requested\)$/)
        else if (i === 0) assert.match(theirs, /\(Client did not present a certificate\)$/)
        else if (i === 1)
          assert.match(
            theirs,
            /client-signature ECDSA \(prime256v1\) client-digest SHA256\)\n\t\(Client CN "client.example", Issuer "client.example" \(not verified\)\)$/,
          )
        else
          assert.match(
            theirs,
            /client-signature RSA-PSS \(2048 bits\) client-digest SHA256\)\n\t\(Client CN "relay \(east\)", Issuer "Lab Client CA" \(verified OK\)\)$/,
          )
      })
    }
  }

  // TLS 1.2, certificate requested, the CA-issued RSA client: Postfix reports key exchange and
  // signatures for TLS 1.3 only. The client fixes the cipher (the two servers prefer different ones).
  it('TLS 1.2, an RSA certificate from the CA', async () => {
    const tag = 'tls12'
    for (const host of ['127.0.97.4', '127.0.98.4']) {
      const r = await opensslSmtp({
        host,
        port: 25,
        implicit: false,
        dir,
        commands: message(tag),
        cert: clients[2]![1]!,
        args: ['-tls1_2', '-cipher', 'ECDHE-RSA-AES256-GCM-SHA384'],
      })
      assert.ok(
        r.replies.some((l) => l.startsWith('250') && /queued|Accepted|OK/i.test(l)),
        `${host}: ${r.output}`,
      )
    }
    const theirs = postfixClause(lab, tag)
    assert.equal(
      theirs,
      '(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\n\t(Client CN "relay (east)", Issuer "Lab Client CA" (verified OK))',
    )
    assert.equal(ours.get(tag), theirs)
  })
})
