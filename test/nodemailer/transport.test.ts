// SmtpTlsTransport under real Nodemailer composing real messages, against in-process smtp-server
// sinks and the in-process DNS server playing a validating resolver.
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { after, describe, it } from 'node:test'
import nodemailer from 'nodemailer'
import type Mail from 'nodemailer/lib/mailer/index.js'
import { certificateFingerprint, createTlsaRecord } from '../../src/index.js'
import { createResolver, createTlsSessionCache } from '../../src/node/index.js'
import {
  SmtpTlsTransport,
  type SmtpTlsSentInfo,
  type SmtpTlsTransportError,
  type SmtpTlsTransportOptions,
} from '../../src/nodemailer/index.js'
import { startDnsServer, validatingZone, type ZoneRecord } from '../helpers/dns-server.js'
import { startMailSink, type MailSink, type MailSinkOptions } from '../helpers/mail-sink.js'
import { makeCert } from '../helpers/openssl.js'

const good = makeCert({ key: 'ec256', subject: '/CN=mx.good.test', dns: ['mx.good.test'] })
const stranger = makeCert({ key: 'ec256', subject: '/CN=stranger.test', dns: ['stranger.test'] })
const tlsaOf = (der: Uint8Array) => {
  const r = createTlsaRecord(der, { usage: 3, selector: 1, matchingType: 1 })
  return { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) }
}

const closers: Array<() => Promise<void>> = []
after(async () => {
  for (const c of closers.reverse()) await c()
})

/**
 * Two domains served by one sink (127.0.0.1): good.test (TLSA matches) and bad.test (TLSA names
 * another key); the relay name mx.good.test resolves too.
 */
async function world(o: MailSinkOptions = {}): Promise<{ sink: MailSink; options: SmtpTlsTransportOptions }> {
  const sink = await startMailSink({ certPem: good.pem, keyPem: good.keyPem, ...o })
  closers.push(() => sink.close())
  const records: ZoneRecord[] = [
    ['good.test', 'MX', { preference: 10, exchange: 'mx.good.test' }],
    ['mx.good.test', 'A', '127.0.0.1'],
    [`_${sink.port}._tcp.mx.good.test`, 'TLSA', tlsaOf(good.der)],
    ['bad.test', 'MX', { preference: 10, exchange: 'mx.bad.test' }],
    ['mx.bad.test', 'A', '127.0.0.1'],
    [`_${sink.port}._tcp.mx.bad.test`, 'TLSA', tlsaOf(stranger.der)],
  ]
  const dns = await startDnsServer(validatingZone({ records }))
  closers.push(() => dns.close())
  return {
    sink,
    options: {
      resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
      port: sink.port,
      ehloName: 'client.test',
      timeoutMs: 5000,
      level: 'dane',
    },
  }
}

const DATE = new Date('2026-01-02T03:04:05Z')
const mail = (to: string | string[], extra: Partial<Mail.Options> = {}): Mail.Options => ({
  from: 'Alice <alice@example.org>',
  to,
  subject: 'Grüße',
  text: '.a line with a leading dot\n..two dots\n.\nend, 8-bit: café\n',
  date: DATE,
  messageId: '<fixed@example.org>',
  ...extra,
})

/** What Nodemailer itself composes for the same options (CRLF), to compare with what arrived. */
async function composed(m: Mail.Options, defaults: Mail.Options = {}): Promise<Buffer> {
  const t = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' }, defaults)
  const info = (await t.sendMail(m)) as unknown as { message: Buffer }
  return info.message
}

