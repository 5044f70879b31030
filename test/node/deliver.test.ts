// deliver(): connect() then SmtpTransaction over the verified socket, against smtp-server (and a few
// scripted servers for what smtp-server cannot do: CHUNKING, a 421 or a reset mid-DATA, a stalled reader).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { createTlsaRecord } from '../../src/index.js'
import {
  createResolver,
  deliver,
  openDeliverySession,
  SmtpTlsConnectError,
  type DeliverOptions,
  type DeliveryMessage,
} from '../../src/node/index.js'
import { startDnsServer, validatingZone, type TestDnsServer, type ZoneRecord } from '../helpers/dns-server.js'
import { startMailSink, type MailSink, type MailSinkOptions } from '../helpers/mail-sink.js'
import { makeCert } from '../helpers/openssl.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=mx.dlv.test', dns: ['mx.dlv.test'] })
const stranger = makeCert({ key: 'ec256', subject: '/CN=other.dlv.test', dns: ['other.dlv.test'] })
const tlsaOf = (der: Uint8Array) => {
  const r = createTlsaRecord(der, { usage: 3, selector: 1, matchingType: 1 })
  return { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) }
}

const closers: Array<() => Promise<void>> = []
after(async () => {
  for (const c of closers.reverse()) await c()
})

/** `dlv.test MX mx.dlv.test` at 127.0.0.1, with a TLSA record for `tlsaCert` at the sink's port. */
async function destination(port: number, tlsaCert: Uint8Array | undefined = cert.der): Promise<DeliverOptions> {
  const records: ZoneRecord[] = [
    ['dlv.test', 'MX', { preference: 10, exchange: 'mx.dlv.test' }],
    ['mx.dlv.test', 'A', '127.0.0.1'],
  ]
  if (tlsaCert) records.push([`_${port}._tcp.mx.dlv.test`, 'TLSA', tlsaOf(tlsaCert)])
  const dns: TestDnsServer = await startDnsServer(validatingZone({ records }))
  closers.push(() => dns.close())
  return {
    resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
    port,
    ehloName: 'client.test',
    timeoutMs: 5000,
  }
}

async function sink(o: MailSinkOptions = {}): Promise<MailSink> {
  const s = await startMailSink({ certPem: cert.pem, keyPem: cert.keyPem, ...o })
  closers.push(() => s.close())
  return s
}

// Lines starting with '.', a lone '.', 8-bit bytes, a bare LF that must become CRLF.
const BODY = Buffer.concat([
  Buffer.from('From: a@example.org\r\nTo: b@dlv.test\r\nSubject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n'),
  Buffer.from('caf\xc3\xa9 \xff\xfe 8-bit\r\n', 'latin1'),
])
const msg = (to: string[] = ['b@dlv.test'], body: DeliveryMessage['body'] = BODY): DeliveryMessage => ({
  envelope: { from: 'a@example.org', to },
  body,
})

