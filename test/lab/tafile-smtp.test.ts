// tafile= at `secure`, with Postfix's own SMTP client as the reference (issue 14): a lab Postfix
// relays one message per case through an smtp(8) transport whose smtp_tls_policy_maps says
// "[127.0.97.6]:25 secure match=NAME tafile=FILE"; the receiving smtpd (127.0.97.6) serves leaf +
// intermediate and refuses the recipient, so nothing loops. smtp(8) logs "Verified TLS connection
// established" or defers with "Server certificate not verified"; verifyTrustAnchors on the same
// chain, names and loadTrustStore({ taFile }) must agree, and so must probe() given the same policy
// table line (the driver loads tafile= itself). Injection smtpd: 127.0.97.10.
import assert from 'node:assert/strict'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parsePolicyTable, verifyTrustAnchors } from '../../src/index.js'
import { loadTrustStore, probe } from '../../src/node/index.js'
import { tempDir } from '../helpers/openssl.js'
import { plainSmtp } from '../helpers/smtp-clients.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'
import { inter, leaf, TAFILE_CASES } from './tafile-cases.js'

const cases = TAFILE_CASES

describe('tafile= at secure: Postfix smtp(8) and verifyTrustAnchors agree', () => {
  const { dir, done } = tempDir()
  let lab: PostfixLab
  before(async () => {
    chmodSync(dir, 0o755)
    const transports: string[] = []
    const master: string[] = []
    cases.forEach(([, tafile, match], i) => {
      writeFileSync(join(dir, `ta${i}.pem`), tafile, { mode: 0o644 })
      writeFileSync(join(dir, `policy${i}`), `[127.0.97.6]:25 secure match=${match} tafile=${join(dir, `ta${i}.pem`)}\n`, { mode: 0o644 })
      transports.push(`case${i}.test ta${i}:[127.0.97.6]:25`)
      master.push(`ta${i} unix - - n - - smtp -o syslog_name=postfix/ta${i} -o smtp_tls_policy_maps=texthash:${join(dir, `policy${i}`)}`)
    })
    writeFileSync(join(dir, 'transport'), transports.join('\n') + '\n', { mode: 0o644 })
    lab = await startPostfixLab(
      [
        {
          address: '127.0.97.6',
          certPem: leaf.pem + inter.pem,
          keyPem: leaf.keyPem,
          options: ['smtpd_relay_restrictions=reject', 'myhostname=mx.ta.test'],
        },
        { address: '127.0.97.10', starttls: false },
      ],
      {
        deliverMail: true,
        extraMaster: master,
        extraMain: [
          'mynetworks = 127.0.0.0/8',
          'smtpd_relay_restrictions = permit_mynetworks, reject',
          `transport_maps = texthash:${join(dir, 'transport')}`,
          'smtp_tls_loglevel = 1',
          'smtp_tls_security_level = may',
          'smtp_dns_support_level = enabled',
          'bounce_queue_lifetime = 0',
          'maximal_queue_lifetime = 0',
        ],
      },
    )
  })
  after(async () => {
    await lab?.stop()
    done()
  })
  for (const [i, [name, , match, verified]] of cases.entries()) {
    it(`${name} (match ${match}): ${verified ? 'verified' : 'not verified'}`, async () => {
      const r = await plainSmtp({
        host: '127.0.97.10',
        port: 25,
        commands: ['EHLO client.test', 'MAIL FROM:<>', `RCPT TO:<x@case${i}.test>`, 'DATA', `Subject: case ${i}`, '', 'hi', '.', 'QUIT'],
      })
      assert.ok(
        r.replies.some((l) => l.startsWith('250 2.0.0 Ok: queued')),
        r.output,
      )
      // wait for smtp(8) ta<i> to log its TLS verdict
      const re = new RegExp(`postfix/ta${i}/smtp\\[\\d+\\]: (Verified|Trusted|Untrusted|Anonymous) TLS connection established`)
      let log = ''
      for (let t = 0; t < 100 && !re.test(log); t++) {
        await new Promise((res) => setTimeout(res, 100))
        log = lab.maillog()
      }
      const m = re.exec(log)
      assert.ok(m, `no TLS verdict from ta${i}:\n${log}`)
      const theirs = m[1] === 'Verified'
      const store = await loadTrustStore({ taFile: join(dir, `ta${i}.pem`) })
      const ours = verifyTrustAnchors({ anchors: store.anchors, chain: [leaf.der, inter.der], names: [match] })
      assert.equal(theirs, verified, 'the reference gave another verdict than the case expects')
      assert.equal(ours.ok, theirs, `Postfix: ${m[0]}\nours: ${JSON.stringify(ours)}`)
      // and the driver, given the same policy table line, loads the tafile and agrees end to end
      const r2 = await probe('[127.0.97.6]:25', {
        policyTable: parsePolicyTable(readFileSync(join(dir, `policy${i}`), 'utf8')),
        ehloName: 'client.test',
        timeoutMs: 10_000,
      })
      assert.equal(r2.outcome.status === 'verified', theirs, `Postfix: ${m[0]}\nprobe: ${JSON.stringify(r2.outcome)}`)
      if (!theirs) assert.equal(r2.outcome.enhancedStatus, '4.7.5')
    })
  }
})
