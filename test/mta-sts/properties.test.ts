// fast-check properties of the MTA-STS and TLS-RPT record and policy parsers (DESIGN.md §7): nothing
// but a coded error on any input, and parse(format(x)) round-trips.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  formatMtaStsPolicy,
  formatMtaStsRecord,
  formatTlsRptRecord,
  mtaStsMatchesMx,
  mtaStsMatchingPattern,
  parseMtaStsPolicy,
  parseMtaStsRecord,
  parseTlsRptRecord,
} from '../../src/index.js'
import { onlyCoded } from '../helpers/assert-coded.js'

const alnum = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'), minLength: 1 })
const extName = fc
  .tuple(
    alnum.map((s) => s[0]!),
    fc.string({ unit: fc.constantFrom(...'ab9_-.Z'), maxLength: 31 }),
  )
  .map(([a, b]) => a + b)
const extValue = fc.string({ unit: fc.constantFrom(...'abc123!#$%&:<>?@[]^_`{|}~xyz'), minLength: 1, maxLength: 20 })
const label = fc
  .tuple(fc.constantFrom(...'abcxyz019'), fc.string({ unit: fc.constantFrom(...'abz09-'), maxLength: 10 }), fc.constantFrom(...'az09'))
  .map(([a, b, c]) => a + b + c)
// the last label is alphabetic: a numeric one makes a WHATWG URL host an (invalid) IPv4 address
const domain = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('example', 'com', 'xn--p1ai'))
  .map(([l, tld]) => [...l, tld].join('.'))
const pieces = fc.constantFrom(
  'v=STSv1',
  'v=TLSRPTv1',
  'id=',
  'rua=',
  'mailto:a@b.example',
  'https://r.example/x',
  ';',
  ' ',
  '\t',
  '=',
  ',',
  'a',
  '%',
  '\n',
  'é',
  '\u0000',
)
const soup = fc.oneof(
  fc.string(),
  fc.array(pieces, { maxLength: 12 }).map((p) => p.join('')),
)

