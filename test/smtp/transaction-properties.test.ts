// fast-check properties of SmtpTransaction: the body on the wire is the normalised message for any
// split of it; any split of a server transcript gives the same actions; credentials never show;
// hostile bytes only ever give coded errors.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { SmtpTlsError, type SmtpTransactionAction, type SmtpTransactionInput, type SmtpTransactionResult } from '../../src/index.js'
import { BodyEncoder } from '../../src/smtp/body.js'
import { cutAt, latin1 } from './transcript.js'
import { newTx, normalised, replayTx, show, toInput, unchunk, unstuff, type TxStep } from './transaction-transcript.js'

const A = 'a@example.org'
const cuts = fc.array(fc.nat({ max: 300 }), { maxLength: 10 })

/** Message text rich in the bytes that matter: ".", CR, LF, CRLF, 8-bit bytes. */
const message = fc
  .array(fc.constantFrom('.', '\r', '\n', '\r\n', '\n.', '\r\n.\r\n', '..', 'a', 'Subject: x', '\xe9\xff', ' '), { maxLength: 40 })
  .map((parts) => parts.join(''))

/** Feed a message through the body path; returns the bytes sent for the body, as latin1. */
function sendBody(msg: string, points: number[], chunking: boolean, lastWithBytes: boolean): string {
  const tx = newTx({ ext: chunking ? ['CHUNKING'] : [] })
  const feed = (i: SmtpTransactionInput) => tx.handle(i)
  feed({ type: 'mail', envelope: { from: A, to: ['b@example.com'] } })
  feed({ type: 'data', bytes: latin1('250 ok\r\n') })
  let acts = feed({ type: 'data', bytes: latin1('250 ok\r\n') })
  if (!chunking) acts = feed({ type: 'data', bytes: latin1('354 go\r\n') })
  assert.deepEqual(acts.map(show), ['needBody'])
  const chunks = cutAt(latin1(msg), points)
  if (msg === '') chunks.length = 0
  const tail = lastWithBytes ? chunks.pop() : undefined
  let wire = ''
  const collect = (out: SmtpTransactionAction[]) => {
    for (const a of out) if (a.type === 'send') wire += Buffer.from(a.bytes).toString('latin1')
    return out
  }
  for (const c of chunks) {
    const out = collect(feed({ type: 'body', bytes: c }))
    if (chunking && out.some((a) => a.type === 'send')) collect(feed({ type: 'data', bytes: latin1('250 ok\r\n') }))
  }
  collect(feed(tail ? { type: 'bodyEnd', bytes: tail } : { type: 'bodyEnd' }))
  assert.equal(tx.state.name, 'awaitFinal')
  return wire
}