describe('deliver(): a DANE-verified destination', () => {
  it('delivers byte-exact (dot lines, 8-bit) over the verified session, and reports recipients, verdict and transcript', async () => {
    const s = await sink()
    const o = await destination(s.port)
    const r = await deliver('dlv.test', msg(), { ...o, level: 'dane-only' })
    assert.equal(r.outcome.status, 'verified')
    assert.deepEqual(r.accepted, ['b@dlv.test'])
    assert.equal(r.recipients[0]?.status, 'accepted')
    assert.match(r.dataReply?.lines[0] ?? '', /queued as Q1/)
    assert.equal(s.messages.length, 1)
    assert.ok(s.messages[0]!.secure)
    assert.deepEqual(s.messages[0]!.bytes, BODY)
    // the transcript: connection, STARTTLS, then the message, no body line
    assert.ok(r.transcript.includes('> STARTTLS'))
    assert.ok(r.transcript.includes('> MAIL FROM:<a@example.org>'))
    assert.ok(!r.transcript.some((l) => l.includes('leading dot')))
    assert.ok(r.trace.length > 0)
  })

  it('a mismatched TLSA rejects with a temporary 4.7.5 before MAIL FROM', async () => {
    const s = await sink()
    const o = await destination(s.port, stranger.der)
    await assert.rejects(deliver('dlv.test', msg(), { ...o, level: 'dane' }), (e) => {
      assert.ok(e instanceof SmtpTlsConnectError)
      assert.equal(e.temporary, true)
      assert.match(e.enhancedStatus ?? '', /^4\.7\./)
      return true
    })
    assert.ok(!s.commands.some((c) => /^MAIL/i.test(c)), s.commands.join('\n'))
    assert.equal(s.messages.length, 0)
  })

  it('a stripped STARTTLS rejects at dane (4.7.4 class) and nothing is sent', async () => {
    const s = await startMailSink({}) // no certificate: STARTTLS hidden
    closers.push(() => s.close())
    const o = await destination(s.port)
    await assert.rejects(deliver('dlv.test', msg(), { ...o, level: 'dane' }), (e) => e instanceof SmtpTlsConnectError && e.temporary)
    assert.ok(!s.commands.some((c) => /^MAIL/i.test(c)))
  })
})

