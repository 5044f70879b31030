// MTA-STS record and policy parsing (RFC 8461 §3.1, §3.2): RFC examples and good/bad tables in the
// manner of mox mtasts/parse_test.go (the reason for each bad case is its comment).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatMtaStsPolicy, formatMtaStsRecord, parseMtaStsPolicy, parseMtaStsRecord } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

describe('parseMtaStsRecord (RFC 8461 §3.1)', () => {
  it('parses the RFC 8461 §3.1 example', () => {
    assert.deepEqual(parseMtaStsRecord('v=STSv1; id=20160831085700Z;'), { version: 'STSv1', id: '20160831085700Z', extensions: [] })
  })
  const good: [string, string, [string, string][]][] = [
    ['v=STSv1; \t id=20160831085700Z  \t;', '20160831085700Z', []], // WSP around the delimiter
    ['v=STSv1; id=a', 'a', []], // no trailing delimiter
    ['v=STSv1 ;id=a', 'a', []], // WSP before ";"
    [
      'v=STSv1; id=a; more=a; ext=2',
      'a',
      [
        ['more', 'a'],
        ['ext', '2'],
      ],
    ], // extensions kept in order
    ['v=STSv1; id=abcdefghijklmnopqrstuvwxyz012345', 'abcdefghijklmnopqrstuvwxyz012345', []], // 32 characters
    ['v=STSv1; ext=1; id=b', 'b', [['ext', '1']]], // id after an extension
    ['v=STSv1; id=a; id=b', 'a', []], // the first id wins
  ]
  for (const [txt, id, ext] of good) {
    it(`accepts ${JSON.stringify(txt)}`, () => {
      const r = parseMtaStsRecord(txt)
      assert.equal(r.id, id)
      assert.deepEqual(
        r.extensions.map((e) => [e.name, e.value]),
        ext,
      )
    })
  }
  const bad: [string, string][] = [
    ['v=STSv0', 'other version'],
    ['v=STSv10', 'version followed by a digit'],
    ['v=STSv2', 'other version'],
    ['V=STSv1; id=a', 'version is case-sensitive (%s)'],
    [' v=STSv1; id=a', 'leading space'],
    ['v=STSv1', 'missing id'],
    ['v=STSv1;', 'missing id'],
    ['v=STSv1; ext=1', 'missing id'],
    ['v=STSv1; id=', 'empty id'],
    ['v=STSv1; id=012345678901234567890123456789012', 'id of 33 characters'],
    ['v=STSv1; id=test-123', 'id with a hyphen'],
    ['v=STSv1; id=a; more=', 'empty extension value'],
    ['v=STSv1; id=a; a12345678901234567890123456789012=1', 'extension name of 33 characters'],
    ['v=STSv1; id=a; 1%=a', 'invalid extension name'],
    ['v=STSv1; id=a; test==', 'extension value with "="'],
    ['v=STSv1; id=a;;', 'two delimiters'],
    ['v=STSv1; id=a b', 'space inside the id'],
    ['v=STSv1 id=a', 'no delimiter'],
  ]
  for (const [txt, why] of bad) {
    it(`rejects ${JSON.stringify(txt)} (${why})`, () => {
      throwsCoded(() => parseMtaStsRecord(txt), 'ERR_MTA_STS_SYNTAX')
    })
  }
  it('takes the TXT RRset: other records are discarded, none is undefined, two is an error', () => {
    assert.equal(parseMtaStsRecord(['v=spf1 -all', 'v=STSv1; id=x'])?.id, 'x')
    assert.equal(parseMtaStsRecord(['v=spf1 -all']), undefined)
    assert.equal(parseMtaStsRecord([]), undefined)
    throwsCoded(() => parseMtaStsRecord(['v=STSv1; id=a', 'v=STSv1; id=b']), 'ERR_MTA_STS_SYNTAX', /2 records/)
    // a string beginning with v=STSv1 that is invalid counts, and makes the RRset invalid
    throwsCoded(() => parseMtaStsRecord(['v=STSv10; id=a']), 'ERR_MTA_STS_SYNTAX')
  })
  it('refuses wrong JS types with a coded error', () => {
    for (const v of [undefined, null, 42, {}, [1]]) throwsCoded(() => parseMtaStsRecord(v as never), 'ERR_INVALID_ARGUMENT')
  })
  it('formats canonically', () => {
    assert.equal(formatMtaStsRecord(parseMtaStsRecord('v=STSv1;id=a ;  more=a;ext=2;')), 'v=STSv1; id=a; more=a; ext=2')
  })
})

const RFC_POLICY = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n'

