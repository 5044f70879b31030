// Hostile names (issue 10 §2): a presented or reference name is a valid DNS name or no name at all.
// Nothing is cut at a URL delimiter, mapped to ASCII or repaired on the way to a comparison.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { domainToASCII } from 'node:url'
import fc from 'fast-check'
import {
  certificateDnsNames,
  createTlsaRecord,
  lookupPolicy,
  matchCertificateName,
  parsePolicyTable,
  policyLookupKeys,
  verifyDane,
} from '../../src/index.js'
import { sliceCertificate } from '../../src/x509/der.js'
import { readExtensions } from '../../src/x509/extensions.js'
import { matchPresentedNames, normalizeDnsName, normalizePresentedName, presentedNames } from '../../src/x509/names.js'
import { punycodeEncode } from '../../src/x509/punycode.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { makeCert } from '../helpers/openssl.js'

/** Every character the WHATWG host parser cuts at, decodes, strips or refuses, and other non-host characters. */
const DELIMITERS = [
  '/',
  '?',
  '#',
  '\\',
  '@',
  ':',
  '%',
  '%2f',
  '%2e',
  '[',
  ']',
  ' ',
  '\t',
  '\n',
  '\r',
  '\0',
  '\x7f',
  '\u00a0',
  '\u3002',
  '\uff0e',
  '\uff0f',
]
/** Non-ASCII letters that send a name down the IDN path. */
const LETTERS = ['ä', 'ß', 'ж', '例', 'Ü']

describe('names with URL delimiters and non-ASCII letters are no names (issue 10 §2)', () => {
  for (const d of DELIMITERS) {
    for (const u of LETTERS) {
      const shapes = [
        `mx.victim.test${d}${u}.attacker.test`, // cut after the victim name
        `mx.victim.test${d}${u}`,
        `${u}${d}mx.victim.test`, // userinfo before '@'
        `${u}.mx.victim.test${d}`,
        `mx${d}.victim.test.${u}`,
      ]
      it(`${JSON.stringify(d)} with ${u}`, () => {
        for (const s of shapes) {
          assert.equal(normalizeDnsName(s), undefined, JSON.stringify(s))
          assert.equal(normalizePresentedName(s), undefined, JSON.stringify(s))
          // as a presented name (the SAN of the issue) and as a reference name (a match= value, an MX name)
          assert.equal(matchPresentedNames([s], ['mx.victim.test', `${u}.mx.victim.test`, '.victim.test']), undefined, JSON.stringify(s))
          assert.equal(matchPresentedNames(['mx.victim.test', '*.victim.test'], [s, '.' + s]), undefined, JSON.stringify(s))
        }
      })
    }
  }
  it('empty and dot-only labels, with and without non-ASCII letters', () => {
    for (const u of LETTERS) {
      for (const s of ['.', '..', `${u}..example`, `.${u}.example`, `${u}.example..`, `..${u}`, `${u}. .example`, `${u}.-.example`]) {
        assert.equal(normalizeDnsName(s), undefined, JSON.stringify(s))
        assert.equal(matchPresentedNames(['x.example'], [s]), undefined, JSON.stringify(s))
      }
    }
  })
  it('a delimiter in a SAN of a real certificate: no name, no match', () => {
    const leaf = makeCert({ dns: ['mx.victim.test/ä.attacker.test', 'mx.victim.test?ä.attacker.test'] })
    assert.equal(matchCertificateName(leaf.der, ['mx.victim.test']), undefined)
    assert.equal(matchCertificateName(leaf.der, ['.victim.test']), undefined)
  })
})

