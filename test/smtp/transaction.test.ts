import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  SMTP_TRANSACTION_TRANSITIONS,
  SmtpReplyError,
  SmtpTlsError,
  SmtpTransaction,
  type SmtpTransactionAction,
  type SmtpTransactionEvent,
  type SmtpTransactionGuard,
  type SmtpTransactionInput,
  type SmtpTransactionResult,
  type SmtpTransactionStateName,
} from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { bytewise, latin1 } from './transcript.js'
import { caps, FULL, newTx, replayTx, show, type TxOpts, type TxStep } from './transaction-transcript.js'

const A = 'a@example.org'
const B = 'b@example.com'
const C = 'c@example.com'
const OK = '250 2.0.0 Ok\r\n'
const GO = '354 End data with <CR><LF>.<CR><LF>\r\n'
const QUEUED = '250 2.0.0 Ok: queued as 4ABC\r\n'
const QUIT = '> QUIT'
const NEED = 'needBody'
const env = (o: Partial<Parameters<typeof mail>[0]> = {}) => mail({ from: A, to: [B], ...o })
function mail(
  e: {
    from: string
    to: (string | { address: string; notify?: 'NEVER' | ('SUCCESS' | 'FAILURE' | 'DELAY')[]; orcpt?: string })[]
  } & Record<string, unknown>,
): TxStep {
  return { mail: e as never }
}

type Row = [why: string, opts: TxOpts, steps: TxStep[], expected: string[]]

/** Every row is also replayed with each server turn fed one byte at a time: same actions (h11 property). */
function table(rows: Row[], split = true): void {
  for (const [why, opts, steps, expected] of rows) {
    it(why, () => {
      assert.deepEqual(replayTx(steps, opts).shown, expected)
      if (split) assert.deepEqual(replayTx(steps, opts, bytewise).shown, expected, 'byte-at-a-time replay differs')
    })
  }
}

describe('SmtpTransaction: lock-step and PIPELINING (RFC 2920)', () => {
  table([
    [
      'no PIPELINING: one command at a time, DATA, body, final reply, QUIT',
      {},
      [env(), OK, OK, GO, { body: 'Subject: hi\r\n\r\nhello\r\n' }, { bodyEnd: true }, QUEUED, { quit: true }],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        '> DATA',
        NEED,
        '> Subject: hi |  | hello',
        NEED,
        '> .',
        `done ${B}=accepted:250:2.0.0 data=250`,
        QUIT,
        'close - -',
      ],
    ],
    [
      'PIPELINING: MAIL and every RCPT in one write, then DATA after the replies',
      { ext: ['PIPELINING'] },
      [mail({ from: A, to: [B, C] }), OK + OK + OK, GO, { bodyEnd: true, bytes: 'x' }, QUEUED],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com> | RCPT TO:<c@example.com>',
        '> DATA',
        NEED,
        '> x | .',
        `done ${B}=accepted:250:2.0.0 ${C}=accepted:250:2.0.0 data=250`,
      ],
    ],
    [
      'PIPELINING: replies may come one by one',
      { ext: ['PIPELINING'] },
      [mail({ from: A, to: [B, C] }), OK, OK, OK, GO],
      ['> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com> | RCPT TO:<c@example.com>', '> DATA', NEED],
    ],
    [
      'partial acceptance: 250, 450, 550 give accepted, pending, rejected; DATA goes on',
      { ext: ['PIPELINING', 'ENHANCEDSTATUSCODES'] },
      [
        mail({ from: A, to: [B, C, 'd@example.com'] }),
        OK + '250 2.1.5 Ok\r\n' + '450 4.2.0 <c@example.com>: greylisted\r\n' + '550 5.1.1 <d@example.com>: unknown user\r\n',
        GO,
        { bodyEnd: true },
        QUEUED,
      ],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com> | RCPT TO:<c@example.com> | RCPT TO:<d@example.com>',
        '> DATA',
        NEED,
        '> .',
        `done ${B}=accepted:250:2.1.5 ${C}=pending:450:4.2.0 d@example.com=rejected:550:5.1.1 data=250`,
      ],
    ],
    [
      '251 (will forward) counts as accepted (RFC 5321 §4.3.2)',
      {},
      [env(), OK, '251 2.1.5 User not local; will forward\r\n', GO],
      ['> MAIL FROM:<a@example.org>', '> RCPT TO:<b@example.com>', '> DATA', NEED],
    ],
  ])

  table(
    [
      // The server answers commands it has not been sent: the NO STARTTLS (2021) class, for MAIL.
      [
        'no PIPELINING: a reply ahead of RCPT in the same read is a protocol error',
        {},
        [env(), OK + OK],
        ['> MAIL FROM:<a@example.org>', `done ${B}=pending:-:4.5.0 error=ERR_SMTP_PROTOCOL`, 'close ERR_SMTP_PROTOCOL 4.5.0'],
      ],
      [
        'PIPELINING: one reply more than the commands sent',
        { ext: ['PIPELINING'] },
        [env(), OK + OK + OK],
        [
          '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
          `done ${B}=pending:-:4.5.0 error=ERR_SMTP_PROTOCOL`,
          'close ERR_SMTP_PROTOCOL 4.5.0',
        ],
      ],
      [
        'bytes after the 354 (the server did not wait for the body)',
        {},
        [env(), OK, OK, GO + '250 ok\r\n'],
        [
          '> MAIL FROM:<a@example.org>',
          '> RCPT TO:<b@example.com>',
          '> DATA',
          `done ${B}=pending:-:4.5.0 error=ERR_SMTP_PROTOCOL`,
          'close ERR_SMTP_PROTOCOL 4.5.0',
        ],
      ],
    ],
    false,
  )

  table([
    [
      'a reply while the body is being sent (nothing outstanding) is a protocol error',
      {},
      [env(), OK, OK, GO, { body: 'x\r\n' }, '250 ok\r\n'],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        '> DATA',
        NEED,
        '> x',
        NEED,
        `done ${B}=pending:-:4.5.0 error=ERR_SMTP_PROTOCOL`,
        'close ERR_SMTP_PROTOCOL 4.5.0',
      ],
    ],
    ['a reply in idle (before any command)', {}, ['250 ok\r\n'], ['close ERR_SMTP_PROTOCOL 4.5.0']],
    [
      'a 421 in idle (server timeout): close without QUIT',
      {},
      ['421 4.4.2 mx.test Error: timeout exceeded\r\n'],
      ['close ERR_SMTP_REJECTED 4.4.2 (421)'],
    ],
  ])
})