describe('parseMtaStsPolicy (RFC 8461 §3.2)', () => {
  it('parses the RFC 8461 §3.2 example', () => {
    const p = parseMtaStsPolicy(RFC_POLICY)
    assert.deepEqual(p, {
      version: 'STSv1',
      mode: 'enforce',
      maxAge: 604800,
      mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'],
      extensions: [],
      lines: RFC_POLICY.trim().split('\n'),
    })
  })
  it('accepts CRLF, WSP after the colon and at the end of a line, and extensions', () => {
    const p = parseMtaStsPolicy('version:STSv1\r\nmode:\tenforce\r\nmx:  \t\t *.Example.com \r\nmax_age: 1\r\nmore:ext e  ns ion')
    assert.equal(p.mode, 'enforce')
    assert.equal(p.maxAge, 1)
    assert.deepEqual(p.mx, ['*.example.com'])
    assert.deepEqual(p.extensions, [{ name: 'more', value: 'ext e  ns ion' }])
  })
  it('mode none needs no mx; max_age 0 and 31557600 are the bounds', () => {
    assert.deepEqual(parseMtaStsPolicy('version: STSv1\nmode: none\nmax_age: 0\n').mx, [])
    assert.equal(parseMtaStsPolicy('version: STSv1\nmode: none\nmax_age: 31557600\n').maxAge, 31557600)
  })
  it('the first occurrence of a key wins (mx accumulates)', () => {
    const p = parseMtaStsPolicy('version: STSv1\nmode: testing\nmode: enforce\nmax_age: 5\nmax_age: 9\nmx: a.example\nmx: b.example\n')
    assert.equal(p.mode, 'testing')
    assert.equal(p.maxAge, 5)
    assert.deepEqual(p.mx, ['a.example', 'b.example'])
  })
  it('ignores unknown keys and empty lines', () => {
    const p = parseMtaStsPolicy('\nversion: STSv1\n\nfuture_key: anything goes\nmode: none\nmax_age: 10\n\n')
    assert.equal(p.mode, 'none')
    assert.deepEqual(p.extensions, [{ name: 'future_key', value: 'anything goes' }])
  })
  const bad: [string, string][] = [
    ['', 'missing version'],
    ['version:STSv0\nmode:none\nmax_age:0', 'bad version'],
    ['version:STSv10\nmode:none\nmax_age:0', 'bad version'],
    ['version:STSv1\nmax_age:0\nmx:example.com', 'missing mode'],
    ['version:STSv1\nmode:none', 'missing max_age'],
    ['version:STSv1\nmax_age:0\nmode:enforce', 'enforce without mx'],
    ['version:STSv1\nmax_age:0\nmode:testing', 'testing without mx'],
    ['max_age:0\nmode:none', 'missing version'],
    ['version:STSv1\nmode:none\nmax_age:01234567890', 'max_age of 11 digits'],
    ['version:STSv1\nmode:none\nmax_age:31557601', 'max_age above 31557600'],
    ['version:STSv1\nmode:bad\nmax_age:1', 'bad mode'],
    ['version:STSv1\nmode:Enforce\nmax_age:1\nmx:a.example', 'mode is case-sensitive'],
    ['version:STSv1\nmode:none\nmax_age:a', 'max_age not digits'],
    ['version:STSv1\nmode:none\nmax_age:-1', 'negative max_age'],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:', 'empty mx'],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:*.*.example', 'two wildcards'],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:**.example', 'partial wildcard'],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:mx*.example', 'partial wildcard'],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:test.example-', 'label ending in a hyphen'],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:under_score.example', 'underscore in mx'],
    ['version:STSv1\nmode:enforce\nmax_age:0\nmx:a..example', 'empty label'],
    ['version:STSv1\nmode:none\nmax_age:0\next:', 'empty extension'],
    ['version:STSv1\nmode:none\nmax_age:0\na12345678901234567890123456789012:123', 'extension name of 33 characters'],
    ['version:STSv1\nmode:none\nmax_age:0\n_bad:test', 'extension name starting with "_"'],
    ['version:STSv1\nmode:none\nmax_age:0\nmx: møx.example', 'U-label in mx (A-labels only)'],
    ['version:STSv1\nmode:none\nmax_age:0\nno colon here', 'line without a colon'],
    ['version:STSv1\nmode:none\nmax_age:0\next:a\u0000b', 'control character'],
    ['version:STSv1\nmode:none\nmax_age:0\next:a\tb', 'tab inside a value'],
    ['version:STSv1\rmode:none\rmax_age:0', 'CR alone is no line end'],
    ['version:STSv1\nmode:testing\nmode:bogus\nmax_age:0\nmx:a.example', 'a later invalid line still counts'],
  ]
  for (const [text, why] of bad) {
    it(`rejects ${JSON.stringify(text)} (${why})`, () => {
      throwsCoded(() => parseMtaStsPolicy(text), 'ERR_MTA_STS_SYNTAX')
    })
  }
  it('reports the line of the defect', () => {
    const e = throwsCoded(() => parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: bad_name\nmax_age: 1'), 'ERR_MTA_STS_SYNTAX')
    assert.equal(e.line, 3)
  })
  it('refuses a body over 64 KiB and wrong JS types', () => {
    throwsCoded(() => parseMtaStsPolicy(RFC_POLICY + `x: ${'a'.repeat(65536)}\n`), 'ERR_MTA_STS_SYNTAX', /longer/)
    for (const v of [undefined, null, 1, [], new Uint8Array(2)]) throwsCoded(() => parseMtaStsPolicy(v as never), 'ERR_INVALID_ARGUMENT')
  })
  it('formats a policy that parses back to the same fields', () => {
    const p = parseMtaStsPolicy(RFC_POLICY + 'ext: v a l\n')
    const q = parseMtaStsPolicy(formatMtaStsPolicy(p))
    assert.deepEqual({ ...q, lines: [] }, { ...p, lines: [] })
  })
})
