/**
 * The SMTP mail transaction as a sans-IO state machine (DESIGN.md §2, same style as StartTlsClient):
 * MAIL, RCPT, DATA or BDAT, RSET between messages, QUIT, and AUTH for relays. Every state and
 * transition is one row of {@link SMTP_TRANSACTION_TRANSITIONS}; the code classifies an input into an
 * event, looks the row up and carries out its steps.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { BodyEncoder } from './body.js'
import type { EhloCapabilities } from './ehlo.js'
import {
  checkEnvelope,
  lineBytes,
  mailLine,
  rcptLine,
  type CheckedEnvelope,
  type CheckedRecipient,
  type Offer,
  type SmtpEnvelope,
} from './envelope.js'
import { checkLimit, formatReplyLines, ReplyParser, type SmtpReply } from './reply.js'
import { SmtpReplyError } from './starttls.js'

export type { SmtpEnvelope, SmtpRecipient } from './envelope.js'

/**
 * What happened. `mail` starts a message, `body`/`bodyEnd` answer `needBody`, `quit` ends the session.
 * @public
 */
export type SmtpTransactionInput =
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'eof' }
  | { type: 'timeout' }
  | { type: 'mail'; envelope: SmtpEnvelope }
  | { type: 'body'; bytes: Uint8Array }
  | { type: 'bodyEnd'; bytes?: Uint8Array }
  | { type: 'quit' }

/**
 * What the driver must do. `done` ends a message (the session stays open: feed `mail` or `quit`);
 * `close` is final.
 * @public
 */
export type SmtpTransactionAction =
  | { type: 'send'; bytes: Uint8Array }
  /** Feed exactly one `body` or `bodyEnd` input next (backpressure: the machine asks for each chunk). */
  | { type: 'needBody' }
  | { type: 'done'; result: SmtpTransactionResult }
  | {
      type: 'close'
      /** Why; absent only after `quit` (a normal end). */
      error?: SmtpTlsError
      /** The server reply that ended the session, when one did. */
      reply?: SmtpReply
    }

/**
 * The outcome for one recipient.
 * @public
 */
export interface SmtpRecipientResult {
  readonly address: string
  /** `accepted` (2xx, and the message was taken), `pending` (4xx: retry later), `rejected` (5xx: bounce). */
  readonly status: 'accepted' | 'pending' | 'rejected'
  /** The server's reply code; absent when decided here (the recipient or message was never sent). */
  readonly code?: number
  /** RFC 3463: the server's, `X.0.0` from its code, or ours (`5.6.7`, `5.3.4`, `4.4.2`, …). */
  readonly enhancedStatus: string
  /** The reply text (its lines joined by a space), or our reason. */
  readonly text: string
  /** The server reply that decided it, when one did. */
  readonly reply?: SmtpReply
}

/**
 * The outcome of one message.
 * @public
 */
export interface SmtpTransactionResult {
  /** One entry per recipient, in envelope order. */
  readonly recipients: readonly SmtpRecipientResult[]
  readonly accepted: readonly string[]
  readonly pending: readonly string[]
  readonly rejected: readonly string[]
  /** The reply to `MAIL FROM`, when it was sent. */
  readonly mailReply?: SmtpReply
  /** The final reply to the message (`.` or `BDAT … LAST`): the queue id text. */
  readonly dataReply?: SmtpReply
  /** Why the message as a whole failed (MAIL, DATA/BDAT, a local refusal, the session ending), when it did. */
  readonly error?: SmtpTlsError
}

/**
 * SASL credentials for a relay (RFC 4954), used only over TLS.
 * @public
 */
export interface SmtpAuthCredentials {
  username: string
  password: string
  /** Default: `PLAIN` when offered, else `LOGIN`. */
  mechanism?: 'PLAIN' | 'LOGIN'
  /** RFC 4616 authorization identity for PLAIN; default empty (the username). */
  authzid?: string
}

/**
 * Constructor options of {@link SmtpTransaction}.
 * @public
 */
export interface SmtpTransactionOptions {
  /** The capabilities of the EHLO that applies: the post-TLS one (`ready.capabilities` of StartTlsClient). */
  capabilities: EhloCapabilities
  /** TLS is up (`ready.secure`). */
  secure: boolean
  /** The peer was authenticated (outcome `verified`): needed for REQUIRETLS (RFC 8689 §4.2.1). Default false. */
  verified?: boolean
  /** For messages, e.g. the MX host name. */
  servername?: string
  /** AUTH before the first message (relay mode); refused without TLS. */
  auth?: SmtpAuthCredentials
  /** Longest reply line, bytes without CRLF. Default 2048. */
  maxLineLength?: number
  /** Most lines in one reply. Default 500. */
  maxLines?: number
}

/**
 * The states; each names what it waits for.
 * @public
 */
export type SmtpTransactionStateName =
  | 'idle'
  | 'awaitAuth'
  | 'awaitAuthUser'
  | 'awaitAuthPassword'
  | 'awaitRset'
  | 'awaitMail'
  | 'awaitRcpt'
  | 'awaitData'
  | 'awaitBody'
  | 'awaitBdat'
  | 'awaitFinal'
  | 'closed'

/** @public */
export type SmtpTransactionState =
  | { readonly name: Exclude<SmtpTransactionStateName, 'closed'> }
  | { readonly name: 'closed'; readonly error?: SmtpTlsError; readonly reply?: SmtpReply }

/**
 * Events a row reacts to. Reply events: the awaited success code (`250` stands for 250/251 to RCPT),
 * `421`, other `4xx`/`5xx`, `unexpected` (a code the command does not allow), `unsolicited` (a reply
 * while no command is outstanding). `*` matches any event.
 * @public
 */
export type SmtpTransactionEvent =
  | '235'
  | '250'
  | '334'
  | '354'
  | '421'
  | '4xx'
  | '5xx'
  | 'unexpected'
  | 'unsolicited'
  | 'bytes after reply'
  | 'bad reply'
  | 'eof'
  | 'timeout'
  | 'mail'
  | 'body'
  | 'bodyEnd'
  | 'quit'
  | 'invalid input'
  | '*'

/** Conditions on a row; all must hold. @public */
export type SmtpTransactionGuard =
  | 'message refused'
  | 'auth pending'
  | 'not secure'
  | 'no auth mechanism'
  | 'AUTH LOGIN'
  | 'reuse'
  | 'more replies'
  | 'more recipients'
  | 'some accepted'
  | 'chunking'
  | 'pipelining'
  | 'empty chunk'
  | 'chunk failed'
  | 'replies due'

/** What a row does, in order. @public */
export type SmtpTransactionStep =
  | 'refuse message'
  | 'send AUTH PLAIN'
  | 'send AUTH LOGIN'
  | 'send username'
  | 'send password'
  | 'begin'
  | 'next command'
  | 'mail accepted'
  | 'mail failed'
  | 'record recipient'
  | 'send DATA'
  | 'need body'
  | 'send body'
  | 'send end of data'
  | 'send BDAT'
  | 'send BDAT LAST'
  | 'record chunk'
  | 'discard body'
  | 'final reply'
  | 'done'
  | 'send QUIT'
  | 'close'

