// Real Postfix smtp(8) delivering through our socketmap policy server (issue 15): a client Postfix
// instance with
//
//   smtp_tls_policy_maps = socketmap:inet:127.0.103.30:PORT:dane+sts
//   smtp_dns_support_level = dnssec
//   smtp_tls_security_level = may
//   smtp_tls_CAfile = <the lab's private CA, for MTA-STS>
//
// runs in a private mount namespace whose /etc/resolv.conf names the lab's validating Unbound (port 53,
// `options trust-ad`), and delivers one message per case to receiving Postfix smtpd instances
// (127.0.103.1-7, accepting the mail into their incoming queue). The outcome is read from Postfix's
// own maillog (`status=sent|deferred`, `Verified TLS connection established`) and queue; the reply our
// server gave is read from its `query` log events:
//
//   DANE-verified domain          → OK dane-only, Verified, sent
//   TLSA mismatch                 → OK dane-only, deferred, still queued, nothing arrives
//   bogus zone / bogus TLSA only  → TEMP, deferred by Postfix's policy lookup (RFC 7672 §2.1.2), nothing arrives
//   MTA-STS enforce (*.domain)    → OK secure match=.domain servername=hostname, Verified, sent (RFC 8461 §4.1)
//                                   (the MX serves its CA-issued chain only for SNI = its name)
//   MX outside the STS policy     → deferred (RFC 8461 §4.2)
//   DANE and MTA-STS              → OK dane-only, the policy file never fetched (RFC 8461 §2), sent
//
// Injection: an smtpd of the client instance on 127.0.103.10; MTA-STS policy host: 127.0.103.20.
import assert from 'node:assert/strict'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createMemoryStore, createTlsaRecord, formatTlsaRecord } from '../../src/index.js'
import { createResolver, createSocketmapServer, type SocketmapLogEvent, type SocketmapServer } from '../../src/node/index.js'
import { startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'
import { makeCert, tempDir, type Issued } from '../helpers/openssl.js'
import { plainSmtp } from '../helpers/smtp-clients.js'
import { startDnsLab, type DnsLab } from './dns/lab.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const ca = makeCert({ key: 'ec256', subject: '/CN=SMD Lab CA', ca: true })
const selfSigned = (name: string): Issued => makeCert({ key: 'ec256', subject: `/CN=${name}`, dns: [name] })
const daneLeaf = selfSigned('mx.smd-dane.test')
const mismatchLeaf = selfSigned('mx.smd-mismatch.test')
const unrelated = selfSigned('unrelated.test')
const bogusLeaf = selfSigned('mx.smd-bogus.test')
const badTlsaLeaf = selfSigned('mx.smd-badtlsa.test')
const stsLeaf = makeCert({ key: 'ec256', subject: '/CN=mx.smd-sts.test', dns: ['mx.smd-sts.test'], issuer: ca })
// served without SNI: self-signed, so only the SNI `servername=hostname` sends gets the CA-issued chain
const stsNoSni = selfSigned('mx.smd-sts.test')
const stsOutLeaf = makeCert({ key: 'ec256', subject: '/CN=other.smd-stsout.test', dns: ['other.smd-stsout.test'], issuer: ca })
// self-signed: only DANE-EE authenticates it; an MTA-STS answer (secure + the CA) would defer
const bothLeaf = selfSigned('mx.smd-both.test')
const web = makeCert({
  key: 'ec256',
  subject: '/CN=mta-sts.smd-sts.test',
  dns: ['mta-sts.smd-sts.test', 'mta-sts.smd-stsout.test', 'mta-sts.smd-both.test'],
  issuer: ca,
})
const tlsa = (c: Issued) => formatTlsaRecord(createTlsaRecord(c.der, { usage: 3, selector: 1, matchingType: 1 }))
const STS_TXT = '_mta-sts TXT "v=STSv1; id=20261201"'
const STS_HOST = '127.0.103.20'
const CLIENT = '127.0.103.10'
const policies: Record<string, string> = {
  'mta-sts.smd-sts.test': 'version: STSv1\r\nmode: enforce\r\nmx: *.smd-sts.test\r\nmax_age: 86400\r\n',
  'mta-sts.smd-stsout.test': 'version: STSv1\r\nmode: enforce\r\nmx: mx.smd-stsout.test\r\nmax_age: 86400\r\n',
  'mta-sts.smd-both.test': 'version: STSv1\r\nmode: enforce\r\nmx: mx.smd-both.test\r\nmax_age: 86400\r\n',
}

/** The receiving MX hosts: one smtpd each, accepting mail into its incoming queue; `sni`: the chain for SNI = host only. */
const receivers: Array<{ host: string; address: string; leaf: Issued; sni?: Issued }> = [
  { host: 'mx.smd-dane.test', address: '127.0.103.1', leaf: daneLeaf },
  { host: 'mx.smd-mismatch.test', address: '127.0.103.2', leaf: mismatchLeaf },
  { host: 'mx.smd-bogus.test', address: '127.0.103.3', leaf: bogusLeaf },
  { host: 'mx.smd-badtlsa.test', address: '127.0.103.4', leaf: badTlsaLeaf },
  { host: 'mx.smd-sts.test', address: '127.0.103.5', leaf: stsNoSni, sni: stsLeaf },
  { host: 'other.smd-stsout.test', address: '127.0.103.6', leaf: stsOutLeaf },
  { host: 'mx.smd-both.test', address: '127.0.103.7', leaf: bothLeaf },
]

let dns: DnsLab
let https: TestHttpsServer
let server: SocketmapServer
let mx: PostfixLab
let client: PostfixLab
const tmp = tempDir()
const events: SocketmapLogEvent[] = []

before(async () => {
  dns = await startDnsLab({
    port: 53,
    zones: [
      { name: 'smd-dane.test', records: ['@ MX 10 mx', 'mx A 127.0.103.1', `_25._tcp.mx TLSA ${tlsa(daneLeaf)}`] },
      { name: 'smd-mismatch.test', records: ['@ MX 10 mx', 'mx A 127.0.103.2', `_25._tcp.mx TLSA ${tlsa(unrelated)}`] },
      { name: 'smd-bogus.test', records: ['@ MX 10 mx', 'mx A 127.0.103.3', `_25._tcp.mx TLSA ${tlsa(bogusLeaf)}`], dnssec: 'expired' },
      // validated MX and address; only the TLSA RRset is bogus (a CNAME into the expired zone):
      // Postfix on its own would deliver at `may`, so only our TEMP defers it
      {
        name: 'smd-badtlsa.test',
        records: ['@ MX 10 mx', 'mx A 127.0.103.4', '_25._tcp.mx CNAME _25._tcp.mx.smd-bogus.test.'],
      },
      { name: 'smd-sts.test', records: ['@ MX 10 mx', 'mx A 127.0.103.5', STS_TXT, `mta-sts A ${STS_HOST}`], dnssec: 'unsigned' },
      { name: 'smd-stsout.test', records: ['@ MX 10 other', 'other A 127.0.103.6', STS_TXT, `mta-sts A ${STS_HOST}`], dnssec: 'unsigned' },
      {
        name: 'smd-both.test',
        records: ['@ MX 10 mx', 'mx A 127.0.103.7', `_25._tcp.mx TLSA ${tlsa(bothLeaf)}`, STS_TXT, `mta-sts A ${STS_HOST}`],
      },
    ],
  })
  https = await startHttpsServer(web, STS_HOST)
  for (const [host, body] of Object.entries(policies)) {
    https.routes.set(host, (req, res) => {
      if (req.url === '/.well-known/mta-sts.txt') res.writeHead(200, { 'content-type': 'text/plain' }).end(body)
      else res.writeHead(404).end()
    })
  }
  server = await createSocketmapServer({
    listen: 'inet:127.0.103.30:0',
    resolver: createResolver({ servers: [dns.resolverAddress], timeoutMs: 2000, attempts: 2 }),
    store: createMemoryStore(),
    families: [4],
    mtaSts: { ca: ca.pem, port: https.port, allowPrivateAddresses: true, timeoutMs: 5000 },
    log: (e) => events.push(e),
  })
  mx = await startPostfixLab(
    receivers.map((r, i) => {
      const options = [`myhostname=${r.host}`, `syslog_name=postfix/${r.host}`]
      if (r.sni) {
        // tls_server_sni_maps (Postfix ≥ 3.4): the key, then the chain; the SNI name is logged on a match
        writeFileSync(join(tmp.dir, `sni${i}.pem`), r.sni.keyPem + r.sni.pem, { mode: 0o600 })
        writeFileSync(join(tmp.dir, `sni${i}`), `${r.host} ${join(tmp.dir, `sni${i}.pem`)}\n`, { mode: 0o644 })
        options.push(`tls_server_sni_maps=texthash:${join(tmp.dir, `sni${i}`)}`, 'smtpd_tls_loglevel=1')
      }
      return { address: r.address, certPem: r.leaf.pem, keyPem: r.leaf.keyPem, options }
    }),
    { acceptMail: true, extraMain: ['mynetworks = 127.0.0.0/8', 'smtpd_relay_restrictions = permit_mynetworks, reject'] },
  )
  // glibc strips the AD bit unless trust-ad is set; smtp(8) needs it for DANE
  const resolvConf = join(tmp.dir, 'resolv.conf')
  writeFileSync(resolvConf, `nameserver ${dns.resolverIp}\noptions trust-ad\n`, { mode: 0o644 })
  const caFile = join(tmp.dir, 'ca.pem')
  writeFileSync(caFile, ca.pem, { mode: 0o644 })
  client = await startPostfixLab([{ address: CLIENT, starttls: false }], {
    deliverMail: true,
    resolvConf,
    extraMain: [
      'myhostname = client.smd.test',
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      `smtp_tls_policy_maps = socketmap:${server.address}:dane+sts`,
      'smtp_dns_support_level = dnssec',
      'smtp_tls_security_level = may',
      `smtp_tls_CAfile = ${caFile}`,
      'smtp_tls_loglevel = 1',
    ],
  })
})

after(async () => {
  await client?.stop()
  await mx?.stop()
  await server?.close()
  await https?.close()
  await dns?.stop()
  tmp.done()
})

/** The reply our server gave for `key` (the last `query` event), or undefined. */
function answered(key: string): string | undefined {
  const q = events.filter((e) => e.event === 'query' && e.name === 'dane+sts' && e.key === key).at(-1)
  return q === undefined ? undefined : String(q.reply)
}

interface Outcome {
  id: string
  status: 'sent' | 'deferred' | 'bounced'
  line: string
  /** the client's maillog when the outcome was read */
  log: string
}

/** Inject one message at the client's smtpd and wait (bounded) for smtp(8)'s delivery status line. */
async function deliver(domain: string, tag: string): Promise<Outcome> {
  const r = await plainSmtp({
    host: CLIENT,
    port: 25,
    commands: [
      'EHLO inject.smd.test',
      'MAIL FROM:<sender@client.smd.test>',
      `RCPT TO:<rcpt@${domain}>`,
      'DATA',
      `Message-ID: <${tag}@client.smd.test>`,
      `Subject: ${tag}`,
      '',
      'hello',
      '.',
      'QUIT',
    ],
  })
  const queued = r.replies.map((l) => /^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)/.exec(l)).find((m) => m !== null)
  assert.ok(queued, r.output)
  const id = queued[1] as string
  const re = new RegExp(`postfix/smtp\\[\\d+\\]: ${id}: to=<rcpt@${domain.replace(/\./g, '\\.')}>, .*status=(sent|deferred|bounced) .*`)
  const deadline = Date.now() + 30_000
  for (;;) {
    const log = client.maillog()
    const m = re.exec(log)
    if (m) return { id, status: m[1] as Outcome['status'], line: m[0], log }
    if (Date.now() > deadline) throw new Error(`no delivery status for ${id} (${domain}) within 30 s:\n${log}`)
    await new Promise((res) => setTimeout(res, 100))
  }
}

