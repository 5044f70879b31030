// Client-certificate relay permission (issue 14): Postfix smtpd with relay_clientcerts and
// smtp-server with smtpServerClientCertificates, the same table and certificates, must permit and
// refuse the same clients. Clients: openssl s_client (STARTTLS, RCPT TO decides) and posttls-finger
// (implicit TLS, the EHLO or greeting decides: posttls-finger sends no RCPT).
// Addresses: Postfix 127.0.97.1 (:25 STARTTLS, :465 wrapper mode), smtp-server 127.0.98.1 (:25, :465).
import assert from 'node:assert/strict'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { lookupClientCertificate, parseClientCertTable, type ClientCertMatchKind } from '../../src/index.js'
import { clientTable, COMMANDS, makeClientCerts, startRelay, type Relay } from '../helpers/clientcerts.js'
import { makeCert, tempDir, type Issued } from '../helpers/openssl.js'
import { opensslSmtp, posttlsFingerAsync, rcptReply } from '../helpers/smtp-clients.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const certs = makeClientCerts()
const serverCert = makeCert({ subject: '/CN=mx.lab.test', dns: ['mx.lab.test'] })
const table = clientTable(certs)
const clients: [name: string, cert: Issued | undefined, permitted: boolean][] = [
  ['the listed certificate', certs.known, true],
  ['the listed key in a reissued certificate', certs.reissued, true],
  ['an unknown certificate', certs.unknown, false],
  ['no certificate', undefined, false],
]

describe('relay_clientcerts: Postfix and smtp-server agree (openssl s_client, posttls-finger)', () => {
  const { dir, done } = tempDir()
  let lab: PostfixLab
  let starttls: Relay
  let implicit: Relay
  before(async () => {
    chmodSync(dir, 0o755)
    writeFileSync(join(dir, 'ca.pem'), certs.ca.pem, { mode: 0o644 })
    writeFileSync(join(dir, 'relay_clientcerts'), table, { mode: 0o644 })
    lab = await startPostfixLab(
      [
        { address: '127.0.97.1', certPem: serverCert.pem, keyPem: serverCert.keyPem },
        {
          address: '127.0.97.1',
          port: 465,
          certPem: serverCert.pem,
          keyPem: serverCert.keyPem,
          // posttls-finger stops after EHLO: refuse there (smtpd_delay_reject=no)
          options: ['smtpd_tls_wrappermode=yes', 'smtpd_delay_reject=no', 'smtpd_helo_restrictions=permit_tls_clientcerts,reject'],
        },
      ],
      {
        acceptMail: true,
        extraMain: [
          'smtpd_tls_ask_ccert = yes',
          `smtpd_tls_CAfile = ${join(dir, 'ca.pem')}`,
          `relay_clientcerts = texthash:${join(dir, 'relay_clientcerts')}`,
          'smtpd_relay_restrictions = permit_tls_clientcerts, reject',
          'smtpd_tls_fingerprint_digest = sha256',
        ],
      },
    )
    starttls = await startRelay({ table, ca: certs.ca.pem, implicit: false, serverCert, host: '127.0.98.1', port: 25 })
    implicit = await startRelay({
      table,
      ca: certs.ca.pem,
      implicit: true,
      serverCert,
      host: '127.0.98.1',
      port: 465,
      refuseOnSecure: true,
    })
  })
  after(async () => {
    await starttls?.close()
    await implicit?.close()
    await lab?.stop()
    done()
  })

  for (const [name, cert, permitted] of clients) {
    it(`openssl s_client -starttls smtp, ${name}: ${permitted ? 'relays' : 'refused'} by both`, async () => {
      const verdicts: string[] = []
      for (const host of ['127.0.97.1', '127.0.98.1']) {
        const r = await opensslSmtp({ host, port: 25, implicit: false, dir, commands: COMMANDS, ...(cert ? { cert } : {}) })
        const rcpt = rcptReply(r) ?? ''
        assert.match(rcpt, /^(250|554) /, `${host}: ${r.output}\n${lab.maillog()}`)
        verdicts.push(rcpt.slice(0, 3))
      }
      assert.deepEqual(verdicts, permitted ? ['250', '250'] : ['554', '554'])
    })
    it(`posttls-finger -w (implicit TLS), ${name}: ${permitted ? 'permitted' : 'refused'} by both`, async () => {
      const verdicts: boolean[] = []
      for (const host of ['127.0.97.1', '127.0.98.1']) {
        const args = ['-t', '10', '-T', '10', '-w', '-l', 'may', '-c']
        if (cert) {
          const f = join(dir, `finger-${verdicts.length}-${name.length}.pem`)
          writeFileSync(f, cert.keyPem + cert.pem)
          args.push('-H', f)
        }
        const out = await posttlsFingerAsync([...args, `[${host}]:465`], lab.configDir)
        assert.match(out, /TLS connection established/, out)
        // posttls-finger with -c still logs a refused EHLO or greeting ("refused to talk", "554")
        verdicts.push(!/\b5\d\d\b/.test(out.split('TLS connection established')[1] ?? ''))
      }
      assert.deepEqual(verdicts, [permitted, permitted])
    })
  }
})

