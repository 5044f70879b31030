import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseEhloCapabilities, parseReply } from '../../src/index.js'

describe('parseEhloCapabilities (RFC 5321 §4.1.1.1)', () => {
  it('Postfix-like reply: typed flags, parameters kept', () => {
    const caps = parseEhloCapabilities(
      parseReply(
        '250-mx.test\r\n250-PIPELINING\r\n250-SIZE 40960000\r\n250-AUTH PLAIN LOGIN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 REQUIRETLS\r\n',
      ),
    )
    assert.equal(caps.domain, 'mx.test')
    assert.equal(caps.greet, '')
    assert.deepEqual(caps.known, {
      STARTTLS: true,
      REQUIRETLS: true,
      PIPELINING: true,
      '8BITMIME': true,
      SMTPUTF8: true,
      ENHANCEDSTATUSCODES: true,
    })
    assert.equal(caps.extensions.get('SIZE'), '40960000')
    assert.equal(caps.extensions.get('AUTH'), 'PLAIN LOGIN')
    assert.equal(caps.extensions.get('PIPELINING'), '')
    assert.equal(caps.size, 40960000)
    assert.deepEqual(caps.auth, ['PLAIN', 'LOGIN'])
    assert.deepEqual(caps.ignored, [])
  })

  const rows: Array<[string, string[], (c: ReturnType<typeof parseEhloCapabilities>) => void]> = [
    [
      'greet text after the domain (Exim)',
      ['mail.test Hello client [192.0.2.1]'],
      (c) => assert.equal(c.greet, 'Hello client [192.0.2.1]'),
    ],
    [
      'keywords are case-insensitive, stored upper-case',
      ['mx', 'starttls', 'Size 10'],
      (c) => {
        assert.equal(c.known.STARTTLS, true)
        assert.equal(c.extensions.get('SIZE'), '10')
      },
    ],
    [
      'middlebox-mangled STARTTLS (XXXXXXXA) is just an unknown keyword',
      ['mx', 'XXXXXXXA'],
      (c) => {
        assert.equal(c.known.STARTTLS, false)
        assert.equal(c.extensions.has('XXXXXXXA'), true)
      },
    ],
    [
      'STARTTLS with a parameter still counts (Postfix compares the keyword)',
      ['mx', 'STARTTLS x'],
      (c) => assert.equal(c.known.STARTTLS, true),
    ],
    [
      'obsolete AUTH= form merged with AUTH',
      ['mx', 'AUTH LOGIN PLAIN', 'AUTH=LOGIN CRAM-MD5'],
      (c) => assert.deepEqual(c.auth, ['LOGIN', 'PLAIN', 'CRAM-MD5']),
    ],
    ['first occurrence of a repeated keyword wins', ['mx', 'SIZE 10', 'SIZE 20'], (c) => assert.equal(c.size, 10)],
    [
      'SIZE without a number: extension present, no limit',
      ['mx', 'SIZE'],
      (c) => {
        assert.equal(c.extensions.has('SIZE'), true)
        assert.equal(c.size, undefined)
      },
    ],
    ['SIZE with garbage is not a number', ['mx', 'SIZE 10k'], (c) => assert.equal(c.size, undefined)],
    [
      'a keyword starting with "-" is ignored',
      ['mx', '-STARTTLS'],
      (c) => {
        assert.equal(c.known.STARTTLS, false)
        assert.deepEqual(c.ignored, ['-STARTTLS'])
      },
    ],
    ['control characters in parameters: line ignored', ['mx', 'SIZE 1\x00'], (c) => assert.equal(c.extensions.has('SIZE'), false)],
    ['non-ASCII keyword: line ignored, never fatal', ['mx', 'ST\xc4RTTLS'], (c) => assert.deepEqual(c.ignored, ['ST\xc4RTTLS'])],
    ['empty extension line is ignored', ['mx', ''], (c) => assert.deepEqual(c.ignored, [''])],
    [
      'empty reply',
      [],
      (c) => {
        assert.equal(c.domain, '')
        assert.equal(c.extensions.size, 0)
      },
    ],
    ['the first line is never a keyword', ['STARTTLS'], (c) => assert.equal(c.known.STARTTLS, false)],
  ]
  for (const [why, lines, check] of rows) it(why, () => check(parseEhloCapabilities(lines)))
})

describe('parseEhloCapabilities: repeated AUTH lines (issue 10 §3)', () => {
  it('merges the mechanisms of every AUTH line, first occurrence first, duplicates once', () => {
    const c = parseEhloCapabilities(['mx', 'AUTH PLAIN LOGIN', 'AUTH=LOGIN CRAM-MD5', 'auth  XOAUTH2 PLAIN'])
    assert.equal(c.extensions.get('AUTH'), 'PLAIN LOGIN CRAM-MD5 XOAUTH2')
    assert.deepEqual(c.auth, ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'])
  })
  it('a single AUTH line keeps its parameters as sent', () => {
    assert.equal(parseEhloCapabilities(['mx', 'AUTH PLAIN  LOGIN']).extensions.get('AUTH'), 'PLAIN  LOGIN')
  })
  it('20,000 AUTH lines: every mechanism, in order', () => {
    const n = 20_000
    const c = parseEhloCapabilities(['mx', ...Array.from({ length: n }, (_, i) => `AUTH M${i} PLAIN`)])
    assert.equal(c.auth.length, n + 1)
    assert.equal(c.auth[0], 'M0')
    assert.equal(c.auth[1], 'PLAIN')
    assert.equal(c.auth[n], `M${n - 1}`)
  })
})