describe('MTA-STS / TLS-RPT parser properties', () => {
  it('the record parsers throw nothing but coded errors', () => {
    fc.assert(
      fc.property(soup, (s) => {
        onlyCoded(() => parseMtaStsRecord(s), ['ERR_MTA_STS_SYNTAX'])
        onlyCoded(() => parseTlsRptRecord(s), ['ERR_TLSRPT_SYNTAX'])
        onlyCoded(() => parseMtaStsRecord([s, s.slice(1)]), ['ERR_MTA_STS_SYNTAX'])
        onlyCoded(() => parseTlsRptRecord([s]), ['ERR_TLSRPT_SYNTAX'])
      }),
      { numRuns: 2000 },
    )
  })
  it('any JS value gets a coded error, never a TypeError', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        onlyCoded(() => parseMtaStsRecord(v as never), ['ERR_MTA_STS_SYNTAX', 'ERR_INVALID_ARGUMENT'])
        onlyCoded(() => parseTlsRptRecord(v as never), ['ERR_TLSRPT_SYNTAX', 'ERR_INVALID_ARGUMENT'])
        onlyCoded(() => parseMtaStsPolicy(v as never), ['ERR_MTA_STS_SYNTAX', 'ERR_INVALID_ARGUMENT'])
        onlyCoded(() => mtaStsMatchesMx({ mx: ['*.example.com'] }, v as never), [])
      }),
    )
  })
  it('the policy parser throws nothing but coded errors', () => {
    const line = fc.oneof(
      fc.constantFrom('version: STSv1', 'mode: enforce', 'mode: none', 'max_age: 86400', 'mx: *.example.com', 'mx: a..b', 'x:', ''),
      fc.string(),
    )
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), fc.constantFrom('\n', '\r\n', '\r'), (lines, eol) => {
        onlyCoded(() => parseMtaStsPolicy(lines.join(eol)), ['ERR_MTA_STS_SYNTAX'])
      }),
      { numRuns: 2000 },
    )
  })
  it('MTA-STS record: parse(format(r)) round-trips', () => {
    fc.assert(
      fc.property(
        alnum.map((s) => s.slice(0, 32)),
        fc.array(fc.tuple(extName, extValue), { maxLength: 4 }),
        (id, ext) => {
          const ext2 = ext.filter(([n]) => n !== 'id').map(([name, value]) => ({ name, value }))
          const r = { version: 'STSv1' as const, id, extensions: ext2 }
          assert.deepEqual(parseMtaStsRecord(formatMtaStsRecord(r)), r)
        },
      ),
    )
  })
  it('MTA-STS policy: parse(format(p)) round-trips, with LF or CRLF', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('enforce', 'testing', 'none'),
        fc.integer({ min: 0, max: 31557600 }),
        fc.uniqueArray(
          fc.tuple(fc.boolean(), domain).map(([w, d]) => (w ? `*.${d}` : d)),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(fc.tuple(extName, extValue), { maxLength: 3 }),
        fc.boolean(),
        (mode, maxAge, mx, ext, crlf) => {
          const extensions = ext
            .filter(([n]) => !['version', 'mode', 'max_age', 'mx'].includes(n))
            .map(([name, value]) => ({ name, value }))
          const text = formatMtaStsPolicy({ mode, maxAge, mx, extensions })
          const p = parseMtaStsPolicy(crlf ? text.replace(/\n/g, '\r\n') : text)
          assert.deepEqual({ mode: p.mode, maxAge: p.maxAge, mx: p.mx, extensions: p.extensions }, { mode, maxAge, mx, extensions })
          for (const m of mx) if (!m.startsWith('*.')) assert.equal(mtaStsMatchesMx(p, m.toUpperCase()), true)
        },
      ),
    )
  })
  it('a wildcard pattern matches exactly one extra label', () => {
    fc.assert(
      fc.property(domain, fc.array(label, { minLength: 0, maxLength: 3 }), (d, extra) => {
        const host = [...extra, d].join('.')
        assert.equal(mtaStsMatchesMx({ mx: [`*.${d}`] }, host), extra.length === 1)
      }),
    )
  })
  it('a parsed policy (normalised patterns, compared as they are) answers exactly as the scan of a copy', () => {
    const pattern = fc.tuple(fc.boolean(), domain, fc.boolean(), fc.boolean()).map(([w, d, up, dot]) => {
      const p = w ? `*.${d}` : d
      return (up ? p.toUpperCase() : p) + (dot ? '.' : '')
    })
    const host = fc.oneof(
      domain,
      fc.tuple(label, domain).map(([l, d]) => `${l}.${d}`),
      fc.tuple(fc.array(label, { maxLength: 2 }), domain, fc.boolean(), fc.boolean()).map(([l, d, up, dot]) => {
        const h = [...l, d].join('.')
        return (up ? h.toUpperCase() : h) + (dot ? '.' : '')
      }),
      fc.constantFrom('', '.', '*.example', 'a..example', 'é.example', 'A B.example', 'xn--p1ai'),
    )
    // hosts made from the patterns: their base with 0-2 labels in front (some not host names), in either case
    const derived = fc.array(
      fc.tuple(fc.nat(), fc.array(fc.oneof(label, fc.constantFrom('a b', 'é', '*', 'A', '')), { maxLength: 2 }), fc.boolean()),
      { maxLength: 6 },
    )
    fc.assert(
      fc.property(
        fc.array(pattern, { minLength: 1, maxLength: 4 }),
        fc.array(host, { minLength: 1, maxLength: 6 }),
        derived,
        (mx, random, made) => {
          const hosts = [
            ...random,
            ...made.map(([i, l, up]) => {
              const h = [...l, mx[i % mx.length]!.replace(/^\*\./, '').replace(/\.$/, '')].join('.')
              return up ? h.toUpperCase() : h
            }),
          ]
          const p = parseMtaStsPolicy(`version: STSv1\nmode: enforce\n${mx.map((m) => `mx: ${m}`).join('\n')}\nmax_age: 1\n`)
          assert.ok(Object.isFrozen(p.mx))
          const copy = { mx: [...p.mx] } // no longer marked: matched by the scan
          for (const h of hosts) assert.equal(mtaStsMatchingPattern(p, h), mtaStsMatchingPattern(copy, h), `${JSON.stringify(p.mx)} ${h}`)
        },
      ),
    )
  })
  it('TLS-RPT record: parse(format(r)) round-trips', () => {
    const uri = fc.oneof(
      fc.tuple(label, domain).map(([l, d]) => `mailto:${l}@${d}`),
      fc.tuple(domain, label).map(([d, p]) => `https://${d}/${p}`),
    )
    fc.assert(
      fc.property(fc.array(uri, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(extName, extValue), { maxLength: 3 }), (rua, ext) => {
        const extensions = ext.filter(([n]) => n !== 'rua').map(([name, value]) => ({ name, value }))
        const r = { version: 'TLSRPTv1' as const, rua, extensions }
        assert.deepEqual(parseTlsRptRecord(formatTlsRptRecord(r)), r)
      }),
    )
  })
})
