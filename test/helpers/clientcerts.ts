// Client certificates for the receiving-side tests: a private CA, a client certificate it issued,
// the same key reissued in a second certificate, and an unknown self-signed client.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SMTPServer } from 'smtp-server'
import { clientCertPermits, lookupClientCertificate, parseClientCertTable, type ClientCertMatchKind } from '../../src/index.js'
import { clientCertificateOf, smtpServerClientCertificates, type ClientCertificateFacts } from '../../src/node/index.js'
import { makeCert, openssl, tempDir, type Issued } from './openssl.js'

/** A new certificate for an existing key (same SubjectPublicKeyInfo, different certificate). */
export function reissue(key: Issued, subject: string, issuer?: Issued): Issued {
  const { dir, done } = tempDir()
  try {
    const k = join(dir, 'key.pem')
    const c = join(dir, 'cert.pem')
    writeFileSync(k, key.keyPem)
    if (issuer === undefined) {
      openssl(['req', '-x509', '-new', '-key', k, '-out', c, '-subj', subject, '-days', '30', '-config', reqConfig(dir)])
    } else {
      const csr = join(dir, 'req.csr')
      openssl(['req', '-new', '-key', k, '-out', csr, '-subj', subject, '-config', reqConfig(dir)])
      writeFileSync(join(dir, 'ik.pem'), issuer.keyPem)
      writeFileSync(join(dir, 'ic.pem'), issuer.pem)
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        join(dir, 'ic.pem'),
        '-CAkey',
        join(dir, 'ik.pem'),
        '-CAcreateserial',
        '-out',
        c,
        '-days',
        '30',
      ])
    }
    const pem = readFileSync(c, 'utf8')
    return { pem, der: new Uint8Array(openssl(['x509', '-in', c, '-outform', 'DER'])), keyPem: key.keyPem }
  } finally {
    done()
  }
}

function reqConfig(dir: string): string {
  const p = join(dir, 'req.cnf')
  writeFileSync(p, '[req]\ndistinguished_name=dn\n[dn]\n')
  return p
}

export interface ClientCertSet {
  ca: Issued
  /** issued by `ca`, listed in the table by certificate fingerprint */
  known: Issued
  /** `known`'s key in a new certificate: matches by public-key fingerprint only */
  reissued: Issued
  /** self-signed, in no table */
  unknown: Issued
}

export function makeClientCerts(): ClientCertSet {
  const ca = makeCert({ subject: '/CN=Lab Client CA', ca: true })
  const known = makeCert({ subject: '/CN=client1.example', issuer: ca })
  const reissued = reissue(known, '/CN=client1-reissued.example', ca)
  const unknown = makeCert({ subject: '/CN=stranger.example' })
  return { ca, known, reissued, unknown }
}

/** The table both servers use: the known certificate by certificate and by public-key fingerprint. */
export function clientTable(c: ClientCertSet): string {
  const fps = lookupClientCertificate(parseClientCertTable(''), c.known.der).fingerprints
  return `${fps.cert_fingerprint} client1\n${fps.pubkey_fingerprint} client1-key\n`
}

export interface Relay {
  port: number
  seen: (ClientCertificateFacts | undefined)[]
  close(): Promise<void>
}

/** smtp-server relaying only for clients the table permits (relay_clientcerts semantics). */
export async function startRelay(o: {
  table: string
  ca: string
  implicit: boolean
  serverCert: Issued
  host?: string
  port?: number
  /** refuse a client the table does not permit right after the handshake (a 554 greeting, for posttls-finger) */
  refuseOnSecure?: boolean
  /** default permit_tls_clientcerts (relay_clientcerts) */
  restriction?: 'permit_tls_clientcerts' | 'check_ccert_access'
  searchOrder?: ClientCertMatchKind[]
  digest?: 'sha256' | 'sha1' | 'md5'
}): Promise<Relay> {
  const permits = (facts: ClientCertificateFacts | undefined) => clientCertPermits(facts?.lookup, o.restriction)
  const seen: (ClientCertificateFacts | undefined)[] = []
  const server = new SMTPServer({
    name: 'mx.test',
    secure: o.implicit,
    key: o.serverCert.keyPem,
    cert: o.serverCert.pem,
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    ...smtpServerClientCertificates({
      table: parseClientCertTable(o.table),
      ca: o.ca,
      ...(o.searchOrder ? { searchOrder: o.searchOrder } : {}),
      ...(o.digest ? { digest: o.digest } : {}),
      onSecure(_socket, session, cb) {
        if (!o.refuseOnSecure || permits(clientCertificateOf(session))) return cb()
        seen.push(clientCertificateOf(session))
        cb(Object.assign(new Error('5.7.1 Access denied'), { responseCode: 554 }))
      },
    }),
    onRcptTo(_address, session, cb) {
      const facts = clientCertificateOf(session)
      seen.push(facts)
      if (permits(facts)) return cb()
      cb(Object.assign(new Error('5.7.1 Relay access denied'), { responseCode: 554 }))
    },
  })
  server.on('error', () => undefined)
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve()))
  const addr = server.server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no address')
  return { port: addr.port, seen, close: () => new Promise<void>((r) => server.close(() => r())) }
}

export const COMMANDS = ['EHLO client.test', 'MAIL FROM:<a@client.test>', 'RCPT TO:<b@remote.example>', 'QUIT']
