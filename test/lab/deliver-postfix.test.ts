// Issue 12: deliver() and SmtpTlsTransport against a real receiving MTA. Nodemailer composes real
// messages; Postfix smtpd takes them and its virtual(8) agent writes them into a Maildir that the test
// reads back. DNS is the lab's NSD + Unbound (signed zones, one with expired signatures). Between our
// client and each smtpd sits a recording TCP proxy (127.0.99.x:2526 → :2525): it shows what the client
// wrote, and Postfix's own "disconnect" log line counts the commands it received.
//
//   good.test      MX 127.0.99.1, TLSA 3 1 1 for the server's key        → verified, delivered
//   mismatch.test  MX 127.0.99.2, TLSA for another key                    → 4.7.5, nothing sent
//   stripped.test  MX 127.0.99.3, smtpd without STARTTLS, TLSA published  → 4.7.4, nothing sent
//   bogus.test     signed with expired signatures (Unbound: SERVFAIL)     → 4.4.3, no connection
import assert from 'node:assert/strict'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import type Mail from 'nodemailer/lib/mailer/index.js'
import { createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { createResolver, deliver, SmtpTlsConnectError, type DeliverOptions } from '../../src/node/index.js'
import { SmtpTlsTransport, type SmtpTlsSentInfo, type SmtpTlsTransportError } from '../../src/nodemailer/index.js'
import { makeCert } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { DELIVERY_SERVICES, startPostfixLab, type PostfixLab } from './postfix.js'

const GOOD = '127.0.99.1'
const MISMATCH = '127.0.99.2'
const STRIPPED = '127.0.99.3'
const SMTPD_PORT = 2525
const PROXY_PORT = 2526

const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.good.test', dns: ['mx.good.test', 'mx.mismatch.test', 'mx.stripped.test'] })
const stranger = makeCert({ key: 'ec256', subject: '/CN=stranger.test', dns: ['stranger.test'] })
const rr = (der: Uint8Array) => formatTlsaRecord(createTlsaRecord(der, { usage: 3, selector: 1, matchingType: 1 }))

/** A TCP proxy that records, per connection, every byte the client wrote. */
interface Recorder {
  connections: Buffer[][]
  stop(): Promise<void>
}
async function recordingProxy(address: string): Promise<Recorder> {
  const connections: Buffer[][] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    const sent: Buffer[] = []
    connections.push(sent)
    const upstream = createConnection({ host: address, port: SMTPD_PORT })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
      s.on('close', () => sockets.delete(s))
    }
    client.on('data', (b: Buffer) => sent.push(b))
    client.pipe(upstream)
    upstream.pipe(client)
  })
  server.on('error', () => undefined)
  await new Promise<void>((resolve) => server.listen(PROXY_PORT, address, resolve))
  return {
    connections,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

let dns: DnsLab
let postfix: PostfixLab
let maildir: string
const proxies: Record<string, Recorder> = {}

before(
  async () => {
    dns = await startDnsLab({
      zones: [
        { name: 'good.test', records: ['@ MX 10 mx', `mx A ${GOOD}`, `_${PROXY_PORT}._tcp.mx TLSA ${rr(leaf.der)}`] },
        { name: 'mismatch.test', records: ['@ MX 10 mx', `mx A ${MISMATCH}`, `_${PROXY_PORT}._tcp.mx TLSA ${rr(stranger.der)}`] },
        { name: 'stripped.test', records: ['@ MX 10 mx', `mx A ${STRIPPED}`, `_${PROXY_PORT}._tcp.mx TLSA ${rr(leaf.der)}`] },
        { name: 'bogus.test', records: ['@ MX 10 mx', `mx A ${GOOD}`, `_${PROXY_PORT}._tcp.mx TLSA ${rr(leaf.der)}`], dnssec: 'expired' },
      ],
    })
    // virtual(8) writes every message for the lab domains into one Maildir, as nobody
    maildir = mkdtempSync(join(tmpdir(), 'stp-vmail-'))
    chownSync(maildir, 65534, 65534)
    postfix = await startPostfixLab(
      [
        { address: GOOD, port: SMTPD_PORT, certPem: leaf.pem, keyPem: leaf.keyPem },
        { address: MISMATCH, port: SMTPD_PORT, certPem: leaf.pem, keyPem: leaf.keyPem },
        { address: STRIPPED, port: SMTPD_PORT, starttls: false },
      ],
      {
        extraMain: [
          'virtual_mailbox_domains = good.test mismatch.test stripped.test bogus.test',
          `virtual_mailbox_base = ${maildir}`,
          'virtual_mailbox_maps = static:inbox/',
          'virtual_uid_maps = static:65534',
          'virtual_gid_maps = static:65534',
          // the lab's main.cf refuses relaying; these domains are local, so only unknown ones are refused
          'smtpd_relay_restrictions = reject_unauth_destination',
          'smtpd_tls_received_header = yes',
          'message_size_limit = 10240000',
        ],
        services: [...DELIVERY_SERVICES],
      },
    )
    // A new smtpd can take tens of seconds to start on a loaded machine: have each one greet once
    // before the tests, so that a test's per-reply timeout measures the session, not the start-up.
    await Promise.all([GOOD, MISMATCH, STRIPPED].map((a) => greeting(a, 100_000)))
    for (const a of [GOOD, MISMATCH, STRIPPED]) proxies[a] = await recordingProxy(a)
  },
  { timeout: 300_000 },
)

/** Wait for smtpd's 220 on `address` (then QUIT). */
function greeting(address: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: address, port: SMTPD_PORT })
    const t = setTimeout(() => {
      s.destroy()
      reject(new Error(`no greeting from ${address} within ${ms} ms\n${postfix.maillog()}`))
    }, ms)
    s.on('error', () => undefined)
    s.once('data', () => {
      clearTimeout(t)
      s.end('QUIT\r\n')
      resolve()
    })
  })
}
after(async () => {
  for (const p of Object.values(proxies)) await p.stop()
  await postfix?.stop()
  await dns?.stop()
  if (maildir) rmSync(maildir, { recursive: true, force: true })
})

