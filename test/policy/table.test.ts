import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { lookupPolicy, parsePolicyTable, policyLookupKeys, protocolAllowed, SmtpTlsError } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

const PIN = 'AB:'.repeat(31) + 'AB'
const PIN2 = 'cd'.repeat(32)

describe('parsePolicyTable: valid entries (postconf(5) smtp_tls_policy_maps)', () => {
  // [table text, key, expected policy subset, why]
  const table: Array<[string, string, Record<string, unknown>, string]> = [
    ['example.com may', 'example.com', { level: 'may' }, 'bare level'],
    ['Example.COM   SECURE', 'example.com', { level: 'secure' }, 'keys and level names are case-insensitive'],
    ['example.com\tencrypt', 'example.com', { level: 'encrypt' }, 'tab separates key and value'],
    ['example.com dane-only', 'example.com', { level: 'dane-only' }, 'dane-only'],
    [
      'example.com secure match=nexthop:dot-nexthop',
      'example.com',
      { match: ['nexthop', 'dot-nexthop'] },
      'match= is :-separated at secure',
    ],
    [
      'example.com verify match=hostname match=.example.net',
      'example.com',
      { match: ['hostname', '.example.net'] },
      'match= repeats and appends',
    ],
    [
      'example.com secure match=a.example::b.example',
      'example.com',
      { match: ['a.example', 'b.example'] },
      'argv_split skips empty fields',
    ],
    [`example.com fingerprint match=${PIN}|${PIN2}`, 'example.com', { match: [PIN, PIN2] }, 'match= is |-separated at fingerprint'],
    [
      `example.com fingerprint\n    match=${PIN}\n    match=${PIN2}`,
      'example.com',
      { match: [PIN, PIN2] },
      'continuation lines (postmap readlline)',
    ],
    ['example.com may ciphers=high', 'example.com', { ciphers: 'high' }, 'ciphers= grade'],
    [
      'example.com encrypt protocols=>=TLSv1.2',
      'example.com',
      { protocols: { text: '>=TLSv1.2', min: 'TLSv1.2', include: [], exclude: [] } },
      'protocols bound',
    ],
    [
      'example.com encrypt protocols=!SSLv2:!SSLv3',
      'example.com',
      { protocols: { text: '!SSLv2:!SSLv3', include: [], exclude: ['SSLv2', 'SSLv3'] } },
      'legacy exclusions',
    ],
    [
      'example.com encrypt protocols=',
      'example.com',
      { protocols: { text: '', include: [], exclude: [] } },
      'empty protocols= lifts restrictions (Postfix)',
    ],
    ['example.com may exclude=aNULL', 'example.com', { exclude: 'aNULL' }, 'exclude='],
    ['example.com may servername=hostname', 'example.com', { servername: 'hostname' }, 'servername=hostname'],
    ['example.com may servername=Mail.Example.NET', 'example.com', { servername: 'mail.example.net' }, 'servername literal'],
    [
      'example.com secure tafile=/etc/ta.pem tafile=/etc/ta2.pem',
      'example.com',
      { tafile: ['/etc/ta.pem', '/etc/ta2.pem'] },
      'tafile repeats at secure',
    ],
    ['example.com may connection_reuse=YES', 'example.com', { connectionReuse: true }, 'connection_reuse yes (any case)'],
    ['example.com may enable_rpk=yes enable_rpk=no', 'example.com', { enableRpk: false }, 'enable_rpk: last one wins'],
    ['example.com may,ciphers=medium,exclude=MD5', 'example.com', { ciphers: 'medium', exclude: 'MD5' }, 'commas separate attributes'],
    [
      'example.com secure { match = nexthop:dot-nexthop } { exclude = aNULL MD5 }',
      'example.com',
      { match: ['nexthop', 'dot-nexthop'], exclude: 'aNULL MD5' },
      '{ name = value } keeps spaces (Postfix mystrtokq + extpar)',
    ],
    ['[mx.example.com]:587 encrypt', '[mx.example.com]:587', { level: 'encrypt' }, 'bracketed next hop with port'],
    ['.example.com dane', '.example.com', { level: 'dane' }, 'parent-domain key'],
    ['# comment\n\n   # indented comment\nexample.com may\n', 'example.com', { level: 'may' }, 'comments and blank lines'],
    ['example.com verify\r\n  match=hostname\r\n', 'example.com', { match: ['hostname'] }, 'CRLF line ends'],
    [
      'example.com secure match=mx1.example.com policy_type=sts policy_domain=Example.com policy_ttl=86400 { policy_string = version: STSv1 } { policy_string = mode: enforce } mx_host_pattern=mx1.example.com',
      'example.com',
      {
        external: {
          type: 'sts',
          domain: 'example.com',
          ttl: 86400,
          strings: ['version: STSv1', 'mode: enforce'],
          mxHostPatterns: ['mx1.example.com'],
        },
      },
      'external MTA-STS policy attributes (Postfix policy_type and friends)',
    ],
    [
      'example.com may policy_type=no-policy-found policy_failure=sts-policy-fetch-error',
      'example.com',
      { external: { type: 'no-policy-found', failure: 'sts-policy-fetch-error', strings: [], mxHostPatterns: [] } },
      'policy_failure',
    ],
  ]
  for (const [text, key, expected, why] of table) {
    it(why, () => {
      const t = parsePolicyTable(text)
      const p = lookupPolicy(t, key.startsWith('.') ? 'x' + key : key)
      assert.ok(p, `no policy for ${key}`)
      for (const [k, v] of Object.entries(expected)) assert.deepEqual((p as unknown as Record<string, unknown>)[k], v, k)
    })
  }
})