describe('SmtpTransaction body properties (RFC 5321 §4.5.2, RFC 3030)', () => {
  it('DATA: the unstuffed server view equals the normalised message, for any split', () => {
    fc.assert(
      fc.property(message, cuts, fc.boolean(), (msg, points, lastWithBytes) => {
        const wire = sendBody(msg, points, false, lastWithBytes)
        // the terminator appears once, at the end: no line of the message can end it early
        const end = wire === '.\r\n' ? 3 : wire.indexOf('\r\n.\r\n') + 5
        assert.equal(end, wire.length, JSON.stringify(wire))
        assert.ok(wire === '.\r\n' || !wire.startsWith('.\r\n'), JSON.stringify(wire))
        assert.equal(unstuff(wire), normalised(msg), JSON.stringify({ msg, wire }))
        // no bare CR or LF on the wire
        assert.doesNotMatch(wire.replace(/\r\n/g, ''), /[\r\n]/)
        assert.equal(wire, sendBody(msg, [], false, false), 'the split changed the bytes on the wire')
      }),
      { numRuns: 1500 },
    )
  })

  it('BDAT: the chunks reassemble to the normalised message, sizes are exact, no dot-stuffing', () => {
    fc.assert(
      fc.property(message, cuts, fc.boolean(), (msg, points, lastWithBytes) => {
        const wire = sendBody(msg, points, true, lastWithBytes)
        const { body, sizes, last } = unchunk(wire)
        assert.ok(last)
        assert.equal(body, normalised(msg), JSON.stringify({ msg, wire }))
        assert.ok(
          sizes.slice(0, -1).every((n) => n > 0),
          'a BDAT 0 before the last chunk',
        )
        assert.doesNotMatch(body.replace(/\r\n/g, ''), /[\r\n]/)
      }),
      { numRuns: 1500 },
    )
  })

  it('long messages in chunks at any byte offset of their buffers (the word-at-a-time scan)', () => {
    const long = fc
      .array(fc.constantFrom('.', '\r', '\n', '\r\n', '\n.', '\t', '\x0b\x0c', 'abcdefgh', 'x'.repeat(70), '\xe9\xff\x8e\x0e'), {
        maxLength: 200,
      })
      .map((parts) => parts.join(''))
    fc.assert(
      fc.property(long, cuts, fc.nat({ max: 7 }), fc.boolean(), (msg, points, shift, chunking) => {
        const enc = new BodyEncoder(!chunking)
        let wire = ''
        const chunks = cutAt(
          latin1(msg),
          points.map((p) => p * 7),
        )
        for (const [k, c] of chunks.entries()) {
          // the same bytes at an unaligned offset of a larger buffer
          const host = new Uint8Array(c.length + 16)
          const at = (shift + k) % 8
          host.set(c, at)
          const e = enc.encode(host.subarray(at, at + c.length), 0, false)
          wire += Buffer.from(e.buf.subarray(e.start, e.end)).toString('latin1')
        }
        const e = enc.encode(new Uint8Array(0), 0, true)
        wire += Buffer.from(e.buf.subarray(e.start, e.end)).toString('latin1')
        assert.equal(chunking ? wire : unstuff(wire), normalised(msg))
      }),
      { numRuns: 1000 },
    )
  })

  it('edge cases named by the RFC', () => {
    const rows: Array<[string, string]> = [
      ['', '.\r\n'],
      ['.', '..\r\n.\r\n'],
      ['.\r\n', '..\r\n.\r\n'],
      ['a\n.b', 'a\r\n..b\r\n.\r\n'],
      ['no final newline', 'no final newline\r\n.\r\n'],
      ['bare\rcr', 'bare\r\ncr\r\n.\r\n'],
      ['cr\r\r\nlf', 'cr\r\n\r\nlf\r\n.\r\n'],
      ['x\r\n.\r\ny', 'x\r\n..\r\ny\r\n.\r\n'],
    ]
    for (const [msg, wire] of rows) {
      for (let cut = 0; cut <= msg.length; cut++) assert.equal(sendBody(msg, [cut], false, false), wire, JSON.stringify([msg, cut]))
    }
  })
})

// A well-behaved server: it answers each command in order, and the transcript is recorded once,
// unsplit, then replayed split.

const code = (ok: number) =>
  fc.oneof({ weight: 5, arbitrary: fc.constant(ok) }, { weight: 1, arbitrary: fc.constantFrom(450, 451, 550, 553, 554) })
