// tlsCipherList: Postfix cipher grades and exclusions as an OpenSSL cipher string (postconf(5)
// smtp_tls_mandatory_ciphers, smtp_tls_exclude_ciphers; RFC 7672 §8.2). Each string is checked
// against the real OpenSSL through node:tls, so a list OpenSSL cannot use is caught here.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSecureContext, getCiphers } from 'node:tls'
import { tlsCipherList, SmtpTlsError } from '../../src/index.js'

describe('tlsCipherList', () => {
  const rows: Array<[string, Parameters<typeof tlsCipherList>[0], string | undefined]> = [
    ['neither ciphers= nor exclude=: the TLS stack default', { authenticating: true }, undefined],
    ['high, opportunistic', { ciphers: 'high', authenticating: false }, 'aNULL:-aNULL:HIGH:@STRENGTH'],
    ['high, authenticating: no aNULL (RFC 7672 §8.2)', { ciphers: 'high', authenticating: true }, 'aNULL:-aNULL:HIGH:@STRENGTH:!aNULL'],
    [
      'medium is the default grade when only exclude= is given',
      { exclude: 'RC4', authenticating: false },
      'aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:!RC4',
    ],
    [
      'exclusions separated by spaces, commas and colons',
      { ciphers: 'high', exclude: 'AES128-SHA, DES-CBC3-SHA:eNULL', authenticating: false },
      'aNULL:-aNULL:HIGH:@STRENGTH:!AES128-SHA:!DES-CBC3-SHA:!eNULL',
    ],
    ['null grade', { ciphers: 'null', authenticating: false }, 'eNULL:!aNULL'],
  ]
  for (const [name, input, want] of rows) it(name, () => assert.equal(tlsCipherList(input), want))

  it('every grade is a list OpenSSL accepts, and high leaves out what medium adds', () => {
    for (const grade of ['high', 'medium', 'low', 'export'] as const) {
      const list = tlsCipherList({ ciphers: grade, authenticating: true })!
      assert.doesNotThrow(() => createSecureContext({ ciphers: list }), grade)
    }
    assert.ok(getCiphers().length > 0)
  })

  for (const bad of ['a;b', 'x"y', '!ALL', 'A'.repeat(65), 'ä']) {
    it(`an exclusion that is not a cipher name is ERR_POLICY_CONFIG: ${JSON.stringify(bad.slice(0, 12))}`, () => {
      assert.throws(
        () => tlsCipherList({ exclude: bad, authenticating: false }),
        (e) => e instanceof SmtpTlsError && e.code === 'ERR_POLICY_CONFIG' && e.temporary,
      )
    })
  }
  it('wrong types are ERR_INVALID_ARGUMENT or ERR_POLICY_CONFIG, never a TypeError', () => {
    for (const v of [null, undefined, 5, 'high']) {
      assert.throws(
        () => tlsCipherList(v as never),
        (e) => e instanceof SmtpTlsError,
      )
    }
    assert.throws(
      () => tlsCipherList({ ciphers: 'ultra' as never, authenticating: true }),
      (e) => e instanceof SmtpTlsError,
    )
    assert.throws(
      () => tlsCipherList({ exclude: 5 as never, authenticating: true }),
      (e) => e instanceof SmtpTlsError,
    )
  })
})