describe('parsePolicyTable: defects are ERR_POLICY_SYNTAX with line and column', () => {
  // [text, line, column, message pattern, why]
  const table: Array<[string, number, number, RegExp, string]> = [
    ['example.com', 1, 12, /expected format: key whitespace value/, 'key without value (postmap only warns; skipping would fall back)'],
    ['example.com mayy', 1, 13, /invalid security level "mayy"/, 'unknown level'],
    ['example.com half-dane', 1, 13, /invalid security level "half-dane"/, 'half-dane cannot be configured (tls_level_lookup)'],
    ['example.com may foo=bar', 1, 17, /invalid attribute name: "foo"/, 'unknown attribute'],
    ['example.com may ciphers', 1, 17, /missing "=" after attribute name/, 'attribute without ='],
    ['example.com may =x', 1, 17, /missing attribute name/, 'attribute without name'],
    ['example.com may ciphers=', 1, 17, /"ciphers" has empty value/, 'empty ciphers'],
    ['example.com may ciphers=high ciphers=low', 1, 30, /"ciphers" is specified multiple times/, 'ciphers twice'],
    ['example.com may ciphers=strong', 1, 25, /invalid cipher grade "strong"/, 'unknown cipher grade'],
    ['example.com may protocols=>=TLSv1.2 protocols=!SSLv3', 1, 37, /"protocols" is specified multiple times/, 'protocols twice'],
    ['example.com may protocols=>=TLSv1.4', 1, 27, /unknown TLS protocol "TLSv1.4"/, 'unknown protocol version'],
    ['example.com may protocols=>=TLSv1.3:<=TLSv1.2', 1, 27, /no protocol is left/, 'empty protocol range'],
    ['example.com may protocols=>=TLSv1:>=TLSv1.2', 1, 35, /more than one ">=" bound/, 'two lower bounds'],
    ['example.com may servername=bad_name!', 1, 28, /specifies an invalid hostname/, 'invalid servername'],
    ['example.com may servername=192.0.2.1', 1, 28, /specifies an invalid hostname/, 'numeric servername (valid_hostname)'],
    ['example.com may servername=a servername=b', 1, 30, /"servername" is specified multiple times/, 'servername twice'],
    ['example.com may match=hostname', 1, 17, /"match" invalid at security level "may"/, 'match at may'],
    ['example.com encrypt match=hostname', 1, 21, /"match" invalid at security level "encrypt"/, 'match at encrypt'],
    [
      'example.com dane match=hostname',
      1,
      18,
      /"match" invalid at security level "dane"/,
      'match at dane (DANE names are not configurable)',
    ],
    ['example.com dane-only match=x', 1, 23, /"match" invalid at security level "dane-only"/, 'match at dane-only'],
    ['example.com secure match=', 1, 20, /"match" has empty value/, 'empty match'],
    ['example.com fingerprint match=zz:zz', 1, 31, /malformed fingerprint "zz:zz"/, 'non-hex pin'],
    [
      `example.com fingerprint match=${PIN}|AB:CD`,
      1,
      32 + PIN.length,
      /2 octets is no supported digest length/,
      'short second pin (column points at it)',
    ],
    ['example.com fingerprint match=ABCD:EF', 1, 31, /separate every octet with one colon/, 'colons not between every octet'],
    ['example.com may tafile=/x', 1, 17, /"tafile" invalid at security level "may"/, 'tafile below verify (TLS_MUST_PKIX)'],
    ['example.com dane tafile=/x', 1, 18, /"tafile" invalid at security level "dane"/, 'tafile at dane'],
    ['example.com fingerprint tafile=/x', 1, 25, /"tafile" invalid at security level "fingerprint"/, 'tafile at fingerprint'],
    ['example.com secure tafile=', 1, 20, /"tafile" has empty value/, 'empty tafile'],
    ['example.com may connection_reuse=maybe', 1, 34, /"connection_reuse" has bad value: "maybe"/, 'connection_reuse value'],
    ['example.com may enable_rpk=1', 1, 28, /"enable_rpk" has bad value/, 'enable_rpk value'],
    ['example.com may exclude=a exclude=b', 1, 27, /"exclude" is specified multiple times/, 'exclude twice'],
    ['example.com may policy_ttl=60', 1, 17, /built-in policy has unexpected attribute/, 'policy_ttl without policy_type'],
    [
      'example.com may policy_type=tlsa',
      1,
      29,
      /"policy_type" has an unexpected value: "tlsa"/,
      'policy_type is sts or no-policy-found only',
    ],
    ['example.com may policy_type=sts policy_ttl=1d', 1, 44, /"policy_ttl" has a malformed value/, 'policy_ttl not all digits'],
    ['example.com may policy_type=sts policy_ttl=', 1, 44, /"policy_ttl" has a malformed value/, 'empty policy_ttl (alldig)'],
    [
      'example.com may policy_type=sts policy_failure=dane-required',
      1,
      48,
      /"policy_failure" has an unexpected value/,
      'policy_failure outside the STS set',
    ],
    ['example.com may policy_type=sts policy_type=sts', 1, 33, /"policy_type" is specified multiple times/, 'policy_type twice'],
    ['example.com may policy_type=sts policy_domain=-bad-', 1, 47, /"policy_domain" has a malformed value/, 'policy_domain invalid'],
    ['example.com may { ciphers = high', 1, 17, /missing "}"/, 'unclosed brace'],
    ['example.com may ciphers=high}', 1, 29, /unbalanced "}"/, 'stray closing brace'],
    [
      'example.com secure # trailing comment',
      1,
      20,
      /missing "=" after attribute name/,
      '"#" after a value is data, not a comment (Postfix)',
    ],
    ['  example.com may', 1, 1, /starts with whitespace but continues no entry/, 'leading whitespace before any entry'],
    [
      'a.example may\nexample.com secure\n  match=nexthop\n  bogus=1',
      4,
      3,
      /invalid attribute name: "bogus"/,
      'defect on a continuation line: its own line and column',
    ],
  ]
  for (const [text, line, column, re, why] of table) {
    it(why, () => {
      const e = throwsCoded(() => parsePolicyTable(text), 'ERR_POLICY_SYNTAX', re)
      assert.equal(e.line, line, `line (${e.message})`)
      assert.equal(e.column, column, `column (${e.message})`)
      assert.equal(e.temporary, true, 'a defective policy defers, never bounces')
      assert.equal(e.enhancedStatus, '4.7.5')
    })
  }
})

