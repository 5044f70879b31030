// SmtpTransaction against real servers on 127.0.0.1: smtp-server (npm; DATA, PIPELINING, AUTH) and,
// because smtp-server has no CHUNKING, a small BDAT server written here. A little driver moves the
// bytes: StartTlsClient (skipStartTls: plain TCP here, TLS is the connect driver's job) up to ready,
// then SmtpTransaction with `secure: true` as if TLS were up. The message must arrive byte-exact.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'
import {
  StartTlsClient,
  SmtpTransaction,
  type SmtpEnvelope,
  type SmtpTransactionAction,
  type SmtpTransactionOptions,
  type SmtpTransactionResult,
} from '../../src/index.js'
import { normalised } from './transaction-transcript.js'

interface Delivery {
  results: SmtpTransactionResult[]
  transcript: readonly string[]
  close?: SmtpTransactionAction
}

/** Connect, EHLO, then send each message as `chunkSize`-byte body chunks; QUIT at the end. */
async function deliver(
  port: number,
  messages: Array<{ envelope: SmtpEnvelope; body: Uint8Array }>,
  opts: Omit<SmtpTransactionOptions, 'capabilities' | 'secure'> = {},
  chunkSize = 7,
): Promise<Delivery> {
  const socket: Socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  const out: Delivery = { results: [], transcript: [] }
  const finished = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('delivery did not finish in 10 s')), 10_000)
    const end = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve()
    }
    const hello = new StartTlsClient({ ehloName: 'client.test', requireTls: false, servername: 'mx.test', skipStartTls: true })
    let tx: SmtpTransaction | undefined
    let msg = 0
    let offset = 0
    const next = () => {
      const m = messages[msg++]
      if (!m || !tx) return run(tx?.handle({ type: 'quit' }) ?? [])
      offset = 0
      run(tx.handle({ type: 'mail', envelope: m.envelope }))
    }
    const run = (acts: SmtpTransactionAction[]) => {
      for (const a of acts) {
        if (a.type === 'send') socket.write(a.bytes)
        else if (a.type === 'needBody') {
          const body = (messages[msg - 1] as { body: Uint8Array }).body
          const chunk = body.subarray(offset, offset + chunkSize)
          offset += chunk.length
          // a driver feeds the next chunk when the socket can take it; here, on the next turn
          setImmediate(() => run((tx as SmtpTransaction).handle(chunk.length > 0 ? { type: 'body', bytes: chunk } : { type: 'bodyEnd' })))
        } else if (a.type === 'done') {
          out.results.push(a.result)
          setImmediate(next)
        } else {
          out.close = a
          out.transcript = (tx as SmtpTransaction).transcript
          end()
        }
      }
    }
    socket.on('data', (bytes: Buffer) => {
      if (tx) return run(tx.handle({ type: 'data', bytes }))
      for (const a of hello.handle({ type: 'data', bytes })) {
        if (a.type === 'send') socket.write(a.bytes)
        else if (a.type === 'ready') {
          tx = new SmtpTransaction({ ...opts, capabilities: a.capabilities, secure: true })
          next()
        } else if (a.type === 'close') reject(a.error ?? new Error('closed before ready'))
      }
    })
    socket.on('close', () => {
      if (tx && !out.close) run(tx.handle({ type: 'eof' }))
      end()
    })
  })
  await finished
  return out
}

interface Received {
  from?: string
  to: string[]
  body: Buffer
  params: Record<string, unknown>
}