/** The receiving instance logged the message (its cleanup saw the Message-ID); waits, bounded, for it to be logged. */
async function arrived(tag: string): Promise<boolean> {
  const deadline = Date.now() + 5_000
  for (;;) {
    if (mx.maillog().includes(`message-id=<${tag}@client.smd.test>`)) return true
    if (Date.now() > deadline) return false
    await new Promise((res) => setTimeout(res, 100))
  }
}

/**
 * Nothing of the message reached the receiver: no Message-ID logged by its cleanup, and the MX's smtpd
 * (its own syslog_name) logged no session, or, when the client logged a TLS session with it, one
 * session without MAIL FROM (its `disconnect … commands=` line, waited for). The lab's start-up port
 * probes are the sessions with `commands=0/0`.
 */
async function nothingArrived(tag: string, host: string, clientLog: string): Promise<string> {
  const escaped = `postfix/${host}/smtpd`.replace(/\./g, '\\.')
  const sessions = (log: string) =>
    [...log.matchAll(new RegExp(`${escaped}\\[\\d+\\]: disconnect from .*`, 'g'))]
      .map((m) => m[0])
      .filter((l) => !l.endsWith(' commands=0/0'))
  const connected = clientLog.includes(`TLS connection established to ${host}[`)
  const deadline = Date.now() + 5_000
  let log = mx.maillog()
  while (connected && sessions(log).length === 0 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100))
    log = mx.maillog()
  }
  assert.ok(!log.includes(`message-id=<${tag}@client.smd.test>`), log)
  const seen = sessions(log)
  assert.equal(seen.length, connected ? 1 : 0, log)
  if (seen[0] !== undefined) assert.doesNotMatch(seen[0], /\bmail=/, seen[0])
  return seen[0] ?? 'no session'
}

