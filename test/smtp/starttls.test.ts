import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  SmtpReplyError,
  SmtpTlsError,
  StartTlsClient,
  STARTTLS_TRANSITIONS,
  type StartTlsEvent,
  type StartTlsGuard,
  type StartTlsInput,
  type StartTlsStateName,
} from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'
import { bytewise, exim, latin1, minimal, newClient, postfix, replay, secureSteps, show, type Opts, type Step } from './transcript.js'

const EHLO = '> EHLO client.test'
const HELO = '> HELO client.test'
const STLS = '> STARTTLS'
const QUIT = '> QUIT'
const UP = 'upgrade mx.test'
const POSTFIX_TLS_KEYS = 'PIPELINING SIZE VRFY ETRN AUTH ENHANCEDSTATUSCODES 8BITMIME DSN SMTPUTF8 REQUIRETLS CHUNKING'
const POSTFIX_PRE_KEYS = 'PIPELINING SIZE VRFY ETRN STARTTLS ENHANCEDSTATUSCODES 8BITMIME DSN SMTPUTF8 CHUNKING'

type Row = [why: string, opts: Opts, steps: Step[], expected: string[]]

/**
 * `split`: what feeding every turn one byte at a time must keep. `actions`: every action (the h11
 * property). `final`: the final action (an injection is caught after the upgrade instead of before it).
 * `none`: bytes pipelined ahead of our command can only be seen when they arrive in the same read.
 */
function table(rows: Row[], split: 'actions' | 'final' | 'none' = 'actions'): void {
  for (const [why, opts, steps, expected] of rows) {
    it(why, () => {
      assert.deepEqual(replay(steps, opts).shown, expected)
      const bytes = replay(steps, opts, bytewise).shown
      if (split === 'actions') assert.deepEqual(bytes, expected, 'byte-at-a-time replay differs')
      if (split === 'final') assert.equal(bytes.at(-1), expected.at(-1), 'byte-at-a-time replay ends differently')
    })
  }
}

describe('StartTlsClient: servers that offer STARTTLS', () => {
  table([
    ['Postfix-like: EHLO, STARTTLS, EHLO again', {}, secureSteps(postfix), [EHLO, STLS, UP, EHLO, `ready secure [${POSTFIX_TLS_KEYS}]`]],
    [
      'Exim-like: greet text on the first EHLO line',
      {},
      secureSteps(exim),
      [EHLO, STLS, UP, EHLO, 'ready secure [SIZE 8BITMIME PIPELINING AUTH CHUNKING PRDR HELP]'],
    ],
    [
      'minimal server with bare LF line endings (Postfix client tolerance)',
      {},
      secureSteps(minimal),
      [EHLO, STLS, UP, EHLO, 'ready secure []'],
    ],
    [
      'multi-line greeting is one reply (RFC 5321 §4.2)',
      {},
      ['220-mx.test ESMTP\r\n220-no UCE\r\n220 welcome\r\n', postfix.ehlo, postfix.starttls, { tls: true }, postfix.ehloTls],
      [EHLO, STLS, UP, EHLO, `ready secure [${POSTFIX_TLS_KEYS}]`],
    ],
    [
      'lower-case starttls keyword (keywords are case-insensitive, RFC 5321 §2.4)',
      {},
      [postfix.greeting, '250-mx.test\r\n250 starttls\r\n', postfix.starttls, { tls: true }, '250 mx.test\r\n'],
      [EHLO, STLS, UP, EHLO, 'ready secure []'],
    ],
    [
      'STARTTLS advertised again after TLS: ignored, dropped from the extensions (RFC 3207 §4.2)',
      {},
      [postfix.greeting, postfix.ehlo, postfix.starttls, { tls: true }, postfix.ehlo],
      [EHLO, STLS, UP, EHLO, `ready secure [${POSTFIX_PRE_KEYS.replace('STARTTLS ', '')}]`],
    ],
    [
      'requireTls false still upgrades when STARTTLS is offered',
      { requireTls: false },
      secureSteps(postfix),
      [EHLO, STLS, UP, EHLO, `ready secure [${POSTFIX_TLS_KEYS}]`],
    ],
  ])
})