describe('SmtpTransaction: MAIL FROM parameters', () => {
  table([
    ['SIZE offered: SIZE= sent (RFC 1870)', { ext: ['SIZE 1000'] }, [env({ size: 999 })], ['> MAIL FROM:<a@example.org> SIZE=999']],
    ['SIZE offered, no declared size: no SIZE=', { ext: ['SIZE 1000'] }, [env()], ['> MAIL FROM:<a@example.org>']],
    ['SIZE not offered: no SIZE=', {}, [env({ size: 999 })], ['> MAIL FROM:<a@example.org>']],
    [
      'SIZE over the limit: refused before MAIL, 5.3.4, nothing sent',
      { ext: ['SIZE 1000'] },
      [env({ size: 1001, to: [B, C] })],
      [`done ${B}=rejected:-:5.3.4 ${C}=rejected:-:5.3.4 error=ERR_SMTP_MESSAGE_TOO_BIG`],
    ],
    [
      'SIZE 0 means no fixed limit (RFC 1870 §4)',
      { ext: ['SIZE 0'] },
      [env({ size: 1e9 })],
      ['> MAIL FROM:<a@example.org> SIZE=1000000000'],
    ],
    ['SIZE without a number: no limit known', { ext: ['SIZE'] }, [env({ size: 5 })], ['> MAIL FROM:<a@example.org> SIZE=5']],
    [
      '8BITMIME offered: BODY=8BITMIME (RFC 6152)',
      { ext: ['8BITMIME'] },
      [env({ body: '8BITMIME' })],
      ['> MAIL FROM:<a@example.org> BODY=8BITMIME'],
    ],
    ['8BITMIME offered: BODY=7BIT', { ext: ['8BITMIME'] }, [env({ body: '7BIT' })], ['> MAIL FROM:<a@example.org> BODY=7BIT']],
    ['8BITMIME not offered, 7BIT: no BODY=', {}, [env({ body: '7BIT' })], ['> MAIL FROM:<a@example.org>']],
    [
      '8BITMIME not offered, body is 8-bit: refused 5.6.3 (no conversion here)',
      {},
      [env({ body: '8BITMIME' })],
      [`done ${B}=rejected:-:5.6.3 error=ERR_SMTP_EXTENSION_MISSING`],
    ],
    [
      'SMTPUTF8 offered, non-ASCII recipient: SMTPUTF8 on MAIL, UTF-8 on the wire (RFC 6531)',
      { ext: ['SMTPUTF8'] },
      [mail({ from: A, to: ['用户@例子.广告'] })],
      ['> MAIL FROM:<a@example.org> SMTPUTF8'],
    ],
    ['SMTPUTF8 offered, all ASCII: no SMTPUTF8', { ext: ['SMTPUTF8'] }, [env()], ['> MAIL FROM:<a@example.org>']],
    ['SMTPUTF8 asked for by the message', { ext: ['SMTPUTF8'] }, [env({ smtputf8: true })], ['> MAIL FROM:<a@example.org> SMTPUTF8']],
    [
      'SMTPUTF8 missing: the non-ASCII recipient fails 5.6.7, never sent; the others go',
      {},
      [mail({ from: A, to: ['jörg@example.com', B] }), OK, OK, GO],
      ['> MAIL FROM:<a@example.org>', '> RCPT TO:<b@example.com>', '> DATA', NEED],
    ],
    [
      'SMTPUTF8 missing, every recipient non-ASCII: nothing sent',
      {},
      [mail({ from: A, to: ['jörg@example.com'] })],
      ['done jörg@example.com=rejected:-:5.6.7'],
    ],
    [
      'SMTPUTF8 missing, non-ASCII sender: the message fails 5.6.7',
      {},
      [mail({ from: 'jörg@example.org', to: [B] })],
      [`done ${B}=rejected:-:5.6.7 error=ERR_SMTP_EXTENSION_MISSING`],
    ],
    [
      'SMTPUTF8 missing, the message needs it: 5.6.7',
      {},
      [env({ smtputf8: true })],
      [`done ${B}=rejected:-:5.6.7 error=ERR_SMTP_EXTENSION_MISSING`],
    ],
    [
      'REQUIRETLS offered on a verified session: REQUIRETLS (RFC 8689 §4.1)',
      { ext: ['REQUIRETLS'], verified: true },
      [env({ requireTls: true })],
      ['> MAIL FROM:<a@example.org> REQUIRETLS'],
    ],
    [
      'REQUIRETLS asked, session only encrypted (not verified): 5.7.30, nothing sent',
      { ext: ['REQUIRETLS'], verified: false },
      [env({ requireTls: true })],
      [`done ${B}=rejected:-:5.7.30 error=ERR_REQUIRETLS`],
    ],
    [
      'REQUIRETLS asked, verified but not offered: 5.7.30',
      { verified: true },
      [env({ requireTls: true })],
      [`done ${B}=rejected:-:5.7.30 error=ERR_REQUIRETLS`],
    ],
    ['REQUIRETLS offered but not asked: not sent', { ext: ['REQUIRETLS'], verified: true }, [env()], ['> MAIL FROM:<a@example.org>']],
    [
      'DSN offered: RET, ENVID (xtext), NOTIFY, ORCPT (RFC 3461)',
      { ext: ['DSN', 'PIPELINING'] },
      [
        mail({
          from: A,
          to: [
            { address: B, notify: ['SUCCESS', 'FAILURE'], orcpt: 'b+x=y@example.com' },
            { address: C, notify: 'NEVER' },
          ],
          dsn: { ret: 'HDRS', envid: 'QQ 1+2=3' },
        }),
      ],
      [
        '> MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+201+2B2+3D3 | RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx+3Dy@example.com | RCPT TO:<c@example.com> NOTIFY=NEVER',
      ],
    ],
    [
      'DSN ORCPT non-ASCII: utf-8-addr-xtext (RFC 6533 §3)',
      { ext: ['DSN', 'SMTPUTF8', 'PIPELINING'] },
      [mail({ from: A, to: [{ address: B, orcpt: 'jö+rg@example.com' }] })],
      ['> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com> ORCPT=utf-8;j\\x{F6}\\x{2B}rg@example.com'],
    ],
    [
      'DSN not offered: no DSN parameters',
      { ext: ['PIPELINING'] },
      [mail({ from: A, to: [{ address: B, notify: ['DELAY'], orcpt: B }], dsn: { ret: 'FULL', envid: 'x' } })],
      ['> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>'],
    ],
    [
      'everything at once on a Postfix-like server',
      { ext: FULL.filter((e) => !e.startsWith('AUTH')), verified: true },
      [mail({ from: A, to: [B], size: 100, body: '8BITMIME', requireTls: true, smtputf8: true, dsn: { ret: 'FULL' } })],
      ['> MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=FULL | RCPT TO:<b@example.com>'],
    ],
    ['the null sender <> (bounces)', {}, [mail({ from: '', to: [B] })], ['> MAIL FROM:<>']],
    [
      'a recipient with CRLF (command injection) is rejected 5.1.3, never sent',
      {},
      [mail({ from: A, to: ['x@y>\r\nRCPT TO:<evil@z', B] }), OK],
      ['> MAIL FROM:<a@example.org>', '> RCPT TO:<b@example.com>'],
    ],
    [
      'a sender with a space: 5.1.7, nothing sent',
      {},
      [mail({ from: 'a b@example.org', to: [B] })],
      [`done ${B}=rejected:-:5.1.7 error=ERR_SMTP_BAD_ADDRESS`],
    ],
  ])

  it('SMTPUTF8 missing: no byte above 0x7f is ever sent', () => {
    const r = replayTx([mail({ from: A, to: ['jörg@example.com', '用户@例子.广告', B] }), OK, OK, GO], { ext: ['PIPELINING'] })
    for (const a of r.actions) if (a.type === 'send') assert.ok(a.bytes.every((b) => b < 0x80))
    const done = replayTx([mail({ from: A, to: ['jörg@example.com', B] }), OK, '550 no\r\n']).actions.find((a) => a.type === 'done')
    assert.ok(done?.type === 'done')
    assert.deepEqual(
      done.result.recipients.map((x) => [x.status, x.enhancedStatus, x.code]),
      [
        ['rejected', '5.6.7', undefined],
        ['rejected', '5.0.0', 550],
      ],
    )
    assert.match(done.result.recipients[0]?.text ?? '', /SMTPUTF8 is required/)
  })

  it('non-ASCII addresses go out as UTF-8 with SMTPUTF8', () => {
    const a = newTx({ ext: ['SMTPUTF8'] }).handle({ type: 'mail', envelope: { from: 'jörg@example.org', to: [B] } })[0]
    assert.ok(a?.type === 'send')
    assert.equal(Buffer.from(a.bytes).toString('utf8'), 'MAIL FROM:<jörg@example.org> SMTPUTF8\r\n')
  })
})

