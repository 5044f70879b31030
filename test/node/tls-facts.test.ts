// tlsSessionFacts on both ends of one Node TLS session (loopback).
import assert from 'node:assert/strict'
import tls from 'node:tls'
import { describe, it } from 'node:test'
import { tlsSessionFacts } from '../../src/node/index.js'
import type { TlsSessionFacts } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert, type KeyType } from '../helpers/openssl.js'

const certs = new Map<KeyType, ReturnType<typeof makeCert>>()
const cert = (k: KeyType) => certs.get(k) ?? (certs.set(k, makeCert({ subject: `/CN=${k}`, key: k })), certs.get(k)!)

async function session(o: {
  server: KeyType
  client?: KeyType
  ecdhCurve?: string
  maxVersion?: tls.SecureVersion
}): Promise<{ server: TlsSessionFacts; client: TlsSessionFacts }> {
  const s = cert(o.server)
  let serverFacts: TlsSessionFacts | undefined
  const server = tls.createServer(
    {
      key: s.keyPem,
      cert: s.pem,
      requestCert: o.client !== undefined,
      rejectUnauthorized: false,
      ...(o.ecdhCurve ? { ecdhCurve: o.ecdhCurve } : {}),
    },
    (sock) => {
      sock.on('error', () => undefined)
      serverFacts = tlsSessionFacts(sock, o.ecdhCurve ? { ecdhCurve: o.ecdhCurve } : {})
      sock.end()
    },
  )
  server.on('error', () => undefined)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  const c = o.client ? cert(o.client) : undefined
  const clientFacts = await new Promise<TlsSessionFacts>((resolve, reject) => {
    const sock = tls.connect(
      {
        host: '127.0.0.1',
        port,
        rejectUnauthorized: false,
        ...(c ? { key: c.keyPem, cert: c.pem } : {}),
        ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      },
      () => {
        const f = tlsSessionFacts(sock)
        sock.on('close', () => resolve(f))
        sock.resume()
      },
    )
    sock.on('error', reject)
  })
  await new Promise<void>((r) => server.close(() => r()))
  return { server: serverFacts!, client: clientFacts }
}

describe('tlsSessionFacts', () => {
  it('TLS 1.3, RSA server, EC client: both sides agree; the server side names the group only from ecdhCurve', async () => {
    const { server, client } = await session({ server: 'rsa2048', client: 'ec256', ecdhCurve: 'X25519' })
    const expected = {
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      cipherBits: 256,
      cipherAlgBits: 256,
      keyExchange: { name: 'X25519' },
      serverSignature: { name: 'RSA-PSS', bits: 2048, digest: 'SHA256' },
      clientSignature: { name: 'ECDSA', curve: 'prime256v1', digest: 'SHA256' },
    }
    assert.deepEqual(client, expected)
    assert.deepEqual(server, expected)
  })
  it('the server side without a single configured group: keyExchange unknown', async () => {
    const { server, client } = await session({ server: 'ec256' })
    assert.equal(server.keyExchange, undefined)
    assert.deepEqual(server.unknown, ['keyExchange'])
    assert.deepEqual(client.keyExchange, { name: 'X25519' })
    assert.deepEqual(client.serverSignature, { name: 'ECDSA', curve: 'prime256v1', digest: 'SHA256' })
    assert.equal(client.clientSignature, undefined)
  })
  it('TLS 1.2 with ECDHE on P-256: key-exchange ECDHE (prime256v1)', async () => {
    const { server, client } = await session({ server: 'rsa2048', ecdhCurve: 'prime256v1', maxVersion: 'TLSv1.2' })
    assert.equal(client.protocol, 'TLSv1.2')
    assert.equal(client.cipher, 'ECDHE-RSA-AES128-GCM-SHA256')
    assert.deepEqual([client.cipherBits, client.cipherAlgBits], [128, 128])
    assert.deepEqual(client.keyExchange, { name: 'ECDHE', curve: 'prime256v1' })
    assert.deepEqual(server.keyExchange, client.keyExchange)
  })
  it('Ed25519 server key', async () => {
    const { client } = await session({ server: 'ed25519' })
    assert.deepEqual(client.serverSignature, { name: 'ED25519' })
  })
  it('a socket without a finished handshake is a coded error', () => {
    throwsCoded(() => tlsSessionFacts(null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => tlsSessionFacts(new tls.TLSSocket(null as never)), 'ERR_INVALID_ARGUMENT')
  })
})