describe('valid names: LDH labels, lengths, wildcards, U-labels label by label', () => {
  it('label and name lengths (RFC 1035 §2.3.4)', () => {
    const l63 = 'a'.repeat(63)
    assert.equal(normalizeDnsName(`${l63}.example`), `${l63}.example`)
    assert.equal(normalizeDnsName(`${l63}a.example`), undefined)
    const n253 = [l63, l63, l63, 'a'.repeat(61)].join('.')
    assert.equal(n253.length, 253)
    assert.equal(normalizeDnsName(n253), n253)
    assert.equal(normalizeDnsName(n253 + '.'), n253, 'one final dot is the same name')
    assert.equal(normalizeDnsName(n253 + 'a'), undefined)
    // the A-label counts: 20 scattered CJK code points, more than 63 octets once encoded
    const long = Array.from({ length: 20 }, (_, i) => String.fromCodePoint(0x4e00 + i * 397)).join('')
    assert.ok(punycodeEncode(long).length + 4 > 63)
    assert.equal(normalizeDnsName(`${long}.example`), undefined)
    assert.equal(normalizeDnsName(`${'ä'.repeat(3)}.example`), `xn--${punycodeEncode('äää')}.example`)
  })
  it('hyphens only inside a label; underscore tolerated', () => {
    assert.equal(normalizeDnsName('a-b.example'), 'a-b.example')
    assert.equal(normalizeDnsName('-a.example'), undefined)
    assert.equal(normalizeDnsName('a-.example'), undefined)
    assert.equal(normalizeDnsName('-ä.example'), undefined)
    assert.equal(normalizeDnsName('ab--ä.example'), undefined, 'hyphens in positions 3-4 of a U-label (RFC 5891 §4.2.3.1)')
    assert.equal(normalizeDnsName('_25._tcp.example'), '_25._tcp.example')
    assert.equal(normalizeDnsName('ä_.example'), undefined, 'no underscore in a U-label')
  })
  it('wildcards only as the entire leftmost label of a presented name, with two labels after it', () => {
    assert.equal(normalizePresentedName('*.Example.COM'), '*.example.com')
    assert.equal(normalizePresentedName('mx.example.com.'), undefined, 'no final dot in a presented name')
    assert.equal(normalizePresentedName('*.example.com.'), undefined, 'no final dot in a presented name')
    for (const s of ['*.com', '*', 'a*.example.com', '*a.example.com', 'a.*.example.com', '*.*.example.com', '**.example.com']) {
      assert.equal(normalizePresentedName(s), undefined, s)
    }
    assert.equal(normalizeDnsName('*.example.com'), undefined, 'a reference is never a pattern')
  })
  it('presented names are ASCII (RFC 5280 §7.2): a U-label or a compatibility character is no presented name', () => {
    for (const s of ['bücher.example', 'ＭＸ.victim.test', 'ᴋ.victim.test', 'mx.victim.tеst' /* Cyrillic е */]) {
      assert.equal(normalizePresentedName(s), undefined, s)
      assert.equal(matchPresentedNames([s], ['mx.victim.test', 'xn--bcher-kva.example']), undefined, s)
    }
  })
  it('reference U-labels: compatibility characters and characters that map to ASCII are refused, not mapped', () => {
    // UTS 46 would map these to mx / k / a dot; IDNA2008 disallows them (RFC 5892 §2.7).
    for (const s of [
      'ＭＸ.victim.test',
      '\u212a.victim.test' /* Kelvin sign → k */,
      '\u212aä.victim.test' /* Kelvin sign next to a real U-label */,
      'ﬁ.example' /* ligature */,
      'mx\u3002victim.test',
      'a\u0301\u0000.example',
    ]) {
      assert.equal(normalizeDnsName(s), undefined, JSON.stringify(s))
    }
    assert.equal(normalizeDnsName('\u0301a.example'), undefined, 'a U-label cannot start with a combining mark')
  })
  it('U-labels become A-labels label by label (NFC, lower case) and agree with the WHATWG host parser', () => {
    const vectors: Array<[string, string]> = [
      ['bücher.example', 'xn--bcher-kva.example'],
      ['BÜCHER.Example', 'xn--bcher-kva.example'],
      ['bu\u0308cher.example', 'xn--bcher-kva.example'], // NFD input, NFC before encoding
      ['ß.example', 'xn--zca.example'],
      ['mx.bücher.example', 'mx.xn--bcher-kva.example'],
      ['例え.テスト', 'xn--r8jz45g.xn--zckzah'],
      ['русский.рф', 'xn--h1acbxfam.xn--p1ai'],
    ]
    for (const [u, a] of vectors) {
      assert.equal(normalizeDnsName(u), a, u)
      assert.equal(domainToASCII(u), a, `WHATWG agrees on ${u}`)
    }
    assert.equal(normalizeDnsName('mx.bücher.example.'), 'mx.xn--bcher-kva.example', 'one final dot removed')
  })
  it('Punycode: RFC 3492 §7.1 sample strings', () => {
    // (A) Arabic (Egyptian), (B) Chinese (simplified), (L) 3<nen>B<gumi><kinpachi><sensei>, (S) -> $1.00 <-
    assert.equal(
      punycodeEncode('\u0644\u064a\u0647\u0645\u0627\u0628\u062a\u0643\u0644\u0645\u0648\u0634\u0639\u0631\u0628\u064a\u061f'),
      'egbpdaj6bu4bxfgehfvwxn',
    )
    assert.equal(punycodeEncode('\u4ed6\u4eec\u4e3a\u4ec0\u4e48\u4e0d\u8bf4\u4e2d\u6587'), 'ihqwcrb4cv8a8dqg056pqjye')
    assert.equal(punycodeEncode('3\u5e74B\u7d44\u91d1\u516b\u5148\u751f'), '3B-ww4c5e180e575a65lsy2b')
    assert.equal(punycodeEncode('-> $1.00 <-'), '-> $1.00 <--')
  })
  it('property: the output is always LDH (or *.) labels of 1-63 octets, at most 253 in all', () => {
    const ch = fc.constantFrom(
      'a',
      'Z',
      '0',
      '-',
      '_',
      '.',
      '*',
      'ä',
      'ß',
      '例',
      '/',
      '?',
      '#',
      '\\',
      '@',
      ':',
      '%',
      ' ',
      '\0',
      '\u0301',
      'Ｍ',
      '\u3002',
    )
    fc.assert(
      fc.property(fc.array(ch, { maxLength: 40 }), (chars) => {
        const s = chars.join('')
        for (const out of [normalizeDnsName(s), normalizePresentedName(s)]) {
          if (out === undefined) continue
          assert.ok(out.length <= 253, out)
          assert.match(out, /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/)
          for (const l of out.split('.')) assert.ok(l.length >= 1 && l.length <= 63)
          if (/[/?#\\@:%\s\0]/.test(s)) assert.fail(`a name with a delimiter was accepted: ${JSON.stringify(s)} → ${out}`)
        }
      }),
      { numRuns: 2000 },
    )
  })
  it('property: single U-labels of letters agree with the WHATWG host parser (domainToASCII)', () => {
    const letter = fc.constantFrom('a', 'q', '7', 'ä', 'ö', 'ñ', 'ç', 'é', 'ж', 'я', 'λ', '例', 'テ', 'ก', '한')
    fc.assert(
      fc.property(fc.array(letter, { minLength: 1, maxLength: 20 }), (chars) => {
        const s = chars.join('') + '.example'
        assert.equal(normalizeDnsName(s) ?? '', domainToASCII(s), s)
      }),
      { numRuns: 500 },
    )
  })
})

describe('CN-IDs that OpenSSL exempts from name constraints are no names (RFC 6125 §6.4.4, v3_ncons.c cn2dnsid)', () => {
  for (const cn of [
    'mx.victim.test.',
    '*.victim.test',
    'bücher.victim.test',
    'ＭＸ.victim.test',
    'victimhost',
    'a.-b.victim.test',
    '.mx.victim.test',
  ]) {
    it(`CN=${cn}`, () => {
      const c = makeCert({ subject: `/CN=${cn}`, utf8: true })
      assert.deepEqual(certificateDnsNames(c.der), [])
      assert.equal(
        matchCertificateName(c.der, ['mx.victim.test', 'xn--bcher-kva.victim.test', 'bücher.victim.test', 'victimhost', '.victim.test']),
        undefined,
      )
    })
  }
  it('a plain CN still names the host', () => {
    const c = makeCert({ subject: '/CN=MX.victim.test' })
    assert.equal(matchCertificateName(c.der, ['mx.victim.test']), 'mx.victim.test')
  })
})

describe('DANE-TA(2): a name-constrained trust anchor and a hostile SAN', () => {
  const ca = makeCert({ subject: '/CN=NC TA', ca: true, ext: ['nameConstraints=critical,permitted;DNS:attacker.test'] })
  const record = createTlsaRecord(ca.der, { usage: 2, selector: 0, matchingType: 1 })
  it('the leaf is within the constraints by its raw bytes but names nothing: ERR_DANE_NAME_MISMATCH', () => {
    for (const d of ['/', '?']) {
      const leaf = makeCert({ subject: '/CN=x', dns: [`mx.victim.test${d}ä.attacker.test`], issuer: ca })
      const r = verifyDane({ records: [record], chain: [leaf.der, ca.der], names: ['mx.victim.test'] })
      assert.equal(r.ok, false, d)
      assert.equal(!r.ok && r.code, 'ERR_DANE_NAME_MISMATCH', d)
    }
  })
  it('a CN-only leaf with CN=*.victim.test or CN=mx.victim.test. does not authenticate mx.victim.test', () => {
    for (const cn of ['*.victim.test', 'mx.victim.test.']) {
      const leaf = makeCert({ subject: `/CN=${cn}`, issuer: ca })
      const r = verifyDane({ records: [record], chain: [leaf.der, ca.der], names: ['mx.victim.test'] })
      assert.equal(r.ok, false, cn)
    }
  })
  it('control: a leaf inside the constraints verifies', () => {
    const leaf = makeCert({ subject: '/CN=x', dns: ['mx.attacker.test'], issuer: ca })
    const r = verifyDane({ records: [record], chain: [leaf.der, ca.der], names: ['mx.attacker.test'] })
    assert.equal(r.ok, true, JSON.stringify(r))
  })
})

describe('policy tables and next hops use the same name check', () => {
  it('an IDN key and an IDN next hop meet as A-labels', () => {
    const t = parsePolicyTable('bücher.example secure\n.mÜnchen.example verify\n[xn--bcher-kva.example]:587 encrypt')
    assert.equal(lookupPolicy(t, 'xn--bcher-kva.example')?.level, 'secure')
    assert.equal(lookupPolicy(t, 'BÜCHER.example')?.level, 'secure')
    assert.equal(lookupPolicy(t, 'mx.xn--mnchen-3ya.example')?.level, 'verify')
    assert.equal(lookupPolicy(t, '[bücher.example]:587')?.level, 'encrypt')
    assert.deepEqual(policyLookupKeys('mx.Bücher.example'), ['mx.xn--bcher-kva.example', '.xn--bcher-kva.example', '.example'])
  })
  it('a next hop with a delimiter is not cut to a listed domain', () => {
    const t = parsePolicyTable('mx.victim.test secure\n.victim.test secure')
    for (const d of ['/', '?', '#', '\\', '@']) {
      assert.equal(lookupPolicy(t, `mx.victim.test${d}ä.attacker.test`), undefined, d)
      assert.deepEqual(policyLookupKeys(`mx.victim.test${d}ä.attacker.test`), [`mx.victim.test${d}ä.attacker.test`])
    }
  })
  it('match= names are normalised; one that is no DNS name is a defect (the entry defers)', () => {
    const t = parsePolicyTable('example.com secure match=nexthop:Bücher.example:.MÜNCHEN.example')
    assert.deepEqual(t.entries.get('example.com')?.policy.match, ['nexthop', 'xn--bcher-kva.example', '.xn--mnchen-3ya.example'])
    for (const d of ['/', '?', '#', '\\', '@', '%']) {
      const bad = parsePolicyTable(`example.com secure match=nexthop:mx.victim.test${d}ä.attacker.test`, { onError: 'defer' })
      assert.equal(bad.entries.get('example.com')?.policy.defect?.code, 'ERR_POLICY_SYNTAX', d)
    }
    assert.equal(
      parsePolicyTable('example.com verify match=*.example.com', { onError: 'defer' }).entries.get('example.com')?.policy.defect?.code,
      'ERR_POLICY_SYNTAX',
    )
  })
})

describe('argument types (issue 10 §3): ERR_INVALID_ARGUMENT, never a TypeError', () => {
  const leaf = makeCert({ dns: ['mx.example.com'] })
  const bad: unknown[] = [null, undefined, 42, 'mx.example.com', {}, [1, 2]]
  it('certificateDnsNames, matchCertificateName', () => {
    for (const b of bad) {
      throwsCoded(() => certificateDnsNames(b as Uint8Array), 'ERR_INVALID_ARGUMENT')
      throwsCoded(() => matchCertificateName(b as Uint8Array, ['mx.example.com']), 'ERR_INVALID_ARGUMENT')
    }
    for (const b of [null, undefined, 'mx.example.com', [null], [1]] as unknown[]) {
      throwsCoded(() => matchCertificateName(leaf.der, b as unknown as string[]), 'ERR_INVALID_ARGUMENT')
    }
  })
  it('normalizeDnsName, normalizePresentedName, matchPresentedNames, presentedNames', () => {
    for (const b of [null, undefined, 42, {}, ['a']]) {
      throwsCoded(() => normalizeDnsName(b as string), 'ERR_INVALID_ARGUMENT')
      throwsCoded(() => normalizePresentedName(b as string), 'ERR_INVALID_ARGUMENT')
    }
    for (const b of [null, undefined, 42, {}, 'a.example']) {
      throwsCoded(() => matchPresentedNames(b as string[], ['a.example']), 'ERR_INVALID_ARGUMENT')
    }
    throwsCoded(() => matchPresentedNames([null as unknown as string], ['a.example']), 'ERR_INVALID_ARGUMENT')
    const s = sliceCertificate(leaf.der)
    throwsCoded(() => presentedNames(null as unknown as Uint8Array, s, readExtensions(leaf.der, s)), 'ERR_INVALID_ARGUMENT')
  })
})
