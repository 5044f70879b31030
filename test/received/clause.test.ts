import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { formatReceivedTlsClause, receivedProtocol, type TlsSessionFacts } from '../../src/index.js'
import { commentSanitize } from '../../src/received/clause.js'
import { throwsCoded } from '../helpers/assert-coded.js'

const base: TlsSessionFacts = {
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_256_GCM_SHA384',
  cipherBits: 256,
  cipherAlgBits: 256,
  keyExchange: { name: 'X25519' },
  serverSignature: { name: 'RSA-PSS', bits: 2048, digest: 'SHA256' },
}

// Headers Postfix 3.7.11 wrote in the lab (test/lab/received-postfix.test.ts produces them again).
const vectors: [name: string, facts: TlsSessionFacts, clause: string][] = [
  [
    'FORWARD_SECRECY_README example, no certificate requested',
    base,
    '(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n\t(No client certificate requested)',
  ],
  [
    'asked, none presented',
    { ...base, clientCertificate: { requested: true, presented: false } },
    '(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n\t(Client did not present a certificate)',
  ],
  [
    'an EC client certificate, not verified',
    {
      ...base,
      clientSignature: { name: 'ECDSA', curve: 'prime256v1', digest: 'SHA256' },
      clientCertificate: { requested: true, presented: true, verified: false, subjectCN: 'client.example', issuerCN: 'client.example' },
    },
    '(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256\n\t client-signature ECDSA (prime256v1) client-digest SHA256)\n\t(Client CN "client.example", Issuer "client.example" (not verified))',
  ],
  [
    'verified OK; DHE key exchange with bits (TLS 1.3 ffdhe group)',
    {
      ...base,
      cipher: 'TLS_AES_128_GCM_SHA256',
      cipherBits: 128,
      cipherAlgBits: 128,
      keyExchange: { name: 'DHE', bits: 2048 },
      serverSignature: { name: 'ED25519' },
      clientCertificate: { requested: true, presented: true, verified: true, subjectCN: 'c', issuerCN: 'CA' },
    },
    '(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)\n\t key-exchange DHE (2048 bits) server-signature ED25519)\n\t(Client CN "c", Issuer "CA" (verified OK))',
  ],
  [
    'TLS 1.2: Postfix reports no key exchange or signatures below TLS 1.3',
    {
      ...base,
      protocol: 'TLSv1.2',
      cipher: 'ECDHE-RSA-AES256-GCM-SHA384',
      clientSignature: { name: 'ECDSA', curve: 'prime256v1', digest: 'SHA256' },
      clientCertificate: { requested: true, presented: true, verified: true, subjectCN: 'c', issuerCN: 'CA' },
    },
    '(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\n\t(Client CN "c", Issuer "CA" (verified OK))',
  ],
  [
    'no key exchange or signature known: the using comment alone',
    { protocol: 'TLSv1.2', cipher: 'AES256-SHA', cipherBits: 256, cipherAlgBits: 256 },
    '(using TLSv1.2 with cipher AES256-SHA (256/256 bits))\n\t(No client certificate requested)',
  ],
]

describe('formatReceivedTlsClause (Postfix smtpd_tls_received_header)', () => {
  for (const [name, facts, clause] of vectors) {
    it(name, () => {
      assert.equal(formatReceivedTlsClause(facts, { newline: '\n' }), clause)
      assert.equal(formatReceivedTlsClause(facts), clause.replaceAll('\n', '\r\n'))
    })
  }
  it('newline " " gives one line', () => {
    assert.equal(
      formatReceivedTlsClause(base, { newline: ' ' }),
      '(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256) (No client certificate requested)',
    )
  })
  it('CN text is sanitised as Postfix comment_sanitize does', () => {
    assert.equal(commentSanitize('a(b'), 'a(b)')
    assert.equal(commentSanitize('a)b'), 'a?b')
    assert.equal(commentSanitize('x\\y'), 'x?y')
    assert.equal(commentSanitize('é'), '??') // two UTF-8 bytes
    assert.equal(commentSanitize('a\r\nb'), 'a??b')
    const c = formatReceivedTlsClause(
      { ...base, clientCertificate: { requested: true, presented: true, subjectCN: 'evil)\r\nX-Injected: 1' } },
      { newline: '\n' },
    )
    assert.ok(!c.includes('\r'))
    assert.match(c, /\(Client CN "evil\?\?\?X-Injected: 1", Issuer "" \(not verified\)\)$/)
  })
  it('bad facts are coded errors', () => {
    throwsCoded(() => formatReceivedTlsClause(null as never), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => formatReceivedTlsClause({ ...base, protocol: '' }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => formatReceivedTlsClause({ ...base, cipherBits: -1 }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => formatReceivedTlsClause({ ...base, keyExchange: {} as never }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => formatReceivedTlsClause(base, { newline: 1 as never }), 'ERR_INVALID_ARGUMENT')
  })
})

describe('receivedProtocol (RFC 3848)', () => {
  it('ESMTP, ESMTPS, ESMTPA, ESMTPSA, and SMTP without extensions', () => {
    assert.equal(receivedProtocol({ esmtp: true, tls: false }), 'ESMTP')
    assert.equal(receivedProtocol({ esmtp: true, tls: true }), 'ESMTPS')
    assert.equal(receivedProtocol({ esmtp: true, tls: false, authenticated: true }), 'ESMTPA')
    assert.equal(receivedProtocol({ esmtp: true, tls: true, authenticated: true }), 'ESMTPSA')
    assert.equal(receivedProtocol({ esmtp: false, tls: true, authenticated: true }), 'SMTP')
    throwsCoded(() => receivedProtocol(null as never), 'ERR_INVALID_ARGUMENT')
  })
})

describe('formatReceivedTlsClause: properties (fast-check)', () => {
  it('any CN and issuer text: no line breaks besides the folding, parentheses balanced, the header cannot be broken', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.boolean(),
        (cn, issuer, verified) => {
          const c = formatReceivedTlsClause(
            { ...base, clientCertificate: { requested: true, presented: true, verified, subjectCN: cn, issuerCN: issuer } },
            { newline: '\n' },
          )
          const lines = c.split('\n')
          assert.equal(lines.length, 3)
          assert.ok(lines.slice(1).every((l) => l.startsWith('\t')))
          assert.ok(/^[\x20-\x7e\t]*$/.test(lines.join('')))
          const last = lines[2]!
          let depth = 0
          for (const ch of last) {
            if (ch === '(') depth++
            else if (ch === ')') depth--
            assert.ok(depth >= 0)
          }
          assert.equal(depth, 0)
        },
      ),
      { numRuns: 300 },
    )
  })
})
