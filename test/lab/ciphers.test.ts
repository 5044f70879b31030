// Issue 17: `ciphers=` and `exclude=` from a policy table are applied to the connection. A real
// Postfix smtpd that speaks TLS 1.2 only, with one cipher (ECDHE-ECDSA-AES128-GCM-SHA256): excluding
// that cipher must make the handshake fail and the delivery defer (4.7.5), with the server's alert
// named; without the exclusion the same table entry connects with that cipher. postconf(5)
// smtp_tls_mandatory_ciphers, smtp_tls_exclude_ciphers; RFC 7672 §8.2.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { parsePolicyTable } from '../../src/index.js'
import { probe } from '../../src/node/index.js'
import { makeCert } from '../helpers/openssl.js'
import { startPostfixLab, type PostfixLab } from './postfix.js'

const ADDRESS = '127.0.86.1'
const ONLY = 'ECDHE-ECDSA-AES128-GCM-SHA256'
const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.ciphers.test', dns: ['mx.ciphers.test'] })
let postfix: PostfixLab

before(async () => {
  postfix = await startPostfixLab([{ address: ADDRESS, certPem: leaf.pem, keyPem: leaf.keyPem }], {
    extraMain: [
      'smtpd_tls_protocols = >=TLSv1.2, <=TLSv1.2',
      'smtpd_tls_ciphers = high',
      'smtpd_tls_mandatory_ciphers = high',
      `tls_high_cipherlist = ${ONLY}`,
    ],
  })
})
after(async () => {
  await postfix?.stop()
})

const run = (entry: string) =>
  probe(`[${ADDRESS}]`, { policyTable: parsePolicyTable(`[${ADDRESS}] ${entry}\n`), ehloName: 'client.ciphers.test', timeoutMs: 10_000 })

describe('ciphers= and exclude= against a one-cipher Postfix (TLS 1.2)', () => {
  it(`encrypt ciphers=high: connects with ${ONLY}`, async () => {
    const r = await run('encrypt ciphers=high')
    assert.equal(r.outcome.status, 'untrusted', JSON.stringify(r.outcome))
    assert.equal(r.outcome.protocol, 'TLSv1.2')
    assert.equal(r.outcome.cipher, `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`)
  })
  it(`encrypt ciphers=high exclude=${ONLY}: no shared cipher, deferred 4.7.5, the alert named`, async () => {
    const r = await run(`encrypt ciphers=high exclude=${ONLY}`)
    assert.equal(r.outcome.status, 'deferred', JSON.stringify(r.outcome))
    assert.equal(r.outcome.enhancedStatus, '4.7.5')
    assert.equal(r.outcome.code, 'ERR_TLS_HANDSHAKE')
    assert.match(r.outcome.reason ?? '', /TLS alert 40, handshake failure/)
    assert.doesNotMatch(r.outcome.reason ?? '', /handshake failure.*handshake failure.*handshake failure/, 'the cause once')
  })
  it('encrypt exclude=AESGCM (grade medium by default): deferred too', async () => {
    const r = await run('encrypt exclude=AESGCM')
    assert.equal(r.outcome.status, 'deferred', JSON.stringify(r.outcome))
    assert.equal(r.outcome.enhancedStatus, '4.7.5')
  })
  it('may with the cipher excluded: the handshake fails, then plaintext on a new connection (Postfix)', async () => {
    const r = await run(`may exclude=${ONLY}`)
    assert.equal(r.attempts.length, 2)
    assert.equal(r.attempts[0]!.verdict?.status, 'deferred')
    assert.equal(r.outcome.status, 'plaintext')
  })
})
