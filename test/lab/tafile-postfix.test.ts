// Trust-anchor files at the `secure` level (issue 14). posttls-finger has no trust-anchor option
// (smtp_tls_trust_anchor_file is read by smtp(8) only), so the reference is what Postfix's smtp
// client does with tafile= (tls_dane_load_trustfile + tls_dane_enable): OpenSSL DANE with a
// full-data DANE-TA and DANE-EE record per anchor and name checks on, i.e. `openssl s_client
// -dane_tlsa_domain NAME -dane_tlsa_rrdata "2 S 0 …" -dane_tlsa_rrdata "3 S 0 …"`, against a
// Postfix smtpd serving leaf + intermediate. verifyTrustAnchors(loadTrustStore({ taFile })) on the
// same chain and name must give the same verdict. Postfix smtpd: 127.0.97.6.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { spawnSync } from 'node:child_process'
import { formatTlsaRecord, trustAnchorTlsaRecords, verifyTrustAnchors } from '../../src/index.js'
import { loadTrustStore } from '../../src/node/index.js'
import { openssl, tempDir } from '../helpers/openssl.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'
import { inter, leaf, TAFILE_CASES } from './tafile-cases.js'

/** "2 S 0 hex" / "3 S 0 hex" per PEM block, from openssl's DER output. */
function opensslAnchorRecords(pem: string): string[] {
  const out: string[] = []
  for (const m of pem.matchAll(/-----BEGIN (CERTIFICATE|PUBLIC KEY)-----[\s\S]*?-----END \1-----\n?/g)) {
    const der = m[1] === 'CERTIFICATE' ? openssl(['x509', '-outform', 'DER'], m[0]) : openssl(['pkey', '-pubin', '-outform', 'DER'], m[0])
    const s = m[1] === 'CERTIFICATE' ? 0 : 1
    out.push(`2 ${s} 0 ${der.toString('hex')}`, `3 ${s} 0 ${der.toString('hex')}`)
  }
  return out
}

const cases = TAFILE_CASES

describe('tafile at secure: OpenSSL DANE as Postfix configures it and verifyTrustAnchors agree', () => {
  const { dir, done } = tempDir()
  let lab: PostfixLab
  before(async () => {
    lab = await startPostfixLab([{ address: '127.0.97.6', certPem: leaf.pem + inter.pem, keyPem: leaf.keyPem }])
  })
  after(async () => {
    await lab?.stop()
    done()
  })
  for (const [i, [name, tafile, match, verified]] of cases.entries()) {
    it(`${name} (match ${match}): ${verified ? 'verified' : 'not verified'}`, async () => {
      const f = join(dir, `ta${i}.pem`)
      writeFileSync(f, tafile)
      const store = await loadTrustStore({ taFile: f })
      // the records are built from openssl's own reading of the file (x509 / pkey), not from ours
      const records = opensslAnchorRecords(tafile)
      assert.deepEqual(records, trustAnchorTlsaRecords(store.anchors).map(formatTlsaRecord))
      const args = ['s_client', '-connect', '127.0.97.6:25', '-starttls', 'smtp', '-dane_tlsa_domain', match]
      for (const r of records) args.push('-dane_tlsa_rrdata', r)
      const r = spawnSync('openssl', args, { input: '', encoding: 'utf8', timeout: 20_000 })
      const out = r.stdout + r.stderr
      assert.match(out, /Verif(ication|y return code)/, out)
      const theirs = /^Verification: OK$/m.test(out)
      const ours = verifyTrustAnchors({ anchors: store.anchors, chain: [leaf.der, inter.der], names: [match] })
      assert.equal(theirs, verified, 'the reference gave another verdict than the case expects')
      assert.equal(ours.ok, theirs, `posttls-finger:\n${out}\nours: ${JSON.stringify(ours.ok ? ours.record.usage : ours)}`)
    })
  }
})