describe('SmtpTransaction: replies to MAIL and RCPT', () => {
  table([
    [
      '5xx to MAIL FROM: permanent for the message, no RCPT',
      {},
      [mail({ from: A, to: [B, C] }), '553 5.7.1 <a@example.org>: Sender address rejected\r\n'],
      ['> MAIL FROM:<a@example.org>', `done ${B}=rejected:553:5.7.1 ${C}=rejected:553:5.7.1 error=ERR_SMTP_REJECTED`],
    ],
    [
      '4xx to MAIL FROM: temporary',
      {},
      [env(), '451 4.3.0 try later\r\n'],
      ['> MAIL FROM:<a@example.org>', `done ${B}=pending:451:4.3.0 error=ERR_SMTP_REJECTED`],
    ],
    [
      'PIPELINING, MAIL refused: the RCPT replies (503) are consumed, the MAIL reply decides',
      { ext: ['PIPELINING'] },
      [mail({ from: A, to: [B, C] }), '550 5.7.1 no\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n', { quit: true }],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com> | RCPT TO:<c@example.com>',
        `done ${B}=rejected:550:5.7.1 ${C}=rejected:550:5.7.1 error=ERR_SMTP_REJECTED`,
        QUIT,
        'close - -',
      ],
    ],
    [
      'no recipient accepted: no DATA; QUIT',
      {},
      [mail({ from: A, to: [B, C] }), OK, '550 5.1.1 no\r\n', '450 4.2.1 later\r\n', { quit: true }],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        '> RCPT TO:<c@example.com>',
        `done ${B}=rejected:550:5.1.1 ${C}=pending:450:4.2.1`,
        QUIT,
        'close - -',
      ],
    ],
    [
      'no recipient accepted: no DATA; the next message starts with RSET',
      {},
      [env(), OK, '550 5.1.1 no\r\n', env(), OK, OK, OK],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        `done ${B}=rejected:550:5.1.1`,
        '> RSET',
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        '> DATA',
      ],
    ],
    [
      'without ENHANCEDSTATUSCODES the status comes from the code',
      {},
      [env(), OK, '550 no such user\r\n'],
      ['> MAIL FROM:<a@example.org>', '> RCPT TO:<b@example.com>', `done ${B}=rejected:550:5.0.0`],
    ],
    [
      'an unexpected reply (354 to MAIL): QUIT, protocol error',
      {},
      [env(), GO],
      ['> MAIL FROM:<a@example.org>', QUIT, `done ${B}=pending:354:4.5.0 error=ERR_SMTP_PROTOCOL`, 'close ERR_SMTP_PROTOCOL 4.5.0 (354)'],
    ],
  ])
})