describe('deliver(): recipients and extensions', () => {
  it('partial acceptance: accepted, pending (4xx) and rejected (5xx) per recipient', async () => {
    const s = await sink({
      rcpt: (a) => (a.startsWith('busy') ? '450 4.2.1 mailbox busy' : a.startsWith('nobody') ? '550 5.1.1 no such user' : undefined),
    })
    const o = await destination(s.port)
    const r = await deliver('dlv.test', msg(['b@dlv.test', 'busy@dlv.test', 'nobody@dlv.test']), { ...o, level: 'dane' })
    assert.deepEqual(r.accepted, ['b@dlv.test'])
    assert.deepEqual(r.pending, ['busy@dlv.test'])
    assert.deepEqual(r.rejected, ['nobody@dlv.test'])
    assert.equal(r.recipients[1]?.enhancedStatus, '4.2.1')
    assert.equal(r.recipients[2]?.code, 550)
    assert.deepEqual(s.messages[0]?.to, ['b@dlv.test'])
  })

  it('no recipient accepted: no DATA, every recipient decided', async () => {
    const s = await sink({ rcpt: () => '450 4.2.1 later' })
    const o = await destination(s.port)
    const r = await deliver('dlv.test', msg(), { ...o, level: 'dane' })
    assert.deepEqual(r.pending, ['b@dlv.test'])
    assert.ok(!s.commands.includes('DATA'))
  })

  for (const pipelining of [true, false]) {
    it(`PIPELINING ${pipelining ? 'on' : 'off'}: the same message arrives`, async () => {
      const s = await sink({ smtp: { hidePIPELINING: !pipelining } })
      const o = await destination(s.port)
      const r = await deliver('dlv.test', msg(['b@dlv.test', 'c@dlv.test']), { ...o, level: 'dane' })
      assert.deepEqual(r.accepted, ['b@dlv.test', 'c@dlv.test'])
      assert.deepEqual(s.messages[0]?.bytes, BODY)
      // without PIPELINING each RCPT waits for the MAIL reply: the transcript alternates
      const i = r.transcript.findIndex((l) => l.startsWith('> MAIL'))
      assert.equal(r.transcript[i + 1]?.startsWith('> RCPT'), pipelining)
    })
  }

  for (const size of [true, false]) {
    it(`SIZE ${size ? 'offered' : 'hidden'}: SIZE= sent only when offered`, async () => {
      const s = await sink({ smtp: size ? { size: 1_000_000 } : {} })
      const o = await destination(s.port)
      await deliver(
        'dlv.test',
        { envelope: { from: 'a@example.org', to: ['b@dlv.test'], size: BODY.length }, body: BODY },
        { ...o, level: 'dane' },
      )
      const mail = s.commands.find((c) => c.startsWith('MAIL'))!
      assert.equal(/SIZE=\d+/.test(mail), size, mail)
    })
  }

  it('SIZE: a declared size over the advertised limit is refused before MAIL FROM (5.3.4)', async () => {
    const s = await sink({ smtp: { size: 100 } })
    const o = await destination(s.port)
    const r = await deliver(
      'dlv.test',
      { envelope: { from: 'a@example.org', to: ['b@dlv.test'], size: 5000 }, body: BODY },
      { ...o, level: 'dane' },
    )
    assert.deepEqual(r.rejected, ['b@dlv.test'])
    assert.equal(r.recipients[0]?.enhancedStatus, '5.3.4')
    assert.equal(r.error?.code, 'ERR_SMTP_MESSAGE_TOO_BIG')
    assert.ok(!s.commands.some((c) => c.startsWith('MAIL')))
  })

  it('a server that lies about SIZE (advertises 10 MB, refuses 1 KB at the end of DATA): rejected with its 552', async () => {
    const s = await sink({
      smtp: { size: 10_000_000 },
      data: (b) => (b.length > 1000 ? '552 5.3.4 Message too big for system' : undefined),
    })
    const o = await destination(s.port)
    const r = await deliver('dlv.test', msg(['b@dlv.test'], 'x'.repeat(5000) + '\r\n'), { ...o, level: 'dane' })
    assert.deepEqual(r.rejected, ['b@dlv.test'])
    assert.equal(r.recipients[0]?.code, 552)
    assert.equal(r.recipients[0]?.enhancedStatus, '5.3.4')
    assert.equal(s.messages.length, 0)
  })

  for (const offered of [true, false]) {
    it(`8BITMIME ${offered ? 'offered: BODY=8BITMIME sent' : 'hidden: refused 5.6.3, never sent'}`, async () => {
      const s = await sink({ smtp: { hide8BITMIME: !offered } })
      const o = await destination(s.port)
      const r = await deliver(
        'dlv.test',
        { envelope: { from: 'a@example.org', to: ['b@dlv.test'], body: '8BITMIME' }, body: BODY },
        { ...o, level: 'dane' },
      )
      if (offered) {
        assert.deepEqual(r.accepted, ['b@dlv.test'])
        assert.match(s.commands.find((c) => c.startsWith('MAIL')) ?? '', /BODY=8BITMIME/)
      } else {
        assert.equal(r.recipients[0]?.enhancedStatus, '5.6.3')
        assert.ok(!s.commands.some((c) => c.startsWith('MAIL')))
      }
    })
  }

  for (const offered of [true, false]) {
    it(`SMTPUTF8 ${offered ? 'offered: the non-ASCII recipient is sent' : 'hidden: that recipient fails 5.6.7, the others go on'}`, async () => {
      const s = await sink({ smtp: { hideSMTPUTF8: !offered } })
      const o = await destination(s.port)
      const r = await deliver('dlv.test', msg(['b@dlv.test', 'jösé@dlv.test']), { ...o, level: 'dane' })
      if (offered) assert.deepEqual(r.accepted, ['b@dlv.test', 'jösé@dlv.test'])
      else {
        assert.deepEqual(r.accepted, ['b@dlv.test'])
        assert.equal(r.recipients[1]?.enhancedStatus, '5.6.7')
        assert.ok(!s.commands.some((c) => c.includes('jösé')))
      }
    })
  }

  for (const offered of [true, false]) {
    it(`DSN ${offered ? 'offered: NOTIFY and RET sent' : 'hidden: left out'}`, async () => {
      const s = await sink({ smtp: { hideDSN: !offered } })
      const o = await destination(s.port)
      await deliver(
        'dlv.test',
        { envelope: { from: 'a@example.org', to: [{ address: 'b@dlv.test', notify: ['FAILURE'] }], dsn: { ret: 'HDRS' } }, body: BODY },
        { ...o, level: 'dane' },
      )
      assert.equal(/RET=HDRS/.test(s.commands.find((c) => c.startsWith('MAIL')) ?? ''), offered)
      assert.equal(/NOTIFY=FAILURE/.test(s.commands.find((c) => c.startsWith('RCPT')) ?? ''), offered)
    })
  }
})