describe('StartTlsClient: STARTTLS not offered, refused or stripped', () => {
  const stripped = postfix.ehlo.replace('250-STARTTLS', '250-XXXXXXXA')
  table([
    [
      'STARTTLS stripped by a middlebox (250-XXXXXXXA), TLS required: 4.7.4',
      {},
      [postfix.greeting, stripped],
      [EHLO, QUIT, 'close ERR_STARTTLS_NOT_OFFERED 4.7.4'],
    ],
    [
      'STARTTLS stripped, TLS optional: plaintext with the pre-TLS extensions',
      { requireTls: false },
      [postfix.greeting, stripped],
      [EHLO, `ready plaintext [${POSTFIX_PRE_KEYS.replace('STARTTLS', 'XXXXXXXA')}]`],
    ],
    [
      'no STARTTLS line at all, TLS required',
      {},
      [postfix.greeting, '250 mx.test\r\n'],
      [EHLO, QUIT, 'close ERR_STARTTLS_NOT_OFFERED 4.7.4'],
    ],
    [
      '454 to STARTTLS, TLS required: the server reply, temporary',
      {},
      [postfix.greeting, postfix.ehlo, '454 4.7.0 TLS not available due to local problem\r\n'],
      [EHLO, STLS, QUIT, 'close ERR_STARTTLS_REFUSED 4.7.0 (454)'],
    ],
    [
      '454 to STARTTLS, TLS optional: continue in plaintext (RFC 3207 §4)',
      { requireTls: false },
      [postfix.greeting, postfix.ehlo, '454 4.7.0 TLS not available\r\n'],
      [EHLO, STLS, `ready plaintext [${POSTFIX_PRE_KEYS}]`],
    ],
    [
      '501 to STARTTLS, TLS required',
      {},
      [postfix.greeting, postfix.ehlo, '501 5.5.4 Syntax error\r\n'],
      // temporary: class 4 (RFC 3463 §3.1), the reply keeps 501 5.5.4
      [EHLO, STLS, QUIT, 'close ERR_STARTTLS_REFUSED 4.5.4 (501)'],
    ],
    [
      '502 to STARTTLS without enhanced status: X.0.0 from the code, class 4 since temporary',
      {},
      [postfix.greeting, postfix.ehlo, '502 not implemented\r\n'],
      [EHLO, STLS, QUIT, 'close ERR_STARTTLS_REFUSED 4.0.0 (502)'],
    ],
    [
      '250 to STARTTLS is not "go ahead"',
      {},
      [postfix.greeting, postfix.ehlo, '250 ok\r\n'],
      [EHLO, STLS, QUIT, 'close ERR_STARTTLS_REFUSED 4.0.0 (250)'],
    ],
    [
      '250 2.0.0 to STARTTLS: the failure never carries a 2.x.x status',
      {},
      [postfix.greeting, postfix.ehlo, '250 2.0.0 ok\r\n'],
      [EHLO, STLS, QUIT, 'close ERR_STARTTLS_REFUSED 4.0.0 (250)'],
    ],
  ])
})

describe('StartTlsClient: HELO fallback', () => {
  table([
    [
      'EHLO 502, HELO only, TLS required: no STARTTLS without EHLO, 4.7.4',
      {},
      [postfix.greeting, '502 5.5.1 Error: command not implemented\r\n', '250 mx.test\r\n'],
      [EHLO, HELO, QUIT, 'close ERR_STARTTLS_NOT_OFFERED 4.7.4'],
    ],
    [
      'EHLO 502, HELO only, TLS optional: plaintext, helo-only, no extensions',
      { requireTls: false },
      [postfix.greeting, '502 5.5.1 Error\r\n', '250-mx.test\r\n250 STARTTLS\r\n'],
      [EHLO, HELO, 'ready plaintext helo-only []'],
    ],
    [
      '501 to EHLO (bad parameters): falls back to HELO',
      { requireTls: false },
      [postfix.greeting, '501 5.5.2 Syntax: EHLO hostname\r\n', '250 mx.test\r\n'],
      [EHLO, HELO, 'ready plaintext helo-only []'],
    ],
    [
      'HELO refused too',
      {},
      [postfix.greeting, '500 unrecognized\r\n', '550 5.7.1 go away\r\n'],
      // temporary (the next MX, or later), so the status class is 4 (RFC 3463 §3.1); the reply keeps 550 5.7.1
      [EHLO, HELO, QUIT, 'close ERR_SMTP_REJECTED 4.7.1 (550)'],
    ],
    [
      '4xx to EHLO: no fallback, temporary failure',
      {},
      [postfix.greeting, '450 4.3.2 try later\r\n'],
      [EHLO, QUIT, 'close ERR_SMTP_REJECTED 4.3.2 (450)'],
    ],
  ])
})