describe('SmtpTransaction: DATA and BDAT final replies', () => {
  const pre: TxStep[] = [mail({ from: A, to: [B, C] }), OK, OK, '450 4.2.0 later\r\n']
  const head = ['> MAIL FROM:<a@example.org>', '> RCPT TO:<b@example.com>', '> RCPT TO:<c@example.com>', '> DATA']
  table([
    [
      'final 250: queue id text kept',
      {},
      [...pre, GO, { bodyEnd: true }, QUEUED],
      [...head, NEED, '> .', `done ${B}=accepted:250:2.0.0 ${C}=pending:450:4.2.0 data=250`],
    ],
    [
      'final 5xx: every accepted recipient is rejected with that reply',
      {},
      [...pre, GO, { bodyEnd: true }, '554 5.7.1 spam\r\n'],
      [...head, NEED, '> .', `done ${B}=rejected:554:5.7.1 ${C}=pending:450:4.2.0 data=554 error=ERR_SMTP_REJECTED`],
    ],
    [
      'final 4xx: every accepted recipient is pending',
      {},
      [...pre, GO, { bodyEnd: true }, '451 4.3.0 queue full\r\n'],
      [...head, NEED, '> .', `done ${B}=pending:451:4.3.0 ${C}=pending:450:4.2.0 data=451 error=ERR_SMTP_REJECTED`],
    ],
    [
      'DATA refused with 554 (no valid recipients): accepted become rejected',
      {},
      [...pre, '554 5.5.1 Error: no valid recipients\r\n'],
      [...head, `done ${B}=rejected:554:5.5.1 ${C}=pending:450:4.2.0 data=554 error=ERR_SMTP_REJECTED`],
    ],
    [
      'BDAT: each chunk, then BDAT n LAST; no DATA',
      { ext: ['CHUNKING'] },
      [env(), OK, OK, { body: '.a\r\n' }, OK, { body: 'b' }, OK, { bodyEnd: true }, QUEUED],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        NEED,
        '> BDAT 4 | .a',
        NEED,
        '> BDAT 1 | b',
        NEED,
        '> BDAT 2 LAST | ',
        `done ${B}=accepted:250:2.0.0 data=250`,
      ],
    ],
    [
      'BDAT: an empty chunk sends nothing; bodyEnd with bytes is one BDAT LAST',
      { ext: ['CHUNKING'] },
      [env(), OK, OK, { body: '' }, { bodyEnd: true, bytes: 'x\r\n' }, QUEUED],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        NEED,
        NEED,
        '> BDAT 3 LAST | x',
        `done ${B}=accepted:250:2.0.0 data=250`,
      ],
    ],
    [
      'BDAT with PIPELINING: the next chunk is asked for at once; replies come while the caller reads',
      { ext: ['CHUNKING', 'PIPELINING'] },
      [env(), OK + OK, { body: 'a\r\n' }, { body: 'b\r\n' }, OK, { body: 'c' }, OK + OK, { bodyEnd: true }, QUEUED],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
        NEED,
        '> BDAT 3 | a',
        NEED,
        '> BDAT 3 | b',
        NEED,
        '> BDAT 1 | c',
        NEED,
        '> BDAT 2 LAST | ',
        `done ${B}=accepted:250:2.0.0 data=250`,
      ],
    ],
    [
      'BDAT with PIPELINING: chunk replies still due when LAST is sent are read before the final one',
      { ext: ['CHUNKING', 'PIPELINING'] },
      [env(), OK + OK, { body: 'a\r\n' }, { body: 'b\r\n' }, { bodyEnd: true }, OK + OK + QUEUED],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
        NEED,
        '> BDAT 3 | a',
        NEED,
        '> BDAT 3 | b',
        NEED,
        '> BDAT 0 LAST',
        `done ${B}=accepted:250:2.0.0 data=250`,
      ],
    ],
    [
      'BDAT with PIPELINING: a failed chunk fails the message even if the last one is accepted (RFC 3030 §2)',
      { ext: ['CHUNKING', 'PIPELINING'] },
      [env(), OK + OK, { body: 'a\r\n' }, { bodyEnd: true }, '552 5.3.4 too big\r\n' + QUEUED],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
        NEED,
        '> BDAT 3 | a',
        NEED,
        '> BDAT 0 LAST',
        `done ${B}=rejected:552:5.3.4 data=552 error=ERR_SMTP_REJECTED`,
      ],
    ],
    [
      'BDAT with PIPELINING: after a failed chunk the next input is dropped, nothing more is sent',
      { ext: ['CHUNKING', 'PIPELINING'] },
      [env(), OK + OK, { body: 'a\r\n' }, { body: 'b\r\n' }, '452 4.3.1 full\r\n', { body: 'c\r\n' }, '503 5.5.1 no\r\n', { quit: true }],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
        NEED,
        '> BDAT 3 | a',
        NEED,
        '> BDAT 3 | b',
        NEED,
        `done ${B}=pending:452:4.3.1 data=452 error=ERR_SMTP_REJECTED`,
        QUIT,
        'close - -',
      ],
    ],
    [
      'BDAT with PIPELINING: a failed chunk with nothing else due ends the message at the next input',
      { ext: ['CHUNKING', 'PIPELINING'] },
      [env(), OK + OK, { body: 'a\r\n' }, '554 5.6.0 bad\r\n', { bodyEnd: true }],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
        NEED,
        '> BDAT 3 | a',
        NEED,
        `done ${B}=rejected:554:5.6.0 data=554 error=ERR_SMTP_REJECTED`,
      ],
    ],
    [
      'BDAT chunk refused: the message fails, accepted recipients follow the reply',
      { ext: ['CHUNKING'] },
      [env(), OK, OK, { body: 'a\r\n' }, '552 5.3.4 too big\r\n'],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        NEED,
        '> BDAT 3 | a',
        `done ${B}=rejected:552:5.3.4 data=552 error=ERR_SMTP_REJECTED`,
      ],
    ],
  ])
})

