// The TLS-RPT attributes of a socketmap answer (profile `tlsrpt`, Postfix ≥ 3.10, TLSRPT_README):
// `policy_type=sts policy_domain=… { policy_string = … }… mx_host_pattern=…` after an MTA-STS OK answer,
// none after a DANE answer (Postfix reports DANE itself), never an injected attribute, never a changed
// policy, and never a reply over socketmap_max_reply_size (100,000 bytes).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  parseSocketmapKey,
  parseTlsaRecord,
  socketmapAnswer,
  SOCKETMAP_MAX_REPLY,
  type SmtpTlsError,
  type DestinationFacts,
  type SocketmapAnswerInput,
  type SocketmapKey,
  type SocketmapProfile,
} from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

const key = parseSocketmapKey('example.com') as SocketmapKey
const rpt: SocketmapProfile = { dane: true, sts: true, tlsrpt: true }
const rptMay: SocketmapProfile = { dane: false, sts: true, testing: 'may', tlsrpt: true }
const enforce = { policy: { mode: 'enforce' as const, mx: ['mx1.example.com', '*.example.net'], maxAge: 86400 } }
const ATTRS =
  ' policy_type=sts policy_domain=example.com { policy_string = version: STSv1 } { policy_string = mode: enforce }' +
  ' { policy_string = mx: mx1.example.com } { policy_string = mx: *.example.net } { policy_string = max_age: 86400 }' +
  ' mx_host_pattern=mx1.example.com mx_host_pattern=*.example.net'
const POLICY = 'OK secure match=mx1.example.com:.example.net servername=hostname'

function noDane(): DestinationFacts {
  return {
    domain: 'example.com',
    port: 25,
    mxLookup: true,
    status: 'ok',
    mxSecure: false,
    nullMx: false,
    implicitMx: false,
    canonicalDomain: 'example.com',
    cnames: [],
    mx: [],
  }
}
function daneOnly(): DestinationFacts {
  const usable = parseTlsaRecord('3 1 1 ' + 'ab'.repeat(32))
  const f = noDane()
  f.mxSecure = true
  f.mx = [
    {
      host: 'mx1.example.com',
      preference: 10,
      canonicalHost: 'mx1.example.com',
      cnames: [],
      addresses: [{ address: '192.0.2.1', family: 4 }],
      addressSecure: true,
      tlsa: {
        status: 'secure',
        records: [usable],
        qname: '_25._tcp.mx1.example.com',
        base: 'mx1.example.com',
        candidates: ['mx1.example.com'],
        cnames: [],
        ttl: 3600,
      },
      referenceNames: ['mx1.example.com'],
      usable: true,
    },
  ]
  return f
}

/**
 * A policy entry split the way Postfix's smtp_tls_policy.c reads it (written from its documented
 * behaviour): tokens separated by space, tab, CR, LF or comma, `{…}` kept whole (nesting counted);
 * a braced token loses its braces and surrounding whitespace, whitespace inside becomes a space;
 * then `name=value`, both trimmed. Throws where Postfix would log "malformed attribute/value pair".
 */
function postfixAttributes(entry: string): { level: string; attrs: [string, string][] } {
  const SEP = ' \t\r\n,'
  const tokens: string[] = []
  let i = 0
  while (i < entry.length) {
    while (i < entry.length && SEP.includes(entry[i] as string)) i++
    if (i >= entry.length) break
    const start = i
    let depth = 0
    while (i < entry.length && (depth > 0 || !SEP.includes(entry[i] as string))) {
      if (entry[i] === '{') depth++
      else if (entry[i] === '}' && depth > 0) depth--
      i++
    }
    if (depth !== 0) throw new Error(`unbalanced braces in ${JSON.stringify(entry.slice(start))}`)
    tokens.push(entry.slice(start, i))
  }
  const [level, ...rest] = tokens
  const attrs: [string, string][] = []
  for (let t of rest) {
    if (t.startsWith('{')) {
      if (!t.endsWith('}')) throw new Error(`text after "}" in ${JSON.stringify(t)}`)
      t = t
        .slice(1, -1)
        .replace(/[\t\r\n\v\f]/g, ' ')
        .trim()
    }
    const eq = t.indexOf('=')
    if (eq <= 0) throw new Error(`no name=value in ${JSON.stringify(t)}`)
    attrs.push([t.slice(0, eq).trim(), t.slice(eq + 1).trim()])
  }
  return { level: level ?? '', attrs }
}
const values = (attrs: [string, string][], name: string): string[] => attrs.filter(([n]) => n === name).map(([, v]) => v)

