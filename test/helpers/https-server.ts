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

export async function startHttpsServer(cert: Issued, address = '127.0.0.1'): Promise<TestHttpsServer> {
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
  await new Promise<void>((res) => server.listen(0, address, res))
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
  return expiredCertificate(ca, { cn: dns[0] ?? 'expired', dns })
}

/**
 * A certificate whose validity ended in the past (2020-01-01 to 2020-02-01), signed by `issuer` (an EC
 * P-256 certificate from makeCert): a leaf with `dns` names, or with `ca` an intermediate CA that can
 * sign further certificates (makeCert({ issuer }) signs with it: openssl does not check the issuer's dates).
 */
export async function expiredCertificate(issuer: Issued, o: { cn: string; dns?: string[]; ca?: boolean }): Promise<Issued> {
  x509.cryptoProvider.set(webcrypto as never)
  const alg = { name: 'ECDSA', namedCurve: 'P-256' }
  const caDer = Buffer.from(issuer.keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  const caKey = await webcrypto.subtle.importKey('pkcs8', caDer, alg, false, ['sign'])
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: o.ca ? '0bada1' : '0bad',
    subject: `CN=${o.cn}`,
    issuer: new x509.X509Certificate(issuer.pem).subject,
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2020-02-01T00:00:00Z'),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: o.ca
      ? [
          new x509.BasicConstraintsExtension(true, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        ]
      : [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.SubjectAlternativeNameExtension((o.dns ?? []).map((value) => ({ type: 'dns' as const, value }))),
        ],
  })
  return {
    der: new Uint8Array(cert.rawData),
    pem: cert.toString('pem') + '\n',
    keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
  }
}