/** Why a `close` happens; decides the error. @public */
export type SmtpTransactionCloseReason =
  | 'quit'
  | 'rejected'
  | 'unexpected reply'
  | 'reply ahead'
  | 'bad reply'
  | 'auth failed'
  | 'auth unavailable'
  | 'auth insecure'
  | 'eof'
  | 'timeout'
  | 'aborted'
  | 'state'
  | 'invalid input'

/**
 * One transition. `from: '*'` rows apply to every live state (not `closed`) after its own rows.
 * @public
 */
export interface SmtpTransactionTransition {
  readonly from: SmtpTransactionStateName | '*'
  readonly on: readonly SmtpTransactionEvent[]
  readonly when?: readonly SmtpTransactionGuard[]
  readonly to: SmtpTransactionStateName
  readonly do: readonly SmtpTransactionStep[]
  readonly reason?: SmtpTransactionCloseReason
  /** Where the rule comes from. */
  readonly ref: string
}

const FAIL: readonly SmtpTransactionEvent[] = ['4xx', '5xx']
const ANSWER: readonly SmtpTransactionEvent[] = ['250', '4xx', '5xx']

/**
 * The single source of truth: every state and transition of {@link SmtpTransaction}, in lookup order.
 * Rendered as the state diagram of docs/transaction.md by {@link smtpTransactionDiagram}.
 * @public
 */