async function startServer(o: Partial<SMTPServerOptions>): Promise<{ port: number; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = []
  const server = new SMTPServer({
    name: 'mx.test',
    secure: false,
    hideSTARTTLS: true,
    authOptional: true,
    logger: false,
    ...o,
    onData(stream, session, cb) {
      const parts: Buffer[] = []
      stream.on('data', (b: Buffer) => parts.push(b))
      stream.on('end', () => {
        const env = session.envelope
        received.push({
          ...(env.mailFrom ? { from: env.mailFrom.address } : {}),
          to: env.rcptTo.map((r) => r.address),
          body: Buffer.concat(parts),
          params: env.mailFrom ? (env.mailFrom.args as Record<string, unknown>) : {},
        })
        cb(null, 'Ok: queued as TEST1')
      })
    },
  })
  server.on('error', () => undefined)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.server.address() as AddressInfo).port
  return { port, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

/** A small CHUNKING server (RFC 3030): greeting, EHLO, MAIL, RCPT, BDAT n [LAST], RSET, QUIT. */
async function startBdatServer(): Promise<{ port: number; received: Received[]; sizes: number[]; server: Server }> {
  const received: Received[] = []
  const sizes: number[] = []
  const server = createServer((sock) => {
    sock.on('error', () => undefined)
    let buf = Buffer.alloc(0)
    let need = 0
    let last = false
    let cur: Received = { to: [], body: Buffer.alloc(0), params: {} }
    const reply = (s: string) => sock.write(s + '\r\n')
    sock.write('220 bdat.test ESMTP\r\n')
    sock.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b])
      for (;;) {
        if (need > 0) {
          if (buf.length === 0) return
          const take = buf.subarray(0, need)
          cur.body = Buffer.concat([cur.body, take])
          need -= take.length
          buf = buf.subarray(take.length)
          if (need > 0) return
          if (last) {
            received.push(cur)
            cur = { to: [], body: Buffer.alloc(0), params: {} }
            reply('250 2.0.0 Ok: queued as BDAT1')
          } else reply('250 2.0.0 chunk ok')
          continue
        }
        const eol = buf.indexOf('\r\n')
        if (eol < 0) return
        const line = buf.subarray(0, eol).toString('latin1')
        buf = buf.subarray(eol + 2)
        const bdat = /^BDAT (\d+)( LAST)?$/.exec(line)
        if (/^EHLO /.test(line)) reply('250-bdat.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING')
        else if (line.startsWith('MAIL FROM:')) {
          cur = { from: line.slice(11, line.indexOf('>')), to: [], body: Buffer.alloc(0), params: {} }
          reply('250 2.1.0 Ok')
        } else if (line.startsWith('RCPT TO:')) {
          cur.to.push(line.slice(9, line.indexOf('>')))
          reply('250 2.1.5 Ok')
        } else if (bdat) {
          need = Number(bdat[1])
          last = bdat[2] !== undefined
          sizes.push(need)
          if (need === 0) {
            if (last) {
              received.push(cur)
              reply('250 2.0.0 Ok: queued as BDAT1')
            } else reply('250 2.0.0 chunk ok')
          }
        } else if (line === 'RSET') reply('250 2.0.0 Ok')
        else if (line === 'QUIT') {
          reply('221 2.0.0 Bye')
          sock.end()
          return
        } else reply('502 5.5.2 unknown')
      }
    })
  })
  server.on('error', () => undefined)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { port: (server.address() as AddressInfo).port, received, sizes, server }
}

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'))
/** 8-bit content (UTF-8 and raw bytes), dot-leading lines, a lone ".", bare LF and CR, no final newline. */
const tricky = latin1(
  'From: a@example.org\r\nSubject: caf\xc3\xa9\r\n\r\n.leading dot\n..two dots\r\n.\r\nbare\rCR and bare\nLF\r\n\xff\xfe raw 8-bit\r\n.\n. \r\nlast line without newline',
)
const big = latin1(Array.from({ length: 4000 }, (_, i) => (i % 7 === 0 ? '.' : '') + `line ${i} ${'x'.repeat(i % 90)}\n`).join(''))
const expected = (b: Uint8Array) => Buffer.from(normalised(Buffer.from(b).toString('latin1')), 'latin1')