describe('parsePolicyTable: what Postfix only warns about', () => {
  it('attributes at level none are ignored with a warning', () => {
    const t = parsePolicyTable('example.com none ciphers=high bogus')
    assert.deepEqual(lookupPolicy(t, 'example.com'), { level: 'none', source: { key: 'example.com', line: 1 } })
    assert.equal(t.warnings.length, 2)
    assert.match(t.warnings[0]!.message, /ignoring attribute "ciphers=high" with TLS disabled/)
    assert.equal(t.warnings[1]!.column, 31)
  })
  it('a duplicate key warns and the first entry wins (postmap)', () => {
    const t = parsePolicyTable('example.com secure\nEXAMPLE.com may\n')
    assert.equal(lookupPolicy(t, 'example.com')?.level, 'secure')
    assert.equal(t.warnings.length, 1)
    assert.equal(t.warnings[0]!.line, 2)
    assert.match(t.warnings[0]!.message, /duplicate entry "EXAMPLE.com" ignored \(first at line 1\)/)
  })
})

describe('parsePolicyTable: lenient mode (onError: defer)', () => {
  it('keeps a defective entry as a deferring policy and the rest of the table', () => {
    const t = parsePolicyTable('good.example secure\nbad.example may match=x\n  \tstray\n.example dane\n', { onError: 'defer' })
    assert.equal(lookupPolicy(t, 'good.example')?.level, 'secure')
    const bad = lookupPolicy(t, 'bad.example')
    assert.ok(bad?.defect, 'defect set')
    assert.equal(bad.level, 'secure', 'fails closed for callers that ignore defect')
    assert.equal(bad.defect.line, 2)
    assert.equal(bad.defect.column, 17)
    // Postfix: an invalid entry for a sub-domain does not fall through to the parent entry.
    assert.equal(lookupPolicy(t, 'bad.example')?.defect?.code, 'ERR_POLICY_SYNTAX')
    assert.equal(lookupPolicy(t, 'other.example')?.level, 'dane')
    assert.equal(t.errors.length, 1)
    assert.ok(t.errors[0] instanceof SmtpTlsError)
  })
  it('rejects an unknown mode', () => {
    throwsCoded(() => parsePolicyTable('', { onError: 'ignore' as 'defer' }), 'ERR_INVALID_ARGUMENT')
  })
  it('rejects a non-string table', () => {
    throwsCoded(() => parsePolicyTable(42 as unknown as string), 'ERR_INVALID_ARGUMENT')
  })
})