describe('SmtpTransaction: 421, EOF, timeout (temporary, 4.x.x)', () => {
  const r421 = '421 4.3.2 Service shutting down\r\n'
  const lock: TxStep[] = [env(), OK, OK, GO, { body: 'x\r\n' }, { bodyEnd: true }]
  const cases: Array<[string, number]> = [
    ['MAIL', 1],
    ['RCPT', 2],
    ['DATA', 3],
    ['the body (unsolicited)', 5],
    ['the final reply', 6],
  ]
  for (const [at, n] of cases) {
    it(`421 in answer to ${at}: done with every undecided or accepted recipient pending, close without QUIT`, () => {
      const r = replayTx([...lock.slice(0, n), r421])
      const last = r.shown.slice(-2)
      assert.deepEqual(last, [`done ${B}=pending:421:4.3.2 error=ERR_SMTP_REJECTED`, 'close ERR_SMTP_REJECTED 4.3.2 (421)'])
      assert.ok(!r.shown.includes(QUIT))
      const close = r.actions.at(-1)
      assert.ok(close?.type === 'close' && close.error instanceof SmtpReplyError && close.error.temporary)
    })
  }
  for (const [input, code] of [
    [{ eof: true }, 'ERR_SMTP_EOF'],
    [{ timeout: true }, 'ERR_SMTP_TIMEOUT'],
  ] as const) {
    for (let n = 1; n <= lock.length; n++) {
      it(`${Object.keys(input)[0]} after ${n} steps: pending 4.4.2, close ${code}`, () => {
        const r = replayTx([...lock.slice(0, n), input])
        assert.deepEqual(r.shown.slice(-2), [`done ${B}=pending:-:4.4.2 error=${code}`, `close ${code} 4.4.2`])
      })
    }
    it(`${Object.keys(input)[0]} in idle: close only`, () => {
      assert.deepEqual(replayTx([input]).shown, [`close ${code} 4.4.2`])
    })
  }
  it('EOF mid-DATA keeps the decisions made so far', () => {
    const r = replayTx([mail({ from: A, to: [B, C] }), OK, OK, '550 5.1.1 no\r\n', GO, { body: 'x' }, { eof: true }])
    assert.equal(r.shown.at(-2), `done ${B}=pending:-:4.4.2 ${C}=rejected:550:5.1.1 error=ERR_SMTP_EOF`)
  })
  it('quit in the middle of a message: no QUIT inside DATA, ERR_ABORTED, recipients pending', () => {
    const r = replayTx([env(), OK, OK, GO, { body: 'x' }, { quit: true }])
    assert.deepEqual(r.shown.slice(-2), [`done ${B}=pending:-:4.3.0 error=ERR_ABORTED`, 'close ERR_ABORTED 4.3.0'])
  })
})

describe('SmtpTransaction: RSET between messages on a reused session', () => {
  table([
    [
      'two messages, lock-step: the second starts with RSET',
      {},
      [env(), OK, OK, GO, { bodyEnd: true }, QUEUED, mail({ from: A, to: [C] }), OK, OK, OK, GO, { bodyEnd: true }, QUEUED, { quit: true }],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        '> DATA',
        NEED,
        '> .',
        `done ${B}=accepted:250:2.0.0 data=250`,
        '> RSET',
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<c@example.com>',
        '> DATA',
        NEED,
        '> .',
        `done ${C}=accepted:250:2.0.0 data=250`,
        QUIT,
        'close - -',
      ],
    ],
    [
      'two messages, PIPELINING: RSET goes in the same write as MAIL and RCPT',
      { ext: ['PIPELINING'] },
      [env(), OK + OK, GO, { bodyEnd: true }, QUEUED, env(), OK + OK + OK],
      [
        '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
        '> DATA',
        NEED,
        '> .',
        `done ${B}=accepted:250:2.0.0 data=250`,
        '> RSET | MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>',
        '> DATA',
      ],
    ],
    [
      'RSET refused: the session is unusable, QUIT',
      {},
      [env(), OK, '550 no\r\n', env(), '500 5.5.1 what\r\n'],
      [
        '> MAIL FROM:<a@example.org>',
        '> RCPT TO:<b@example.com>',
        `done ${B}=rejected:550:5.0.0`,
        '> RSET',
        QUIT,
        `done ${B}=pending:500:4.5.1 error=ERR_SMTP_REJECTED`,
        'close ERR_SMTP_REJECTED 4.5.1 (500)',
      ],
    ],
    [
      'a message refused locally sends no RSET before the next',
      { ext: ['SIZE 10'] },
      [env({ size: 11 }), env()],
      [`done ${B}=rejected:-:5.3.4 error=ERR_SMTP_MESSAGE_TOO_BIG`, '> MAIL FROM:<a@example.org>'],
    ],
  ])
})