// check_ccert_access with an explicit search_order (Postfix >= 3.5) and an md5 relay_clientcerts
// table (smtpd_tls_fingerprint_digest = md5): the listed certificate is REJECTed by certificate
// fingerprint but OK by key fingerprint, so the order decides. Postfix 127.0.97.7-9, smtp-server
// 127.0.98.7-9.
describe('check_ccert_access search_order and md5 tables: Postfix and smtp-server agree', () => {
  const { dir, done } = tempDir()
  const fps = lookupClientCertificate(parseClientCertTable(''), certs.known.der).fingerprints
  const md5 = lookupClientCertificate(parseClientCertTable(''), certs.known.der, { digest: 'md5' }).fingerprints
  const access = `${fps.cert_fingerprint} REJECT by certificate\n${fps.pubkey_fingerprint} OK\n`
  const md5Table = `${md5.cert_fingerprint} client1\n${md5.pubkey_fingerprint} client1-key\n`
  const setups: {
    name: string
    postfix: string
    ours: string
    table: string
    restriction: 'permit_tls_clientcerts' | 'check_ccert_access'
    searchOrder?: ClientCertMatchKind[]
    digest?: 'md5'
    permitted: [known: boolean, reissued: boolean, unknown: boolean, none: boolean]
  }[] = [
    {
      name: 'check_ccert_access, default order (certificate first)',
      postfix: '127.0.97.7',
      ours: '127.0.98.7',
      table: access,
      restriction: 'check_ccert_access',
      permitted: [false, true, false, false],
    },
    {
      name: 'check_ccert_access, search_order = pubkey_fingerprint, cert_fingerprint',
      postfix: '127.0.97.8',
      ours: '127.0.98.8',
      table: access,
      restriction: 'check_ccert_access',
      searchOrder: ['pubkey_fingerprint', 'cert_fingerprint'],
      permitted: [true, true, false, false],
    },
    {
      name: 'relay_clientcerts with md5 fingerprints',
      postfix: '127.0.97.9',
      ours: '127.0.98.9',
      table: md5Table,
      restriction: 'permit_tls_clientcerts',
      digest: 'md5',
      permitted: [true, true, false, false],
    },
  ]
  let lab: PostfixLab
  const relays: Relay[] = []
  before(async () => {
    chmodSync(dir, 0o755)
    writeFileSync(join(dir, 'access'), access, { mode: 0o644 })
    writeFileSync(join(dir, 'md5'), md5Table, { mode: 0o644 })
    const spec = (address: string, options: string[]) => ({ address, certPem: serverCert.pem, keyPem: serverCert.keyPem, options })
    lab = await startPostfixLab(
      [
        spec('127.0.97.7', ['smtpd_relay_restrictions=$ccert_default']),
        spec('127.0.97.8', ['smtpd_relay_restrictions=$ccert_pubkey_first']),
        spec('127.0.97.9', [
          'smtpd_relay_restrictions=$ccert_md5',
          'smtpd_tls_fingerprint_digest=md5',
          `relay_clientcerts=texthash:${join(dir, 'md5')}`,
        ]),
      ],
      {
        acceptMail: true,
        extraMain: [
          'smtpd_tls_ask_ccert = yes',
          `ccert_default = check_ccert_access texthash:${join(dir, 'access')}, reject`,
          `ccert_pubkey_first = check_ccert_access { texthash:${join(dir, 'access')}, { search_order = pubkey_fingerprint, cert_fingerprint } }, reject`,
          'ccert_md5 = permit_tls_clientcerts, reject',
        ],
      },
    )
    for (const s of setups) {
      relays.push(
        await startRelay({
          table: s.table,
          ca: certs.ca.pem,
          implicit: false,
          serverCert,
          host: s.ours,
          port: 25,
          restriction: s.restriction,
          ...(s.searchOrder ? { searchOrder: s.searchOrder } : {}),
          ...(s.digest ? { digest: s.digest } : {}),
        }),
      )
    }
  })
  after(async () => {
    for (const r of relays) await r.close()
    await lab?.stop()
    done()
  })
  for (const s of setups) {
    it(s.name, async () => {
      const verdicts: string[] = []
      for (const [i, [, cert]] of clients.entries()) {
        for (const host of [s.postfix, s.ours]) {
          const r = await opensslSmtp({ host, port: 25, implicit: false, dir, commands: COMMANDS, ...(cert ? { cert } : {}) })
          const rcpt = rcptReply(r) ?? ''
          assert.match(rcpt, /^(250|554) /, `${host}: ${r.output}\n${lab.maillog()}`)
          verdicts.push(`${i}:${host === s.postfix ? 'postfix' : 'ours'}:${rcpt.slice(0, 3)}`)
        }
      }
      const expected = s.permitted.flatMap((p, i) => [`${i}:postfix:${p ? 250 : 554}`, `${i}:ours:${p ? 250 : 554}`])
      assert.deepEqual(verdicts, expected)
    })
  }
})