describe('SmtpTlsTransport: direct to MX', () => {
  it('each domain its own verdict: good.test verified and delivered byte-exact, bad.test pending 4.7.x, nothing sent to it', async () => {
    const { sink, options } = await world()
    const mailer = nodemailer.createTransport(new SmtpTlsTransport(options))
    const m = mail(['bob@good.test', 'carol@bad.test'])
    const info = (await mailer.sendMail(m)) as unknown as SmtpTlsSentInfo
    assert.deepEqual(info.accepted, ['bob@good.test'])
    assert.deepEqual(info.pending, ['carol@bad.test'])
    assert.deepEqual(info.rejected, [])
    assert.equal(info.messageId, '<fixed@example.org>')
    assert.deepEqual(info.envelope, { from: 'alice@example.org', to: ['bob@good.test', 'carol@bad.test'] })
    assert.match(info.response, /^250 .*queued as Q1/)
    assert.equal(info.domains['good.test']?.outcome?.status, 'verified')
    assert.equal(info.domains['good.test']?.status, 'sent')
    assert.equal(info.domains['bad.test']?.status, 'deferred')
    assert.match(info.domains['bad.test']?.recipients[0]?.enhancedStatus ?? '', /^4\.7\./)
    assert.ok((info.domains['bad.test']?.trace.length ?? 0) > 0)
    assert.equal(sink.messages.length, 1)
    assert.deepEqual(sink.messages[0]!.to, ['bob@good.test'])
    assert.deepEqual(sink.messages[0]!.bytes, await composed(m))
  })

  it('nothing accepted because of the policy: a temporary error (451, 4.7.x, our code), no MAIL FROM', async () => {
    const { sink, options } = await world()
    const mailer = nodemailer.createTransport(new SmtpTlsTransport(options))
    await assert.rejects(mailer.sendMail(mail('carol@bad.test')), (e: SmtpTlsTransportError) => {
      assert.equal(e.responseCode, 451)
      assert.equal(e.temporary, true)
      assert.match(e.enhancedStatus ?? '', /^4\.7\./)
      assert.match(e.code, /^ERR_/)
      assert.deepEqual(e.pending, ['carol@bad.test'])
      assert.equal(e.info.domains['bad.test']?.status, 'deferred')
      return true
    })
    assert.ok(!sink.commands.some((c) => c.startsWith('MAIL')))
  })

  it('every recipient rejected 5xx: a permanent error with the 550 and rejectedErrors', async () => {
    const { options } = await world({ rcpt: () => '550 5.1.1 no such user' })
    const mailer = nodemailer.createTransport(new SmtpTlsTransport(options))
    await assert.rejects(mailer.sendMail(mail('nobody@good.test')), (e: SmtpTlsTransportError) => {
      assert.equal(e.responseCode, 550)
      assert.equal(e.temporary, false)
      assert.equal(e.enhancedStatus, '5.1.1')
      assert.equal(e.rejectedErrors.length, 1)
      assert.deepEqual(e.rejected, ['nobody@good.test'])
      return true
    })
  })

  it('a 4xx and a 5xx recipient, none accepted: temporary wins (the queue keeps the message)', async () => {
    const { options } = await world({ rcpt: (a) => (a.startsWith('busy') ? '452 4.2.2 over quota' : '550 5.1.1 no such user') })
    const mailer = nodemailer.createTransport(new SmtpTlsTransport(options))
    await assert.rejects(mailer.sendMail(mail(['nobody@good.test', 'busy@good.test'])), (e: SmtpTlsTransportError) => {
      assert.equal(e.responseCode, 452)
      assert.equal(e.temporary, true)
      assert.deepEqual(e.rejected, ['nobody@good.test'])
      assert.deepEqual(e.pending, ['busy@good.test'])
      return true
    })
  })

  it('tlsSessionCache is passed to connect(): the second message resumes the TLS session, still verified', async () => {
    const { options } = await world()
    const tlsSessionCache = createTlsSessionCache()
    const mailer = nodemailer.createTransport(new SmtpTlsTransport({ ...options, tlsSessionCache }))
    for (let i = 0; i < 2; i++) {
      const info = (await mailer.sendMail(mail('bob@good.test'))) as unknown as SmtpTlsSentInfo
      assert.equal(info.domains['good.test']?.outcome?.status, 'verified')
      const resumed = info.domains['good.test']?.trace.some((t) => /TLS session resumed/.test(t.rule))
      assert.equal(resumed, i === 1, `message ${i + 1}`)
    }
    assert.equal(tlsSessionCache.stats().resumed, 1)
  })
  it('per-destination override: destinations wins over the level (bad.test at encrypt is delivered, encrypted)', async () => {
    const { sink, options } = await world()
    const mailer = nodemailer.createTransport(new SmtpTlsTransport({ ...options, destinations: { 'bad.test': 'encrypt' } }))
    const info = (await mailer.sendMail(mail('carol@bad.test'))) as unknown as SmtpTlsSentInfo
    assert.deepEqual(info.accepted, ['carol@bad.test'])
    assert.equal(info.domains['bad.test']?.outcome?.level, 'encrypt')
    assert.equal(sink.messages.length, 1)
  })

  it("Nodemailer's DKIM signing still applies: the message arrives signed, byte-equal to Nodemailer's own output", async () => {
    const { sink, options } = await world()
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const dkim = {
      domainName: 'example.org',
      keySelector: 'sel',
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    }
    const mailer = nodemailer.createTransport(new SmtpTlsTransport(options), { dkim })
    const m = mail('bob@good.test')
    await mailer.sendMail(m)
    const got = sink.messages[0]!.bytes
    assert.match(got.toString('latin1'), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example.org;/)
    assert.deepEqual(got, await composed(m, { dkim }))
  })

  it("Nodemailer's dsn and requireTLSExtensionEnabled become DSN parameters and REQUIRETLS (RFC 3461, RFC 8689)", async () => {
    const { sink, options } = await world({ smtp: { hideDSN: false, hideREQUIRETLS: false } })
    const mailer = nodemailer.createTransport(new SmtpTlsTransport(options))
    await mailer.sendMail(
      mail('bob@good.test', {
        dsn: { id: 'env-1', return: 'headers', notify: ['failure', 'delay'], recipient: 'alice@example.org' },
        requireTLSExtensionEnabled: true,
      } as Partial<Mail.Options>),
    )
    const mailCmd = sink.commands.find((c) => c.startsWith('MAIL')) ?? ''
    const rcptCmd = sink.commands.find((c) => c.startsWith('RCPT')) ?? ''
    assert.match(mailCmd, /RET=HDRS/)
    assert.match(mailCmd, /ENVID=env-1/)
    assert.match(mailCmd, /REQUIRETLS/)
    assert.match(rcptCmd, /NOTIFY=FAILURE,DELAY/)
    assert.match(rcptCmd, /ORCPT=rfc822;alice@example\.org/)
  })

  it('pool: several messages on one session (RSET between), close() sends QUIT, isIdle()', async () => {
    const { sink, options } = await world()
    const transport = new SmtpTlsTransport({ ...options, pool: true })
    const mailer = nodemailer.createTransport(transport)
    for (let i = 0; i < 3; i++) await mailer.sendMail(mail('bob@good.test'))
    assert.equal(sink.connections, 1)
    assert.equal(sink.commands.filter((c) => c === 'RSET').length, 2)
    assert.equal(mailer.isIdle(), true)
    mailer.close()
    await new Promise((r) => setTimeout(r, 100))
    assert.ok(sink.commands.includes('QUIT'))
  })
})