describe('SmtpTransaction: AUTH for relays (RFC 4954)', () => {
  const auth = { username: 'relayuser', password: 's3cr3t-pw' }
  const plain = Buffer.from('\0relayuser\0s3cr3t-pw').toString('base64')
  const u = Buffer.from('relayuser').toString('base64')
  const p = Buffer.from('s3cr3t-pw').toString('base64')
  const ext = ['AUTH PLAIN LOGIN', 'PIPELINING']
  it('AUTH PLAIN with an initial response, then the pipelined envelope', () => {
    const r = replayTx([env(), '235 2.7.0 Authentication successful\r\n', OK + OK], { ext, auth })
    assert.deepEqual(r.shown, [`> AUTH PLAIN ${plain}`, '> MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>', '> DATA'])
    assert.deepEqual(r.tx.transcript.slice(0, 2), ['> AUTH PLAIN <redacted>', '< 235 2.7.0 Authentication successful'])
  })
  it('AUTH LOGIN when asked for (or when PLAIN is not offered)', () => {
    for (const o of [
      { ext, auth: { ...auth, mechanism: 'LOGIN' as const } },
      { ext: ['AUTH LOGIN'], auth },
    ]) {
      const r = replayTx([env(), '334 VXNlcm5hbWU6\r\n', '334 UGFzc3dvcmQ6\r\n', '235 2.7.0 ok\r\n'], o)
      assert.deepEqual(r.shown.slice(0, 4), [
        '> AUTH LOGIN',
        `> ${u}`,
        `> ${p}`,
        '> MAIL FROM:<a@example.org>' + (o.ext.includes('PIPELINING') ? ' | RCPT TO:<b@example.com>' : ''),
      ])
      assert.deepEqual(r.tx.transcript.slice(0, 6), [
        '> AUTH LOGIN',
        '< 334 VXNlcm5hbWU6',
        '> <redacted>',
        '< 334 UGFzc3dvcmQ6',
        '> <redacted>',
        '< 235 2.7.0 ok',
      ])
    }
  })
  it('AUTH only once per session', () => {
    const r = replayTx([env(), '235 ok\r\n', OK + '550 no\r\n', env(), OK + OK + OK], { ext, auth })
    assert.equal(r.shown.filter((s) => s.startsWith('> AUTH')).length, 1)
    assert.equal(r.shown.at(-2), '> RSET | MAIL FROM:<a@example.org> | RCPT TO:<b@example.com>')
  })
  it('535: permanent auth failure, coded, QUIT; the message fails for good', () => {
    const r = replayTx([env(), '535 5.7.8 Error: authentication failed\r\n'], { ext, auth })
    assert.deepEqual(r.shown, [
      `> AUTH PLAIN ${plain}`,
      QUIT,
      `done ${B}=rejected:535:5.7.8 error=ERR_SMTP_AUTH_FAILED`,
      'close ERR_SMTP_AUTH_FAILED 5.7.8 (535)',
    ])
    const close = r.actions.at(-1)
    assert.ok(close?.type === 'close' && close.error?.temporary === false)
  })
  it('454: temporary auth failure', () => {
    const r = replayTx([env(), '454 4.7.0 Temporary authentication failure\r\n'], { ext, auth })
    const close = r.actions.at(-1)
    assert.ok(close?.type === 'close' && close.error?.code === 'ERR_SMTP_AUTH_FAILED' && close.error.temporary)
  })
  it('without TLS: refused before anything is sent, coded', () => {
    const r = replayTx([env()], { ext, auth, secure: false })
    assert.deepEqual(r.shown, [QUIT, `done ${B}=pending:-:4.7.0 error=ERR_SMTP_AUTH_INSECURE`, 'close ERR_SMTP_AUTH_INSECURE 4.7.0'])
  })
  it('no common mechanism: ERR_SMTP_AUTH_UNAVAILABLE', () => {
    for (const o of [
      { ext: ['AUTH CRAM-MD5'], auth },
      { ext: [], auth },
      { ext: ['AUTH PLAIN'], auth: { ...auth, mechanism: 'LOGIN' as const } },
    ]) {
      const r = replayTx([env()], o)
      assert.equal(r.shown.at(-1), 'close ERR_SMTP_AUTH_UNAVAILABLE 4.7.0')
    }
  })
  it('a 334 to AUTH PLAIN is a protocol error without QUIT (QUIT would be a SASL response)', () => {
    const r = replayTx([env(), '334 \r\n'], { ext, auth })
    assert.deepEqual(r.shown.slice(-1), ['close ERR_SMTP_PROTOCOL 4.5.0 (334)'])
    assert.ok(!r.shown.includes(QUIT))
  })
  it('a server that echoes the credentials: redacted in transcript, errors and results', () => {
    const r = replayTx([env(), `535 5.7.8 bad ${plain} for relayuser pw s3cr3t-pw\r\n`], { ext, auth })
    const text = JSON.stringify([
      r.tx.transcript,
      r.actions.filter((a) => a.type !== 'send'),
      (r.actions.at(-1) as { error: Error }).error.message,
    ])
    assert.ok(!text.includes('s3cr3t-pw') && !text.includes(plain), text)
    assert.match(text, /<redacted>/)
  })
})

