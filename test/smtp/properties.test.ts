// fast-check properties of the reply parser and the STARTTLS machine (DESIGN.md §4, §7): any split of
// a transcript into chunks gives the same actions; hostile bytes only ever give coded errors.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ReplyParser, SmtpTlsError, type SmtpReply, type StartTlsAction, type StartTlsInput } from '../../src/index.js'
import { cutAt, isFinal, latin1, newClient, replay, show, type Step } from './transcript.js'

// Arbitraries --------------------------------------------------------------------------------

/** Reply text: printable ASCII, some latin1 bytes above 0x7f, never CR or LF. */
const text = fc
  .array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09)), { maxLength: 30 })
  .map((cs) => String.fromCharCode(...cs))
const eol = fc.constantFrom('\r\n', '\n')

/** A well-formed reply with `code`, 1-10 lines (1-4 by default), each with its own line ending. */
function reply(
  code: fc.Arbitrary<number>,
  lines: fc.Arbitrary<string[]> = fc.array(text, { minLength: 1, maxLength: 4 }),
): fc.Arbitrary<string> {
  return fc
    .tuple(code, lines, fc.array(eol, { minLength: 10, maxLength: 10 }))
    .map(([c, ls, ends]) => ls.map((l, i) => `${c}${i < ls.length - 1 ? '-' : ' '}${l}${ends[i]}`).join(''))
}

const anyCode = fc.integer({ min: 200, max: 559 }).filter((c) => c % 100 < 60 && Math.floor(c / 10) % 10 <= 5)
const failCode = fc.oneof(fc.constantFrom(421, 450, 454, 501, 502, 550, 554), anyCode)
const keyword = fc.constantFrom(
  'PIPELINING',
  'SIZE 1000',
  'AUTH PLAIN LOGIN',
  '8BITMIME',
  'SMTPUTF8',
  'REQUIRETLS',
  'XXXXXXXA',
  'starttls',
  'X-FOO bar',
)
const ehloLines = fc
  .tuple(text, fc.array(keyword, { maxLength: 6 }), fc.boolean())
  .map(([domain, kws, tls]) => [domain.replace(/\s/g, '') || 'mx', ...kws, ...(tls ? ['STARTTLS'] : [])])

/** A well-behaved conversation: each server turn is exactly one reply, sent after our command. */
const transcript: fc.Arbitrary<{ steps: Step[]; requireTls: boolean }> = fc
  .record({
    requireTls: fc.boolean(),
    greeting: fc.oneof({ weight: 4, arbitrary: reply(fc.constant(220)) }, { weight: 1, arbitrary: reply(failCode) }),
    ehlo: fc.oneof({ weight: 4, arbitrary: reply(fc.constant(250), ehloLines) }, { weight: 1, arbitrary: reply(failCode) }),
    helo: reply(fc.oneof(fc.constant(250), failCode)),
    starttls: fc.oneof({ weight: 3, arbitrary: reply(fc.constant(220)) }, { weight: 1, arbitrary: reply(failCode) }),
    tls: fc.oneof(
      { weight: 4, arbitrary: fc.constant<Step>({ tls: true }) },
      { weight: 1, arbitrary: fc.constant<Step>({ tlsFail: 'x' }) },
    ),
    ehloTls: fc.oneof({ weight: 4, arbitrary: reply(fc.constant(250), ehloLines) }, { weight: 1, arbitrary: reply(failCode) }),
    end: fc.constantFrom<Step[]>([], [{ eof: true }], [{ timeout: true }]),
    cutShort: fc.nat({ max: 8 }),
  })
  .map((r) => {
    // A server that refuses EHLO with 5xx gets HELO; which turn comes next depends only on the code.
    const ehloCode = Number(r.ehlo.slice(0, 3))
    const steps: Step[] = ehloCode >= 500 ? [r.greeting, r.ehlo, r.helo] : [r.greeting, r.ehlo, r.starttls, r.tls, r.ehloTls]
    // sometimes the connection ends early (eof/timeout after a prefix)
    const cut = r.cutShort < steps.length ? r.cutShort : steps.length
    return { steps: [...steps.slice(0, cut), ...r.end], requireTls: r.requireTls }
  })

/** Random cut points for a turn. */
const cuts = fc.array(fc.nat({ max: 400 }), { maxLength: 12 })

function splitter(points: number[][]): (turn: Uint8Array) => Uint8Array[] {
  let i = 0
  return (turn) => cutAt(turn, points[i++ % Math.max(points.length, 1)] ?? [])
}

/** Everything observable about a run, to compare runs exactly. */
function observe(
  steps: Step[],
  requireTls: boolean,
  split?: (t: Uint8Array) => Uint8Array[],
): { actions: Array<[string, unknown]>; transcript: readonly string[]; state: string } {
  const r = replay(steps, { requireTls }, split)
  return {
    actions: r.actions.map((a): [string, unknown] => [
      show(a),
      a.type === 'close' ? a.error?.message : a.type === 'ready' ? [...a.extensions] : undefined,
    ]),
    transcript: r.client.transcript,
    state: r.client.state.name,
  }
}

// Properties ---------------------------------------------------------------------------------