describe('StartTlsClient: 421 at every step ends without QUIT (RFC 5321 §3.8)', () => {
  const r421 = '421 4.3.2 mx.test Service not available, closing channel\r\n'
  table([
    ['421 greeting', {}, [r421], ['close ERR_SMTP_REJECTED 4.3.2 (421)']],
    ['421 to EHLO', {}, [postfix.greeting, r421], [EHLO, 'close ERR_SMTP_REJECTED 4.3.2 (421)']],
    ['421 to HELO', {}, [postfix.greeting, '502 no\r\n', r421], [EHLO, HELO, 'close ERR_SMTP_REJECTED 4.3.2 (421)']],
    ['421 to STARTTLS', {}, [postfix.greeting, postfix.ehlo, r421], [EHLO, STLS, 'close ERR_STARTTLS_REFUSED 4.3.2 (421)']],
    [
      '421 to STARTTLS, TLS optional: still closed',
      { requireTls: false },
      [postfix.greeting, postfix.ehlo, r421],
      [EHLO, STLS, 'close ERR_STARTTLS_REFUSED 4.3.2 (421)'],
    ],
    [
      '421 to the EHLO after TLS',
      {},
      [postfix.greeting, postfix.ehlo, postfix.starttls, { tls: true }, r421],
      [EHLO, STLS, UP, EHLO, 'close ERR_SMTP_REJECTED 4.3.2 (421)'],
    ],
    ['421 without enhanced status: 4.0.0', {}, ['421 bye\r\n'], ['close ERR_SMTP_REJECTED 4.0.0 (421)']],
  ])
})

describe('StartTlsClient: other rejections', () => {
  table([
    [
      '554 greeting: QUIT then close (RFC 5321 §3.1), temporary like Postfix smtp_skip_5xx_greeting, so 4.7.1 (issue 10 §5)',
      {},
      ['554 5.7.1 no SMTP service here\r\n'],
      [QUIT, 'close ERR_SMTP_REJECTED 4.7.1 (554)'],
    ],
    ['greeting 250 is not a greeting', {}, ['250 hello\r\n'], [QUIT, 'close ERR_SMTP_PROTOCOL 4.5.0 (250)']],
    ['EHLO answered with 354', {}, [postfix.greeting, '354 go on\r\n'], [EHLO, QUIT, 'close ERR_SMTP_PROTOCOL 4.5.0 (354)']],
    [
      'EHLO after TLS refused with 5xx: no HELO after TLS',
      {},
      [postfix.greeting, postfix.ehlo, postfix.starttls, { tls: true }, '550 5.7.0 no\r\n'],
      [EHLO, STLS, UP, EHLO, QUIT, 'close ERR_SMTP_REJECTED 4.7.0 (550)'],
    ],
    [
      'EHLO after TLS answered with 220',
      {},
      [postfix.greeting, postfix.ehlo, postfix.starttls, { tls: true }, '220 again\r\n'],
      [EHLO, STLS, UP, EHLO, QUIT, 'close ERR_SMTP_PROTOCOL 4.5.0 (220)'],
    ],
  ])
})

