// Hostile DNS responses: every defect gives ERR_DNS_MALFORMED, never an exception from inside dns-packet,
// never a hang: directly on the parser, through the in-process server, and under fast-check.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createResolver, SmtpTlsError } from '../../src/node/index.js'
import { encodeQuery, matchResponse, normaliseName, parseResponse } from '../../src/node/resolver/wire.js'
import { encodeReply, startDnsServer, type DnsQuery } from '../helpers/dns-server.js'

const name = (n: string): Buffer =>
  Buffer.concat([...n.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])])
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff])
const rr = (owner: Buffer, type: number, rdata: Buffer, opts: { klass?: number; ttl?: number; rdlen?: number } = {}) =>
  Buffer.concat([owner, u16(type), u16(opts.klass ?? 1), u32(opts.ttl ?? 300), u16(opts.rdlen ?? rdata.length), rdata])
const QUESTION = Buffer.concat([name('x.test'), u16(1), u16(1)])
/** Pointer to the question name (offset 12). */
const PTR_Q = Buffer.from([0xc0, 12])
function msg(p: { an?: Buffer[]; ns?: Buffer[]; ar?: Buffer[]; counts?: number[]; flags?: number; tail?: Buffer }): Buffer {
  const an = p.an ?? []
  const ns = p.ns ?? []
  const ar = p.ar ?? []
  const counts = p.counts ?? [1, an.length, ns.length, ar.length]
  return Buffer.concat([u16(0x1234), u16(p.flags ?? 0x81a0), ...counts.map(u16), QUESTION, ...an, ...ns, ...ar, p.tail ?? Buffer.alloc(0)])
}
const A_RR = rr(PTR_Q, 1, Buffer.from([127, 0, 0, 1]))
const OPT_RR = rr(Buffer.from([0]), 41, Buffer.alloc(0), { klass: 1232, ttl: 0x8000 })

function malformedCode(fn: () => unknown): string {
  try {
    fn()
    return 'no error'
  } catch (e) {
    if (!(e instanceof SmtpTlsError)) return `non-coded ${String(e)}`
    return e.code
  }
}

