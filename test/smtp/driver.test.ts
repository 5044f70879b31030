// A driver over real streams: smtp-server (npm) as the peer, on 127.0.0.1 over TCP and over an
// in-memory duplex pair; the client upgrades with tls.connect({ socket }). Bounded in time; every
// server is closed at the end.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type AddressInfo } from 'node:net'
import { Duplex } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'
import { StartTlsClient, type StartTlsAction } from '../../src/index.js'
import { makeCert, type Issued } from '../helpers/openssl.js'

interface Outcome {
  final: StartTlsAction
  client: StartTlsClient
  /** The stream MAIL FROM would go to: the TLS socket when secure. */
  stream: Duplex
  tls?: TLSSocket
}

/**
 * The thin driver of DESIGN.md §1: it only moves bytes. `data` → handle, `send` → write, `upgrade`
 * → tls.connect({ socket }), `ready`/`close` → resolve.
 */
function drive(socket: Duplex, client: StartTlsClient, ca: string, deadlineMs = 5000): Promise<Outcome> {
  return new Promise((resolve) => {
    let io: Duplex = socket
    let tls: TLSSocket | undefined
    let done = false
    const timer = setTimeout(() => run({ type: 'timeout' }), deadlineMs)
    const onData = (b: Buffer) => run({ type: 'data', bytes: b })
    const onEnd = () => run({ type: 'eof' })
    function finish(final: StartTlsAction): void {
      done = true
      clearTimeout(timer)
      socket.off('data', onData)
      const out: Outcome = { final, client, stream: io }
      if (tls) out.tls = tls
      resolve(out)
    }
    function run(input: Parameters<StartTlsClient['handle']>[0]): void {
      if (done) return
      for (const a of client.handle(input)) {
        if (a.type === 'send') io.write(a.bytes)
        else if (a.type === 'upgrade') {
          socket.off('data', onData)
          socket.off('end', onEnd)
          tls = tlsConnect({ socket, servername: a.servername, ca, minVersion: 'TLSv1.2' })
          tls.once('secureConnect', () => run({ type: 'tlsEstablished' }))
          tls.on('data', onData)
          tls.once('end', onEnd)
          tls.once('error', (cause) => run({ type: 'tlsFailed', cause }))
          io = tls
        } else if (a.type === 'close') {
          if (!a.error || a.error.code !== 'ERR_SMTP_EOF') io.end()
          finish(a)
        } else finish(a)
      }
    }
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.on('error', () => run({ type: 'eof' }))
  })
}

/** Send QUIT on the handed-over stream and wait for the 221 (the driver's job after `ready`). */
async function quit(stream: Duplex): Promise<string> {
  stream.write('QUIT\r\n')
  const [chunk] = (await once(stream, 'data')) as [Buffer]
  stream.end()
  return chunk.toString('latin1')
}

/** Two connected in-memory streams (Node 20 has no stream.duplexPair). */
function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk)
        cb()
      },
      final(cb) {
        peer().push(null)
        cb()
      },
    })
  const a: Duplex = make(() => b)
  const b: Duplex = make(() => a)
  // smtp-server treats its peer as a net.Socket (readyState, setTimeout); the test's deadline bounds the exchange.
  for (const d of [a, b]) Object.assign(d, { readyState: 'open', setTimeout: () => d, setKeepAlive: () => d, setNoDelay: () => d })
  return [a, b]
}