describe('StartTlsClient: attack transcripts', () => {
  const pre = [postfix.greeting, postfix.ehlo]
  table(
    [
      // RFC 3207 §4.2 / CVE-2011-0411: a MitM appends replies after the 220 so they are read as if protected by TLS.
      [
        'injected reply in the same read as the 220 to STARTTLS',
        {},
        [...pre, '220 2.0.0 Ready to start TLS\r\n250-mx.test\r\n250 AUTH PLAIN\r\n'],
        [EHLO, STLS, 'close ERR_SMTP_RESPONSE_INJECTION 4.7.5'],
      ],
      ['one injected byte after the 220', {}, [...pre, '220 go ahead\r\nX'], [EHLO, STLS, 'close ERR_SMTP_RESPONSE_INJECTION 4.7.5']],
      [
        'injected bare line ending after the 220',
        {},
        [...pre, '220 go ahead\r\n\r\n'],
        [EHLO, STLS, 'close ERR_SMTP_RESPONSE_INJECTION 4.7.5'],
      ],
      [
        'injected bytes in a later read, before the handshake completes',
        {},
        [...pre, postfix.starttls, '250 fake\r\n'],
        [EHLO, STLS, UP, 'close ERR_SMTP_RESPONSE_INJECTION 4.7.5'],
      ],
    ],
    'final',
  )
  table(
    [
      // The "NO STARTTLS" (2021) class: the pre-TLS EHLO is pipelined with answers to commands not yet sent.
      [
        'replies sent before our EHLO (pipelined with the greeting)',
        {},
        [postfix.greeting + '250-mx.test\r\n250 STARTTLS\r\n'],
        ['close ERR_SMTP_PROTOCOL 4.5.0'],
      ],
      [
        'a STARTTLS reply pipelined behind the EHLO reply',
        {},
        [postfix.greeting, postfix.ehlo + '220 go ahead\r\n'],
        [EHLO, 'close ERR_SMTP_PROTOCOL 4.5.0'],
      ],
      [
        'half a line pipelined behind the HELO reply',
        { requireTls: false },
        [postfix.greeting, '502 no\r\n', '250 mx.test\r\n2'],
        [EHLO, HELO, 'close ERR_SMTP_PROTOCOL 4.5.0'],
      ],
      [
        'bytes pipelined behind the post-TLS EHLO (answers to MAIL FROM before it is sent)',
        {},
        [...pre, postfix.starttls, { tls: true }, '250 mx.test\r\n250 2.1.0 Ok\r\n'],
        [EHLO, STLS, UP, EHLO, 'close ERR_SMTP_PROTOCOL 4.5.0'],
      ],
    ],
    'none',
  )
  table([
    // Limits (RFC 5321 §4.5.3.1.5; Postfix line_length_limit 2048).
    ['oversized greeting line (3000 bytes)', {}, [`220 ${'x'.repeat(2996)}\r\n`], ['close ERR_SMTP_REPLY_TOO_LONG 4.5.0']],
    [
      'oversized line that never ends is refused without waiting for LF',
      {},
      [`250-${'A'.repeat(5000)}`],
      ['close ERR_SMTP_REPLY_TOO_LONG 4.5.0'],
    ],
    [
      'an EHLO reply of 501 lines',
      {},
      [postfix.greeting, '250-x\r\n'.repeat(500) + '250 STARTTLS\r\n'],
      [EHLO, 'close ERR_SMTP_REPLY_TOO_LONG 4.5.0'],
    ],
    [
      'inconsistent codes inside one multi-line reply (RFC 5321 §4.2.1)',
      {},
      [postfix.greeting, '250-mx.test\r\n220 STARTTLS\r\n'],
      [EHLO, 'close ERR_SMTP_REPLY_SYNTAX 4.5.0'],
    ],
    ['a line without a reply code', {}, ['hello there\r\n'], ['close ERR_SMTP_REPLY_SYNTAX 4.5.0']],
    ['a TLS ClientHello-looking greeting', {}, ['\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n'], ['close ERR_SMTP_REPLY_SYNTAX 4.5.0']],
    [
      'non-ASCII bytes in reply text are kept, never fatal',
      {},
      ['220 m\xe9l\xff\x00 ready\r\n', '250-mx\r\n250 STARTTLS\r\n', '220 go\r\n', { tls: true }, '250 mx\r\n'],
      [EHLO, STLS, UP, EHLO, 'ready secure []'],
    ],
  ])

  it('a second STARTTLS is never sent, whatever the post-TLS EHLO says', () => {
    const r = replay([postfix.greeting, postfix.ehlo, postfix.starttls, { tls: true }, postfix.ehlo])
    assert.equal(r.shown.filter((s) => s === STLS).length, 1)
    assert.equal(r.client.capabilities?.known.STARTTLS, false)
    // and the session is handed over: more server bytes cannot make it send anything
    assert.deepEqual(r.client.handle({ type: 'data', bytes: latin1('220 go\r\n') }).map(show), ['close ERR_STATE 4.3.0'])
  })

  it('the CVE-2011-0411 payload never reaches the post-TLS capabilities', () => {
    const r = replay([postfix.greeting, postfix.ehlo, '220 go\r\n250-evil\r\n250 AUTH PLAIN\r\n', { tls: true }, '250 mx\r\n'])
    assert.equal(r.client.state.name, 'closed')
    assert.equal(r.client.capabilities?.extensions.has('AUTH'), false)
    assert.ok(!r.shown.includes(UP), 'no upgrade after an injection')
  })
})