export const SMTP_TRANSACTION_TRANSITIONS: readonly SmtpTransactionTransition[] = Object.freeze([
  // A new message. Refusals decided here send nothing (RFC 1870 §6.1, RFC 6152 §3, RFC 6531 §3.2, RFC 8689 §4.2.1).
  { from: 'idle', on: ['mail'], when: ['message refused'], to: 'idle', do: ['refuse message', 'done'], ref: 'RFC 1870, 6152, 6531, 8689' },
  {
    from: 'idle',
    on: ['mail'],
    when: ['auth pending', 'not secure'],
    to: 'closed',
    do: ['send QUIT', 'close'],
    reason: 'auth insecure',
    ref: 'RFC 4954 §4, §14 (credentials only over TLS)',
  },
  {
    from: 'idle',
    on: ['mail'],
    when: ['auth pending', 'no auth mechanism'],
    to: 'closed',
    do: ['send QUIT', 'close'],
    reason: 'auth unavailable',
    ref: 'RFC 4954 §3',
  },
  {
    from: 'idle',
    on: ['mail'],
    when: ['auth pending', 'AUTH LOGIN'],
    to: 'awaitAuthUser',
    do: ['send AUTH LOGIN'],
    ref: 'draft-murchison-sasl-login',
  },
  { from: 'idle', on: ['mail'], when: ['auth pending'], to: 'awaitAuth', do: ['send AUTH PLAIN'], ref: 'RFC 4954 §4, RFC 4616' },
  { from: 'idle', on: ['mail'], when: ['reuse'], to: 'awaitRset', do: ['begin'], ref: 'RFC 5321 §4.1.1.5 (a reused session)' },
  { from: 'idle', on: ['mail'], to: 'awaitMail', do: ['begin'], ref: 'RFC 5321 §3.3; RFC 2920 §3.1' },
  { from: 'idle', on: ['quit'], to: 'closed', do: ['send QUIT', 'close'], reason: 'quit', ref: 'RFC 5321 §4.1.1.10' },

  // AUTH (RFC 4954): PLAIN with an initial response, or LOGIN's two 334 challenges. No QUIT after a
  // reply the SASL exchange does not allow: QUIT would be read as a SASL response.
  { from: 'awaitAuthUser', on: ['334'], to: 'awaitAuthPassword', do: ['send username'], ref: 'draft-murchison-sasl-login §2' },
  { from: 'awaitAuthPassword', on: ['334'], to: 'awaitAuth', do: ['send password'], ref: 'draft-murchison-sasl-login §2' },
  { from: 'awaitAuth', on: ['235'], to: 'awaitMail', do: ['begin'], ref: 'RFC 4954 §6 (no MAIL was sent before AUTH)' },
  ...(['awaitAuth', 'awaitAuthUser', 'awaitAuthPassword'] as const).flatMap((from): SmtpTransactionTransition[] => [
    { from, on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
    { from, on: FAIL, to: 'closed', do: ['send QUIT', 'close'], reason: 'auth failed', ref: 'RFC 4954 §6 (535, 454)' },
    { from, on: ['unexpected'], to: 'closed', do: ['close'], reason: 'unexpected reply', ref: 'RFC 4954 §4' },
  ]),

  // RSET before a message on a reused session.
  { from: 'awaitRset', on: ['250'], to: 'awaitMail', do: ['next command'], ref: 'RFC 5321 §4.1.1.5' },
  { from: 'awaitRset', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitRset', on: FAIL, to: 'closed', do: ['send QUIT', 'close'], reason: 'rejected', ref: 'RFC 5321 §4.1.1.5' },
  { from: 'awaitRset', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // MAIL FROM: a 5xx fails the message for good, a 4xx for now; pipelined RCPT replies still come.
  { from: 'awaitMail', on: ['250'], to: 'awaitRcpt', do: ['mail accepted', 'next command'], ref: 'RFC 5321 §4.1.1.2' },
  { from: 'awaitMail', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitMail', on: FAIL, when: ['more replies'], to: 'awaitRcpt', do: ['mail failed'], ref: 'RFC 2920 §3.1' },
  { from: 'awaitMail', on: FAIL, to: 'idle', do: ['mail failed', 'done'], ref: 'RFC 5321 §3.3, §4.2.5' },
  { from: 'awaitMail', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // RCPT TO, one reply per recipient; DATA only when one was accepted (RFC 5321 §3.3).
  {
    from: 'awaitRcpt',
    on: ANSWER,
    when: ['more recipients'],
    to: 'awaitRcpt',
    do: ['record recipient', 'next command'],
    ref: 'RFC 5321 §4.1.1.3',
  },
  {
    from: 'awaitRcpt',
    on: ANSWER,
    when: ['some accepted', 'chunking'],
    to: 'awaitBody',
    do: ['record recipient', 'need body'],
    ref: 'RFC 3030 §2',
  },
  { from: 'awaitRcpt', on: ANSWER, when: ['some accepted'], to: 'awaitData', do: ['record recipient', 'send DATA'], ref: 'RFC 5321 §3.3' },
  { from: 'awaitRcpt', on: ANSWER, to: 'idle', do: ['record recipient', 'done'], ref: 'RFC 5321 §3.3 (no valid recipient: no DATA)' },
  { from: 'awaitRcpt', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitRcpt', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // DATA: 354, then the body in chunks the caller feeds.
  { from: 'awaitData', on: ['354'], to: 'awaitBody', do: ['need body'], ref: 'RFC 5321 §4.1.1.4' },
  { from: 'awaitData', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitData', on: FAIL, to: 'idle', do: ['final reply', 'done'], ref: 'RFC 5321 §4.1.1.4' },
  { from: 'awaitData', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // A BDAT chunk failed while the caller was reading the next one (PIPELINING): that input is
  // dropped, nothing more is sent; the replies still due are read, then the message is done.
  {
    from: 'awaitBody',
    on: ['body', 'bodyEnd'],
    when: ['chunk failed', 'replies due'],
    to: 'awaitFinal',
    do: ['discard body'],
    ref: 'RFC 3030 §2 (no BDAT after a failed one)',
  },
  {
    from: 'awaitBody',
    on: ['body', 'bodyEnd'],
    when: ['chunk failed'],
    to: 'idle',
    do: ['discard body', 'final reply', 'done'],
    ref: 'RFC 3030 §2',
  },
  {
    from: 'awaitBody',
    on: ['body'],
    when: ['empty chunk'],
    to: 'awaitBody',
    do: ['send body', 'need body'],
    ref: 'RFC 3030 §2 (no empty chunk but the last)',
  },
  {
    from: 'awaitBody',
    on: ['body'],
    when: ['chunking', 'pipelining'],
    to: 'awaitBody',
    do: ['send BDAT', 'need body'],
    ref: 'RFC 3030 §4.2',
  },
  { from: 'awaitBody', on: ['body'], when: ['chunking'], to: 'awaitBdat', do: ['send BDAT'], ref: 'RFC 3030 §2, §4.2' },
  { from: 'awaitBody', on: ['body'], to: 'awaitBody', do: ['send body', 'need body'], ref: 'RFC 5321 §4.5.2' },
  { from: 'awaitBody', on: ['bodyEnd'], when: ['chunking'], to: 'awaitFinal', do: ['send BDAT LAST'], ref: 'RFC 3030 §2' },
  { from: 'awaitBody', on: ['bodyEnd'], to: 'awaitFinal', do: ['send end of data'], ref: 'RFC 5321 §4.1.1.4, §4.5.2' },
  // Replies to pipelined BDAT chunks arrive while the caller reads the next chunk.
  { from: 'awaitBody', on: ANSWER, to: 'awaitBody', do: ['record chunk'], ref: 'RFC 3030 §4.2' },
  {
    from: 'awaitBody',
    on: ['unexpected'],
    to: 'closed',
    do: ['close'],
    reason: 'unexpected reply',
    ref: 'RFC 5321 §4.3.2 (no QUIT from awaitBody: it may be inside DATA)',
  },

  // BDAT without PIPELINING: one chunk at a time; a failed chunk fails the message (RFC 3030 §2, §4.2).
  { from: 'awaitBdat', on: ['250'], to: 'awaitBody', do: ['need body'], ref: 'RFC 3030 §2' },
  { from: 'awaitBdat', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitBdat', on: FAIL, to: 'idle', do: ['final reply', 'done'], ref: 'RFC 3030 §2' },
  { from: 'awaitBdat', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // The final reply after "." or BDAT LAST: it decides every accepted recipient.
  {
    from: 'awaitFinal',
    on: ANSWER,
    when: ['replies due'],
    to: 'awaitFinal',
    do: ['record chunk'],
    ref: 'RFC 3030 §4.2 (an earlier chunk)',
  },
  { from: 'awaitFinal', on: ['250'], to: 'idle', do: ['final reply', 'done'], ref: 'RFC 5321 §4.1.1.4; RFC 3030 §2' },
  { from: 'awaitFinal', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitFinal', on: FAIL, to: 'idle', do: ['final reply', 'done'], ref: 'RFC 5321 §4.1.1.4' },
  { from: 'awaitFinal', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // Any live state.
  { from: '*', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8 (at any time)' },
  {
    from: '*',
    on: ['bytes after reply', 'unsolicited'],
    to: 'closed',
    do: ['close'],
    reason: 'reply ahead',
    ref: 'RFC 2920 §3.1; RFC 5321 §4.1.1',
  },
  { from: '*', on: ['bad reply'], to: 'closed', do: ['close'], reason: 'bad reply', ref: 'RFC 5321 §4.2, §4.5.3.1.5' },
  { from: '*', on: ['eof'], to: 'closed', do: ['close'], reason: 'eof', ref: 'RFC 5321 §4.5.3.2' },
  { from: '*', on: ['timeout'], to: 'closed', do: ['close'], reason: 'timeout', ref: 'RFC 5321 §4.5.3.2' },
  { from: '*', on: ['quit'], to: 'closed', do: ['close'], reason: 'aborted', ref: 'local: no QUIT inside a command' },
  { from: '*', on: ['mail', 'body', 'bodyEnd'], to: 'closed', do: ['close'], reason: 'state', ref: 'local error' },
  { from: '*', on: ['invalid input'], to: 'closed', do: ['close'], reason: 'invalid input', ref: 'local error' },

  { from: 'closed', on: ['*'], to: 'closed', do: ['close'], reason: 'state', ref: 'local error' },
] satisfies SmtpTransactionTransition[])

const LIVE: readonly SmtpTransactionStateName[] = [
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

const ROWS: ReadonlyMap<SmtpTransactionStateName, readonly SmtpTransactionTransition[]> = new Map(
  [...LIVE, 'closed' as const].map((s) => [
    s,
    [
      ...SMTP_TRANSACTION_TRANSITIONS.filter((t) => t.from === s),
      ...(s === 'closed' ? [] : SMTP_TRANSACTION_TRANSITIONS.filter((t) => t.from === '*')),
    ],
  ]),
)

/** States waiting for a reply: the success codes, their event, the command, for messages. */
const EXPECT: Partial<Record<SmtpTransactionStateName, { ok: readonly number[]; event: SmtpTransactionEvent; command: string }>> = {
  awaitAuth: { ok: [235], event: '235', command: 'AUTH' },
  awaitAuthUser: { ok: [334], event: '334', command: 'AUTH LOGIN' },
  awaitAuthPassword: { ok: [334], event: '334', command: 'the AUTH LOGIN username' },
  awaitRset: { ok: [250], event: '250', command: 'RSET' },
  awaitMail: { ok: [250], event: '250', command: 'MAIL FROM' },
  // RFC 5321 §4.3.2: RCPT → 250, 251 (will forward)
  awaitRcpt: { ok: [250, 251], event: '250', command: 'RCPT TO' },
  awaitData: { ok: [354], event: '354', command: 'DATA' },
  awaitBdat: { ok: [250], event: '250', command: 'BDAT' },
  awaitFinal: { ok: [250], event: '250', command: 'end of data' },
}

/** A reply to a pipelined BDAT chunk, read while waiting for the caller's next chunk. */
const BDAT_REPLY: { ok: readonly number[]; event: SmtpTransactionEvent; command: string } = { ok: [250], event: '250', command: 'BDAT' }

/** Where the body is: for BDAT, room for "BDAT <n> LAST\r\n" in front of each chunk. */
const BDAT_RESERVE = 32
const EMPTY = new Uint8Array(0)
const REDACTED = '<redacted>'
/** Most transcript lines kept (the latest). */
const TRANSCRIPT_LINES = 1000

/** One envelope command (RSET, MAIL, RCPT) in order; replies are matched to them in order (RFC 2920 §3.1). */
interface Command {
  kind: 'RSET' | 'MAIL' | 'RCPT'
  /** The command line without CRLF (also the transcript line). */
  line: string
  /** Index into the message's recipients (RCPT only). */
  rcpt: number
}

interface Outcome {
  status: 'accepted' | 'pending' | 'rejected'
  code?: number
  enhancedStatus: string
  text: string
  reply?: SmtpReply
}

/** One message in flight. */
interface Message {
  env: CheckedEnvelope
  outcomes: (Outcome | undefined)[]
  commands: Command[]
  /** Next command to send (lock-step) and next reply to match. */
  sent: number
  answered: number
  mailFailed: boolean
  chunking: boolean
  encoder?: BodyEncoder
  refusal?: SmtpTlsError
  mailReply?: SmtpReply
  dataReply?: SmtpReply
  /** The first 4xx/5xx to a BDAT chunk before the last (PIPELINING). */
  chunkFailure?: SmtpReply
  error?: SmtpTlsError
}

function replyText(reply: SmtpReply): string {
  return reply.lines.join(' ')
}

function statusOf(reply: SmtpReply): string {
  const cls = Math.floor(reply.code / 100)
  return reply.enhancedStatus ?? `${cls}.0.0`
}

function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

function utf8AsLatin1(s: string): string {
  const bytes = new TextEncoder().encode(s)
  let bin = ''
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i] as number)
  return bin
}

function base64(s: string): string {
  // UTF-8, then base64 (RFC 4648 §4) through latin1 for btoa
  return btoa(utf8AsLatin1(s))
}

/** RFC 4954 §4: the mechanism asked for if offered; otherwise PLAIN, then LOGIN, when offered. */
function pickMechanism(offered: readonly string[], want: 'PLAIN' | 'LOGIN' | undefined): 'PLAIN' | 'LOGIN' | undefined {
  if (want) return offered.includes(want) ? want : undefined
  if (offered.includes('PLAIN')) return 'PLAIN'
  return offered.includes('LOGIN') ? 'LOGIN' : undefined
}

function invalidOption(message: string): SmtpTlsError {
  return new SmtpTlsError('ERR_INVALID_ARGUMENT', message, { temporary: false })
}

function checkAuth(a: unknown): SmtpAuthCredentials {
  if (typeof a !== 'object' || a === null) throw invalidOption('auth must be an object')
  const { username, password, mechanism, authzid } = a as Partial<SmtpAuthCredentials>
  // RFC 4616 §2: UTF-8 strings without NUL (the PLAIN separator). Values are never put in the message.
  const ok = (v: unknown, empty: boolean) => typeof v === 'string' && (empty || v.length > 0) && !v.includes('\0')
  if (!ok(username, false)) throw invalidOption('auth.username must be a non-empty string without NUL')
  if (!ok(password, true)) throw invalidOption('auth.password must be a string without NUL')
  if (mechanism !== undefined && mechanism !== 'PLAIN' && mechanism !== 'LOGIN')
    throw invalidOption("auth.mechanism must be 'PLAIN' or 'LOGIN'")
  if (authzid !== undefined && !ok(authzid, true)) throw invalidOption('auth.authzid must be a string without NUL')
  const out: SmtpAuthCredentials = { username: username as string, password: password as string }
  if (mechanism !== undefined) out.mechanism = mechanism
  if (authzid !== undefined) out.authzid = authzid
  return out
}

/**
 * One SMTP session after the (post-TLS) EHLO, sans-IO: messages one after the other, each as
 * `MAIL FROM`, `RCPT TO` per recipient and `DATA` or `BDAT`, `RSET` between messages and `QUIT` at
 * the end; `AUTH PLAIN`/`LOGIN` first in relay mode. Feed it {@link SmtpTransactionInput}s, carry
 * out the {@link SmtpTransactionAction}s it returns.
 *
 * - Parameters: `SIZE` (a declared size over the server's limit is refused before `MAIL`, 5.3.4),
 *   `BODY=8BITMIME`, `SMTPUTF8` (a non-ASCII recipient without it fails with 5.6.7 and is never
 *   sent), `REQUIRETLS` (only on a `verified` session that offers it, else 5.7.30), DSN.
 * - `PIPELINING`: RSET, MAIL and every RCPT in one `send`, BDAT chunks without waiting for their
 *   replies; otherwise one command at a time. A reply that arrives ahead of its command is a
 *   protocol error.
 * - Body: the caller feeds chunks when asked (`needBody`); each becomes one `send`, dot-stuffed and
 *   CRLF-normalised for DATA, `BDAT <n>` for CHUNKING; nothing holds the whole message.
 * - Every session failure (421, EOF, timeout, a protocol error) is a `close` with a temporary
 *   {@link SmtpTlsError}; a message in flight first gets its `done` with every undecided recipient
 *   pending.
 *
 * `handle` never throws. After `close` every call returns exactly `[{ type: 'close', error }]` with
 * an `ERR_STATE` error.
 *
 * @example
 * ```ts
 * // `ready` is StartTlsClient's ready action; `socket` the (TLS) stream it handed over.
 * const tx = new SmtpTransaction({ capabilities: ready.capabilities, secure: ready.secure, servername: 'mx.example.com' })
 * const body = message[Symbol.iterator]() // Uint8Array chunks of the RFC 5322 message
 * const run = (acts: SmtpTransactionAction[]) => {
 *   for (const a of acts) {
 *     if (a.type === 'send') socket.write(a.bytes)
 *     else if (a.type === 'needBody') {
 *       const c = body.next()
 *       queueMicrotask(() => run(tx.handle(c.done ? { type: 'bodyEnd' } : { type: 'body', bytes: c.value })))
 *     } else if (a.type === 'done') {
 *       console.log(a.result.accepted, a.result.dataReply?.lines[0])
 *       run(tx.handle({ type: 'quit' }))
 *     } else if (a.type === 'close') socket.end()
 *   }
 * }
 * socket.on('data', (bytes) => run(tx.handle({ type: 'data', bytes })))
 * run(tx.handle({ type: 'mail', envelope: { from: 'a@example.org', to: ['b@example.com'], size: 1234 } }))
 * ```
 * @public
 */
export class SmtpTransaction {
  readonly capabilities: EhloCapabilities
  readonly secure: boolean
  readonly verified: boolean
  readonly servername: string
  readonly pipelining: boolean
  readonly chunking: boolean
  #offer: Offer
  #auth: SmtpAuthCredentials | undefined
  #authMechanism: 'PLAIN' | 'LOGIN' | undefined
  #authPending: boolean
  /** Strings never to show: the password and the base64 we send. */
  #secrets: string[] = []
  #name: SmtpTransactionStateName = 'idle'
  #parser: ReplyParser
  #msg: Message | undefined = undefined
  /** A MAIL was sent on this session: the next message starts with RSET. */
  #mailSent = false
  /** Commands sent whose replies have not come. */
  #outstanding = 0
  #error: SmtpTlsError | undefined = undefined
  #closeReply: SmtpReply | undefined = undefined
  #transcript: string[] = []
  /** The body input being handled (for 'send body' steps). */
  #chunk: Uint8Array = EMPTY

  constructor(opts: SmtpTransactionOptions) {
    // A getter or Proxy trap in the options is the caller's mistake: coded, never a bare exception.
    try {
      if (typeof opts !== 'object' || opts === null) throw invalidOption('SmtpTransaction needs an options object')
      const caps = opts.capabilities as EhloCapabilities | undefined
      if (typeof caps !== 'object' || caps === null || !(caps.extensions instanceof Map) || !Array.isArray(caps.auth)) {
        throw invalidOption('capabilities must be the EhloCapabilities of the EHLO that applies')
      }
      if (typeof opts.secure !== 'boolean') throw invalidOption('secure must be a boolean')
      if (opts.verified !== undefined && typeof opts.verified !== 'boolean') throw invalidOption('verified must be a boolean')
      if (opts.verified === true && !opts.secure) throw invalidOption('verified needs secure: a plaintext session cannot be verified')
      if (opts.servername !== undefined && typeof opts.servername !== 'string') throw invalidOption('servername must be a string')
      this.capabilities = caps
      this.secure = opts.secure
      this.verified = opts.verified === true
      this.servername = opts.servername ?? ''
      const ext = caps.extensions
      this.pipelining = ext.has('PIPELINING') // RFC 2920
      this.chunking = ext.has('CHUNKING') // RFC 3030
      this.#offer = {
        size: ext.has('SIZE'),
        eightBit: ext.has('8BITMIME'),
        smtputf8: ext.has('SMTPUTF8'),
        // RFC 8689 §4.2.1: only after TLS (StartTlsClient forgets pre-TLS capabilities) and verified.
        requireTls: ext.has('REQUIRETLS') && this.verified,
        dsn: ext.has('DSN'),
      }
      this.#auth = opts.auth === undefined ? undefined : checkAuth(opts.auth)
      this.#authPending = this.#auth !== undefined
      if (this.#auth) {
        this.#authMechanism = pickMechanism(caps.auth, this.#auth.mechanism)
        const a = this.#auth
        this.#secrets = [
          base64(`${a.authzid ?? ''}\0${a.username}\0${a.password}`),
          base64(a.username),
          base64(a.password),
          a.password,
          // reply text is decoded byte for byte (latin1): a server echoing the UTF-8 password shows it so
          utf8AsLatin1(a.password),
        ].filter((s) => s.length >= 2)
      }
      const limits: { maxLineLength?: number; maxLines?: number } = {}
      if (opts.maxLineLength !== undefined) limits.maxLineLength = checkLimit('maxLineLength', opts.maxLineLength, 510, 1 << 24)
      if (opts.maxLines !== undefined) limits.maxLines = opts.maxLines
      this.#parser = new ReplyParser(limits)
    } catch (e) {
      throw coded(e, 'SmtpTransaction')
    }
  }

  /** The current state. */
  get state(): SmtpTransactionState {
    if (this.#name !== 'closed') return { name: this.#name }
    const s: { name: 'closed'; error?: SmtpTlsError; reply?: SmtpReply } = { name: 'closed' }
    if (this.#error) s.error = this.#error
    if (this.#closeReply) s.reply = this.#closeReply
    return s
  }

  /**
   * The conversation in posttls-finger style (`> MAIL FROM:<…>`, `< 250 …`); credentials redacted,
   * bodies left out, the last 1000 lines of a long session.
   */
  get transcript(): readonly string[] {
    return this.#transcript
  }

  /** Feed one input; returns what to do, in order. Never throws. */
  handle(input: SmtpTransactionInput): SmtpTransactionAction[] {
    const out: SmtpTransactionAction[] = []
    const type = typeof input === 'object' && input !== null ? (input as { type?: unknown }).type : undefined
    if (this.#name === 'closed') {
      this.#run(this.#find('*'), undefined, out, String(type))
      return out
    }
    switch (type) {
      case 'eof':
      case 'timeout':
      case 'quit':
        this.#run(this.#find(type), undefined, out, type)
        return out
      case 'mail': {
        if (this.#name !== 'idle') break
        let env: CheckedEnvelope
        try {
          env = checkEnvelope((input as { envelope?: unknown }).envelope)
        } catch (e) {
          this.#run(this.#find('invalid input'), undefined, out, 'mail', e)
          return out
        }
        this.#msg = this.#prepare(env)
        this.#run(this.#find('mail'), undefined, out, type)
        return out
      }
      case 'body':
      case 'bodyEnd': {
        const bytes = (input as { bytes?: unknown }).bytes
        if (type === 'body' ? !(bytes instanceof Uint8Array) : bytes !== undefined && !(bytes instanceof Uint8Array)) {
          this.#run(this.#find('invalid input'), undefined, out, type)
          return out
        }
        this.#chunk = (bytes as Uint8Array | undefined) ?? EMPTY
        this.#run(this.#find(type), undefined, out, type)
        this.#chunk = EMPTY
        return out
      }
      case 'data': {
        const bytes = (input as { bytes?: unknown }).bytes
        if (!(bytes instanceof Uint8Array)) break
        if (bytes.length > 0) this.#data(bytes, out)
        return out
      }
    }
    if (type === 'mail' || type === 'body' || type === 'bodyEnd') {
      this.#run(this.#find(type), undefined, out, type)
      return out
    }
    this.#run(this.#find('invalid input'), undefined, out, String(type))
    return out
  }

  #data(bytes: Uint8Array, out: SmtpTransactionAction[]): void {
    const p = this.#parser
    try {
      p.push(bytes)
    } catch (e) {
      this.#run(this.#find('bad reply'), undefined, out, 'data', e)
      return
    }
    while (this.#name !== 'closed') {
      let reply: SmtpReply | undefined
      try {
        reply = p.next()
      } catch (e) {
        this.#run(this.#find('bad reply'), undefined, out, 'data', e)
        return
      }
      if (reply === undefined) return
      reply = this.#redact(reply)
      for (const line of formatReplyLines(reply)) this.#log(`< ${line}`)
      // awaitBody with BDAT chunks in flight (PIPELINING) reads their replies
      const expect = this.#name === 'awaitBody' && this.#outstanding > 0 ? BDAT_REPLY : EXPECT[this.#name]
      if (expect === undefined) {
        // Nothing outstanding (idle, or waiting for the caller's body): only a 421 may come (RFC 5321 §3.8).
        this.#run(this.#find(reply.code === 421 ? '421' : 'unsolicited'), reply, out, 'data')
        continue
      }
      this.#outstanding--
      // The last outstanding reply followed by more bytes: the server answered a command not yet sent.
      if (this.#outstanding === 0 && p.pending) {
        this.#run(this.#find('bytes after reply'), reply, out, 'data')
        return
      }
      const code = reply.code
      const cls = Math.floor(code / 100)
      const event: SmtpTransactionEvent = expect.ok.includes(code)
        ? expect.event
        : code === 421
          ? '421'
          : cls === 4
            ? '4xx'
            : cls === 5
              ? '5xx'
              : 'unexpected'
      const m = this.#msg
      const envelope = this.#name === 'awaitRset' || this.#name === 'awaitMail' || this.#name === 'awaitRcpt'
      this.#run(this.#find(event, reply), reply, out, 'data')
      // RFC 2920 §3.1: replies come in command order; this one answered commands[answered].
      if (envelope && m) m.answered++
    }
  }

  /** Server text never shows our credentials, even when a server echoes them. */
  #redact(reply: SmtpReply): SmtpReply {
    if (this.#secrets.length === 0) return reply
    let changed = false
    const lines = reply.lines.map((l) => {
      let t = l
      for (const s of this.#secrets) if (t.includes(s)) t = t.split(s).join(REDACTED)
      if (t !== l) changed = true
      return t
    })
    if (!changed) return reply
    return reply.enhancedStatus === undefined
      ? { code: reply.code, lines }
      : { code: reply.code, enhancedStatus: reply.enhancedStatus, lines }
  }

  #find(event: SmtpTransactionEvent, reply?: SmtpReply): SmtpTransactionTransition {
    const rows = ROWS.get(this.#name) ?? []
    for (const row of rows) {
      if (!row.on.includes(event) && !row.on.includes('*')) continue
      if (row.when && !row.when.every((g) => this.#guard(g, reply))) continue
      return row
    }
    /* c8 ignore next: the table covers every (live state, event); a test checks it */
    throw new SmtpTlsError('ERR_STATE', `no transition from ${this.#name} on ${event}`)
  }

  #guard(g: SmtpTransactionGuard, reply: SmtpReply | undefined): boolean {
    const m = this.#msg
    switch (g) {
      case 'message refused':
        return m?.refusal !== undefined || (m !== undefined && m.commands.every((c) => c.kind !== 'RCPT'))
      case 'auth pending':
        return this.#authPending
      case 'not secure':
        return !this.secure
      case 'no auth mechanism':
        return this.#authMechanism === undefined
      case 'AUTH LOGIN':
        return this.#authMechanism === 'LOGIN'
      case 'reuse':
        return this.#mailSent
      case 'more replies':
        // replies still due to commands already sent (pipelined)
        return m !== undefined && m.answered + 1 < m.sent
      case 'more recipients':
        // commands still to answer, sent or not (lock-step sends the next one now)
        return m !== undefined && m.answered + 1 < m.commands.length
      case 'some accepted': {
        if (!m || m.mailFailed) return false
        if (m.outcomes.some((o) => o?.status === 'accepted')) return true
        return reply !== undefined && Math.floor(reply.code / 100) === 2
      }
      case 'chunking':
        return m?.chunking === true
      case 'pipelining':
        return this.pipelining
      case 'chunk failed':
        return m?.chunkFailure !== undefined
      case 'replies due':
        // replies to commands already sent, after the one being handled
        return this.#outstanding > 0
      case 'empty chunk':
        // nothing to send: an empty input, or the LF of a CRLF split after its CR
        return this.#chunk.length === 0 || (this.#msg?.encoder?.wouldBeEmpty(this.#chunk) ?? false)
    }
  }

  /** Validate what can be decided before sending: local refusals, per-recipient problems, the commands. */
  #prepare(env: CheckedEnvelope): Message {
    const offer = this.#offer
    const host = this.servername || 'the server'
    const m: Message = {
      env,
      outcomes: env.to.map(() => undefined),
      commands: [],
      sent: 0,
      answered: 0,
      mailFailed: false,
      chunking: this.chunking,
    }
    const permanent = (
      code: 'ERR_SMTP_MESSAGE_TOO_BIG' | 'ERR_SMTP_EXTENSION_MISSING' | 'ERR_SMTP_BAD_ADDRESS' | 'ERR_REQUIRETLS',
      status: string,
      text: string,
    ) => new SmtpTlsError(code, text, { temporary: false, enhancedStatus: status })
    const limit = this.capabilities.size
    const nonAsciiRcpt = env.to.some((r) => r.nonAscii)
    if (env.fromProblem === 'syntax') {
      m.refusal = permanent('ERR_SMTP_BAD_ADDRESS', '5.1.7', `bad sender address syntax: ${JSON.stringify(env.from)}`)
    } else if (offer.size && limit !== undefined && limit > 0 && env.size !== undefined && env.size > limit) {
      // RFC 1870 §6.1: do not send a message over the server's fixed limit. Postfix: 5.3.4.
      m.refusal = permanent('ERR_SMTP_MESSAGE_TOO_BIG', '5.3.4', `message size ${env.size} exceeds size limit ${limit} of server ${host}`)
    } else if (env.body === '8BITMIME' && !offer.eightBit) {
      // RFC 6152 §3: no conversion here, so the message cannot go to this server.
      m.refusal = permanent('ERR_SMTP_EXTENSION_MISSING', '5.6.3', `8BITMIME is required, but was not offered by host ${host}`)
    } else if ((env.fromProblem === 'non-ascii' || env.smtputf8) && !offer.smtputf8) {
      // RFC 6531 §3.2; Postfix: "SMTPUTF8 is required, but was not offered by host".
      m.refusal = permanent('ERR_SMTP_EXTENSION_MISSING', '5.6.7', `SMTPUTF8 is required, but was not offered by host ${host}`)
    } else if (env.requireTls && !offer.requireTls) {
      // RFC 8689 §4.2.1: TLS, a verified peer and REQUIRETLS after STARTTLS; else 5.7.30 for this host.
      const why = !this.verified ? 'the session is not verified' : `REQUIRETLS was not offered by host ${host}`
      m.refusal = permanent('ERR_REQUIRETLS', '5.7.30', `REQUIRETLS is required, but ${why}`)
    }
    if (m.refusal) return m
    const useUtf8 = offer.smtputf8 && (env.smtputf8 || env.fromProblem === 'non-ascii' || nonAsciiRcpt)
    if (this.#mailSent) m.commands.push({ kind: 'RSET', line: 'RSET', rcpt: -1 })
    const mail = mailLine(env, offer, useUtf8)
    m.commands.push({ kind: 'MAIL', line: mail, rcpt: -1 })
    env.to.forEach((r: CheckedRecipient, i) => {
      if (r.problem === 'syntax') {
        m.outcomes[i] = { status: 'rejected', enhancedStatus: '5.1.3', text: `bad recipient address syntax: ${JSON.stringify(r.address)}` }
      } else if (r.nonAscii && !offer.smtputf8) {
        // RFC 6531 §3.2, RFC 6533: never sent mangled; this recipient fails, the others go on.
        m.outcomes[i] = {
          status: 'rejected',
          enhancedStatus: '5.6.7',
          text: `SMTPUTF8 is required for ${r.address}, but was not offered by host ${host}`,
        }
      } else {
        const line = rcptLine(r, offer)
        m.commands.push({ kind: 'RCPT', line, rcpt: i })
      }
    })
    return m
  }

  #run(row: SmtpTransactionTransition, reply: SmtpReply | undefined, out: SmtpTransactionAction[], input: string, cause?: unknown): void {
    const from = this.#name
    const m = this.#msg as Message
    for (const step of row.do) {
      switch (step) {
        case 'send AUTH PLAIN':
        case 'send AUTH LOGIN':
        case 'send username':
        case 'send password':
          this.#sasl(step, out)
          break
        case 'begin':
          this.#authPending = false
          this.#begin(m, out)
          break
        case 'next command':
          this.#nextCommand(m, out)
          break
        case 'refuse message':
        case 'mail accepted':
        case 'mail failed':
        case 'record recipient':
        case 'record chunk':
        case 'final reply':
          this.#record(step, m, reply as SmtpReply)
          break
        case 'discard body':
          break
        case 'send DATA':
          this.#sendLine(out, 'DATA', 'DATA')
          break
        case 'need body':
          m.encoder ??= new BodyEncoder(!m.chunking)
          out.push({ type: 'needBody' })
          break
        case 'send body':
        case 'send end of data':
        case 'send BDAT':
        case 'send BDAT LAST':
          this.#body(step, m, out)
          break
        case 'done':
          this.#done(out)
          break
        case 'send QUIT':
          this.#sendLine(out, 'QUIT', 'QUIT', false)
          break
        case 'close':
          this.#close(row, from, reply, input, cause, out)
          break
      }
    }
    this.#name = row.to
  }

  /** One SASL step (RFC 4954); the transcript shows no credential. */
  #sasl(step: 'send AUTH PLAIN' | 'send AUTH LOGIN' | 'send username' | 'send password', out: SmtpTransactionAction[]): void {
    const a = this.#auth as SmtpAuthCredentials
    switch (step) {
      case 'send AUTH PLAIN':
        // RFC 4954 §4 initial response; RFC 4616 §2 message: authzid NUL authcid NUL passwd
        this.#sendLine(out, `AUTH PLAIN ${base64(`${a.authzid ?? ''}\0${a.username}\0${a.password}`)}`, `AUTH PLAIN ${REDACTED}`)
        break
      case 'send AUTH LOGIN':
        this.#sendLine(out, 'AUTH LOGIN', 'AUTH LOGIN')
        break
      case 'send username':
        this.#sendLine(out, base64(a.username), REDACTED)
        break
      case 'send password':
        this.#sendLine(out, base64(a.password), REDACTED)
        break
    }
  }

  /** Record what a reply (or a local refusal) decides for the message and its recipients. */
  #record(
    step: 'refuse message' | 'mail accepted' | 'mail failed' | 'record recipient' | 'record chunk' | 'final reply',
    m: Message,
    reply: SmtpReply,
  ): void {
    // RFC 3030 §2: after a failed chunk the message has failed, whatever the final reply says.
    const r = step === 'final reply' ? (m.chunkFailure ?? reply) : reply
    const host = this.servername || 'the server'
    const cls = r ? Math.floor(r.code / 100) : 0
    switch (step) {
      case 'refuse message': {
        const err = m.refusal
        const o: Outcome = err
          ? { status: 'rejected', enhancedStatus: err.enhancedStatus ?? '5.0.0', text: err.message }
          : { status: 'rejected', enhancedStatus: '5.0.0', text: 'not sent' }
        m.outcomes = m.outcomes.map((x) => (err || !x ? o : x))
        if (err) m.error = err
        break
      }
      case 'mail accepted':
        m.mailReply = r
        break
      case 'mail failed': {
        m.mailReply = r
        m.mailFailed = true
        m.error = new SmtpReplyError('ERR_SMTP_REJECTED', `host ${host} refused the sender: ${formatReplyLines(r).join(' ')}`, r, {
          temporary: cls !== 5,
        })
        // RFC 5321 §3.3: the MAIL reply decides every recipient not decided locally.
        for (const c of m.commands) if (c.kind === 'RCPT') m.outcomes[c.rcpt] = fromReply(r, cls === 5 ? 'rejected' : 'pending')
        break
      }
      case 'record recipient': {
        const cmd = m.commands[m.answered] as Command
        if (m.mailFailed || cmd.kind !== 'RCPT') break
        m.outcomes[cmd.rcpt] = fromReply(r, cls === 2 ? 'accepted' : cls === 4 ? 'pending' : 'rejected')
        break
      }
      case 'record chunk':
        if (cls !== 2) m.chunkFailure ??= r
        break
      case 'final reply':
        m.dataReply = r
        if (cls === 2) break
        m.error = new SmtpReplyError('ERR_SMTP_REJECTED', `host ${host} refused the message: ${formatReplyLines(r).join(' ')}`, r, {
          temporary: cls !== 5,
        })
        // Every accepted recipient shares the fate of the message.
        m.outcomes = m.outcomes.map((o) => (o?.status === 'accepted' ? fromReply(r, cls === 5 ? 'rejected' : 'pending') : o))
        break
    }
  }

  /** One body input on the wire: DATA (stuffed, and the final "." with the last) or one BDAT command with its bytes. */
  #body(step: 'send body' | 'send end of data' | 'send BDAT' | 'send BDAT LAST', m: Message, out: SmtpTransactionAction[]): void {
    const enc = m.encoder as BodyEncoder
    if (step === 'send body') {
      const c = enc.encode(this.#chunk, 0, false)
      if (c.end > c.start) out.push({ type: 'send', bytes: c.buf.subarray(c.start, c.end) })
      return
    }
    if (step === 'send end of data') {
      const c = enc.encode(this.#chunk, 0, true)
      this.#log('> .')
      this.#outstanding++
      out.push({ type: 'send', bytes: c.buf.subarray(c.start, c.end) })
      return
    }
    // RFC 3030 §2: "BDAT" SP chunk-size [SP "LAST"] CRLF, then exactly chunk-size octets; the
    // command is written into the room left in front of the chunk (one buffer per chunk).
    const last = step === 'send BDAT LAST'
    const c = enc.encode(this.#chunk, BDAT_RESERVE, last)
    const head = `BDAT ${c.end - c.start}${last ? ' LAST' : ''}`
    const start = c.start - head.length - 2
    c.buf.set(latin1(head + '\r\n'), start)
    this.#log(`> ${head}`)
    this.#outstanding++
    out.push({ type: 'send', bytes: c.buf.subarray(start, c.end) })
  }

  /** Queue the envelope commands; send them all (PIPELINING) or the first. */
  #begin(m: Message, out: SmtpTransactionAction[]): void {
    this.#mailSent = true
    if (!this.pipelining) {
      this.#nextCommand(m, out)
      return
    }
    // RFC 2920 §3.1: RSET, MAIL and RCPT may all go in one group, one write.
    let group = ''
    for (const c of m.commands) {
      group += group === '' ? c.line : '\r\n' + c.line
      this.#log(`> ${c.line}`)
    }
    m.sent = m.commands.length
    this.#outstanding += m.commands.length
    out.push({ type: 'send', bytes: lineBytes(group) })
  }

  #nextCommand(m: Message, out: SmtpTransactionAction[]): void {
    if (this.pipelining || m.sent >= m.commands.length) return
    const c = m.commands[m.sent++] as Command
    this.#log(`> ${c.line}`)
    this.#outstanding++
    out.push({ type: 'send', bytes: lineBytes(c.line) })
  }

  /**
   * Add a transcript line. A session can carry many messages and a message many BDAT chunks, so the
   * transcript keeps the last {@link TRANSCRIPT_LINES} lines: the oldest half goes when it is full.
   */
  #log(line: string): void {
    const t = this.#transcript
    t.push(line)
    if (t.length <= TRANSCRIPT_LINES) return
    // our lines start with "> ", the server's with "< ": a leading "… " is the count of lines dropped
    const head = t[0] as string
    const before = head.startsWith('… ') ? Number.parseInt(head.slice(2), 10) - 1 : 0
    const cut = TRANSCRIPT_LINES / 2 + 1
    t.splice(0, cut, `… ${before + cut} earlier lines`)
  }

  /** Send one command line (ASCII); `shown` is what the transcript gets (credentials redacted). */
  #sendLine(out: SmtpTransactionAction[], line: string, shown: string, awaitReply = true): void {
    this.#log(`> ${shown}`)
    if (awaitReply) this.#outstanding++
    out.push({ type: 'send', bytes: lineBytes(line) })
  }

  #done(out: SmtpTransactionAction[]): void {
    const m = this.#msg
    if (!m) return
    this.#msg = undefined
    const recipients: SmtpRecipientResult[] = m.env.to.map((r, i) => {
      const o = m.outcomes[i] ?? { status: 'pending' as const, enhancedStatus: '4.0.0', text: 'no reply' }
      return { address: r.address, ...o }
    })
    const result: {
      -readonly [K in keyof SmtpTransactionResult]: SmtpTransactionResult[K]
    } = {
      recipients,
      accepted: recipients.filter((r) => r.status === 'accepted').map((r) => r.address),
      pending: recipients.filter((r) => r.status === 'pending').map((r) => r.address),
      rejected: recipients.filter((r) => r.status === 'rejected').map((r) => r.address),
    }
    if (m.mailReply) result.mailReply = m.mailReply
    if (m.dataReply) result.dataReply = m.dataReply
    if (m.error) result.error = m.error
    out.push({ type: 'done', result })
  }

  #close(
    row: SmtpTransactionTransition,
    from: SmtpTransactionStateName,
    reply: SmtpReply | undefined,
    input: string,
    cause: unknown,
    out: SmtpTransactionAction[],
  ): void {
    if (from === 'closed') {
      const error = new SmtpTlsError('ERR_STATE', `${input} after the session was closed`, {
        enhancedStatus: '4.3.0',
        ...(this.#error ? { cause: this.#error } : {}),
      })
      out.push({ type: 'close', error })
      return
    }
    const reason = row.reason ?? 'state'
    if (reason === 'quit') {
      out.push({ type: 'close' })
      return
    }
    const error = this.#makeError(reason, from, reply, input, cause)
    this.#error = error
    // A message in flight ends first: undecided and accepted recipients wait (or fail for good).
    const m = this.#msg
    if (m) {
      const o: Outcome = {
        status: error.temporary ? 'pending' : 'rejected',
        enhancedStatus: error.enhancedStatus ?? (error.temporary ? '4.0.0' : '5.0.0'),
        text: error.message,
      }
      if (reply && reason !== 'reply ahead') {
        o.code = reply.code
        o.reply = reply
      }
      // After the final reply was due, accepted recipients are not known to be delivered (RFC 1047): pending.
      m.outcomes = m.outcomes.map((x) => (x === undefined || x.status === 'accepted' ? o : x))
      m.error ??= error
      this.#done(out)
    }
    const withReply = reply !== undefined && (reason === 'rejected' || reason === 'unexpected reply' || reason === 'auth failed')
    if (withReply) {
      this.#closeReply = reply
      out.push({ type: 'close', error, reply })
    } else {
      out.push({ type: 'close', error })
    }
  }

  #makeError(
    reason: SmtpTransactionCloseReason,
    from: SmtpTransactionStateName,
    reply: SmtpReply | undefined,
    input: string,
    cause: unknown,
  ): SmtpTlsError {
    const host = this.servername || 'the server'
    const doing = EXPECT[from]
      ? `waiting for the reply to ${EXPECT[from].command}`
      : from === 'awaitBody'
        ? 'sending the message body'
        : 'idle'
    const text = () => formatReplyLines(reply as SmtpReply).join(' ')
    switch (reason) {
      case 'rejected': {
        // The session ends (421, a refused RSET): the message stays queued, so a 5xx here still defers, as 4.x.x.
        const es = statusOf(reply as SmtpReply)
        return new SmtpReplyError('ERR_SMTP_REJECTED', `host ${host} said: ${text()} (while ${doing})`, reply as SmtpReply, {
          enhancedStatus: es.startsWith('5') ? '4' + es.slice(1) : es,
        })
      }
      case 'unexpected reply':
        return new SmtpReplyError(
          'ERR_SMTP_PROTOCOL',
          `unexpected reply to ${EXPECT[from]?.command ?? 'the command'} from ${host}: ${text()}`,
          reply as SmtpReply,
          {
            enhancedStatus: '4.5.0',
          },
        )
      case 'reply ahead':
        return new SmtpTlsError('ERR_SMTP_PROTOCOL', `host ${host} sent a reply before our command while ${doing} (improper pipelining)`, {
          enhancedStatus: '4.5.0',
        })
      case 'bad reply':
        if (cause instanceof SmtpTlsError) return cause
        return new SmtpTlsError('ERR_SMTP_PROTOCOL', `malformed reply from ${host} while ${doing}`, { enhancedStatus: '4.5.0', cause })
      case 'auth failed': {
        const r = reply as SmtpReply
        // RFC 4954 §6: 535 5.7.8 bad credentials (permanent), 454 4.7.0 temporary failure.
        return new SmtpReplyError('ERR_SMTP_AUTH_FAILED', `SASL authentication failed; server ${host} said: ${text()}`, r, {
          temporary: Math.floor(r.code / 100) !== 5,
        })
      }
      case 'auth unavailable':
        // Postfix: "SASL authentication failed; server … offered no compatible authentication mechanisms"
        return new SmtpTlsError(
          'ERR_SMTP_AUTH_UNAVAILABLE',
          `SASL authentication failed; server ${host} offered no compatible authentication mechanisms (offered: ${this.capabilities.auth.join(' ') || 'none'})`,
          { enhancedStatus: '4.7.0' },
        )
      case 'auth insecure':
        return new SmtpTlsError('ERR_SMTP_AUTH_INSECURE', `SASL authentication refused: the session with ${host} is not protected by TLS`, {
          enhancedStatus: '4.7.0',
        })
      case 'eof':
        return new SmtpTlsError('ERR_SMTP_EOF', `lost connection with ${host} while ${doing}`, { enhancedStatus: '4.4.2' })
      case 'timeout':
        return new SmtpTlsError('ERR_SMTP_TIMEOUT', `conversation with ${host} timed out while ${doing}`, { enhancedStatus: '4.4.2' })
      case 'aborted':
        return new SmtpTlsError('ERR_ABORTED', `the session with ${host} was abandoned while ${doing}`, { enhancedStatus: '4.3.0' })
      case 'invalid input':
        return cause instanceof SmtpTlsError
          ? new SmtpTlsError('ERR_INVALID_ARGUMENT', cause.message, { enhancedStatus: '4.3.0', cause })
          : new SmtpTlsError('ERR_INVALID_ARGUMENT', `not a SmtpTransactionInput (type ${input}) in state ${from}`, {
              enhancedStatus: '4.3.0',
            })
      case 'quit':
      case 'state':
        return new SmtpTlsError('ERR_STATE', `${input} is not expected in state ${from}`, { enhancedStatus: '4.3.0' })
    }
  }
}

function fromReply(r: SmtpReply, status: Outcome['status']): Outcome {
  return { status, code: r.code, enhancedStatus: statusOf(r), text: replyText(r), reply: r }
}

/** Mermaid-safe label text. */
function label(t: SmtpTransactionTransition): string {
  const on = t.on.join(', ')
  const when = t.when ? ` if ${t.when.join(' and ')}` : ''
  const steps = t.do.map((s) => (s === 'close' && t.reason ? `close (${t.reason})` : s)).join(', ')
  return `${on}${when} / ${steps}`
}

/**
 * The state diagram of {@link SmtpTransaction} in Mermaid syntax, generated from
 * {@link SMTP_TRANSACTION_TRANSITIONS} (docs/transaction.md embeds it; a test keeps the two equal).
 * @public
 */
export function smtpTransactionDiagram(): string {
  const lines = ['stateDiagram-v2', '  [*] --> idle', '  state "any live state" as anyLive']
  for (const t of SMTP_TRANSACTION_TRANSITIONS) {
    if (t.from === 'closed') continue
    const from = t.from === '*' ? 'anyLive' : t.from
    lines.push(`  ${from} --> ${t.to} : ${label(t)}`)
  }
  lines.push('  closed --> [*]')
  return lines.join('\n') + '\n'
}