describe('lookupPolicy: key order (postconf(5) smtp_tls_policy_maps, Postfix tls_policy_lookup)', () => {
  const t = parsePolicyTable(
    [
      'example.com secure',
      '.example.com verify',
      '.com may',
      '[mx.example.com] encrypt',
      '[mx.example.com]:587 fingerprint match=' + PIN,
      'example.net:2525 dane',
      '[192.0.2.1] none',
    ].join('\n'),
  )
  // [nexthop, expected level or undefined, why]
  const rows: Array<[string, string | undefined, string]> = [
    ['example.com', 'secure', 'exact key'],
    ['EXAMPLE.COM.', 'secure', 'case and one trailing dot'],
    ['mx1.example.com', 'verify', 'parent domain .example.com'],
    ['a.b.example.com', 'verify', 'parent domains recursively'],
    ['other.com', 'may', 'up to the top-level .com'],
    ['example.org', undefined, 'no match: default level'],
    ['[mx.example.com]', 'encrypt', 'bracketed next hop'],
    ['[mx.example.com]:25', 'encrypt', 'default port is not part of the key'],
    ['[mx.example.com]:587', 'fingerprint', 'non-default port is part of the key'],
    ['[mx.example.com]:465', undefined, 'bracketed key: exact only, no parent domain'],
    ['[a.example.com]', undefined, 'brackets: no parent-domain match'],
    ['example.net:2525', 'dane', 'domain with port, exact'],
    ['x.example.net:2525', undefined, 'domain with port: no parent-domain match'],
    ['[192.0.2.1]', 'none', 'address literal'],
  ]
  for (const [nexthop, level, why] of rows) {
    it(`${nexthop} → ${level ?? 'undefined'}: ${why}`, () => {
      assert.equal(lookupPolicy(t, nexthop)?.level, level)
    })
  }
  it('policyLookupKeys lists the keys in order', () => {
    assert.deepEqual(policyLookupKeys('a.b.example.com'), ['a.b.example.com', '.b.example.com', '.example.com', '.com'])
    // as written first (Postfix smtp(8) finds a "[host]:25" key for a "[host]:25" next hop: lab tafile-smtp), then without the default port
    assert.deepEqual(policyLookupKeys('[mx.example.com]:25'), ['[mx.example.com]:25', '[mx.example.com]'])
    assert.deepEqual(policyLookupKeys('[mx.example.com]:24', { defaultPort: 24 }), ['[mx.example.com]:24', '[mx.example.com]'])
    assert.deepEqual(policyLookupKeys('[mx.example.com]'), ['[mx.example.com]'])
    assert.deepEqual(policyLookupKeys('[mx.example.com]:587'), ['[mx.example.com]:587'])
  })
  it('the matching entry is named in the policy', () => {
    assert.deepEqual(lookupPolicy(t, 'mx1.example.com')?.source, { key: '.example.com', line: 2 })
  })
  it('rejects bad arguments with coded errors', () => {
    throwsCoded(() => lookupPolicy(t, ''), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => lookupPolicy({} as never, 'x'), 'ERR_INVALID_ARGUMENT')
  })
})