describe('StartTlsClient: eof, timeout and TLS failure in every state', () => {
  const prefixes: Array<[StartTlsStateName, Step[]]> = [
    ['awaitGreeting', []],
    ['awaitEhlo', [postfix.greeting]],
    ['awaitHelo', [postfix.greeting, '502 no\r\n']],
    ['awaitStartTls', [postfix.greeting, postfix.ehlo]],
    ['awaitHandshake', [postfix.greeting, postfix.ehlo, postfix.starttls]],
    ['awaitTlsEhlo', [postfix.greeting, postfix.ehlo, postfix.starttls, { tls: true }]],
  ]
  for (const [state, prefix] of prefixes) {
    for (const [input, code] of [
      [{ type: 'eof' }, 'ERR_SMTP_EOF'],
      [{ type: 'timeout' }, 'ERR_SMTP_TIMEOUT'],
    ] as const) {
      it(`${input.type} in ${state}: close ${code} 4.4.2, no QUIT`, () => {
        const { client } = replay(prefix)
        assert.equal(client.state.name, state)
        const acts = client.handle(input)
        assert.deepEqual(acts.map(show), [`close ${code} 4.4.2`])
        const err = (acts[0] as { error: SmtpTlsError }).error
        assert.equal(err.temporary, true)
        assert.equal(client.state.name, 'closed')
      })
    }
    it(`half a reply then eof in ${state} is still eof`, () => {
      const { client } = replay(prefix)
      if (state !== 'awaitHandshake') assert.deepEqual(client.handle({ type: 'data', bytes: latin1('25') }), [])
      assert.deepEqual(client.handle({ type: 'eof' }).map(show), ['close ERR_SMTP_EOF 4.4.2'])
    })
  }

  it('tlsFailed: 4.7.5 "Cannot start TLS: handshake failure", cause kept', () => {
    const cause = new Error('certificate verify failed')
    const r = replay([postfix.greeting, postfix.ehlo, postfix.starttls, { tlsFail: cause }])
    assert.deepEqual(r.shown, [EHLO, STLS, UP, 'close ERR_TLS_HANDSHAKE 4.7.5'])
    const err = (r.actions.at(-1) as { error: SmtpTlsError }).error
    assert.match(err.message, /Cannot start TLS: handshake failure/)
    assert.equal(err.cause, cause)
    assert.equal(err.tlsrpt, 'validation-failure')
  })

  it("tlsFailed with a coded cause keeps the cause's TLS-RPT result type", () => {
    const cause = new SmtpTlsError('ERR_DANE_NO_MATCH', 'no TLSA record matched', { tlsrpt: 'certificate-not-trusted' })
    const r = replay([postfix.greeting, postfix.ehlo, postfix.starttls, { tlsFail: cause }])
    assert.equal((r.actions.at(-1) as { error: SmtpTlsError }).error.tlsrpt, 'certificate-not-trusted')
  })

  const misplaced: Array<[string, Step[], StartTlsInput]> = [
    ['tlsEstablished before any STARTTLS', [postfix.greeting], { type: 'tlsEstablished' }],
    ['tlsEstablished twice', [postfix.greeting, postfix.ehlo, postfix.starttls, { tls: true }], { type: 'tlsEstablished' }],
    ['tlsFailed while waiting for the greeting', [], { type: 'tlsFailed', cause: null }],
  ]
  for (const [why, prefix, input] of misplaced) {
    it(`${why}: a local error, close ERR_STATE`, () => {
      const { client } = replay(prefix)
      assert.deepEqual(client.handle(input).map(show), ['close ERR_STATE 4.3.0'])
      assert.equal(client.state.name, 'closed')
    })
  }

  const invalid: Array<[string, unknown]> = [
    ['null', null],
    ['a string', 'data'],
    ['unknown type', { type: 'bytes' }],
    ['data without bytes', { type: 'data' }],
    ['data with a string', { type: 'data', bytes: '220 hi\r\n' }],
  ]
  for (const [why, input] of invalid) {
    it(`invalid input (${why}): close ERR_INVALID_ARGUMENT, never a throw`, () => {
      const c = newClient()
      assert.deepEqual(c.handle(input as StartTlsInput).map(show), ['close ERR_INVALID_ARGUMENT 4.3.0'])
    })
  }

  it('an empty data chunk changes nothing', () => {
    const c = newClient()
    assert.deepEqual(c.handle({ type: 'data', bytes: new Uint8Array(0) }), [])
    assert.equal(c.state.name, 'awaitGreeting')
  })
})