/** The message is still in the client's queue (active or deferred). */
function queued(id: string): boolean {
  const queue = join(client.dir, 'queue')
  return ['active', 'deferred'].some(
    (d) => existsSync(join(queue, d)) && readdirSync(join(queue, d), { recursive: true }).some((f) => String(f).endsWith(id)),
  )
}

describe('Postfix smtp(8) with smtp_tls_policy_maps = socketmap:…:dane+sts (our server)', () => {
  it('DANE-verified domain: OK dane-only, Verified, delivered (RFC 7672 §2.2)', async (t) => {
    const o = await deliver('smd-dane.test', 'dane')
    assert.equal(o.status, 'sent', o.line)
    assert.equal(answered('smd-dane.test'), 'OK dane-only')
    assert.match(o.line, /relay=mx\.smd-dane\.test\[127\.0\.103\.1\]:25/)
    assert.match(o.log, /Verified TLS connection established to mx\.smd-dane\.test\[127\.0\.103\.1\]:25/, o.log)
    assert.ok(await arrived('dane'), mx.maillog())
    t.diagnostic(o.line)
  })

  it('TLSA mismatch: OK dane-only, deferred, the message stays queued, nothing arrives (RFC 7672 §3)', async (t) => {
    const o = await deliver('smd-mismatch.test', 'mismatch')
    assert.equal(answered('smd-mismatch.test'), 'OK dane-only')
    assert.equal(o.status, 'deferred', o.log)
    assert.match(o.line, /Server certificate not (verified|trusted)/, o.line)
    assert.doesNotMatch(o.log, /Verified TLS connection established to mx\.smd-mismatch\.test/)
    assert.ok(queued(o.id), `${o.id} not in the queue`)
    t.diagnostic(o.line)
    t.diagnostic(await nothingArrived('mismatch', 'mx.smd-mismatch.test', o.log))
  })

  // Postfix 3.7's smtp(8) asks smtp_tls_policy_maps per MX host, after its own MX and address lookups
  // ("TLS policy lookup for DOMAIN/HOST"): a bogus MX or address RRset it defers by itself (4.4.3);
  // a bogus TLSA RRset, which Postfix never looks up at `may`, only our TEMP defers.
  it('a bogus TLSA RRset behind a validated MX: TEMP, Postfix defers on the policy lookup, nothing arrives (RFC 7672 §2.1.2)', async (t) => {
    const o = await deliver('smd-badtlsa.test', 'badtlsa')
    // first what Postfix did: only the TEMP answer keeps it from delivering at `may`
    assert.equal(o.status, 'deferred', o.line)
    assert.match(
      answered('smd-badtlsa.test') ?? '(no answer)',
      /^TEMP TLSA lookup error for mx\.smd-badtlsa\.test:25: DNSSEC validation failed/,
    )
    assert.match(o.line, /relay=none, .*dsn=4\.7\.5, status=deferred \(client TLS configuration problem\)/, o.line)
    assert.match(
      o.log,
      /smtp\[\d+\]: warning: socketmap:inet:[0-9.:]+:dane\+sts socketmap server temporary error: TLSA lookup error for mx\.smd-badtlsa\.test/,
      o.log,
    )
    assert.match(o.log, /warning: TLS policy lookup for smd-badtlsa\.test\/mx\.smd-badtlsa\.test: client TLS configuration problem/, o.log)
    assert.ok(queued(o.id), `${o.id} not in the queue`)
    assert.equal(await nothingArrived('badtlsa', 'mx.smd-badtlsa.test', o.log), 'no session')
    t.diagnostic(o.line)
  })

  it('a zone with expired signatures: deferred by Postfix’s own MX lookup before any policy lookup; our answer is TEMP', async (t) => {
    const o = await deliver('smd-bogus.test', 'bogus')
    assert.equal(o.status, 'deferred', o.log)
    assert.match(
      o.line,
      /dsn=4\.4\.3, status=deferred \(Host or domain name not found\. Name service error for name=smd-bogus\.test type=MX: Host not found, try again\)/,
    )
    assert.equal(answered('smd-bogus.test'), undefined, 'Postfix 3.7 asks the policy map only after its MX lookup succeeded')
    assert.ok(queued(o.id), `${o.id} not in the queue`)
    assert.equal(await nothingArrived('bogus', 'mx.smd-bogus.test', o.log), 'no session')
    // what Postfix would have been told: TEMP, never a weaker answer
    assert.match((await server.lookup('dane+sts', 'smd-bogus.test')).reply, /^TEMP MX lookup failed for smd-bogus\.test/)
    t.diagnostic(o.line)
  })

  it('MTA-STS enforce with mx *.smd-sts.test: OK secure match=.smd-sts.test servername=hostname, Verified, delivered (RFC 8461 §4.1)', async (t) => {
    const o = await deliver('smd-sts.test', 'sts')
    assert.equal(o.status, 'sent', o.line)
    assert.equal(answered('smd-sts.test'), 'OK secure match=.smd-sts.test servername=hostname')
    assert.match(o.line, /relay=mx\.smd-sts\.test\[127\.0\.103\.5\]:25/)
    assert.match(o.log, /Verified TLS connection established to mx\.smd-sts\.test\[127\.0\.103\.5\]:25/, o.log)
    assert.ok(await arrived('sts'), mx.maillog())
    // servername=hostname: the MX got SNI mx.smd-sts.test, the only name its CA-issued chain is served for
    assert.match(mx.maillog(), /postfix\/mx\.smd-sts\.test\/smtpd\[\d+\]: \w+ TLS connection established from \S+ to mx\.smd-sts\.test: /)
    t.diagnostic(o.line)
  })

  it('MTA-STS enforce, the MX outside the policy: deferred, nothing arrives (RFC 8461 §4.2)', async (t) => {
    const o = await deliver('smd-stsout.test', 'stsout')
    assert.equal(answered('smd-stsout.test'), 'OK secure match=mx.smd-stsout.test servername=hostname')
    assert.equal(o.status, 'deferred', o.log)
    assert.match(o.line, /Server certificate not verified/, o.line)
    assert.ok(queued(o.id), `${o.id} not in the queue`)
    t.diagnostic(o.line)
    t.diagnostic(await nothingArrived('stsout', 'other.smd-stsout.test', o.log))
  })

  it('DANE and MTA-STS: the DANE answer, the policy never fetched, Verified by DANE-EE, delivered (RFC 8461 §2)', async (t) => {
    const o = await deliver('smd-both.test', 'both')
    assert.equal(o.status, 'sent', o.line)
    assert.equal(answered('smd-both.test'), 'OK dane-only')
    assert.equal(https.requests.get('mta-sts.smd-both.test') ?? 0, 0)
    assert.match(o.log, /Verified TLS connection established to mx\.smd-both\.test\[127\.0\.103\.7\]:25/, o.log)
    assert.ok(await arrived('both'), mx.maillog())
    t.diagnostic(o.line)
  })
})