describe('SmtpTransaction: invalid inputs and final state', () => {
  const invalid: Array<[string, unknown]> = [
    ['null', null],
    ['unknown type', { type: 'bytes' }],
    ['data with a string', { type: 'data', bytes: 'x' }],
    ['mail without envelope', { type: 'mail' }],
    ['mail with an empty recipient list', { type: 'mail', envelope: { from: A, to: [] } }],
    ['mail with a numeric sender', { type: 'mail', envelope: { from: 1, to: [B] } }],
    ['mail with a bad size', { type: 'mail', envelope: { from: A, to: [B], size: -1 } }],
    ['mail with bad NOTIFY', { type: 'mail', envelope: { from: A, to: [{ address: B, notify: ['NEVER', 'SUCCESS'] }] } }],
    ['mail with a bad RET', { type: 'mail', envelope: { from: A, to: [B], dsn: { ret: 'ALL' } } }],
  ]
  for (const [why, input] of invalid) {
    it(`invalid input (${why}): close ERR_INVALID_ARGUMENT, never a throw`, () => {
      assert.deepEqual(
        newTx()
          .handle(input as SmtpTransactionInput)
          .map(show),
        ['close ERR_INVALID_ARGUMENT 4.3.0'],
      )
    })
  }
  it('body before needBody, mail during a message: ERR_STATE', () => {
    assert.deepEqual(
      newTx()
        .handle({ type: 'body', bytes: latin1('x') })
        .map(show),
      ['close ERR_STATE 4.3.0'],
    )
    assert.deepEqual(replayTx([env(), env()]).shown.slice(-2), [`done ${B}=pending:-:4.3.0 error=ERR_STATE`, 'close ERR_STATE 4.3.0'])
  })
  it('after close every call returns exactly one close with ERR_STATE (cause: the original error)', () => {
    const r = replayTx([{ eof: true }])
    const s = r.tx.state
    assert.ok(s.name === 'closed' && s.error?.code === 'ERR_SMTP_EOF')
    for (const i of [
      { type: 'eof' },
      { type: 'quit' },
      { type: 'data', bytes: latin1('250 x\r\n') },
      { type: 'mail', envelope: { from: A, to: [B] } },
    ] as SmtpTransactionInput[]) {
      const acts = r.tx.handle(i)
      assert.equal(acts.length, 1)
      assert.ok(acts[0]?.type === 'close' && acts[0].error?.code === 'ERR_STATE' && acts[0].error.cause === s.error)
    }
  })
  it('oversized and malformed replies: coded, temporary', () => {
    assert.deepEqual(replayTx([env(), `250 ${'x'.repeat(3000)}\r\n`]).shown.at(-1), 'close ERR_SMTP_REPLY_TOO_LONG 4.5.0')
    assert.deepEqual(replayTx([env(), 'hello\r\n']).shown.at(-1), 'close ERR_SMTP_REPLY_SYNTAX 4.5.0')
  })
  const bad: Array<[string, unknown]> = [
    ['no options', undefined],
    ['no capabilities', { secure: true }],
    ['capabilities that are not EhloCapabilities', { capabilities: { extensions: new Map() }, secure: true }],
    ['secure not boolean', { capabilities: caps(), secure: 'yes' }],
    ['verified without TLS', { capabilities: caps(), secure: false, verified: true }],
    ['auth with NUL', { capabilities: caps(), secure: true, auth: { username: 'a\0b', password: 'x' } }],
    ['auth mechanism unknown', { capabilities: caps(), secure: true, auth: { username: 'a', password: 'x', mechanism: 'CRAM-MD5' } }],
    ['maxLineLength too small', { capabilities: caps(), secure: true, maxLineLength: 100 }],
  ]
  for (const [why, opts] of bad) {
    it(`constructor: ${why} → ERR_INVALID_ARGUMENT`, () => {
      const e = throwsCoded(() => new SmtpTransaction(opts as ConstructorParameters<typeof SmtpTransaction>[0]), 'ERR_INVALID_ARGUMENT')
      assert.equal(e.temporary, false)
    })
  }
  it('the auth options are not exposed on the instance', () => {
    const tx = newTx({ auth: { username: 'u', password: 'hunter2' } })
    assert.ok(!JSON.stringify(tx).includes('hunter2'))
    assert.ok(!Object.values(tx).some((v) => JSON.stringify(v ?? null).includes('hunter2')))
  })
})

describe('SmtpTransaction: what the driver gets', () => {
  it('done carries replies, per-recipient code, status and text; accepted/pending/rejected lists', () => {
    const r = replayTx([
      mail({ from: A, to: [B, C] }),
      '250 2.1.0 Ok\r\n',
      '250 2.1.5 Ok\r\n',
      '550 5.1.1 <c@example.com>: User unknown\r\n',
      GO,
      { bodyEnd: true },
      QUEUED,
    ])
    const done = r.actions.find((a): a is Extract<SmtpTransactionAction, { type: 'done' }> => a.type === 'done')
    assert.ok(done)
    const res: SmtpTransactionResult = done.result
    assert.deepEqual(res.accepted, [B])
    assert.deepEqual(res.rejected, [C])
    assert.deepEqual(res.pending, [])
    assert.equal(res.mailReply?.enhancedStatus, '2.1.0')
    assert.equal(res.dataReply?.lines[0], '2.0.0 Ok: queued as 4ABC')
    assert.deepEqual(res.recipients[1], {
      address: C,
      status: 'rejected',
      code: 550,
      enhancedStatus: '5.1.1',
      text: '5.1.1 <c@example.com>: User unknown',
      reply: { code: 550, enhancedStatus: '5.1.1', lines: ['5.1.1 <c@example.com>: User unknown'] },
    })
    assert.equal(res.error, undefined)
  })
  it('MAIL 5xx gives a permanent SmtpReplyError, 4xx a temporary one', () => {
    for (const [reply, temporary] of [
      ['550 5.7.1 no\r\n', false],
      ['451 4.7.1 later\r\n', true],
    ] as const) {
      const done = replayTx([env(), reply]).actions.find((a) => a.type === 'done')
      assert.ok(done?.type === 'done' && done.result.error instanceof SmtpReplyError)
      assert.equal(done.result.error.temporary, temporary)
    }
  })
  it('every session-ending error is temporary', () => {
    for (const steps of [
      [env(), '421 bye\r\n'],
      [env(), { eof: true }],
      [env(), { timeout: true }],
      [env(), OK + OK],
      [env(), 'xx\r\n'],
    ] as TxStep[][]) {
      const close = replayTx(steps).actions.at(-1)
      assert.ok(close?.type === 'close' && close.error instanceof SmtpTlsError && close.error.temporary, JSON.stringify(steps))
      assert.match(close.error.enhancedStatus ?? '', /^4\./)
    }
  })
  it('a transcript without bodies', () => {
    const r = replayTx([env(), OK, OK, GO, { body: 'secret body\r\n' }, { bodyEnd: true }, QUEUED, { quit: true }])
    assert.deepEqual(r.tx.transcript, [
      '> MAIL FROM:<a@example.org>',
      '< 250 2.0.0 Ok',
      '> RCPT TO:<b@example.com>',
      '< 250 2.0.0 Ok',
      '> DATA',
      '< 354 End data with <CR><LF>.<CR><LF>',
      '> .',
      '< 250 2.0.0 Ok: queued as 4ABC',
      '> QUIT',
    ])
  })
  it('the transcript keeps the last 1000 lines of a long session and counts the rest', () => {
    const steps: TxStep[] = []
    for (let k = 0; k < 150; k++) steps.push(env(), ...(k > 0 ? [OK] : []), OK, OK, GO, { bodyEnd: true }, QUEUED)
    const r = replayTx(steps)
    assert.equal(r.actions.filter((a) => a.type === 'done').length, 150)
    const t = r.tx.transcript
    assert.ok(t.length <= 1000 && t.length > 500, String(t.length))
    const m = /^… (\d+) earlier lines$/.exec(t[0] ?? '')
    assert.ok(m, t[0])
    // 8 lines for the first message, 10 (with RSET) for each other one
    assert.equal(Number(m[1]) + t.length - 1, 8 + 149 * 10)
    assert.equal(t.at(-1), '< 250 2.0.0 Ok: queued as 4ABC')
  })

  it('state names what it waits for', () => {
    const tx = newTx()
    const seen: string[] = [tx.state.name]
    for (const s of [env(), OK, OK, GO, { body: 'x' }, { bodyEnd: true }, QUEUED] as TxStep[]) {
      replayTxStep(tx, s)
      seen.push(tx.state.name)
    }
    assert.deepEqual(seen, ['idle', 'awaitMail', 'awaitRcpt', 'awaitData', 'awaitBody', 'awaitBody', 'awaitFinal', 'idle'])
  })
})