describe('StartTlsClient: final states', () => {
  const inputs: StartTlsInput[] = [
    { type: 'data', bytes: latin1('250 ok\r\n') },
    { type: 'eof' },
    { type: 'timeout' },
    { type: 'tlsEstablished' },
    { type: 'tlsFailed', cause: 1 },
  ]
  it('after close every call returns exactly one close with ERR_STATE (cause: the original error); state unchanged', () => {
    const r = replay(['421 bye\r\n'])
    const first = r.client.state
    assert.equal(first.name, 'closed')
    const original = first.name === 'closed' ? first.error : undefined
    assert.ok(original instanceof SmtpReplyError)
    for (const input of inputs) {
      const acts = r.client.handle(input)
      assert.equal(acts.length, 1)
      const a = acts[0]
      assert.ok(a?.type === 'close' && a.error?.code === 'ERR_STATE')
      assert.equal(a.error.cause, original)
      assert.deepEqual(r.client.state, first)
    }
  })
  it('after ready every call returns exactly one close with ERR_STATE; state stays ready', () => {
    const r = replay(secureSteps(postfix))
    for (const input of inputs) {
      assert.deepEqual(r.client.handle(input).map(show), ['close ERR_STATE 4.3.0'])
      assert.equal(r.client.state.name, 'ready')
    }
  })
})