describe('ReplyParser properties', () => {
  /** Replies and the first error (code, message, position) of a parse. */
  function parseAll(chunks: Uint8Array[]): { replies: SmtpReply[]; error?: [string, string, number | undefined] } {
    const p = new ReplyParser({ maxLineLength: 64, maxLines: 5 })
    const replies: SmtpReply[] = []
    try {
      for (const c of chunks) {
        p.push(c)
        for (let r = p.next(); r; r = p.next()) replies.push(r)
      }
    } catch (e) {
      if (!(e instanceof SmtpTlsError)) throw e
      return { replies, error: [e.code, e.message, e.position] }
    }
    return { replies }
  }
  const soup = fc
    .array(
      fc.oneof(
        reply(anyCode),
        fc.constantFrom('250-', '250 ', '\r\n', '\n', '\r', '421', ' 5.7.1 ', 'x'.repeat(70)),
        fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b).toString('latin1')),
      ),
      { maxLength: 12 },
    )
    .map((parts) => latin1(parts.join('')))

  it('any split of any bytes gives the same replies and the same error', () => {
    fc.assert(
      fc.property(soup, cuts, (bytes, points) => {
        assert.deepEqual(parseAll(cutAt(bytes, points)), parseAll([bytes]))
      }),
      { numRuns: 2000 },
    )
  })

  it('random bytes never throw anything but a coded error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), cuts, (bytes, points) => {
        parseAll(cutAt(bytes, points)) // rethrows anything that is not an SmtpTlsError
      }),
      { numRuns: 2000 },
    )
  })
})

describe('StartTlsClient properties', () => {
  it('any split of a well-behaved transcript gives the same actions, transcript and state', () => {
    const outcomes = new Set<string>()
    fc.assert(
      fc.property(transcript, fc.array(cuts, { minLength: 1, maxLength: 6 }), ({ steps, requireTls }, points) => {
        const whole = observe(steps, requireTls)
        outcomes.add(whole.actions.at(-1)?.[0] ?? '')
        assert.deepEqual(observe(steps, requireTls, splitter(points)), whole)
      }),
      { numRuns: 1500 },
    )
    // the generator reaches every kind of ending, so the property is not vacuous
    for (const end of [
      'ready secure',
      'ready plaintext',
      'close ERR_STARTTLS_NOT_OFFERED',
      'close ERR_STARTTLS_REFUSED',
      'close ERR_TLS_HANDSHAKE',
    ]) {
      assert.ok(
        [...outcomes].some((o) => o.startsWith(end)),
        `no run ended in ${end}`,
      )
    }
  })

  it('bytes injected after the 220 to STARTTLS end in ERR_SMTP_RESPONSE_INJECTION for any split', () => {
    const injected = fc.tuple(reply(fc.constant(220)), fc.uint8Array({ minLength: 1, maxLength: 40 }))
    fc.assert(
      fc.property(injected, fc.boolean(), cuts, ([ok, junk], requireTls, points) => {
        const steps: Step[] = [
          '220 mx\r\n',
          '250-mx\r\n250 STARTTLS\r\n',
          ok + Buffer.from(junk).toString('latin1'),
          { tls: true },
          '250 mx\r\n',
        ]
        const r = replay(steps, { requireTls }, splitter([points]))
        const last = r.actions.at(-1)
        assert.ok(last?.type === 'close' && last.error?.code === 'ERR_SMTP_RESPONSE_INJECTION', r.shown.join(' | '))
      }),
      { numRuns: 1000 },
    )
  })

  const input: fc.Arbitrary<StartTlsInput> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .oneof(reply(anyCode), reply(fc.constant(250), ehloLines), reply(fc.constant(220)))
        .map((s) => ({ type: 'data' as const, bytes: latin1(s) })),
    },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 80 }).map((bytes) => ({ type: 'data' as const, bytes })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<StartTlsInput>(
        { type: 'eof' },
        { type: 'timeout' },
        { type: 'tlsEstablished' },
        { type: 'tlsFailed', cause: 0 },
      ),
    },
  )

  it('random inputs: never a throw, only coded errors, and the security invariants hold', () => {
    fc.assert(
      fc.property(fc.array(input, { maxLength: 12 }), fc.boolean(), (inputs, requireTls) => {
        const c = newClient({ requireTls })
        let final: StartTlsAction | undefined
        let startTlsSent = 0
        let upgraded = false
        let tlsUp = false
        for (const i of inputs) {
          const acts = c.handle(i)
          if (final) {
            // after ready/close: exactly one close with ERR_STATE, nothing else
            assert.equal(acts.length, 1)
            assert.ok(acts[0]?.type === 'close' && acts[0].error?.code === 'ERR_STATE')
            continue
          }
          if (i.type === 'tlsEstablished' && upgraded) tlsUp = true
          for (const a of acts) {
            assert.ok(!final, 'an action after the final one')
            if (a.type === 'send') {
              const cmd = Buffer.from(a.bytes).toString('latin1')
              assert.match(cmd, /^(EHLO client\.test|HELO client\.test|STARTTLS|QUIT)\r\n$/)
              if (cmd === 'STARTTLS\r\n') startTlsSent++
              assert.ok(!(upgraded && !tlsUp), 'plaintext sent between the 220 and the handshake (RFC 3207 §4.1)')
            }
            if (a.type === 'upgrade') {
              assert.equal(startTlsSent, 1)
              upgraded = true
            }
            if (a.type === 'ready') {
              assert.equal(a.secure, tlsUp)
              if (requireTls) assert.equal(a.secure, true, 'plaintext ready although TLS is required')
              if (a.secure) assert.equal(a.extensions.has('STARTTLS'), false)
            }
            if (a.type === 'close') {
              assert.ok(a.error instanceof SmtpTlsError)
              assert.equal(a.error.temporary, true)
            }
            if (isFinal(a)) final = a
          }
          assert.ok(startTlsSent <= 1, 'STARTTLS sent twice')
        }
      }),
      { numRuns: 3000 },
    )
  })
})