describe('DNS wire: the parser', () => {
  it('a well-formed response parses (the base every bad row mutates)', () => {
    const p = parseResponse(msg({ an: [A_RR], ar: [OPT_RR] }))
    assert.deepEqual(p.answers, [{ name: 'x.test', type: 'A', ttl: 300, data: '127.0.0.1' }])
    assert.equal(p.authenticData, true)
    assert.equal(p.rcode, 'NOERROR')
  })
  const selfPointerAt = 12 + QUESTION.length
  const bad: Array<[string, Buffer]> = [
    ['shorter than a header', Buffer.alloc(11)],
    ['answer count one too high', msg({ an: [A_RR], counts: [1, 2, 0, 0] })],
    ['answer count one too low (trailing record)', msg({ an: [A_RR, A_RR], counts: [1, 1, 0, 0] })],
    ['every count 65535', msg({ an: [A_RR], counts: [0xffff, 0xffff, 0xffff, 0xffff] })],
    ['trailing garbage', msg({ an: [A_RR], tail: Buffer.from([0, 0, 0]) })],
    ['compression pointer to itself (loop)', msg({ an: [rr(Buffer.from([0xc0, selfPointerAt]), 1, Buffer.from([127, 0, 0, 1]))] })],
    ['compression pointer forwards', msg({ an: [rr(Buffer.from([0xc0, 200]), 1, Buffer.from([127, 0, 0, 1]))] })],
    ['truncated compression pointer', Buffer.concat([msg({ counts: [1, 1, 0, 0] }), Buffer.from([0xc0])])],
    ['extended label type 0x40', msg({ an: [rr(Buffer.from([0x41, 0]), 1, Buffer.from([127, 0, 0, 1]))] })],
    [
      'name longer than 255 octets',
      msg({
        an: [
          rr(
            Buffer.concat([...Array(5).fill(Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0])]),
            1,
            Buffer.from([1, 2, 3, 4]),
          ),
        ],
      }),
    ],
    ['a dot inside an answer label', msg({ an: [rr(Buffer.from([3, 0x61, 0x2e, 0x62, 0]), 1, Buffer.from([1, 2, 3, 4]))] })],
    ['A record of 3 octets', msg({ an: [rr(PTR_Q, 1, Buffer.from([127, 0, 1]))] })],
    ['A record of 5 octets', msg({ an: [rr(PTR_Q, 1, Buffer.from([127, 0, 0, 1, 9]))] })],
    ['AAAA record of 4 octets', msg({ an: [rr(PTR_Q, 28, Buffer.from([127, 0, 0, 1]))] })],
    ['RDLENGTH past the end', msg({ an: [rr(PTR_Q, 1, Buffer.from([127, 0, 0, 1]), { rdlen: 400 })] })],
    [
      'CNAME target running past its RDATA',
      msg({ an: [rr(PTR_Q, 5, Buffer.concat([name('y.test')]), { rdlen: 3 })], tail: Buffer.alloc(5) }),
    ],
    ['MX RDATA of two octets', msg({ an: [rr(PTR_Q, 15, Buffer.from([0, 10]))] })],
    ['MX exchange shorter than its RDATA', msg({ an: [rr(PTR_Q, 15, Buffer.concat([u16(10), name('mx.test'), Buffer.from([0])]))] })],
    ['TXT string running past its record', msg({ an: [rr(PTR_Q, 16, Buffer.from([9, 0x61, 0x62]))] })],
    ['SOA RDATA too short', msg({ ns: [rr(PTR_Q, 6, Buffer.concat([name('ns.test'), name('h.test'), Buffer.alloc(12)]))] })],
    ['OPT in the answer section', msg({ an: [OPT_RR] })],
    ['two OPT records (RFC 6891 §6.1.1)', msg({ ar: [OPT_RR, OPT_RR] })],
    ['OPT owner not the root', msg({ ar: [rr(name('x'), 41, Buffer.alloc(0))] })],
    ['EDNS option running past OPT', msg({ ar: [rr(Buffer.from([0]), 41, Buffer.from([0, 15, 0, 9, 0, 6]))] })],
  ]
  for (const [why, bytes] of bad)
    it(`refuses ${why}`, () =>
      assert.equal(
        malformedCode(() => parseResponse(bytes)),
        'ERR_DNS_MALFORMED',
      ))

  it('TLSA RDATA of 3 octets or fewer: that record is set aside with its reason, the message and the good record stand (RFC 6698 §2.1, Postfix)', () => {
    const good = rr(PTR_Q, 52, Buffer.concat([Buffer.from([3, 1, 1]), Buffer.alloc(32, 7)]))
    for (const short of [Buffer.from([3, 1, 1]), Buffer.from([3, 1]), Buffer.from([3]), Buffer.alloc(0)]) {
      const p = parseResponse(msg({ an: [rr(PTR_Q, 52, short), good] }))
      assert.equal(p.answers.length, 1)
      assert.equal(p.answers[0]!.type, 'TLSA')
      assert.deepEqual(p.undecodable, [
        {
          name: 'x.test',
          type: 'TLSA',
          ttl: 300,
          record: {
            rdata: short.toString('hex'),
            reason: `TLSA RDATA of ${short.length} octet${short.length === 1 ? '' : 's'}${short.length === 0 ? '' : ` (${short.toString('hex')})`}: no certificate association data (RFC 6698 §2.1), record unusable`,
          },
        },
      ])
    }
  })
  it('ignores records of other classes and types it does not decode', () => {
    const p = parseResponse(msg({ an: [rr(PTR_Q, 1, Buffer.from([1, 2, 3, 4]), { klass: 3 }), rr(PTR_Q, 46, Buffer.alloc(30)), A_RR] }))
    assert.equal(p.answers.length, 1)
  })
  it('reads the extended RCODE and RFC 8914 EDE from OPT', () => {
    const ede = Buffer.concat([u16(15), u16(2 + 7), u16(6), Buffer.from('bad sig')])
    const p = parseResponse(msg({ flags: 0x8182, ar: [rr(Buffer.from([0]), 41, ede, { klass: 1232 })] }))
    assert.equal(p.rcode, 'SERVFAIL')
    assert.deepEqual(p.extendedErrors, [{ code: 6, text: 'bad sig' }])
  })
  it('RFC 2181 §8: a TTL with the top bit set is 0', () => {
    assert.equal(parseResponse(msg({ an: [rr(PTR_Q, 1, Buffer.from([1, 2, 3, 4]), { ttl: 0x80000000 })] })).answers[0]?.ttl, 0)
  })
  it('RFC 2308 §5: negative TTL = min(SOA TTL, SOA MINIMUM)', () => {
    const soaRdata = Buffer.concat([name('ns.test'), name('h.test'), u32(1), u32(2), u32(3), u32(4), u32(77)])
    assert.equal(parseResponse(msg({ ns: [rr(name('test'), 6, soaRdata, { ttl: 500 })] })).negativeTtl, 77)
    assert.equal(parseResponse(msg({ ns: [rr(name('test'), 6, soaRdata, { ttl: 20 })] })).negativeTtl, 20)
  })
  it('matchResponse: the question must echo ours; names compare case-insensitively', () => {
    const q = encodeQuery(0x1234, 'x.test', 'A')
    const echoed = Buffer.from(q.message)
    echoed[2] = 0x81
    assert.equal(matchResponse(echoed, q), 'accept')
    const upper = Buffer.from(echoed)
    upper[13] = 0x58 // 'X'
    assert.equal(matchResponse(upper, q), 'accept')
    const other = Buffer.from(echoed)
    other[13] = 0x79 // 'y'
    assert.equal(matchResponse(other, q), 'drop')
    const twoQuestions = Buffer.from(echoed)
    twoQuestions[5] = 2
    assert.equal(matchResponse(twoQuestions, q), 'drop')
  })

  it('property: any mutation or truncation of a valid response parses or gives ERR_DNS_MALFORMED', () => {
    const base = msg({
      an: [A_RR, rr(PTR_Q, 52, Buffer.concat([Buffer.from([3, 1, 1]), Buffer.alloc(32, 7)])), rr(PTR_Q, 5, Buffer.from([0xc0, 12]))],
      ns: [rr(name('test'), 6, Buffer.concat([name('ns.test'), name('h.test'), Buffer.alloc(20)]))],
      ar: [OPT_RR],
    })
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(base.length),
        (edits, cut) => {
          const b = Buffer.from(base)
          for (const [i, v] of edits) b[i] = v
          const code = malformedCode(() => parseResponse(b.subarray(0, cut === 0 ? b.length : cut)))
          return code === 'no error' || code === 'ERR_DNS_MALFORMED'
        },
      ),
      { numRuns: 3000 },
    )
  })
  it('property: arbitrary bytes never throw anything but ERR_DNS_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const code = malformedCode(() => parseResponse(bytes))
        return code === 'no error' || code === 'ERR_DNS_MALFORMED'
      }),
      { numRuns: 3000 },
    )
  })
})