describe('SmtpTlsTransport: relay', () => {
  const pin = certificateFingerprint(good.der)
  const wrongPin = certificateFingerprint(stranger.der)

  it('fingerprint with the right pin: AUTH over the verified session, delivered, credentials in no trace', async () => {
    const { sink, options } = await world({ auth: { username: 'u', password: 'rel4y-Secret' } })
    const t = new SmtpTlsTransport({
      ...options,
      relay: `[mx.good.test]:${sink.port}`,
      relayPolicy: `fingerprint match=${pin}`,
      auth: { user: 'u', pass: 'rel4y-Secret' },
    })
    const info = (await nodemailer.createTransport(t).sendMail(mail(['x@far.example', 'y@other.example']))) as unknown as SmtpTlsSentInfo
    assert.deepEqual(info.accepted, ['x@far.example', 'y@other.example'])
    const d = info.domains[`[mx.good.test]:${sink.port}`]!
    assert.equal(d.outcome?.status, 'verified')
    assert.equal(d.outcome?.level, 'fingerprint')
    assert.ok(sink.commands.some((c) => c.startsWith('AUTH')))
    const text = JSON.stringify(info)
    for (const s of ['rel4y-Secret', Buffer.from('rel4y-Secret').toString('base64'), Buffer.from('\0u\0rel4y-Secret').toString('base64')]) {
      assert.ok(!text.includes(s))
    }
    assert.equal(await t.verify(), true)
  })

  it('fingerprint with the wrong pin: a temporary error before AUTH and before MAIL FROM; verify() rejects', async () => {
    const { sink, options } = await world({ auth: { username: 'u', password: 'p' } })
    const t = new SmtpTlsTransport({
      ...options,
      relay: `[mx.good.test]:${sink.port}`,
      relayPolicy: `fingerprint match=${wrongPin}`,
      auth: { user: 'u', pass: 'p' },
    })
    await assert.rejects(nodemailer.createTransport(t).sendMail(mail('x@far.example')), (e: SmtpTlsTransportError) => {
      assert.equal(e.temporary, true)
      assert.equal(e.responseCode, 451)
      assert.match(e.enhancedStatus ?? '', /^4\.7\./)
      return true
    })
    assert.ok(!sink.commands.some((c) => /^(AUTH|MAIL)/i.test(c)), sink.commands.join('\n'))
    await assert.rejects(t.verify(), (e: { temporary?: boolean }) => e.temporary === true)
  })
})