describe('deliver(): REQUIRETLS (RFC 8689)', () => {
  it('offered on the verified session: REQUIRETLS sent', async () => {
    const s = await sink({ smtp: { hideREQUIRETLS: false } }) // smtp-server hides it by default
    const o = await destination(s.port)
    const r = await deliver(
      'dlv.test',
      { envelope: { from: 'a@example.org', to: ['b@dlv.test'], requireTls: true }, body: BODY },
      { ...o, level: 'dane' },
    )
    assert.deepEqual(r.accepted, ['b@dlv.test'])
    assert.match(s.commands.find((c) => c.startsWith('MAIL')) ?? '', /REQUIRETLS/)
  })

  it('hidden after STARTTLS: ERR_REQUIRETLS (5.7.30, permanent for this host) before MAIL FROM', async () => {
    const s = await sink({ smtp: { hideREQUIRETLS: true } }) // smtp-server's default, made explicit
    const o = await destination(s.port)
    await assert.rejects(
      deliver(
        'dlv.test',
        { envelope: { from: 'a@example.org', to: ['b@dlv.test'], requireTls: true }, body: BODY },
        { ...o, level: 'dane' },
      ),
      (e) => e instanceof SmtpTlsConnectError && e.code === 'ERR_REQUIRETLS' && e.enhancedStatus === '5.7.30',
    )
    assert.ok(!s.commands.some((c) => c.startsWith('MAIL')))
  })

  it('on an open session that is not verified, the machine still refuses it (5.7.30), never sent', async () => {
    const s = await sink({ smtp: { hideREQUIRETLS: false } })
    const o = await destination(s.port, undefined)
    const session = await openDeliverySession('dlv.test', { ...o, level: 'may' })
    const r = await session.send({ envelope: { from: 'a@example.org', to: ['b@dlv.test'], requireTls: true }, body: BODY })
    await session.close()
    assert.equal(r.outcome.status, 'untrusted')
    assert.equal(r.recipients[0]?.enhancedStatus, '5.7.30')
    assert.ok(!s.commands.some((c) => c.startsWith('MAIL')))
  })

  it('at level may with a server that is not authenticated: no session is good enough, rejected before MAIL FROM', async () => {
    const s = await sink()
    const o = await destination(s.port, undefined)
    await assert.rejects(
      deliver(
        'dlv.test',
        { envelope: { from: 'a@example.org', to: ['b@dlv.test'], requireTls: true }, body: BODY },
        { ...o, level: 'may' },
      ),
      (e) => e instanceof SmtpTlsConnectError && e.code === 'ERR_REQUIRETLS',
    )
    assert.ok(!s.commands.some((c) => c.startsWith('MAIL')))
  })
})