describe('SmtpTransaction over smtp-server (DATA)', () => {
  let srv: Awaited<ReturnType<typeof startServer>>
  let lock: Awaited<ReturnType<typeof startServer>>
  let auth: Awaited<ReturnType<typeof startServer>>
  let plain: Awaited<ReturnType<typeof startServer>>
  before(async () => {
    plain = await startServer({ hideSMTPUTF8: true, hide8BITMIME: true, disabledCommands: ['AUTH'] })
    srv = await startServer({ size: 1_000_000, hideDSN: false, hideENHANCEDSTATUSCODES: false, disabledCommands: ['AUTH'] })
    lock = await startServer({ hidePIPELINING: true, hideSize: true, disabledCommands: ['AUTH'] })
    auth = await startServer({
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      authOptional: false,
      onAuth(a, _session, cb) {
        if (a.username === 'relay' && a.password === 'pässword') cb(null, { user: 'relay' })
        else cb(new Error('Invalid username or password'))
      },
    })
  })
  after(async () => {
    await Promise.all([srv.close(), lock.close(), auth.close(), plain.close()])
  })

  it('PIPELINING, SIZE, 8BITMIME, DSN: the message arrives byte-exact', async () => {
    const d = await deliver(srv.port, [
      {
        envelope: {
          from: 'a@example.org',
          to: ['b@example.com', { address: 'c@example.com', notify: ['FAILURE'] }],
          size: tricky.length,
          body: '8BITMIME',
          dsn: { ret: 'HDRS', envid: 'id+1' },
        },
        body: tricky,
      },
    ])
    assert.equal(d.results.length, 1)
    assert.deepEqual(d.results[0]?.accepted, ['b@example.com', 'c@example.com'])
    assert.match(d.results[0]?.dataReply?.lines.join(' ') ?? '', /queued as TEST1/)
    assert.deepEqual(srv.received.at(-1)?.body, expected(tricky))
    assert.equal(srv.received.at(-1)?.params.BODY, '8BITMIME')
    assert.equal(srv.received.at(-1)?.params.RET, 'HDRS')
    assert.ok(
      d.transcript.some((l) => l.startsWith('> MAIL FROM:<a@example.org> SIZE=') && l.includes('ENVID=id+2B1')),
      d.transcript.join('\n'),
    )
    assert.equal(d.close?.type === 'close' && d.close.error, undefined)
  })

  it('lock-step (hidePIPELINING), two messages on one session with RSET, one large', async () => {
    const d = await deliver(
      lock.port,
      [
        { envelope: { from: 'a@example.org', to: ['b@example.com'] }, body: tricky },
        { envelope: { from: '', to: ['c@example.com'] }, body: big },
      ],
      {},
      4096,
    )
    assert.deepEqual(
      d.results.map((r) => r.accepted),
      [['b@example.com'], ['c@example.com']],
    )
    assert.deepEqual(
      lock.received.slice(-2).map((r) => r.body),
      [expected(tricky), expected(big)],
    )
    assert.ok(d.transcript.includes('> RSET'))
    assert.ok(!d.transcript.some((l) => l.includes('|')))
  })

  it('SMTPUTF8: a non-ASCII recipient arrives as UTF-8; without SMTPUTF8 it fails 5.6.7 and the others go', async () => {
    const d = await deliver(srv.port, [{ envelope: { from: 'a@example.org', to: ['jörg@example.com', 'b@example.com'] }, body: tricky }])
    assert.deepEqual(d.results[0]?.accepted, ['jörg@example.com', 'b@example.com'])
    assert.deepEqual(srv.received.at(-1)?.to, ['jörg@example.com', 'b@example.com'])
    assert.equal(srv.received.at(-1)?.params.SMTPUTF8, true)
    const p = await deliver(plain.port, [{ envelope: { from: 'a@example.org', to: ['jörg@example.com', 'b@example.com'] }, body: tricky }])
    assert.deepEqual(
      p.results[0]?.recipients.map((r) => [r.status, r.enhancedStatus]),
      [
        ['rejected', '5.6.7'],
        ['accepted', '2.0.0'],
      ],
    )
    assert.deepEqual(plain.received.at(-1)?.to, ['b@example.com'])
    assert.ok(!p.transcript.some((l) => l.includes('jörg')))
  })

  it('8BITMIME hidden: an 8-bit message is refused 5.6.3 before MAIL', async () => {
    const n = plain.received.length
    const d = await deliver(plain.port, [{ envelope: { from: 'a@example.org', to: ['b@example.com'], body: '8BITMIME' }, body: tricky }])
    assert.equal(d.results[0]?.recipients[0]?.enhancedStatus, '5.6.3')
    assert.equal(plain.received.length, n)
  })

  it('SIZE over the server limit: nothing sent, 5.3.4', async () => {
    const n = srv.received.length
    const d = await deliver(srv.port, [{ envelope: { from: 'a@example.org', to: ['b@example.com'], size: 2_000_000 }, body: tricky }])
    assert.equal(d.results[0]?.recipients[0]?.enhancedStatus, '5.3.4')
    assert.equal(srv.received.length, n)
    assert.ok(!d.transcript.some((l) => l.startsWith('> MAIL')))
  })

  it('AUTH PLAIN and AUTH LOGIN succeed; a wrong password is a coded permanent failure', async () => {
    for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
      const d = await deliver(auth.port, [{ envelope: { from: 'a@example.org', to: ['b@example.com'] }, body: tricky }], {
        auth: { username: 'relay', password: 'pässword', mechanism },
      })
      assert.deepEqual(d.results[0]?.accepted, ['b@example.com'], d.transcript.join('\n'))
      assert.ok(!JSON.stringify(d.transcript).includes('pässword'))
      assert.deepEqual(auth.received.at(-1)?.body, expected(tricky))
    }
    const bad = await deliver(auth.port, [{ envelope: { from: 'a@example.org', to: ['b@example.com'] }, body: tricky }], {
      auth: { username: 'relay', password: 'wrong' },
    })
    assert.ok(bad.close?.type === 'close' && bad.close.error?.code === 'ERR_SMTP_AUTH_FAILED' && bad.close.error.temporary === false)
    assert.equal(bad.results[0]?.rejected[0], 'b@example.com')
  })
})

describe('SmtpTransaction over a CHUNKING server (BDAT)', () => {
  let s: Awaited<ReturnType<typeof startBdatServer>>
  before(async () => {
    s = await startBdatServer()
  })
  after(() => {
    s.server.close()
  })
  it('BDAT: byte-exact, no dot-stuffing, sizes as announced, two messages', async () => {
    const d = await deliver(
      s.port,
      [
        { envelope: { from: 'a@example.org', to: ['b@example.com'] }, body: tricky },
        { envelope: { from: 'a@example.org', to: ['b@example.com'] }, body: big },
      ],
      {},
      1000,
    )
    assert.equal(d.results.length, 2)
    assert.deepEqual(
      s.received.map((r) => r.body),
      [expected(tricky), expected(big)],
    )
    assert.ok(!d.transcript.includes('> DATA'))
    assert.ok(d.transcript.some((l) => /^> BDAT \d+ LAST$/.test(l)))
    assert.ok(s.sizes.slice(0, -1).every((n) => n > 0))
  })
})