describe('SmtpTlsTransport: options', () => {
  it('bad options throw ERR_INVALID_ARGUMENT or ERR_POLICY_SYNTAX at construction', () => {
    const bad: unknown[] = [
      null,
      5,
      { level: 'bogus' },
      { relayPolicy: 'encrypt' },
      { port: 0 },
      { pool: 'yes' },
      { auth: { user: 5 } },
      { auth: { user: '', pass: 'x' } },
      { auth: { user: 'u', pass: 'a\0b' } },
    ]
    for (const o of bad)
      assert.throws(
        () => new SmtpTlsTransport(o as never),
        (e: { code?: string }) => e.code === 'ERR_INVALID_ARGUMENT',
      )
    assert.throws(
      () => new SmtpTlsTransport({ destinations: { 'a.test': 'bogus-level' } }),
      (e: { code?: string }) => e.code === 'ERR_POLICY_SYNTAX',
    )
  })
})

describe('SmtpTlsTransport.verify() in direct mode without verifyDomain', () => {
  it('checks the resolver every delivery depends on: a working resolver → true', async () => {
    const { options } = await world()
    assert.equal(await new SmtpTlsTransport(options).verify(), true)
  })
  it('a resolver that never answers → a coded, temporary rejection (not a placeholder true)', async () => {
    const silent = createSocket('udp4')
    silent.on('error', () => undefined)
    silent.on('message', () => undefined)
    await new Promise<void>((res) => silent.bind(0, '127.0.0.1', res))
    closers.push(() => new Promise<void>((res) => silent.close(() => res())))
    const resolver = createResolver({ servers: [`127.0.0.1:${silent.address().port}`], timeoutMs: 100, attempts: 1 })
    await assert.rejects(new SmtpTlsTransport({ resolver }).verify(), (e: { code?: string; temporary?: boolean }) => {
      assert.equal(e.code, 'ERR_DNS_TIMEOUT')
      assert.equal(e.temporary, true)
      return true
    })
  })
})