describe('socketmapAnswer: TLS-RPT attributes (Postfix ≥ 3.10, TLSRPT_README)', () => {
  const cases: [string, SocketmapAnswerInput, string][] = [
    [
      'enforce: policy_type, policy_domain, one policy_string per line, one mx_host_pattern per mx',
      { profile: rpt, key, facts: noDane(), sts: enforce },
      POLICY + ATTRS,
    ],
    ['the sts profile with tlsrpt', { profile: { dane: false, sts: true, tlsrpt: true }, key, sts: enforce }, POLICY + ATTRS],
    [
      'no maxAge given: no max_age line',
      { profile: rpt, key, facts: noDane(), sts: { policy: { mode: 'enforce', mx: ['mx.example.com'] } } },
      'OK secure match=mx.example.com servername=hostname policy_type=sts policy_domain=example.com { policy_string = version: STSv1 }' +
        ' { policy_string = mode: enforce } { policy_string = mx: mx.example.com } mx_host_pattern=mx.example.com',
    ],
    [
      'testing answered may: mode testing (RFC 8461 §5: report only)',
      { profile: rptMay, key, sts: { policy: { mode: 'testing', mx: ['*.example.com'], maxAge: 0 } } },
      'OK may policy_type=sts policy_domain=example.com { policy_string = version: STSv1 } { policy_string = mode: testing }' +
        ' { policy_string = mx: *.example.com } { policy_string = max_age: 0 } mx_host_pattern=*.example.com',
    ],
    [
      'testing answered NOTFOUND: nothing to attach to',
      { profile: rpt, key, facts: noDane(), sts: { policy: { mode: 'testing', mx: ['mx.example.com'] } } },
      'NOTFOUND ',
    ],
    [
      'DANE: no attributes (Postfix reports the TLSA records itself)',
      { profile: rpt, key, facts: daneOnly(), sts: enforce },
      'OK dane-only',
    ],
    ['tlsrpt false: the policy alone', { profile: { dane: true, sts: true, tlsrpt: false }, key, facts: noDane(), sts: enforce }, POLICY],
    ['tlsrpt absent: the policy alone', { profile: { dane: true, sts: true }, key, facts: noDane(), sts: enforce }, POLICY],
    [
      '[host] next hop: no MTA-STS, no attributes',
      { profile: rpt, key: parseSocketmapKey('[mx1.example.com]')!, facts: noDane(), sts: enforce },
      'NOTFOUND ',
    ],
  ]
  for (const [name, input, want] of cases) it(name, () => assert.equal(socketmapAnswer(input).reply, want))

  it('the attributes read back as Postfix splits them', () => {
    const { level, attrs } = postfixAttributes(socketmapAnswer({ profile: rpt, key, facts: noDane(), sts: enforce }).reply.slice(3))
    assert.equal(level, 'secure')
    assert.deepEqual(values(attrs, 'policy_type'), ['sts'])
    assert.deepEqual(values(attrs, 'policy_domain'), ['example.com'])
    assert.deepEqual(values(attrs, 'policy_string'), [
      'version: STSv1',
      'mode: enforce',
      'mx: mx1.example.com',
      'mx: *.example.net',
      'max_age: 86400',
    ])
    assert.deepEqual(values(attrs, 'mx_host_pattern'), ['mx1.example.com', '*.example.net'])
  })
  it('a DANE answer says in its trace why it has no attributes', () => {
    const a = socketmapAnswer({ profile: rpt, key, facts: daneOnly() })
    assert.ok(a.trace.some((t) => /TLS-RPT: no attributes for DANE/.test(t.rule)))
  })

  // Values that would split differently in Postfix's parser, or that Postfix would refuse: the attributes
  // are left out (the trace says why), the policy is untouched, nothing is thrown.
  const hostileMx: [string, unknown[]][] = [
    ['a closing brace', ['mx.example.com }']],
    ['an attribute after a space', ['mx.example.com policy_type=no-policy-found']],
    ['a comma', ['mx.example.com,policy_failure=sts-webpki-invalid']],
    ['an opening brace', ['{ policy_string = x }']],
    ['CR LF', ['mx.example.com\r\nx']],
    ['NUL', ['mx.example.com\0']],
    ['non-ASCII', ['mx.exämple.com']],
    ['no mx at all (Postfix reads the list unconditionally)', []],
    ['not a string', [42]],
  ]
  for (const [what, mx] of hostileMx)
    it(`testing → may, mx with ${what}: OK may alone, traced`, () => {
      const a = socketmapAnswer({ profile: rptMay, key, sts: { policy: { mode: 'testing', mx: mx as string[] } } })
      assert.equal(a.reply, 'OK may')
      assert.ok(
        a.trace.some((t) => /^TLS-RPT attributes left out \(the policy stands\)/.test(t.rule)),
        JSON.stringify(a.trace),
      )
    })
  for (const maxAge of [-1, 1.5, 31557601, Number.NaN, '86400', '1 }', null])
    it(`enforce, max_age ${String(maxAge)}: the policy alone, traced`, () => {
      const a = socketmapAnswer({ profile: rpt, key, facts: noDane(), sts: { policy: { ...enforce.policy, maxAge: maxAge as number } } })
      assert.equal(a.reply, POLICY)
      assert.ok(a.trace.some((t) => /left out/.test(t.rule)))
    })
  for (const domain of ['example.com policy_type=no-policy-found', 'a'.repeat(64) + '.example.com', '-x.example.com', ''])
    it(`a key domain that is no host name (a hand-made key, ${JSON.stringify(domain.slice(0, 20))}): the policy alone`, () => {
      const k = { destination: 'x', domain, mxLookup: true, port: 25 }
      assert.equal(socketmapAnswer({ profile: { dane: false, sts: true, tlsrpt: true }, key: k, sts: enforce }).reply, POLICY)
    })
  it('profile.tlsrpt that is not a boolean is a coded error', () => {
    for (const v of ['yes', 1, null, {}])
      throwsCoded(
        () => socketmapAnswer({ profile: { dane: false, sts: true, tlsrpt: v as never }, key, sts: enforce }),
        'ERR_INVALID_ARGUMENT',
      )
  })

  describe('socketmap_max_reply_size (100,000 bytes)', () => {
    // 250-octet patterns: `a…a.b…b.c…c.example` (63-octet labels).
    const pattern = (i: number): string => `${String(i).padStart(4, '0')}${'a'.repeat(59)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example.com`
    const policyOf = (n: number) => ({
      policy: { mode: 'enforce' as const, mx: Array.from({ length: n }, (_, i) => pattern(i)), maxAge: 86400 },
    })
    it('attributes that would pass the limit are left out, the policy stays, the trace says why', () => {
      const sts = policyOf(350) // the policy alone ≈ 88 kB, with the attributes ≈ 190 kB
      const plain = socketmapAnswer({ profile: { dane: false, sts: true }, key, sts })
      const a = socketmapAnswer({ profile: { dane: false, sts: true, tlsrpt: true }, key, sts })
      assert.equal(plain.status, 'OK')
      assert.equal(a.reply, plain.reply)
      assert.ok(Buffer.byteLength(a.reply) <= SOCKETMAP_MAX_REPLY)
      assert.ok(
        a.trace.some((t) => /left out .*the reply would be \d+ bytes, over 100000/.test(t.rule)),
        JSON.stringify(a.trace.at(-1)),
      )
    })
    it('attributes that fit are kept', () => {
      const a = socketmapAnswer({ profile: { dane: false, sts: true, tlsrpt: true }, key, sts: policyOf(150) })
      assert.ok(Buffer.byteLength(a.reply) <= SOCKETMAP_MAX_REPLY)
      assert.equal(values(postfixAttributes(a.reply.slice(3)).attrs, 'mx_host_pattern').length, 150)
    })
  })

  it('property: no attribute injection from any MX pattern, max_age or domain; the policy part is the same with and without tlsrpt', () => {
    const hostileChar = fc.constantFrom(' ', ',', '{', '}', '=', '\r', '\n', '\t', '\0', '\u00e4', '\u2028', '*', '.', '-', '_')
    const piece = fc.oneof(
      fc.constantFrom(
        'mx.example.com',
        '*.example.net',
        'policy_type=no-policy-found',
        '{ policy_string = x }',
        'policy_failure=sts-webpki-invalid',
      ),
      fc.stringMatching(/^[a-z0-9-]{1,10}$/),
      hostileChar,
      fc.string({ maxLength: 8 }),
      fc.string({ unit: 'binary', maxLength: 8 }),
    )
    const text = fc.array(piece, { maxLength: 5 }).map((p) => p.join(''))
    const mx = fc.array(fc.oneof(fc.constantFrom('mx.example.com', '*.example.net'), text), { maxLength: 5 })
    const maxAge = fc.oneof(fc.constant(undefined), fc.integer({ min: -2, max: 40_000_000 }), fc.anything())
    const domain = fc.oneof(fc.constant('example.com'), fc.constant('ex_ample.co.uk'), text)
    fc.assert(
      fc.property(mx, maxAge, domain, fc.constantFrom<'enforce' | 'testing'>('enforce', 'testing'), (mx, maxAge, d, mode) => {
        const k = { destination: d, domain: d, mxLookup: true, port: 25 }
        const input = (tlsrpt: boolean): SocketmapAnswerInput => ({
          profile: { dane: false, sts: true, testing: 'may', tlsrpt },
          key: k,
          sts: { policy: { mode, mx, ...(maxAge !== undefined && { maxAge: maxAge as number }) } },
        })
        let without
        try {
          without = socketmapAnswer(input(false))
        } catch (e) {
          // Malformed for the policy itself: the same error with tlsrpt.
          throwsCoded(() => socketmapAnswer(input(true)), (e as SmtpTlsError).code)
          return
        }
        const withRpt = socketmapAnswer(input(true))
        assert.equal(withRpt.status, without.status)
        assert.ok(withRpt.reply.startsWith(without.reply), 'the policy part is unchanged')
        assert.ok(Buffer.byteLength(withRpt.reply) <= SOCKETMAP_MAX_REPLY)
        const tail = withRpt.reply.slice(without.reply.length)
        if (tail === '') return
        assert.ok(/^[\x20-\x7e]+$/.test(tail), 'printable ASCII only')
        assert.ok(tail.startsWith(' policy_type=sts '))
        const { attrs } = postfixAttributes(withRpt.reply.slice(3))
        const allowed = new Set(['match', 'servername', 'policy_type', 'policy_domain', 'policy_string', 'mx_host_pattern'])
        for (const [n] of attrs) assert.ok(allowed.has(n), `unexpected attribute ${n}`)
        assert.deepEqual(values(attrs, 'policy_type'), ['sts'])
        assert.deepEqual(values(attrs, 'policy_domain'), [d])
        assert.deepEqual(values(attrs, 'mx_host_pattern'), mx, 'every pattern read back whole')
        const strings = values(attrs, 'policy_string')
        assert.deepEqual(strings, [
          'version: STSv1',
          `mode: ${mode}`,
          ...mx.map((p) => `mx: ${p}`),
          ...(maxAge !== undefined ? [`max_age: ${String(maxAge)}`] : []),
        ])
      }),
      { numRuns: 2000 },
    )
  })
})