describe('protocolAllowed (postconf(5) smtp_tls_protocols)', () => {
  const p = (s: string) => lookupPolicy(parsePolicyTable(`x encrypt protocols=${s}`), 'x')!.protocols!
  const rows: Array<[string, string, boolean]> = [
    ['>=TLSv1.2', 'TLSv1.3', true],
    ['>=TLSv1.2', 'TLSv1.1', false],
    ['>=TLSv1:<=TLSv1.2', 'TLSv1.3', false],
    ['!SSLv2:!SSLv3', 'TLSv1', true],
    ['!SSLv2:!SSLv3', 'SSLv3', false],
    ['TLSv1.2:TLSv1.3', 'TLSv1.1', false],
    ['TLSv1.2:TLSv1.3', 'TLSv1.3', true],
    ['>=TLSv1.2:!TLSv1.3', 'TLSv1.3', false],
    ['>=TLSv1.2', 'TLSv9', false],
  ]
  for (const [spec, v, ok] of rows) it(`${spec} ${ok ? 'allows' : 'refuses'} ${v}`, () => assert.equal(protocolAllowed(p(spec), v), ok))
})

describe('parsePolicyTable: large inputs (issue 10 §3)', () => {
  it('a match= list of 200,000 names gives a result, not a stack overflow (no push(...spread))', () => {
    const t = parsePolicyTable('a verify match=' + 'a:'.repeat(2e5))
    const m = lookupPolicy(t, 'a')?.match
    assert.equal(m?.length, 2e5)
    assert.ok(m?.every((x) => x === 'a'))
  })
  it('a fingerprint match= list of 100,000 pins gives a result', () => {
    const t = parsePolicyTable(`a fingerprint match=${`${PIN2}|`.repeat(1e5)}`)
    assert.equal(lookupPolicy(t, 'a')?.match?.length, 1e5)
  })
  it('200,000 attributes at level none: no stack overflow, warnings bounded', () => {
    const t = parsePolicyTable('a none ' + 'x '.repeat(2e5))
    // 1,000 listed (the bound), then one that counts the rest
    assert.equal(t.warnings.length, 1001)
    assert.deepEqual(t.warnings[999], { line: 1, column: 8 + 2 * 999, message: 'a: ignoring attribute "x" with TLS disabled' })
    assert.equal(t.warnings[1000]!.message, `${2e5 - 1000} more warnings not listed (at most 1000 are kept)`)
  })
  it('100,000 continuation lines: every listed warning names its own physical line', () => {
    const n = 1e5
    const t = parsePolicyTable('a none\n' + ' x\n'.repeat(n))
    assert.equal(t.warnings.length, 1001)
    assert.equal(t.warnings[1000]!.line, n + 1, 'the count names the last physical line')
    for (let i = 0; i < 1000; i++) {
      const w = t.warnings[i]!
      if (w.line !== i + 2 || w.column !== 2)
        assert.fail(`warning ${i} at line ${w.line} column ${w.column}, expected line ${i + 2} column 2`)
    }
  })
  it('a defect on the last of 100,000 continuation lines is placed exactly', () => {
    const e = throwsCoded(() => parsePolicyTable('a verify\n' + ' match=x\n'.repeat(1e5) + ' bogus=1\n'), 'ERR_POLICY_SYNTAX')
    assert.equal(e.line, 1e5 + 2)
    assert.equal(e.column, 2)
  })
})