describe('DNS wire: hostile responses through the resolver', () => {
  // keep the ID and question of the real query, then corrupt what follows
  const keepHead = (q: DnsQuery, enc: Buffer) => enc.subarray(0, 12 + q.name.length + 2 + 4)
  const rows: Array<[string, (q: DnsQuery, enc: Buffer) => Buffer]> = [
    ['answer count beyond the data', (q, enc) => Buffer.concat([enc.subarray(0, 6), u16(40), enc.subarray(8)])],
    ['cut in the middle of a record', (q, enc) => enc.subarray(0, enc.length - 7)],
    [
      'compression loop in the answer',
      (q, enc) => {
        const head = Buffer.from(keepHead(q, enc))
        head.writeUInt16BE(1, 6)
        head.writeUInt16BE(0, 8)
        head.writeUInt16BE(0, 10)
        return Buffer.concat([head, Buffer.from([0xc0, head.length]), u16(1), u16(1), u32(1), u16(4), Buffer.from([1, 2, 3, 4])])
      },
    ],
    [
      'a 4000-octet datagram of junk after the question',
      (q, enc) => {
        const head = Buffer.from(keepHead(q, enc))
        head.writeUInt16BE(0xffff, 6)
        return Buffer.concat([head, Buffer.alloc(4000, 0xc0)])
      },
    ],
  ]
  for (const [why, raw] of rows) {
    // The per-try timeout (10 min) outlasts the test's own bound: the lookup can only end because the
    // malformed answer ended it, never because a timer ran out (no wall-clock assertion needed).
    it(`${why}: a coded lookup failure, not waited out`, { timeout: 60_000 }, async () => {
      const s = await startDnsServer((q) => ({ ad: true, answers: [{ name: q.name, type: 'A', data: '127.0.0.1' }], raw }))
      try {
        const a = await createResolver({ servers: [s.server], timeoutMs: 600_000, attempts: 2 }).lookup('hostile.test', 'A')
        assert.equal(a.status, 'error')
        assert.equal(a.error?.code, 'ERR_DNS_MALFORMED')
        assert.equal(s.queries.length, 1, 'a server that sent garbage is not asked again')
      } finally {
        await s.close()
      }
    })
  }
  it('a well-formed answer to the query still works after all that (sanity of the raw hook)', async () => {
    const s = await startDnsServer((q) => ({ raw: (qq) => encodeReply(qq, { answers: [{ name: q.name, type: 'A', data: '127.0.0.1' }] }) }))
    try {
      assert.deepEqual((await createResolver({ servers: [s.server], timeoutMs: 500 }).lookup('ok.test', 'A')).records, ['127.0.0.1'])
    } finally {
      await s.close()
    }
  })
})