const params = fc.record({
  ext: fc.subarray(['PIPELINING', 'CHUNKING', 'SIZE 100000', '8BITMIME', 'DSN', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']),
  messages: fc.array(
    fc.record({
      to: fc.integer({ min: 1, max: 4 }),
      mail: code(250),
      rcpt: fc.array(code(250), { minLength: 4, maxLength: 4 }),
      data: code(354),
      final: code(250),
      bdat: code(250),
      body: fc.array(fc.constantFrom('line\r\n', '.dot\n', 'x', '\r', '\n', 'é'), { maxLength: 5 }),
    }),
    { minLength: 1, maxLength: 2 },
  ),
  multiline: fc.boolean(),
  /** Feed the next body chunk before the replies due (pipelined BDAT chunks in flight). */
  bodyFirst: fc.boolean(),
  lfOnly: fc.boolean(),
  interrupt: fc.option(fc.tuple(fc.nat({ max: 12 }), fc.constantFrom<TxStep>('421 4.3.2 bye\r\n', { eof: true }, { timeout: true }))),
})

type Params = typeof params extends fc.Arbitrary<infer T> ? T : never

function simulate(p: Params): TxStep[] {
  const tx = newTx({ ext: p.ext })
  const steps: TxStep[] = []
  const eol = p.lfOnly ? '\n' : '\r\n'
  const say = (c: number) =>
    p.multiline ? `${c}-first line${eol}${c}-second${eol}${c} ${c >= 400 ? '4' : '2'}.0.0 last${eol}` : `${c} ok${eol}`
  let due: string[] = []
  let wantBody = false
  let idle = true
  let closed = false
  let msgNo = -1
  let rcptNo = 0
  let bodyPart = 0
  const chunking = p.ext.includes('CHUNKING')
  const feed = (step: TxStep) => {
    steps.push(step)
    const acts = tx.handle(toInput(step))
    for (const a of acts) {
      const m = p.messages[msgNo]
      if (a.type === 'send' && m) {
        const isBody = typeof step === 'object' && ('body' in step || 'bodyEnd' in step)
        if (isBody) {
          if (chunking) due.push(say('bodyEnd' in step ? m.final : m.bdat))
          else if ('bodyEnd' in step) due.push(say(m.final))
          continue
        }
        for (const line of Buffer.from(a.bytes).toString('latin1').split('\r\n').slice(0, -1)) {
          if (line.startsWith('MAIL')) due.push(say(m.mail))
          else if (line.startsWith('RCPT')) due.push(say(m.rcpt[rcptNo++ % 4] as number))
          else if (line === 'RSET') due.push(say(250))
          else if (line === 'DATA') due.push(say(m.data))
        }
      }
      if (a.type === 'needBody') wantBody = true
      if (a.type === 'done') idle = true
      if (a.type === 'close') closed = true
    }
  }
  for (let turn = 0; !closed && turn < 60; turn++) {
    if (p.interrupt && p.interrupt[0] === turn) {
      feed(p.interrupt[1])
      continue
    }
    if (wantBody && (p.bodyFirst || due.length === 0)) {
      wantBody = false
      const m = p.messages[msgNo]
      const part = m?.body[bodyPart++]
      feed(part === undefined ? { bodyEnd: true } : { body: part })
    } else if (due.length > 0) {
      const replies = due.join('')
      due = []
      feed(replies)
    } else if (idle) {
      idle = false
      msgNo++
      rcptNo = 0
      bodyPart = 0
      const m = p.messages[msgNo]
      if (!m) feed({ quit: true })
      else feed({ mail: { from: A, to: Array.from({ length: m.to }, (_, i) => `r${i}@example.com`), size: 1000 } })
    } else break
  }
  return steps
}

function observe(steps: TxStep[], ext: string[], split?: (t: Uint8Array) => Uint8Array[]) {
  const r = replayTx(steps, { ext }, split)
  return {
    actions: r.actions.map((a) => [
      show(a),
      a.type === 'close' ? a.error?.message : a.type === 'done' ? a.result.recipients.map((x) => x.text) : undefined,
    ]),
    transcript: r.tx.transcript,
    state: r.tx.state.name,
  }
}

function splitter(points: number[][]): (turn: Uint8Array) => Uint8Array[] {
  let i = 0
  return (turn) => cutAt(turn, points[i++ % Math.max(points.length, 1)] ?? [])
}

describe('SmtpTransaction transcript properties', () => {
  it('any split of a well-behaved server transcript gives the same actions, transcript and state', () => {
    const endings = new Set<string>()
    fc.assert(
      fc.property(params, fc.array(cuts, { minLength: 1, maxLength: 6 }), (p, points) => {
        const steps = simulate(p)
        for (const a of replayTx(steps, { ext: p.ext }).actions) if (a.type === 'done') checkResult(a.result)
        const whole = observe(steps, p.ext)
        endings.add(String(whole.actions.at(-1)?.[0]).split(' ').slice(0, 2).join(' '))
        const t = whole.transcript.join('\n')
        if (/> BDAT \d+\n> BDAT/.test(t)) endings.add('pipelined BDAT')
        if (/> BDAT \d+\n< [45]/.test(t) && whole.actions.some((a) => /data=[45]/.test(String(a[0])))) endings.add('failed BDAT chunk')
        for (const a of whole.actions) endings.add(String(a[0]).split(' ')[0] ?? '')
        assert.deepEqual(observe(steps, p.ext, splitter(points)), whole)
      }),
      { numRuns: 1500 },
    )
    // not vacuous: normal ends, 421, EOF and timeout all happen; messages complete
    for (const e of [
      'close -',
      'close ERR_SMTP_REJECTED',
      'close ERR_SMTP_EOF',
      'close ERR_SMTP_TIMEOUT',
      'done',
      'needBody',
      'pipelined BDAT',
      'failed BDAT chunk',
    ]) {
      assert.ok(
        [...endings].some((x) => x.startsWith(e)),
        `never saw ${e}`,
      )
    }
  })

  it('DATA or BDAT only after an accepted recipient; never a command inside DATA', () => {
    fc.assert(
      fc.property(params, (p) => {
        const r = replayTx(simulate(p), { ext: p.ext })
        // Match replies to commands in order (RFC 2920 §3.1) and check RFC 5321 §3.3 on the transcript.
        const queue: string[] = []
        let accepted = false
        let inData = false
        for (const line of r.tx.transcript) {
          if (line.startsWith('> ')) {
            const cmd = line.slice(2)
            assert.ok(!inData || cmd === '.', `a command inside DATA: ${cmd}`)
            if (cmd.startsWith('MAIL')) accepted = false
            if (cmd === 'DATA' || cmd.startsWith('BDAT')) assert.ok(accepted, `${cmd} without an accepted recipient`)
            if (cmd === '.') inData = false
            if (cmd !== 'QUIT') queue.push(cmd)
          } else if (/^< \d{3}( |$)/.test(line)) {
            const cmd = queue.shift() ?? 'none'
            const c = Number(line.slice(2, 5))
            if (cmd.startsWith('RCPT') && c >= 200 && c < 300) accepted = true
            if (cmd === 'DATA' && c === 354) inData = true
          }
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('SmtpTransaction credentials property', () => {
  const secret = fc.string({ unit: 'grapheme', minLength: 8, maxLength: 24 }).filter((s) => !s.includes('\0') && !'<redacted>'.includes(s))
  it('neither the password nor the base64 we send appears in transcripts, errors or results, even when echoed', () => {
    fc.assert(
      fc.property(
        secret,
        secret,
        fc.constantFrom<'PLAIN' | 'LOGIN'>('PLAIN', 'LOGIN'),
        fc.constantFrom(235, 535, 454, 421),
        fc.boolean(),
        (username, password, mechanism, final, echo) => {
          const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
          const plain = b64(`\0${username}\0${password}`)
          const secrets = [password, plain, b64(password)]
          const echoed = echo ? ` ${plain} ${b64(username)} ${b64(password)} ${Buffer.from(password, 'utf8').toString('latin1')}` : ''
          const steps: TxStep[] = [{ mail: { from: A, to: ['b@example.com'] } }]
          if (mechanism === 'LOGIN') steps.push(`334 VXNlcm5hbWU6${echoed}\r\n`, `334 UGFzc3dvcmQ6${echoed}\r\n`)
          steps.push(`${final} 2.7.0 result${echoed}\r\n`, '250 ok\r\n', '250 ok\r\n', '354 go\r\n', { bodyEnd: true }, '250 ok\r\n', {
            quit: true,
          })
          const r = replayTx(steps, { ext: ['AUTH PLAIN LOGIN'], auth: { username, password, mechanism } })
          const visible = JSON.stringify({
            t: r.tx.transcript,
            a: r.actions.filter((a) => a.type !== 'send'),
            e: r.actions.map((a) =>
              a.type === 'close' ? [a.error?.message, a.error?.cause] : a.type === 'done' ? a.result.error?.message : '',
            ),
            s: r.tx.state,
          })
          // the server's text is latin1-decoded: the UTF-8 bytes of the password appear as latin1 there
          for (const s of [...secrets, Buffer.from(password, 'utf8').toString('latin1')]) {
            assert.ok(!visible.includes(s) && !visible.includes(JSON.stringify(s).slice(1, -1)), `leaked ${JSON.stringify(s)}`)
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})

/** A result is consistent: accepted 2.x.x, pending 4.x.x, rejected 5.x.x; the lists match the entries. */
function checkResult(r: SmtpTransactionResult): void {
  const cls = { accepted: '2', pending: '4', rejected: '5' } as const
  for (const x of r.recipients) {
    assert.equal(x.enhancedStatus[0], cls[x.status], JSON.stringify(x))
    if (x.code !== undefined && x.status !== 'pending') assert.equal(String(x.code)[0], cls[x.status], JSON.stringify(x))
  }
  for (const k of ['accepted', 'pending', 'rejected'] as const) {
    assert.deepEqual(
      r[k],
      r.recipients.filter((x) => x.status === k).map((x) => x.address),
    )
  }
}

describe('SmtpTransaction random inputs', () => {
  const input: fc.Arbitrary<SmtpTransactionInput> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .constantFrom(
          '250 ok\r\n',
          '354 go\r\n',
          '421 bye\r\n',
          '550 no\r\n',
          '451 later\r\n',
          '235 ok\r\n',
          '334 x\r\n',
          '250-a\r\n250 b\r\n',
        )
        .map((s) => ({ type: 'data' as const, bytes: latin1(s) })),
    },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => ({ type: 'data' as const, bytes })) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 20 }).map((bytes) => ({ type: 'body' as const, bytes })) },
    {
      weight: 2,
      arbitrary: fc.constantFrom<SmtpTransactionInput>(
        { type: 'mail', envelope: { from: A, to: ['b@example.com', 'c@example.com'] } },
        { type: 'bodyEnd' },
        { type: 'quit' },
        { type: 'eof' },
        { type: 'timeout' },
      ),
    },
  )
  it('never a throw, only coded temporary errors; nothing after close but ERR_STATE', () => {
    fc.assert(
      fc.property(
        fc.array(input, { maxLength: 14 }),
        fc.subarray(['PIPELINING', 'CHUNKING', 'AUTH PLAIN']),
        fc.boolean(),
        (inputs, ext, auth) => {
          const tx = newTx({ ext, ...(auth ? { auth: { username: 'u', password: 'pw' } } : {}) })
          let closed = false
          for (const i of inputs) {
            const acts = tx.handle(i)
            if (closed) {
              assert.equal(acts.length, 1)
              assert.ok(acts[0]?.type === 'close' && acts[0].error?.code === 'ERR_STATE')
              continue
            }
            for (const a of acts) {
              assert.ok(!closed, 'an action after close')
              if (a.type === 'done') checkResult(a.result)
              if (a.type === 'close') {
                closed = true
                if (a.error) {
                  assert.ok(a.error instanceof SmtpTlsError)
                  if (a.error.code !== 'ERR_SMTP_AUTH_FAILED') assert.equal(a.error.temporary, true, a.error.message)
                }
              }
            }
          }
        },
      ),
      { numRuns: 3000 },
    )
  })
})