describe('StartTlsClient driven over real streams against smtp-server', { timeout: 30000 }, () => {
  let cert: Issued
  const servers: SMTPServer[] = []
  const seen: string[] = []

  function server(extra: Partial<SMTPServerOptions> = {}): SMTPServer {
    const s = new SMTPServer({
      name: 'mx.test',
      key: cert.keyPem,
      cert: cert.pem,
      logger: false,
      disableReverseLookup: true,
      authOptional: true,
      onConnect: (session, cb) => {
        seen.push(`connect ${session.remoteAddress}`)
        cb()
      },
      onSecure: (_socket, session, cb) => {
        seen.push(`secure ${session.remoteAddress}`)
        cb()
      },
      ...extra,
    })
    s.on('error', () => {})
    servers.push(s)
    return s
  }

  async function listen(s: SMTPServer): Promise<number> {
    s.listen(0, '127.0.0.1')
    await once(s.server, 'listening')
    return (s.server.address() as AddressInfo).port
  }

  before(() => {
    cert = makeCert({ subject: '/CN=mx.test', dns: ['mx.test'], key: 'ec256' })
  })
  after(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  })

  it('TCP on 127.0.0.1: greeting, EHLO, STARTTLS, TLS, EHLO again, ready secure', async () => {
    const port = await listen(server({ size: 1024 * 1024 }))
    const client = new StartTlsClient({ ehloName: 'client.test', requireTls: true, servername: 'mx.test' })
    const sock = connect(port, '127.0.0.1')
    const out = await drive(sock, client, cert.pem)
    assert.equal(out.final.type, 'ready', JSON.stringify(out.final))
    assert.ok(out.final.type === 'ready')
    assert.equal(out.final.secure, true)
    assert.equal(out.final.extensions.has('STARTTLS'), false, 'smtp-server does not advertise STARTTLS after TLS')
    assert.equal(out.final.capabilities.known.PIPELINING, true)
    assert.equal(out.final.capabilities.size, 1024 * 1024)
    assert.equal(out.tls?.authorized, true)
    assert.equal(out.tls?.servername, 'mx.test')
    const t = client.transcript
    assert.match(t[0] ?? '', /^< 220 mx\.test ESMTP/)
    assert.deepEqual(
      t.filter((l) => l.startsWith('>')),
      ['> EHLO client.test', '> STARTTLS', '> EHLO client.test'],
    )
    assert.ok(t.includes('< 250-STARTTLS'), 'pre-TLS EHLO offered STARTTLS')
    assert.match(await quit(out.stream), /^221 /)
  })

  it('in-memory duplex pair: the same exchange, smtp-server sees 127.0.0.1', async () => {
    const s = server()
    const [clientSide, serverSide] = duplexPair()
    s.connect(serverSide as unknown as Parameters<SMTPServer['connect']>[0], { id: 'mem', remoteAddress: '127.0.0.1' } as never)
    const client = new StartTlsClient({ ehloName: 'client.test', requireTls: true, servername: 'mx.test' })
    const before = seen.length
    const out = await drive(clientSide, client, cert.pem)
    assert.ok(out.final.type === 'ready', JSON.stringify([out.final, client.transcript]))
    assert.equal(out.final.secure, true)
    assert.deepEqual(seen.slice(before), ['connect 127.0.0.1', 'secure 127.0.0.1'])
    assert.equal(out.tls?.authorized, true)
    assert.match(await quit(out.stream), /^221 /)
  })

  it('STARTTLS hidden, TLS required: QUIT then close with 4.7.4, nothing else sent', async () => {
    const port = await listen(server({ hideSTARTTLS: true }))
    const client = new StartTlsClient({ ehloName: 'client.test', requireTls: true, servername: 'mx.test' })
    const out = await drive(connect(port, '127.0.0.1'), client, cert.pem)
    assert.ok(out.final.type === 'close')
    assert.equal(out.final.error?.code, 'ERR_STARTTLS_NOT_OFFERED')
    assert.equal(out.final.error?.enhancedStatus, '4.7.4')
    assert.deepEqual(
      client.transcript.filter((l) => l.startsWith('>')),
      ['> EHLO client.test', '> QUIT'],
    )
  })

  it('STARTTLS hidden, TLS optional: ready in plaintext', async () => {
    const port = await listen(server({ hideSTARTTLS: true }))
    const client = new StartTlsClient({ ehloName: 'client.test', requireTls: false, servername: 'mx.test' })
    const out = await drive(connect(port, '127.0.0.1'), client, cert.pem)
    assert.ok(out.final.type === 'ready')
    assert.equal(out.final.secure, false)
    assert.match(await quit(out.stream), /^221 /)
  })

  it('certificate not trusted: tlsFailed gives ERR_TLS_HANDSHAKE 4.7.5', async () => {
    const port = await listen(server())
    const other = makeCert({ subject: '/CN=other', key: 'ec256' })
    const client = new StartTlsClient({ ehloName: 'client.test', requireTls: true, servername: 'mx.test' })
    const out = await drive(connect(port, '127.0.0.1'), client, other.pem)
    assert.ok(out.final.type === 'close')
    assert.equal(out.final.error?.code, 'ERR_TLS_HANDSHAKE')
    assert.equal(out.final.error?.enhancedStatus, '4.7.5')
    assert.ok(out.final.error?.cause instanceof Error)
    out.tls?.destroy()
  })
})