describe('deliver(): bodies', () => {
  it('a Readable of 4 MB arrives intact (streamed, chunk by chunk)', async () => {
    const s = await sink()
    const o = await destination(s.port)
    const line = Buffer.from('.0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n')
    const n = Math.ceil((4 * 1024 * 1024) / line.length)
    let produced = 0
    const stream = new Readable({
      highWaterMark: 64 * 1024,
      read() {
        if (produced >= n) {
          this.push(null)
          return
        }
        const batch = Math.min(800, n - produced)
        produced += batch
        this.push(Buffer.concat(Array.from({ length: batch }, () => line)))
      },
    })
    const r = await deliver('dlv.test', msg(['b@dlv.test'], stream), { ...o, level: 'dane' })
    assert.deepEqual(r.accepted, ['b@dlv.test'])
    const got = s.messages[0]!.bytes
    assert.equal(got.length, n * line.length)
    const want = createHash('sha256')
    for (let i = 0; i < n; i++) want.update(line)
    assert.equal(createHash('sha256').update(got).digest('hex'), want.digest('hex'))
  })

  it('an async generator of strings and bytes, and a string body', async () => {
    const s = await sink()
    const o = await destination(s.port)
    async function* gen() {
      yield 'Subject: gen\r\n\r\n'
      yield new Uint8Array(Buffer.from('.dot\r\n'))
      yield ''
      yield 'end'
    }
    await deliver('dlv.test', msg(['b@dlv.test'], gen()), { ...o, level: 'dane' })
    await deliver('dlv.test', msg(['b@dlv.test'], 'Subject: s\r\n\r\nx'), { ...o, level: 'dane' })
    assert.equal(s.messages[0]!.bytes.toString(), 'Subject: gen\r\n\r\n.dot\r\nend\r\n')
    assert.equal(s.messages[1]!.bytes.toString(), 'Subject: s\r\n\r\nx\r\n')
  })

  it('a body stream that fails mid-message: the session is abandoned, recipients pending, nothing stored', async () => {
    const s = await sink()
    const o = await destination(s.port)
    async function* gen() {
      yield 'Subject: x\r\n\r\n'
      throw new Error('disk on fire')
    }
    const r = await deliver('dlv.test', msg(['b@dlv.test'], gen()), { ...o, level: 'dane' })
    assert.deepEqual(r.pending, ['b@dlv.test'])
    assert.match(r.error?.message ?? '', /disk on fire/)
    assert.equal(r.error?.temporary, true)
    assert.equal(s.messages.length, 0)
  })

  it('several messages on one session: one connection, RSET between them', async () => {
    const s = await sink()
    const o = await destination(s.port)
    const rs = await deliver('dlv.test', [msg(), msg(['c@dlv.test']), msg(['d@dlv.test'])], { ...o, level: 'dane' })
    assert.equal(rs.length, 3)
    assert.deepEqual(
      rs.map((r) => r.accepted[0]),
      ['b@dlv.test', 'c@dlv.test', 'd@dlv.test'],
    )
    assert.equal(s.connections, 1)
    assert.equal(s.commands.filter((c) => c === 'RSET').length, 2)
    assert.equal(s.messages.length, 3)
  })

  it('openDeliverySession: send() queues, close() QUITs', async () => {
    const s = await sink()
    const o = await destination(s.port)
    const session = await openDeliverySession('dlv.test', { ...o, level: 'dane' })
    const [a, b] = await Promise.all([session.send(msg()), session.send(msg(['c@dlv.test']))])
    assert.deepEqual([a.accepted, b.accepted], [['b@dlv.test'], ['c@dlv.test']])
    assert.equal(session.messages, 2)
    await session.close()
    assert.ok(session.closed)
    assert.ok(s.commands.includes('QUIT'))
    const late = await session.send(msg())
    assert.deepEqual(late.pending, ['b@dlv.test'])
  })

  it('send() with an aborted signal: never on the wire (ERR_ABORTED, pending), the session goes on', async () => {
    const s = await sink()
    const o = await destination(s.port)
    const session = await openDeliverySession('dlv.test', { ...o, level: 'dane' })
    const ac = new AbortController()
    ac.abort()
    const [a, b] = await Promise.all([session.send(msg(['x@dlv.test']), { signal: ac.signal }), session.send(msg())])
    await session.close()
    assert.equal(a.error?.code, 'ERR_ABORTED')
    assert.deepEqual(a.pending, ['x@dlv.test'])
    assert.deepEqual(b.accepted, ['b@dlv.test'])
    assert.ok(!s.commands.some((c) => c.includes('x@dlv.test')))
  })
})

describe('deliver(): credentials', () => {
  for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
    it(`AUTH ${mechanism} over TLS: the password and its base64 appear in no result, transcript or trace`, async () => {
      const password = 'pässwörd-S3cret'
      const s = await sink({ auth: { username: 'relayuser', password } })
      const o = await destination(s.port)
      const r = await deliver('dlv.test', msg(), { ...o, level: 'dane', auth: { username: 'relayuser', password, mechanism } })
      assert.deepEqual(r.accepted, ['b@dlv.test'])
      const text = JSON.stringify(r, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v))
      for (const secret of [
        password,
        Buffer.from(password).toString('base64'),
        Buffer.from(`\0relayuser\0${password}`).toString('base64'),
        Buffer.from(password).toString('latin1'),
      ]) {
        assert.ok(!text.includes(secret), `found ${secret}`)
      }
      assert.ok(r.transcript.some((l) => l.startsWith('> AUTH')))
    })
  }
})