describe('parsePolicyTable: level none with a later tokenizer defect', () => {
  it('the entry is defective and no "ignoring attribute" warning is kept for it', () => {
    throwsCoded(() => parsePolicyTable('a none x {y'), 'ERR_POLICY_SYNTAX', /missing "\}"/)
    const t = parsePolicyTable('a none x {y\nb none z', { onError: 'defer' })
    assert.equal(t.errors.length, 1)
    assert.ok(t.entries.get('a')?.policy.defect)
    assert.deepEqual(
      t.warnings.map((w) => w.message),
      ['b: ignoring attribute "z" with TLS disabled'],
    )
  })
})

describe('attributes this library parses but does not act on are warned about, and only those (issue 17)', () => {
  const rows: Array<[string, RegExp | undefined]> = [
    ['example.com dane enable_rpk=yes', /enable_rpk=yes" has no effect/],
    ['example.com dane enable_rpk=no', undefined],
    ['example.com encrypt connection_reuse=yes', /connection_reuse=yes" has no effect/],
    ['example.com encrypt connection_reuse=no', undefined],
    ['example.com secure tafile=/etc/postfix/anchors.pem', undefined], // connect() loads it
  ]
  for (const [line, want] of rows) {
    it(line, () => {
      const t = parsePolicyTable(line + '\n')
      if (want === undefined) assert.equal(t.warnings.length, 0, JSON.stringify(t.warnings))
      else {
        assert.equal(t.warnings.length, 1, JSON.stringify(t.warnings))
        assert.match(t.warnings[0]!.message, want)
        assert.equal(t.warnings[0]!.line, 1)
      }
    })
  }
})

describe('warnings are bounded (issue 10 §3: a table with millions of ignored attributes keeps no million objects)', () => {
  it('at most 1,000 warnings are listed, then one says how many more', () => {
    const t = parsePolicyTable('a none ' + 'x=1 '.repeat(5000) + '\nb none y=1\n')
    assert.equal(t.warnings.length, 1001)
    assert.match(t.warnings[1000]!.message, /^4001 more warnings not listed \(at most 1000 are kept\)$/)
    assert.equal(t.warnings[1000]!.line, 2)
    assert.equal(t.entries.size, 2)
  })
  it('below the bound every warning is listed', () => {
    assert.equal(parsePolicyTable('a none ' + 'x=1 '.repeat(999) + '\n').warnings.length, 999)
  })
})