const options = (): DeliverOptions => ({
  resolver: createResolver({ servers: [dns.resolverAddress], timeoutMs: 3000, attempts: 1 }),
  port: PROXY_PORT,
  ehloName: 'client.lab.test',
  timeoutMs: 30_000,
  level: 'dane',
})

/** The files virtual(8) delivered so far. */
function delivered(): string[] {
  const dir = join(maildir, 'inbox', 'new')
  try {
    return readdirSync(dir)
      .sort()
      .map((f) => join(dir, f))
  } catch {
    return []
  }
}

async function waitForMail(count: number): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    const files = delivered()
    if (files.length >= count) return files
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no delivery within 10 s; maillog:\n${postfix.maillog()}`)
}

/** A delivered Maildir file without the headers Postfix added in front (Return-Path, X-Original-To, Delivered-To, Received). */
function asSent(file: string): Buffer {
  const b = readFileSync(file)
  const text = b.toString('latin1')
  let at = 0
  const added = /^(Return-Path|Delivered-To|X-Original-To|Received):.*\n([ \t].*\n)*/
  for (;;) {
    const m = added.exec(text.slice(at))
    if (!m) break
    at += m[0].length
  }
  return b.subarray(at)
}

const lf = (b: Buffer) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')

/** Postfix smtpd's per-session summary for a client session: "disconnect from … ehlo=2 starttls=1 quit=1 commands=4". */
function disconnectLines(): string[] {
  return postfix
    .maillog()
    .split('\n')
    .filter((l) => / disconnect from /.test(l))
}

const INNER = Buffer.from(
  'Subject: inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n.dot\r\ncaf\xc3\xa9, na\xc3\xafve\r\n.\r\nend\r\n',
  'latin1',
)
/** Wait until every smtpd session so far has logged its disconnect line. */
async function sessionsLogged(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const log = postfix.maillog()
    if ((log.match(/ connect from /g) ?? []).length === disconnectLines().length) return
    await new Promise((r) => setTimeout(r, 50))
  }
}

const message = (to: string): Mail.Options => ({
  from: 'Alice <alice@example.org>',
  to,
  subject: 'Grüße aus dem Labor',
  // lines starting with '.', a lone '.'; 140 KB of text
  text: '.a leading dot\n..two dots\n.\n' + 'x'.repeat(70).concat('\n').repeat(2000),
  // 8-bit bytes as they are: a message/rfc822 part is never encoded (RFC 2046 §5.2.1), so Nodemailer
  // writes it unchanged, dot lines included
  attachments: [{ contentType: 'message/rfc822', content: INNER }],
  date: new Date('2026-01-02T03:04:05Z'),
  messageId: '<lab-1@example.org>',
  baseBoundary: 'lab0boundary', // fixed, so that composing twice gives the same bytes
})

async function composed(m: Mail.Options): Promise<Buffer> {
  const t = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' })
  return ((await t.sendMail(m)) as unknown as { message: Buffer }).message
}

describe('delivery into real Postfix (virtual(8) Maildir), DANE at the sender', () => {
  it('good.test: Nodemailer through SmtpTlsTransport, verified, the message arrives byte for byte', async () => {
    const before = delivered().length
    const m = message('bob@good.test')
    const mailer = nodemailer.createTransport(new SmtpTlsTransport(options()))
    const info = (await mailer.sendMail(m).catch((e: Error) => {
      throw new Error(`${e.message}\n${postfix.maillog()}`)
    })) as unknown as SmtpTlsSentInfo
    assert.deepEqual(info.accepted, ['bob@good.test'])
    assert.equal(info.domains['good.test']?.outcome?.status, 'verified')
    assert.match(info.response, /^250 2\.0\.0 Ok: .*queued as /)
    const files = await waitForMail(before + 1)
    const got = asSent(files[files.length - 1]!)
    const want = lf(await composed(m)) // Maildir stores lines with LF
    assert.ok(got.includes(Buffer.from('\n.a leading dot\n..two dots\n.\n', 'latin1')), 'dot lines intact')
    assert.ok(got.includes(lf(INNER)), '8-bit bytes intact')
    assert.deepEqual(got, want)
    // the controls for the refusals below: a session that carried the message wrote its 140 KB through
    // the proxy, and Postfix counted MAIL, RCPT and the body commands
    const last = proxies[GOOD]!.connections.at(-1) ?? []
    assert.ok(Buffer.concat(last).length > 140_000)
    assert.match(disconnectLines().at(-1) ?? '', /\bmail=1 rcpt=1 (data|bdat)=\d+/)
    // the Received: header Postfix added says the hop was TLS
    assert.match(readFileSync(files[files.length - 1]!, 'latin1'), /\(using TLSv1\.[23] with cipher /)
  })

  it('good.test: deliver() with a 8-bit raw body and two messages on one session', async () => {
    const before = delivered().length
    // with Message-ID and Date, which Postfix's cleanup(8) would otherwise add
    const body = Buffer.from(
      'From: a@example.org\r\nTo: c@good.test\r\nSubject: raw\r\nMessage-ID: <raw@example.org>\r\nDate: Fri, 02 Jan 2026 03:04:05 +0000\r\n\r\n.\r\n..\r\n\xe9t\xe9\r\n',
      'latin1',
    )
    const rs = await deliver(
      'good.test',
      [
        { envelope: { from: 'a@example.org', to: ['c@good.test'], body: '8BITMIME' }, body },
        { envelope: { from: 'a@example.org', to: ['d@good.test'], body: '8BITMIME' }, body },
      ],
      options(),
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${postfix.maillog()}`)
    })
    assert.deepEqual(
      rs.map((r) => r.accepted),
      [['c@good.test'], ['d@good.test']],
    )
    assert.equal(rs[0]!.outcome.status, 'verified')
    const files = await waitForMail(before + 2)
    for (const f of files.slice(before)) assert.deepEqual(asSent(f), lf(body))
  })

  const refused: Array<[string, string, RegExp, string | undefined]> = [
    ['mismatch.test', 'a TLSA record for another key', /^4\.7\.5$/, MISMATCH],
    ['stripped.test', 'STARTTLS stripped', /^4\.7\.4$/, STRIPPED],
    ['bogus.test', 'a bogus DNS zone', /^4\.4\.3$/, undefined],
  ]
  for (const [domain, what, status, address] of refused) {
    it(`${domain} (${what}): a temporary error, nothing arrives, no MAIL FROM and no body byte written`, async () => {
      const before = delivered().length
      const proxy = address ? proxies[address]! : undefined
      const conns = proxy?.connections.length ?? 0
      const total = Object.values(proxies).reduce((n, p) => n + p.connections.length, 0)
      await sessionsLogged()
      const disconnects = disconnectLines().length
      const mailer = nodemailer.createTransport(new SmtpTlsTransport(options()))
      await assert.rejects(mailer.sendMail(message(`bob@${domain}`)), (e: SmtpTlsTransportError) => {
        assert.equal(e.temporary, true, e.message)
        assert.equal(e.responseCode, 451)
        assert.match(e.enhancedStatus ?? '', status, e.message)
        return true
      })
      await assert.rejects(
        deliver(domain, { envelope: { from: 'a@example.org', to: [`bob@${domain}`] }, body: 'Subject: x\r\n\r\nbody\r\n' }, options()),
        (e) => e instanceof SmtpTlsConnectError && e.temporary,
      )
      await new Promise((r) => setTimeout(r, 500))
      await sessionsLogged()
      assert.equal(delivered().length, before, 'nothing was delivered')
      if (!proxy) {
        // DNS failed: no server was ever contacted
        assert.equal(
          Object.values(proxies).reduce((n, p) => n + p.connections.length, 0),
          total,
        )
        return
      }
      const sessions = proxy.connections.slice(conns)
      assert.equal(sessions.length, 2, 'one session per attempt')
      for (const s of sessions) {
        const bytes = Buffer.concat(s)
        assert.ok(!bytes.includes(Buffer.from('MAIL FROM')), 'no MAIL FROM in the clear')
        // inside TLS the proxy sees records only: EHLO and QUIT, never the 140 KB body
        assert.ok(bytes.length < 4096, `the client wrote ${bytes.length} bytes`)
      }
      // Postfix's own count of the commands it received in those sessions: no MAIL, RCPT or DATA
      const lines = disconnectLines().slice(disconnects)
      assert.ok(lines.length >= 2, postfix.maillog())
      for (const l of lines) assert.doesNotMatch(l, /\b(mail|rcpt|data|bdat)=/, l)
    })
  }
})