/** A plaintext scripted SMTP server: `onLine` answers each command line; DATA bodies go to `onBody`. */
async function scripted(o: {
  ehlo?: string[]
  onBody?: (sock: Socket, bytes: Buffer) => void
  onData?: (sock: Socket) => void
  chunking?: boolean
}): Promise<{ port: number; bodies: Buffer[]; commands: string[] }> {
  const bodies: Buffer[] = []
  const commands: string[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((sock) => {
    sockets.add(sock)
    sock.on('error', () => undefined)
    let buf = Buffer.alloc(0)
    let inData = false
    let bdat = 0
    let body: Buffer[] = []
    sock.write('220 scripted.test ESMTP\r\n')
    sock.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b])
      for (;;) {
        if (bdat > 0) {
          const take = Math.min(bdat, buf.length)
          body.push(buf.subarray(0, take))
          buf = buf.subarray(take)
          bdat -= take
          if (bdat > 0) return
          continue
        }
        if (inData) {
          o.onBody?.(sock, buf)
          const end = buf.indexOf('\r\n.\r\n')
          if (end < 0) return
          bodies.push(Buffer.concat([...body, buf.subarray(0, end + 2)]))
          body = []
          buf = buf.subarray(end + 5)
          inData = false
          sock.write('250 2.0.0 queued\r\n')
          continue
        }
        const i = buf.indexOf('\r\n')
        if (i < 0) return
        const line = buf.subarray(0, i).toString('latin1')
        buf = buf.subarray(i + 2)
        commands.push(line)
        const bd = /^BDAT (\d+)( LAST)?$/.exec(line)
        if (/^EHLO/i.test(line)) {
          const lines = ['scripted.test', ...(o.ehlo ?? ['PIPELINING'])]
          sock.write(lines.map((l, k) => `250${k === lines.length - 1 ? ' ' : '-'}${l}\r\n`).join(''))
        } else if (/^(MAIL|RCPT|RSET)/i.test(line)) sock.write('250 2.0.0 ok\r\n')
        else if (line === 'DATA') {
          inData = true
          sock.write('354 go\r\n')
          o.onData?.(sock)
        } else if (bd) {
          bdat = Number(bd[1])
          const last = bd[2] !== undefined
          const wait = (): void => {
            if (bdat > 0) {
              setImmediate(wait)
              return
            }
            if (last) {
              bodies.push(Buffer.concat(body))
              body = []
              sock.write('250 2.0.0 queued\r\n')
            } else sock.write('250 2.0.0 chunk\r\n')
          }
          setImmediate(wait)
        } else if (line === 'QUIT') sock.end('221 bye\r\n')
        else sock.write('502 5.5.1 no\r\n')
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  closers.push(
    () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  )
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no address')
  return { port: addr.port, bodies, commands }
}

describe('deliver(): a hostile or failing server (level may, plaintext)', () => {
  it('CHUNKING: BDAT, the same bytes unstuffed', async () => {
    const srv = await scripted({ ehlo: ['PIPELINING', 'CHUNKING'] })
    const o = await destination(srv.port, undefined)
    const r = await deliver('dlv.test', msg(), { ...o, level: 'may' })
    assert.deepEqual(r.accepted, ['b@dlv.test'])
    assert.ok(srv.commands.some((c) => /^BDAT \d+ LAST$/.test(c)))
    assert.deepEqual(srv.bodies[0], BODY)
  })

  it('421 mid-DATA: every recipient pending with 4.x.x, no crash', async () => {
    const srv = await scripted({
      onBody: (sock) => {
        sock.end('421 4.3.2 shutting down\r\n')
      },
    })
    const o = await destination(srv.port, undefined)
    const r = await deliver('dlv.test', msg(['b@dlv.test', 'c@dlv.test'], 'x'.repeat(300_000)), { ...o, level: 'may' })
    assert.deepEqual(r.pending, ['b@dlv.test', 'c@dlv.test'])
    assert.match(r.recipients[0]?.enhancedStatus ?? '', /^4\./)
    assert.equal(r.error?.temporary, true)
  })

  it('connection reset mid-DATA: pending 4.4.2, no crash', async () => {
    const srv = await scripted({ onBody: (sock) => sock.resetAndDestroy() })
    const o = await destination(srv.port, undefined)
    const r = await deliver('dlv.test', msg(['b@dlv.test'], 'x'.repeat(300_000)), { ...o, level: 'may' })
    assert.deepEqual(r.pending, ['b@dlv.test'])
    assert.match(r.recipients[0]?.enhancedStatus ?? '', /^4\./)
  })

  it('a server that stops reading mid-body: timeoutMs gives pending 4.4.2 (ERR_SMTP_TIMEOUT), and the body is read only as the socket drains', async () => {
    const srv = await scripted({ onData: (sock) => sock.pause() })
    const o = await destination(srv.port, undefined)
    // 64 MB on offer; backpressure means only what the socket buffers took was ever read
    let produced = 0
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    const body = new Readable({
      read() {
        if (produced >= 64 * 1024 * 1024) {
          this.push(null)
          return
        }
        produced += chunk.length
        this.push(chunk)
      },
    })
    const r = await deliver('dlv.test', msg(['b@dlv.test'], body), { ...o, level: 'may', timeoutMs: 300 })
    assert.deepEqual(r.pending, ['b@dlv.test'])
    assert.equal(r.error?.code, 'ERR_SMTP_TIMEOUT')
    assert.equal(r.recipients[0]?.enhancedStatus, '4.4.2')
    assert.ok(produced < 16 * 1024 * 1024, `read ${produced} bytes of the body while the server read nothing`)
  })

  it('a body source that stalls: timeoutMs gives pending 4.4.2', async () => {
    const srv = await scripted({})
    const o = await destination(srv.port, undefined)
    async function* stall() {
      yield 'Subject: x\r\n\r\n'
      await new Promise(() => undefined)
    }
    const r = await deliver('dlv.test', msg(['b@dlv.test'], stall()), { ...o, level: 'may', timeoutMs: 300 })
    assert.deepEqual(r.pending, ['b@dlv.test'])
    assert.equal(r.error?.code, 'ERR_SMTP_TIMEOUT')
  })

  it('an AbortSignal mid-body: pending, ERR_ABORTED, the session is abandoned', async () => {
    const srv = await scripted({ onData: (sock) => sock.pause() })
    const o = await destination(srv.port, undefined)
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 200)
    const r = await deliver('dlv.test', msg(['b@dlv.test'], Buffer.alloc(32 * 1024 * 1024, 0x61)), {
      ...o,
      level: 'may',
      signal: ac.signal,
    })
    assert.deepEqual(r.pending, ['b@dlv.test'])
    assert.equal(r.error?.code, 'ERR_ABORTED')
  })
})

describe('deliver(): arguments', () => {
  it('a bad message is refused before any connection (ERR_INVALID_ARGUMENT)', async () => {
    for (const m of [null, {}, { envelope: { from: 'a@b', to: [] }, body: 'x' }, { envelope: { from: 'a@b', to: ['c@d'] }, body: 5 }]) {
      await assert.rejects(deliver('dlv.test', m as never, { port: 1 }), (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT')
    }
    await assert.rejects(deliver('dlv.test', [] as never), (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT')
    // bad credentials too, before any connection
    const s = await sink()
    const o = await destination(s.port)
    for (const auth of [{ username: '', password: 'x' }, { username: 'u' }, 'u:p']) {
      await assert.rejects(
        deliver('dlv.test', msg(), { ...o, auth: auth as never }),
        (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT',
      )
    }
    assert.equal(s.connections, 0)
  })
})