describe('DNS wire: normaliseName', () => {
  /** The rule as written before the one-scan fast path (issue 11): lower case, no final dot, LDH and _ labels. */
  function reference(name: string): string | 'invalid' {
    let n = name.toLowerCase()
    if (n.endsWith('.')) n = n.slice(0, -1)
    if (n.length === 0 || n.length > 253) return 'invalid'
    for (const label of n.split('.')) if (label.length === 0 || label.length > 63 || !/^[a-z0-9_-]+$/.test(label)) return 'invalid'
    return n
  }
  const outcome = (name: string): string => {
    try {
      return normaliseName(name)
    } catch (e) {
      assert.ok(e instanceof SmtpTlsError && e.code === 'ERR_INVALID_ARGUMENT', String(e))
      return 'invalid'
    }
  }

  it('agrees with the reference rule (fast-check), on names built from DNS characters and on any string', () => {
    const char = fc.constantFrom(...'abcXYZ019-_.'.split(''), '\u212a', '\u0130', ' ', '\0')
    const label = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'ab9-_'.split('')), minLength: 0, maxLength: 70 }),
      fc.constant('a'.repeat(63)),
    )
    const dnsish = fc.oneof(
      fc.array(label, { minLength: 1, maxLength: 6 }).map((ls) => ls.join('.')),
      fc.array(label, { minLength: 1, maxLength: 6 }).map((ls) => ls.join('.') + '.'),
      fc.string({ unit: char, maxLength: 40 }),
      fc.array(fc.constant('a'.repeat(63)), { minLength: 3, maxLength: 5 }).map((ls) => ls.join('.')),
    )
    fc.assert(
      fc.property(fc.oneof(dnsish, fc.string({ maxLength: 30 })), (n) => {
        assert.equal(outcome(n), reference(n))
      }),
      { numRuns: 5000 },
    )
  })

  it('returns a name already in normal form as it is, and normalises the rest', () => {
    assert.equal(normaliseName('_25._tcp.mx.example.com'), '_25._tcp.mx.example.com')
    assert.equal(normaliseName('MX.Example.COM.'), 'mx.example.com')
    assert.equal(normaliseName('a'.repeat(63) + '.b'), 'a'.repeat(63) + '.b')
    for (const bad of ['', '.', 'a..b', '.a', 'a b', 'a'.repeat(64) + '.b', `${'a'.repeat(63)}.`.repeat(4) + 'abc', 'ex\u00e4mple.com']) {
      assert.equal(outcome(bad), 'invalid', bad)
    }
    assert.throws(() => normaliseName(5), { code: 'ERR_INVALID_ARGUMENT' })
  })
})