describe('StartTlsClient: what the driver gets', () => {
  it('ready carries greeting, EHLO reply, typed capabilities; pre-TLS state is forgotten', () => {
    const steps = [
      postfix.greeting,
      postfix.ehlo.replace('250-VRFY', '250-XPRETLS'),
      postfix.starttls,
      { tls: true } as const,
      postfix.ehloTls,
    ]
    const r = replay(steps)
    const ready = r.actions.at(-1)
    assert.ok(ready?.type === 'ready')
    assert.equal(ready.secure, true)
    assert.equal(ready.heloOnly, false)
    assert.equal(ready.greeting.lines[0], 'mx.test ESMTP Postfix (Debian/GNU)')
    assert.equal(ready.ehloReply.code, 250)
    assert.equal(ready.extensions.get('AUTH'), 'PLAIN LOGIN')
    assert.equal(ready.extensions.get('SIZE'), '10240000')
    assert.equal(ready.extensions.has('XPRETLS'), false, 'a pre-TLS keyword leaked past TLS')
    assert.equal(ready.capabilities.known.REQUIRETLS, true)
    assert.equal(ready.capabilities.size, 10240000)
    assert.equal(r.client.ehloReply, ready.ehloReply)
    const s = r.client.state
    assert.ok(s.name === 'ready' && s.secure && s.capabilities === ready.capabilities)
  })

  it('REQUIRETLS offered only before TLS does not survive the upgrade (RFC 8689, Postfix/mox)', () => {
    const r = replay([postfix.greeting, '250-mx\r\n250-REQUIRETLS\r\n250 STARTTLS\r\n', postfix.starttls, { tls: true }, '250 mx\r\n'])
    const ready = r.actions.at(-1)
    assert.ok(ready?.type === 'ready')
    assert.equal(ready.capabilities.known.REQUIRETLS, false)
  })

  it('capabilities are forgotten at tlsEstablished, before the new EHLO reply', () => {
    const { client } = replay([postfix.greeting, postfix.ehlo, postfix.starttls])
    assert.equal(client.capabilities?.known.STARTTLS, true)
    client.handle({ type: 'tlsEstablished' })
    assert.equal(client.capabilities, undefined)
    assert.equal(client.ehloReply, undefined)
    assert.ok(client.greeting)
  })

  it('a posttls-finger-style transcript', () => {
    const r = replay(secureSteps(minimal))
    assert.deepEqual(r.client.transcript, [
      '< 220 m',
      '> EHLO client.test',
      '< 250-m',
      '< 250 STARTTLS',
      '> STARTTLS',
      '< 220',
      '> EHLO client.test',
      '< 250 m',
    ])
  })

  it('close after a server reply carries the reply and a SmtpReplyError with the server code', () => {
    const r = replay([postfix.greeting, postfix.ehlo, '454 4.7.0 TLS not available\r\n'])
    const close = r.actions.at(-1)
    assert.ok(close?.type === 'close' && close.error instanceof SmtpReplyError)
    assert.equal(close.error.replyCode, 454)
    assert.equal(close.error.temporary, true)
    assert.equal(close.error.tlsrpt, 'starttls-not-supported')
    assert.match(close.error.message, /TLS is required, but host mx\.test refused to start TLS: 454 4\.7\.0 TLS not available/)
    assert.equal(close.reply?.code, 454)
    const s = r.client.state
    assert.ok(s.name === 'closed' && s.reply === close.reply)
  })

  it('4.7.4 error wording and TLS-RPT type follow Postfix and RFC 8460', () => {
    const r = replay([postfix.greeting, '250 mx.test\r\n'])
    const close = r.actions.at(-1)
    assert.ok(close?.type === 'close' && close.error)
    assert.equal(close.error.message, 'TLS is required, but was not offered by host mx.test')
    assert.equal(close.error.tlsrpt, 'starttls-not-supported')
    assert.equal(close.error.temporary, true)
  })

  it('send actions are fresh buffers (a driver may keep or transfer them)', () => {
    const a = newClient().handle({ type: 'data', bytes: latin1(postfix.greeting) })
    const b = newClient().handle({ type: 'data', bytes: latin1(postfix.greeting) })
    assert.ok(a[0]?.type === 'send' && b[0]?.type === 'send')
    assert.notEqual(a[0].bytes, b[0].bytes)
  })

  it('maxLineLength is honoured and validated', () => {
    const r = replay([`220 ${'x'.repeat(600)}\r\n`], { maxLineLength: 600 })
    assert.deepEqual(r.shown, ['close ERR_SMTP_REPLY_TOO_LONG 4.5.0'])
    assert.deepEqual(replay([`220 ${'x'.repeat(596)}\r\n`], { maxLineLength: 600 }).shown, [EHLO])
    throwsCoded(() => newClient({ maxLineLength: 100 }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => newClient({ maxLines: 0 }), 'ERR_INVALID_ARGUMENT')
  })
})

describe('StartTlsClient: constructor', () => {
  const bad: Array<[string, unknown]> = [
    ['no options', undefined],
    ['empty ehloName', { ehloName: '', requireTls: true, servername: 'x' }],
    ['CRLF in ehloName (command injection)', { ehloName: 'a\r\nRCPT TO:<x>', requireTls: true, servername: 'x' }],
    ['space in ehloName', { ehloName: 'a b', requireTls: true, servername: 'x' }],
    ['non-ASCII ehloName', { ehloName: 'exämple.test', requireTls: true, servername: 'x' }],
    ['requireTls not boolean', { ehloName: 'a', requireTls: 'yes', servername: 'x' }],
    ['servername missing', { ehloName: 'a', requireTls: true }],
  ]
  for (const [why, opts] of bad) {
    it(`${why}: ERR_INVALID_ARGUMENT`, () => {
      const e = throwsCoded(() => new StartTlsClient(opts as ConstructorParameters<typeof StartTlsClient>[0]), 'ERR_INVALID_ARGUMENT')
      assert.equal(e.temporary, false)
    })
  }
  it('address literal as ehloName', () => {
    const c = new StartTlsClient({ ehloName: '[192.0.2.1]', requireTls: false, servername: '' })
    assert.deepEqual(c.handle({ type: 'data', bytes: latin1('220 x\r\n') }).map(show), ['> EHLO [192.0.2.1]'])
  })
})

describe('STARTTLS_TRANSITIONS', () => {
  const live: StartTlsStateName[] = ['awaitGreeting', 'awaitEhlo', 'awaitHelo', 'awaitStartTls', 'awaitHandshake', 'awaitTlsEhlo']
  const replyStates = live.filter((s) => s !== 'awaitHandshake')
  const replyEvents: StartTlsEvent[] = ['421', '4xx', '5xx', 'unexpected', 'bytes after reply', 'bad reply']
  const common: StartTlsEvent[] = ['eof', 'timeout', 'tlsEstablished', 'tlsFailed', 'invalid input']
  const ok: Partial<Record<StartTlsStateName, StartTlsEvent>> = {
    awaitGreeting: '220',
    awaitEhlo: '250',
    awaitHelo: '250',
    awaitStartTls: '220',
    awaitTlsEhlo: '250',
  }
  function holds(g: StartTlsGuard, env: { offered: boolean; requireTls: boolean; r220: boolean }): boolean {
    return {
      'STARTTLS offered': env.offered,
      'STARTTLS not offered': !env.offered,
      requireTls: env.requireTls,
      'not requireTls': !env.requireTls,
      'reply 220': env.r220,
    }[g]
  }
  it('has a row for every live state, event and guard combination', () => {
    for (const s of live) {
      const events = [...common, ...(s === 'awaitHandshake' ? (['data'] as StartTlsEvent[]) : [...replyEvents, ok[s] as StartTlsEvent])]
      for (const e of events) {
        for (const offered of [true, false])
          for (const requireTls of [true, false])
            for (const r220 of [true, false]) {
              const env = { offered, requireTls, r220 }
              const row = STARTTLS_TRANSITIONS.find(
                (t) => (t.from === s || t.from === '*') && t.on.includes(e) && (t.when ?? []).every((g) => holds(g, env)),
              )
              assert.ok(row, `no row for ${s} on ${e} with ${JSON.stringify(env)}`)
            }
      }
    }
    assert.ok(replyStates.length === 5)
  })
  it('every row can only reach a known state, and close rows name a reason', () => {
    for (const t of STARTTLS_TRANSITIONS) {
      if (t.do.includes('close')) assert.ok(t.reason, `close without reason: ${JSON.stringify(t)}`)
      if (t.to === 'closed' && t.from !== 'closed') assert.ok(t.do.includes('close'), `to closed without close: ${JSON.stringify(t)}`)
      assert.ok(t.ref.length > 0)
      // QUIT is never sent where the stream is out of step or TLS is pending (RFC 3207 §4.1)
      if (['421', 'eof', 'timeout', 'bad reply', 'bytes after reply', 'data', 'tlsFailed'].some((e) => t.on.includes(e as StartTlsEvent))) {
        assert.ok(!t.do.includes('send QUIT'), `QUIT where the protocol does not allow it: ${JSON.stringify(t)}`)
      }
    }
  })
  it('is frozen', () => {
    assert.ok(Object.isFrozen(STARTTLS_TRANSITIONS))
  })
})
