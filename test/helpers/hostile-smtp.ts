// Hostile SMTP servers on loopback (issue 10 §1): each shape misbehaves at one step of the session,
// the way a peer that wants to crash or stall the client would. Used by test/node/hostile-peers.test.ts
// and its child process (test/node/hostile-peers.child.ts).
import { createServer, type Server, type Socket } from 'node:net'

export const HOSTILE_SHAPES = [
  /** greets, offers STARTTLS, answers 220, then swallows the ClientHello and never replies */
  'swallow-hello',
  /** offers no STARTTLS and answers the client's FIN with a TCP reset */
  'reset-on-fin',
  /** a plain session (no STARTTLS) that resets the connection when it reads QUIT */
  'reset-after-quit',
  /** resets the connection when the ClientHello arrives */
  'reset-mid-handshake',
  /** closes (FIN) the connection when the ClientHello arrives */
  'close-mid-handshake',
  /** greets with 554 5.7.1 */
  'greeting-554',
  /** resets the connection right after the TCP handshake, before any greeting */
  'reset-at-once',
] as const
export type HostileShape = (typeof HOSTILE_SHAPES)[number]

export interface HostileServer {
  port: number
  /** connections accepted so far */
  readonly accepted: number
  close(): Promise<void>
}

const EHLO_TLS = '250-hostile.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n'
const EHLO_PLAIN = '250-hostile.test\r\n250 8BITMIME\r\n'

/** Reply line by line like a (mostly) well-behaved server until the shape's moment comes. */
function serve(shape: HostileShape, sock: Socket): void {
  sock.on('error', () => undefined)
  if (shape === 'reset-at-once') {
    sock.resetAndDestroy()
    return
  }
  if (shape === 'greeting-554') {
    sock.write('554 5.7.1 hostile.test no SMTP service here\r\n')
    sock.on('data', (b) => {
      if (/QUIT/i.test(b.toString('latin1'))) sock.end('221 2.0.0 bye\r\n')
    })
    return
  }
  sock.write('220 hostile.test ESMTP\r\n')
  const tls = shape === 'swallow-hello' || shape === 'reset-mid-handshake' || shape === 'close-mid-handshake'
  let inTls = false
  let buf = ''
  sock.on('data', (b) => {
    if (inTls) {
      // the ClientHello (or anything after our 220 to STARTTLS)
      if (shape === 'reset-mid-handshake') sock.resetAndDestroy()
      else if (shape === 'close-mid-handshake') sock.end()
      return // swallow-hello: never answer
    }
    buf += b.toString('latin1')
    let i: number
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i).toUpperCase()
      buf = buf.slice(i + 2)
      if (line.startsWith('EHLO')) sock.write(tls ? EHLO_TLS : EHLO_PLAIN)
      else if (line.startsWith('HELO')) sock.write('250 hostile.test\r\n')
      else if (line === 'STARTTLS' && tls) {
        sock.write('220 2.0.0 go ahead\r\n')
        inTls = true
        return
      } else if (line === 'QUIT') {
        if (shape === 'reset-after-quit') sock.resetAndDestroy()
        else sock.end('221 2.0.0 bye\r\n')
        return
      } else sock.write('502 5.5.1 not here\r\n')
    }
  })
  if (shape === 'reset-on-fin') sock.on('end', () => sock.resetAndDestroy())
}

export async function startHostileServer(shape: HostileShape, host = '127.0.0.1'): Promise<HostileServer> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server: Server = createServer((sock) => {
    accepted++
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    serve(shape, sock)
  })
  server.on('error', () => undefined)
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    get accepted() {
      return accepted
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