function replayTxStep(tx: SmtpTransaction, s: TxStep): void {
  if (typeof s === 'string') tx.handle({ type: 'data', bytes: latin1(s) })
  else if ('mail' in s) tx.handle({ type: 'mail', envelope: s.mail })
  else if ('body' in s) tx.handle({ type: 'body', bytes: latin1(s.body) })
  else if ('bodyEnd' in s) tx.handle({ type: 'bodyEnd' })
}

describe('SMTP_TRANSACTION_TRANSITIONS', () => {
  const live: SmtpTransactionStateName[] = [
    'idle',
    'awaitAuth',
    'awaitAuthUser',
    'awaitAuthPassword',
    'awaitRset',
    'awaitMail',
    'awaitRcpt',
    'awaitData',
    'awaitBody',
    'awaitBdat',
    'awaitFinal',
  ]
  const ok: Partial<Record<SmtpTransactionStateName, SmtpTransactionEvent>> = {
    awaitAuth: '235',
    awaitAuthUser: '334',
    awaitAuthPassword: '334',
    awaitRset: '250',
    awaitMail: '250',
    awaitRcpt: '250',
    awaitData: '354',
    awaitBdat: '250',
    awaitFinal: '250',
  }
  const guards: SmtpTransactionGuard[] = [
    'message refused',
    'auth pending',
    'not secure',
    'no auth mechanism',
    'AUTH LOGIN',
    'reuse',
    'more replies',
    'more recipients',
    'some accepted',
    'chunking',
    'pipelining',
    'empty chunk',
    'chunk failed',
    'replies due',
  ]
  it('has a row for every live state, event and guard combination', () => {
    const common: SmtpTransactionEvent[] = ['eof', 'timeout', 'quit', 'invalid input', 'bad reply', '421', 'mail', 'body', 'bodyEnd']
    for (const s of live) {
      const replies: SmtpTransactionEvent[] = ['4xx', '5xx', 'unexpected', 'bytes after reply']
      const events: SmtpTransactionEvent[] = ok[s]
        ? [...common, ok[s], ...replies]
        : s === 'awaitBody' // replies to pipelined BDAT chunks, or unsolicited
          ? [...common, 'unsolicited', '250', ...replies]
          : [...common, 'unsolicited']
      for (const e of events) {
        for (let bits = 0; bits < 1 << guards.length; bits += 97) {
          const holds = (g: SmtpTransactionGuard) => ((bits >> guards.indexOf(g)) & 1) === 1
          const row = SMTP_TRANSACTION_TRANSITIONS.find(
            (t) => (t.from === s || t.from === '*') && t.on.includes(e) && (t.when ?? []).every(holds),
          )
          assert.ok(row, `no row for ${s} on ${e} with guards ${bits.toString(2)}`)
        }
      }
    }
  })
  it('close rows name a reason; QUIT only where the stream is in step', () => {
    for (const t of SMTP_TRANSACTION_TRANSITIONS) {
      if (t.do.includes('close')) assert.ok(t.reason, JSON.stringify(t))
      if (t.to === 'closed' && t.from !== 'closed') assert.ok(t.do.includes('close'), JSON.stringify(t))
      assert.ok(t.ref.length > 0)
      if (
        ['421', 'eof', 'timeout', 'bad reply', 'bytes after reply', 'unsolicited'].some((e) => t.on.includes(e as SmtpTransactionEvent))
      ) {
        assert.ok(!t.do.includes('send QUIT'), `QUIT where the protocol does not allow it: ${JSON.stringify(t)}`)
      }
      // never QUIT inside a SASL exchange or inside DATA
      if (t.from === 'awaitBody' || (t.from.startsWith('awaitAuth') && t.on.includes('unexpected')))
        assert.ok(!t.do.includes('send QUIT'), JSON.stringify(t))
    }
  })
  it('is frozen', () => {
    assert.ok(Object.isFrozen(SMTP_TRANSACTION_TRANSITIONS))
  })
})
