// An in-process HTTPS server on loopback for MTA-STS policy fetches, routed by Host header, counting requests.
import https from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import type { Issued } from './openssl.js'

export type Route = (req: IncomingMessage, res: ServerResponse) => void

export interface TestHttpsServer {
  port: number
  /** requests received, by Host header */
  requests: Map<string, number>
  total(): number
  routes: Map<string, Route>
  close(): Promise<void>
}

/** Listen on `host` (default 127.0.0.1), any free port. */
export async function startHttpsServer(cert: Issued, host = '127.0.0.1'): Promise<TestHttpsServer> {
  const routes = new Map<string, Route>()
  const requests = new Map<string, number>()
  const sockets = new Set<{ destroy(): void }>()
  const server = https.createServer({ key: cert.keyPem, cert: cert.pem }, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '')
    requests.set(host, (requests.get(host) ?? 0) + 1)
    const route = routes.get(host)
    if (route) route(req, res)
    else res.writeHead(404).end()
  })
  server.on('error', () => {})
  server.on('tlsClientError', () => {})
  server.on('clientError', (_e, s) => s.destroy())
  server.on('connection', (s) => {
    s.on('error', () => {})
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((res) => server.listen(0, host, res))
  return {
    port: (server.address() as { port: number }).port,
    requests,
    total: () => [...requests.values()].reduce((a, b) => a + b, 0),
    routes,
    close: () =>
      new Promise<void>((res) => {
        for (const s of sockets) s.destroy()
        server.close(() => res())
      }),
  }
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n')
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`
}

/**
 * A leaf certificate whose validity ended in the past, signed by `ca` (an EC P-256 CA from makeCert):
 * openssl 3.0's `x509 -req` cannot back-date, @peculiar/x509 can.
 */
export async function expiredLeaf(ca: Issued, dns: string[]): Promise<Issued> {
  x509.cryptoProvider.set(webcrypto as never)
  const alg = { name: 'ECDSA', namedCurve: 'P-256' }
  const caDer = Buffer.from(ca.keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  const caKey = await webcrypto.subtle.importKey('pkcs8', caDer, alg, false, ['sign'])
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])
  const issuer = new x509.X509Certificate(ca.pem).subject
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0bad',
    subject: `CN=${dns[0]}`,
    issuer,
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2020-02-01T00:00:00Z'),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension(dns.map((value) => ({ type: 'dns' as const, value }))),
    ],
  })
  return {
    der: new Uint8Array(cert.rawData),
    pem: cert.toString('pem') + '\n',
    keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
  }
}
