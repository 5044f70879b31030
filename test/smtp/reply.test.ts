import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatReplyLines, parseReply, ReplyParser, type SmtpReply } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { bytewise, latin1 } from './transcript.js'

/** Feed chunks, collecting every complete reply; rethrows the parser's error. */
function feed(p: ReplyParser, chunks: Uint8Array[]): SmtpReply[] {
  const out: SmtpReply[] = []
  for (const c of chunks) {
    p.push(c)
    for (let r = p.next(); r; r = p.next()) out.push(r)
  }
  return out
}

describe('ReplyParser: good replies (RFC 5321 §4.2)', () => {
  const good: Array<[string, string, { code: number; enhancedStatus?: string; lines: string[] }]> = [
    ['single line', '220 mx.test ESMTP\r\n', { code: 220, lines: ['mx.test ESMTP'] }],
    ['multi-line', '250-mx.test\r\n250-SIZE 100\r\n250 STARTTLS\r\n', { code: 250, lines: ['mx.test', 'SIZE 100', 'STARTTLS'] }],
    ['bare LF line endings (Postfix smtp_get)', '250-a\n250 b\n', { code: 250, lines: ['a', 'b'] }],
    ['mixed CRLF and LF', '250-a\r\n250 b\n', { code: 250, lines: ['a', 'b'] }],
    ['bare code without text (Reply-code [ SP textstring ] CRLF)', '220\r\n', { code: 220, lines: [''] }],
    ['code and a space only', '220 \r\n', { code: 220, lines: [''] }],
    ['empty continuation line', '250-\r\n250 x\r\n', { code: 250, lines: ['', 'x'] }],
    [
      'enhanced status (RFC 3463, RFC 2034 §4)',
      '550 5.7.1 relay denied\r\n',
      { code: 550, enhancedStatus: '5.7.1', lines: ['5.7.1 relay denied'] },
    ],
    ['enhanced status with 3-digit parts', '451 4.123.456 x\r\n', { code: 451, enhancedStatus: '4.123.456', lines: ['4.123.456 x'] }],
    ['enhanced status alone on the line', '220 2.0.0\r\n', { code: 220, enhancedStatus: '2.0.0', lines: ['2.0.0'] }],
    ['enhanced status of the wrong class is not one', '550 4.7.1 x\r\n', { code: 550, lines: ['4.7.1 x'] }],
    ['4-digit subject is not an enhanced status', '550 5.1234.1 x\r\n', { code: 550, lines: ['5.1234.1 x'] }],
    ['enhanced status glued to text is not one', '550 5.7.1x\r\n', { code: 550, lines: ['5.7.1x'] }],
    ['class 3 cannot carry one', '354 3.0.0 go\r\n', { code: 354, lines: ['3.0.0 go'] }],
    ['bare CR inside a line is text', '220 a\rb\r\n', { code: 220, lines: ['a\rb'] }],
    ['CR CR LF keeps one CR', '220 a\r\r\n', { code: 220, lines: ['a\r'] }],
    ['non-ASCII bytes decode byte for byte (latin1)', '220 \xe9\xff\x00\x80\r\n', { code: 220, lines: ['\xe9\xff\x00\x80'] }],
    ['highest code', '559 x\r\n', { code: 559, lines: ['x'] }],
  ]
  for (const [why, wire, want] of good) {
    it(why, () => {
      assert.deepEqual({ ...parseReply(latin1(wire)) }, want)
      assert.deepEqual(
        feed(new ReplyParser(), bytewise(latin1(wire))).map((r) => ({ ...r })),
        [want],
        'byte at a time',
      )
    })
  }

  it('several replies in one chunk come out one by one', () => {
    const p = new ReplyParser()
    p.push(latin1('220 a\r\n250-b\r\n250 c\r\n4'))
    assert.equal(p.next()?.code, 220)
    assert.equal(p.pending, true)
    assert.equal(p.next()?.code, 250)
    assert.equal(p.next(), undefined)
    assert.equal(p.pending, true, 'the "4" is pending')
    p.push(latin1('21 bye\r\n'))
    assert.equal(p.next()?.code, 421)
    assert.equal(p.pending, false)
  })

  it('lines of an incomplete multi-line reply count as pending', () => {
    const p = new ReplyParser()
    p.push(latin1('250-a\r\n'))
    assert.equal(p.next(), undefined)
    assert.equal(p.pending, true)
  })

  it('a chunk may be reused by the caller once next() returned undefined (the partial line was copied)', () => {
    const p = new ReplyParser()
    const chunk = latin1('220 a\r\n250-b\r\n250 c')
    p.push(chunk)
    assert.equal(p.next()?.code, 220)
    assert.equal(p.next(), undefined)
    chunk.fill(0x58) // the driver's buffer pool reuses the memory
    p.push(latin1('d\r\n'))
    assert.deepEqual(p.next()?.lines, ['b', 'cd'])
  })

  it('a long stream through a small buffer (compaction and growth)', () => {
    const p = new ReplyParser()
    const one = `250-${'x'.repeat(300)}\r\n`.repeat(3) + '250 end\r\n'
    const chunks = bytewise(latin1(one.repeat(20)))
    assert.equal(feed(p, chunks).length, 20)
    assert.equal(p.offset, one.length * 20)
  })

  it('formatReplyLines gives the wire lines', () => {
    assert.deepEqual(formatReplyLines(parseReply('250-a\r\n250 b\r\n')), ['250-a', '250 b'])
    assert.deepEqual(formatReplyLines(parseReply('220\r\n')), ['220'])
  })
})

describe('ReplyParser: bad replies are coded errors, 4.5.0, temporary', () => {
  const bad: Array<[string, string, 'ERR_SMTP_REPLY_SYNTAX' | 'ERR_SMTP_REPLY_TOO_LONG', RegExp, number]> = [
    ['no code', 'hello\r\n', 'ERR_SMTP_REPLY_SYNTAX', /does not start with a reply code/, 0],
    ['two digits', '22\r\n', 'ERR_SMTP_REPLY_SYNTAX', /does not start with a reply code/, 0],
    ['first digit 1 (RFC 5321 §4.2: %x32-35)', '199 x\r\n', 'ERR_SMTP_REPLY_SYNTAX', /reply code/, 0],
    ['first digit 6', '600 x\r\n', 'ERR_SMTP_REPLY_SYNTAX', /reply code/, 0],
    ['second digit 6', '260 x\r\n', 'ERR_SMTP_REPLY_SYNTAX', /reply code/, 0],
    ['tab after code', '220\tx\r\n', 'ERR_SMTP_REPLY_SYNTAX', /neither "-" nor a space/, 0],
    ['letter after code', '220x\r\n', 'ERR_SMTP_REPLY_SYNTAX', /neither/, 0],
    ['four-digit code', '2200 x\r\n', 'ERR_SMTP_REPLY_SYNTAX', /neither/, 0],
    ['empty line', '\r\n', 'ERR_SMTP_REPLY_SYNTAX', /reply code/, 0],
    [
      'inconsistent codes (RFC 5321 §4.2.1)',
      '250-a\r\n251 b\r\n',
      'ERR_SMTP_REPLY_SYNTAX',
      /reply code 251 inside a multi-line 250 reply/,
      7,
    ],
    ['second reply broken: position in the stream', '220 ok\r\n25x\r\n', 'ERR_SMTP_REPLY_SYNTAX', /reply code/, 8],
    ['line of 2049 bytes', `220 ${'x'.repeat(2045)}\r\n`, 'ERR_SMTP_REPLY_TOO_LONG', /longer than 2048 bytes/, 0],
    ['line of 2049 bytes with bare LF', `220 ${'x'.repeat(2045)}\n`, 'ERR_SMTP_REPLY_TOO_LONG', /longer than 2048 bytes/, 0],
    ['unterminated long line', `220 ${'x'.repeat(3000)}`, 'ERR_SMTP_REPLY_TOO_LONG', /longer than 2048 bytes/, 0],
    ['501 lines', '250-x\r\n'.repeat(500) + '250 y\r\n', 'ERR_SMTP_REPLY_TOO_LONG', /more than 500 lines/, 3500],
  ]
  for (const [why, wire, code, re, position] of bad) {
    it(why, () => {
      for (const chunks of [[latin1(wire)], bytewise(latin1(wire))]) {
        const p = new ReplyParser()
        const e = throwsCoded(() => feed(p, chunks), code, re)
        assert.equal(e.position, position)
        assert.equal(e.enhancedStatus, '4.5.0')
        assert.equal(e.temporary, true)
        // failed for good: every later call throws the same error
        assert.equal(
          throwsCoded(() => p.next(), code),
          e,
        )
        assert.equal(
          throwsCoded(() => p.push(latin1('220 ok\r\n')), code),
          e,
        )
      }
    })
  }

  it('exactly 2048 bytes is fine, with CRLF or LF', () => {
    const text = 'x'.repeat(2044)
    assert.equal(parseReply(`220 ${text}\r\n`).lines[0], text)
    assert.equal(parseReply(`220 ${text}\n`).lines[0], text)
  })

  it('a partial line of 2048 bytes plus CR waits for its LF', () => {
    const p = new ReplyParser()
    p.push(latin1(`220 ${'x'.repeat(2044)}\r`))
    assert.equal(p.next(), undefined)
    p.push(latin1('\n'))
    assert.equal(p.next()?.code, 220)
  })

  it('limits are options', () => {
    throwsCoded(() => feed(new ReplyParser({ maxLineLength: 10 }), [latin1('220 0123456789\r\n')]), 'ERR_SMTP_REPLY_TOO_LONG')
    assert.equal(feed(new ReplyParser({ maxLineLength: 10 }), [latin1('220 012345\r\n')]).length, 1)
    throwsCoded(
      () => feed(new ReplyParser({ maxLines: 2 }), [latin1('250-a\r\n250-b\r\n250 c\r\n')]),
      'ERR_SMTP_REPLY_TOO_LONG',
      /more than 2 lines/,
    )
    throwsCoded(() => new ReplyParser({ maxLineLength: 1.5 }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => new ReplyParser({ maxLines: -1 }), 'ERR_INVALID_ARGUMENT')
  })

  it('parseReply wants exactly one reply', () => {
    throwsCoded(() => parseReply('250-a\r\n'), 'ERR_SMTP_REPLY_SYNTAX', /incomplete/)
    throwsCoded(() => parseReply('250 a\r\n250 b\r\n'), 'ERR_SMTP_REPLY_SYNTAX', /bytes after the reply/)
  })
})
