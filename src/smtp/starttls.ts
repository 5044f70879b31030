/**
 * The STARTTLS client as a sans-IO state machine (DESIGN.md §4): inputs in, actions out, no sockets,
 * no timers, no crypto. Every state and transition is one row of {@link STARTTLS_TRANSITIONS}; the
 * code below only classifies an input into an event, looks the row up and carries out its steps.
 */
import { describeValue, isBytes, readOptions } from '../args.js'
import { SmtpTlsError, type ErrorCode, type TlsRptResultType } from '../errors.js'
import { parseEhloCapabilities, type EhloCapabilities } from './ehlo.js'
import { checkLimit, formatReplyLines, ReplyParser, type SmtpReply } from './reply.js'

/** @public */
export type StartTlsInput =
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'eof' }
  | { type: 'timeout' }
  | { type: 'tlsEstablished' }
  | { type: 'tlsFailed'; cause: unknown }

/**
 * What the driver must do. `ready` and `close` are final: after either, the machine does nothing more.
 * @public
 */
export type StartTlsAction =
  | { type: 'send'; bytes: Uint8Array }
  | { type: 'upgrade'; servername: string }
  | {
      type: 'ready'
      /** TLS is up (the post-TLS EHLO succeeded). `false`: plaintext, allowed only when `requireTls` is false. */
      secure: boolean
      /** Extension keyword (upper case) → parameters, from the EHLO that applies (post-TLS when secure). */
      extensions: ReadonlyMap<string, string>
      /** The same EHLO reply parsed in full. */
      capabilities: EhloCapabilities
      /** The server only spoke HELO (EHLO was refused with 5xx): no extensions, no STARTTLS. */
      heloOnly: boolean
      /** The server's greeting. */
      greeting: SmtpReply
      /** The EHLO (or HELO) reply the capabilities come from. */
      ehloReply: SmtpReply
      /** The last reply received: the EHLO/HELO reply, or the refusal of STARTTLS when continuing in plaintext. */
      lastReply: SmtpReply
    }
  | {
      type: 'close'
      /** Why; a `ready` session never ends in `close`, so this is always set by this machine. */
      error?: SmtpTlsError
      /** The server reply that ended the session, when one did. */
      reply?: SmtpReply
    }

/**
 * Constructor options of {@link StartTlsClient}.
 * @public
 */
export interface StartTlsClientOptions {
  /** Our name in EHLO/HELO (RFC 5321 §4.1.1.1: a domain or an address literal). */
  ehloName: string
  /** TLS is mandatory (levels `encrypt` and above): never end in a plaintext `ready`. */
  requireTls: boolean
  /** SNI name passed in the `upgrade` action (RFC 7672 §8.1: the TLSA base domain; RFC 8461 §7.1: the MX host). */
  servername: string
  /** Longest reply line, bytes without CRLF. Default 2048. */
  maxLineLength?: number
  /** Most lines in one reply. Default 500. */
  maxLines?: number
  /**
   * Never send STARTTLS, as if the server had not offered it: Postfix level `none`, and the plaintext
   * retry on a new connection after a failed handshake at `may` (Postfix TLS_README). Needs `requireTls: false`.
   */
  skipStartTls?: boolean
}

/**
 * The states; each names what it waits for (rustls style).
 * @public
 */
export type StartTlsStateName =
  'awaitGreeting' | 'awaitEhlo' | 'awaitHelo' | 'awaitStartTls' | 'awaitHandshake' | 'awaitTlsEhlo' | 'ready' | 'closed'

/** @public */
export type StartTlsState =
  | { readonly name: 'awaitGreeting' }
  | { readonly name: 'awaitEhlo' }
  | { readonly name: 'awaitHelo' }
  | { readonly name: 'awaitStartTls' }
  | { readonly name: 'awaitHandshake'; readonly servername: string }
  | { readonly name: 'awaitTlsEhlo' }
  | { readonly name: 'ready'; readonly secure: boolean; readonly heloOnly: boolean; readonly capabilities: EhloCapabilities }
  | { readonly name: 'closed'; readonly error?: SmtpTlsError; readonly reply?: SmtpReply }

/**
 * Events a row reacts to. Reply events come from a complete reply: its success code (`220`, `250`),
 * `421` (service closing, RFC 5321 §3.8), other `4xx`/`5xx`, or `unexpected` (a code the command does
 * not allow). `*` matches any event.
 * @public
 */
export type StartTlsEvent =
  | '220'
  | '250'
  | '421'
  | '4xx'
  | '5xx'
  | 'unexpected'
  | 'bytes after reply'
  | 'bad reply'
  | 'data'
  | 'eof'
  | 'timeout'
  | 'tlsEstablished'
  | 'tlsFailed'
  | 'invalid input'
  | '*'

/** Conditions on a row; all must hold. @public */
export type StartTlsGuard = 'STARTTLS offered' | 'STARTTLS not offered' | 'requireTls' | 'not requireTls' | 'reply 220'

/** What a row does, in order. @public */
export type StartTlsStep = 'send EHLO' | 'send HELO' | 'send STARTTLS' | 'send QUIT' | 'upgrade' | 'enter TLS' | 'ready' | 'close'

/** Why a `close` happens; decides the error code. @public */
export type StartTlsCloseReason =
  | 'rejected'
  | 'starttls not offered'
  | 'starttls refused'
  | 'unexpected reply'
  | 'pipelining'
  | 'response injection'
  | 'handshake failed'
  | 'eof'
  | 'timeout'
  | 'bad reply'
  | 'state'
  | 'invalid input'

/**
 * One transition. `from: '*'` rows apply to every live state (not `ready`/`closed`) after that state's own rows.
 * @public
 */
export interface StartTlsTransition {
  readonly from: StartTlsStateName | '*'
  readonly on: readonly StartTlsEvent[]
  readonly when?: readonly StartTlsGuard[]
  readonly to: StartTlsStateName
  readonly do: readonly StartTlsStep[]
  readonly reason?: StartTlsCloseReason
  /** Where the rule comes from. */
  readonly ref: string
}

const REJECT: readonly StartTlsEvent[] = ['4xx', '5xx']
const NOT_220: readonly StartTlsEvent[] = ['4xx', '5xx', 'unexpected']

/**
 * The single source of truth: every state and transition of {@link StartTlsClient}, in lookup order.
 * Also rendered as the state diagram of docs/starttls.md by {@link startTlsDiagram}.
 * @public
 */
export const STARTTLS_TRANSITIONS: readonly StartTlsTransition[] = Object.freeze([
  // Greeting: RFC 5321 §3.1 / §4.3.2 allow 220 and 554; after 554 the client SHOULD send QUIT.
  { from: 'awaitGreeting', on: ['220'], to: 'awaitEhlo', do: ['send EHLO'], ref: 'RFC 5321 §3.1, §4.1.1.1' },
  { from: 'awaitGreeting', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitGreeting', on: REJECT, to: 'closed', do: ['send QUIT', 'close'], reason: 'rejected', ref: 'RFC 5321 §3.1 (554)' },
  {
    from: 'awaitGreeting',
    on: ['unexpected'],
    to: 'closed',
    do: ['send QUIT', 'close'],
    reason: 'unexpected reply',
    ref: 'RFC 5321 §4.3.2',
  },

  // EHLO before TLS.
  { from: 'awaitEhlo', on: ['250'], when: ['STARTTLS offered'], to: 'awaitStartTls', do: ['send STARTTLS'], ref: 'RFC 3207 §4' },
  {
    from: 'awaitEhlo',
    on: ['250'],
    when: ['STARTTLS not offered', 'requireTls'],
    to: 'closed',
    do: ['send QUIT', 'close'],
    reason: 'starttls not offered',
    ref: 'RFC 3207 §6, RFC 7672 §1.3.1; Postfix 4.7.4',
  },
  { from: 'awaitEhlo', on: ['250'], when: ['STARTTLS not offered', 'not requireTls'], to: 'ready', do: ['ready'], ref: 'RFC 7435 §3' },
  { from: 'awaitEhlo', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitEhlo', on: ['5xx'], to: 'awaitHelo', do: ['send HELO'], ref: 'RFC 5321 §3.2, §4.1.4 (HELO fallback)' },
  { from: 'awaitEhlo', on: ['4xx'], to: 'closed', do: ['send QUIT', 'close'], reason: 'rejected', ref: 'RFC 5321 §4.2.5' },
  { from: 'awaitEhlo', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // HELO: no extensions, so no STARTTLS (RFC 3207 §4 needs EHLO).
  {
    from: 'awaitHelo',
    on: ['250'],
    when: ['requireTls'],
    to: 'closed',
    do: ['send QUIT', 'close'],
    reason: 'starttls not offered',
    ref: 'RFC 3207 §4; Postfix 4.7.4',
  },
  { from: 'awaitHelo', on: ['250'], when: ['not requireTls'], to: 'ready', do: ['ready'], ref: 'RFC 5321 §4.1.1.1' },
  { from: 'awaitHelo', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitHelo', on: REJECT, to: 'closed', do: ['send QUIT', 'close'], reason: 'rejected', ref: 'RFC 5321 §4.2.5' },
  { from: 'awaitHelo', on: ['unexpected'], to: 'closed', do: ['send QUIT', 'close'], reason: 'unexpected reply', ref: 'RFC 5321 §4.3.2' },

  // STARTTLS: 220 go ahead, 454 / 501 refusals (RFC 3207 §4). Nothing may follow the 220 in plaintext.
  {
    from: 'awaitStartTls',
    on: ['bytes after reply'],
    when: ['reply 220'],
    to: 'closed',
    do: ['close'],
    reason: 'response injection',
    ref: 'RFC 3207 §4.2, CVE-2011-0411',
  },
  { from: 'awaitStartTls', on: ['220'], to: 'awaitHandshake', do: ['upgrade'], ref: 'RFC 3207 §4, §4.1' },
  { from: 'awaitStartTls', on: ['421'], to: 'closed', do: ['close'], reason: 'starttls refused', ref: 'RFC 5321 §3.8' },
  {
    from: 'awaitStartTls',
    on: NOT_220,
    when: ['requireTls'],
    to: 'closed',
    do: ['send QUIT', 'close'],
    reason: 'starttls refused',
    ref: 'RFC 3207 §4, §6',
  },
  { from: 'awaitStartTls', on: NOT_220, when: ['not requireTls'], to: 'ready', do: ['ready'], ref: 'RFC 3207 §4 (454 / 501)' },

  // The handshake belongs to the driver; plaintext bytes now are an injection attempt.
  { from: 'awaitHandshake', on: ['tlsEstablished'], to: 'awaitTlsEhlo', do: ['enter TLS', 'send EHLO'], ref: 'RFC 3207 §4.2' },
  {
    from: 'awaitHandshake',
    on: ['tlsFailed'],
    to: 'closed',
    do: ['close'],
    reason: 'handshake failed',
    ref: 'RFC 7672 §2.2; Postfix 4.7.5',
  },
  { from: 'awaitHandshake', on: ['data'], to: 'closed', do: ['close'], reason: 'response injection', ref: 'RFC 3207 §4.2, CVE-2011-0411' },

  // EHLO after TLS: a STARTTLS keyword in it is ignored (RFC 3207 §4.2), never acted on.
  { from: 'awaitTlsEhlo', on: ['250'], to: 'ready', do: ['ready'], ref: 'RFC 3207 §4.2' },
  { from: 'awaitTlsEhlo', on: ['421'], to: 'closed', do: ['close'], reason: 'rejected', ref: 'RFC 5321 §3.8' },
  { from: 'awaitTlsEhlo', on: REJECT, to: 'closed', do: ['send QUIT', 'close'], reason: 'rejected', ref: 'RFC 5321 §4.2.5' },
  {
    from: 'awaitTlsEhlo',
    on: ['unexpected'],
    to: 'closed',
    do: ['send QUIT', 'close'],
    reason: 'unexpected reply',
    ref: 'RFC 5321 §4.3.2',
  },

  // Any live state.
  { from: '*', on: ['bytes after reply'], to: 'closed', do: ['close'], reason: 'pipelining', ref: 'RFC 5321 §4.1.1.1; RFC 2920 §3.1' },
  { from: '*', on: ['bad reply'], to: 'closed', do: ['close'], reason: 'bad reply', ref: 'RFC 5321 §4.2, §4.5.3.1.5' },
  { from: '*', on: ['eof'], to: 'closed', do: ['close'], reason: 'eof', ref: 'RFC 5321 §4.5.3.2' },
  { from: '*', on: ['timeout'], to: 'closed', do: ['close'], reason: 'timeout', ref: 'RFC 5321 §4.5.3.2' },
  { from: '*', on: ['tlsEstablished', 'tlsFailed', 'data'], to: 'closed', do: ['close'], reason: 'state', ref: 'local error' },
  { from: '*', on: ['invalid input'], to: 'closed', do: ['close'], reason: 'invalid input', ref: 'local error' },

  // Final states: the socket is the driver's (ready) or gone (closed).
  { from: 'ready', on: ['*'], to: 'ready', do: ['close'], reason: 'state', ref: 'local error' },
  { from: 'closed', on: ['*'], to: 'closed', do: ['close'], reason: 'state', ref: 'local error' },
] satisfies StartTlsTransition[])

const LIVE: readonly StartTlsStateName[] = ['awaitGreeting', 'awaitEhlo', 'awaitHelo', 'awaitStartTls', 'awaitHandshake', 'awaitTlsEhlo']
const ALL: readonly StartTlsStateName[] = [...LIVE, 'ready', 'closed']

/** Rows per state: its own, then (for live states) the `*` rows. Built once from the table. */
const ROWS: ReadonlyMap<StartTlsStateName, readonly StartTlsTransition[]> = new Map(
  ALL.map((s) => [
    s,
    [...STARTTLS_TRANSITIONS.filter((t) => t.from === s), ...(LIVE.includes(s) ? STARTTLS_TRANSITIONS.filter((t) => t.from === '*') : [])],
  ]),
)

/** States waiting for a reply, with the success code and the command it answers. */
const EXPECT: Partial<Record<StartTlsStateName, { ok: number; command: string; doing: string }>> = {
  awaitGreeting: { ok: 220, command: 'the greeting', doing: 'receiving the initial server greeting' },
  awaitEhlo: { ok: 250, command: 'EHLO', doing: 'performing the EHLO handshake' },
  awaitHelo: { ok: 250, command: 'HELO', doing: 'performing the HELO handshake' },
  awaitStartTls: { ok: 220, command: 'STARTTLS', doing: 'sending STARTTLS' },
  awaitTlsEhlo: { ok: 250, command: 'EHLO', doing: 'performing the EHLO handshake after TLS' },
}

/**
 * A server reply that ended the session (or, from {@link SmtpTransaction}, failed a message):
 * `reply` holds it, `enhancedStatus` is the server's (or `X.0.0` from its code, as Postfix does).
 * The error is `temporary` unless the caller says otherwise: a TLS policy failure defers, it never
 * bounces; only {@link SmtpTransaction} passes `temporary: false`, for a 5xx to a mail command.
 * @public
 */
export class SmtpReplyError extends SmtpTlsError {
  readonly reply: SmtpReply
  /** The server's reply code, e.g. `454`. */
  readonly replyCode: number
  constructor(
    code: ErrorCode,
    message: string,
    reply: SmtpReply,
    opts: { enhancedStatus?: string; tlsrpt?: TlsRptResultType; temporary?: boolean } = {},
  ) {
    const f = replyErrorFacts(reply, opts)
    super(code, message, {
      enhancedStatus: f.enhancedStatus,
      ...(f.tlsrpt === undefined ? {} : { tlsrpt: f.tlsrpt }),
      ...(f.temporary === undefined ? {} : { temporary: f.temporary }),
    })
    this.name = 'SmtpReplyError'
    this.reply = reply
    this.replyCode = f.replyCode
  }
}

/**
 * The status facts of {@link SmtpReplyError}; like its base class, the constructor never throws: a
 * reply or options it cannot read (wrong type, throwing getter) count as absent (`replyCode` NaN, 4.0.0).
 */
function replyErrorFacts(
  reply: unknown,
  opts: unknown,
): { replyCode: number; enhancedStatus: string; tlsrpt: TlsRptResultType | undefined; temporary: boolean | undefined } {
  let replyCode = NaN
  let temporary: unknown
  let replyStatus: unknown
  let enhanced: unknown
  let tlsrpt: unknown
  try {
    if (typeof reply === 'object' && reply !== null) {
      const c = (reply as SmtpReply).code
      if (typeof c === 'number') replyCode = c
      replyStatus = (reply as SmtpReply).enhancedStatus
    }
    if (typeof opts === 'object' && opts !== null) {
      enhanced = (opts as { enhancedStatus?: unknown }).enhancedStatus
      tlsrpt = (opts as { tlsrpt?: unknown }).tlsrpt
      temporary = (opts as { temporary?: unknown }).temporary
    }
  } catch {
    // unreadable: keep what was read
  }
  const cls = Math.floor(replyCode / 100)
  // A positive reply (2xx/3xx) that ends the session is a failure all the same: never a 2.x.x status.
  const fromReply = cls === 4 || cls === 5 ? (typeof replyStatus === 'string' ? replyStatus : `${cls}.0.0`) : '4.0.0'
  return {
    replyCode,
    enhancedStatus: typeof enhanced === 'string' ? enhanced : fromReply,
    tlsrpt: typeof tlsrpt === 'string' ? (tlsrpt as TlsRptResultType) : undefined,
    temporary: typeof temporary === 'boolean' ? temporary : undefined,
  }
}

/** RFC 5321 §4.1.1.1 Domain / address-literal: printable ASCII, no spaces, at most 255 octets (§4.5.3.1.2). */
function checkEhloName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'ehloName must be a domain or an address literal of 1-255 characters', {
      temporary: false,
    })
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f) {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `ehloName contains a character not allowed in EHLO: ${JSON.stringify(name)}`, {
        temporary: false,
        position: i,
      })
    }
  }
  return name
}

function replyText(reply: SmtpReply): string {
  return formatReplyLines(reply).join(' ')
}

/**
 * The STARTTLS client of an SMTP session, sans-IO: feed it what happened ({@link StartTlsInput}),
 * carry out what it returns ({@link StartTlsAction}).
 *
 * Flow: greeting → `EHLO` (→ `HELO` on 5xx) → `STARTTLS` when offered → `upgrade` → (driver does TLS,
 * feeds `tlsEstablished`) → `EHLO` again → `ready`. Without STARTTLS it ends in a plaintext `ready`
 * only when `requireTls` is false, otherwise in `close` with `ERR_STARTTLS_NOT_OFFERED` (4.7.4) or
 * `ERR_STARTTLS_REFUSED` (the server's reply). Every error is a temporary {@link SmtpTlsError}.
 *
 * `handle` never throws. After `ready` or `close` every later call returns exactly
 * `[{ type: 'close', error }]` with an `ERR_STATE` error (its `cause` is the original error, if any)
 * and the state does not change.
 *
 * @example
 * ```ts
 * const c = new StartTlsClient({ ehloName: 'client.example', requireTls: true, servername: 'mx.example.com' })
 * const te = new TextEncoder()
 * c.handle({ type: 'data', bytes: te.encode('220 mx.example.com ESMTP\r\n') }) // [send "EHLO client.example\r\n"]
 * c.handle({ type: 'data', bytes: te.encode('250-mx.example.com\r\n250 STARTTLS\r\n') }) // [send "STARTTLS\r\n"]
 * c.handle({ type: 'data', bytes: te.encode('220 2.0.0 Ready to start TLS\r\n') }) // [upgrade mx.example.com]
 * c.handle({ type: 'tlsEstablished' }) // [send "EHLO client.example\r\n"]
 * c.handle({ type: 'data', bytes: te.encode('250-mx.example.com\r\n250 SIZE 10240000\r\n') }) // [ready, secure: true]
 * ```
 * @public
 */
export class StartTlsClient {
  readonly ehloName: string
  readonly requireTls: boolean
  /** See {@link StartTlsClientOptions.skipStartTls}. */
  readonly skipStartTls: boolean
  readonly servername: string
  #name: StartTlsStateName = 'awaitGreeting'
  #parser: ReplyParser
  #secure = false
  #heloOnly = false
  #greeting: SmtpReply | undefined = undefined
  #ehloReply: SmtpReply | undefined = undefined
  #caps: EhloCapabilities | undefined = undefined
  #error: SmtpTlsError | undefined = undefined
  #closeReply: SmtpReply | undefined = undefined
  #transcript: string[] = []

  constructor(opts: StartTlsClientOptions) {
    if (typeof opts !== 'object' || opts === null) {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'StartTlsClient needs an options object', { temporary: false })
    }
    // One read of each option (a getter runs once; a throwing one is ERR_INVALID_ARGUMENT).
    const o = readOptions(opts, 'StartTlsClient options', [
      'ehloName',
      'requireTls',
      'servername',
      'maxLineLength',
      'maxLines',
      'skipStartTls',
    ]) as Partial<StartTlsClientOptions>
    this.ehloName = checkEhloName(o.ehloName)
    if (typeof o.requireTls !== 'boolean') {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'requireTls must be a boolean', { temporary: false })
    }
    if (typeof o.servername !== 'string') {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'servername must be a string', { temporary: false })
    }
    this.requireTls = o.requireTls
    this.servername = o.servername
    if (o.skipStartTls !== undefined && typeof o.skipStartTls !== 'boolean') {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'skipStartTls must be a boolean', { temporary: false })
    }
    if (o.skipStartTls === true && o.requireTls) {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'skipStartTls cannot be combined with requireTls', { temporary: false })
    }
    this.skipStartTls = o.skipStartTls === true
    const limits: { maxLineLength?: number; maxLines?: number } = {}
    // RFC 5321 §4.5.3.1.5: a reply line may be 512 octets with its CRLF; a lower limit would refuse valid servers.
    if (o.maxLineLength !== undefined) limits.maxLineLength = checkLimit('maxLineLength', o.maxLineLength, 510, 1 << 24)
    if (o.maxLines !== undefined) limits.maxLines = o.maxLines
    this.#parser = new ReplyParser(limits)
  }

  /** The current state. */
  get state(): StartTlsState {
    switch (this.#name) {
      case 'awaitHandshake':
        return { name: 'awaitHandshake', servername: this.servername }
      case 'ready':
        return { name: 'ready', secure: this.#secure, heloOnly: this.#heloOnly, capabilities: this.#caps as EhloCapabilities }
      case 'closed': {
        const s: { name: 'closed'; error?: SmtpTlsError; reply?: SmtpReply } = { name: 'closed' }
        if (this.#error) s.error = this.#error
        if (this.#closeReply) s.reply = this.#closeReply
        return s
      }
      default:
        return { name: this.#name }
    }
  }

  /** The server greeting, once received. */
  get greeting(): SmtpReply | undefined {
    return this.#greeting
  }

  /** The EHLO/HELO reply now in force: after TLS only the post-TLS one (RFC 3207 §4.2); `undefined` while none is. */
  get ehloReply(): SmtpReply | undefined {
    return this.#ehloReply
  }

  /** The capabilities now in force (post-TLS after TLS; pre-TLS ones are forgotten at `tlsEstablished`). */
  get capabilities(): EhloCapabilities | undefined {
    return this.#caps
  }

  /** The conversation so far in posttls-finger style: `< 220 …` from the server, `> EHLO …` from us. */
  get transcript(): readonly string[] {
    return this.#transcript
  }

  /** Feed one input; returns what to do, in order. Never throws. */
  handle(input: StartTlsInput): StartTlsAction[] {
    const out: StartTlsAction[] = []
    let type: unknown
    let payload: unknown
    try {
      // A Proxy or a throwing getter as input is invalid input, never an exception (handle never throws).
      type = typeof input === 'object' && input !== null ? (input as { type?: unknown }).type : undefined
      if (type === 'data') payload = (input as { bytes?: unknown }).bytes
      else if (type === 'tlsFailed') payload = (input as { cause?: unknown }).cause
    } catch {
      type = undefined
    }
    const state = this.#name
    if (state === 'ready' || state === 'closed') {
      this.#run(this.#find('*'), undefined, out, typeof type === 'string' ? type : describeValue(type))
      return out
    }
    switch (type) {
      case 'eof':
      case 'timeout':
      case 'tlsEstablished':
        this.#run(this.#find(type), undefined, out, type)
        return out
      case 'tlsFailed':
        this.#run(this.#find('tlsFailed'), undefined, out, type, payload)
        return out
      case 'data': {
        const bytes = payload
        if (!isBytes(bytes)) break
        if (bytes.length === 0) return out
        if (EXPECT[state] === undefined) {
          this.#run(this.#find('data'), undefined, out, type)
          return out
        }
        this.#data(bytes, out)
        return out
      }
    }
    this.#run(this.#find('invalid input'), undefined, out, typeof type === 'string' ? type : describeValue(type))
    return out
  }

  #data(bytes: Uint8Array, out: StartTlsAction[]): void {
    const p = this.#parser
    let reply: SmtpReply | undefined
    try {
      p.push(bytes)
      reply = p.next()
    } catch (e) {
      this.#run(this.#find('bad reply'), undefined, out, 'data', e)
      return
    }
    if (reply === undefined) return
    for (const line of formatReplyLines(reply)) this.#transcript.push(`< ${line}`)
    const expect = EXPECT[this.#name] as { ok: number }
    const code = reply.code
    const cls = Math.floor(code / 100)
    const event: StartTlsEvent =
      code === expect.ok ? (code === 220 ? '220' : '250') : code === 421 ? '421' : cls === 4 ? '4xx' : cls === 5 ? '5xx' : 'unexpected'
    if (this.#name === 'awaitGreeting') this.#greeting = reply
    if (event === '250') {
      if (this.#name === 'awaitHelo') {
        // A HELO reply carries no extensions (RFC 5321 §4.1.1.1); only its first line (the domain) counts.
        this.#caps = parseEhloCapabilities([reply.lines[0] ?? ''])
        this.#heloOnly = true
      } else {
        this.#caps = parseEhloCapabilities(reply)
        // RFC 3207 §4.2: STARTTLS advertised again after TLS is ignored; it is not passed on.
        if (this.#secure && this.#caps.known.STARTTLS) this.#caps = withoutStartTls(this.#caps)
      }
      this.#ehloReply = reply
    }
    // A reply followed by bytes the server sent before our next command (RFC 3207 §4.2, RFC 2920 §3.1).
    if (p.pending) {
      const row = this.#find('bytes after reply', reply)
      this.#run(row, reply, out, 'data')
      return
    }
    this.#run(this.#find(event, reply), reply, out, 'data')
  }

  #find(event: StartTlsEvent, reply?: SmtpReply): StartTlsTransition {
    const rows = ROWS.get(this.#name) ?? []
    for (const row of rows) {
      if (!row.on.includes(event) && !row.on.includes('*')) continue
      if (row.when && !row.when.every((g) => this.#guard(g, reply))) continue
      return row
    }
    /* c8 ignore next: the table covers every (live state, event); a test checks it */
    throw new SmtpTlsError('ERR_STATE', `no transition from ${this.#name} on ${event}`)
  }

  #guard(g: StartTlsGuard, reply: SmtpReply | undefined): boolean {
    switch (g) {
      case 'STARTTLS offered':
        return this.#caps?.known.STARTTLS === true && !this.skipStartTls
      case 'STARTTLS not offered':
        return this.#caps?.known.STARTTLS !== true || this.skipStartTls
      case 'requireTls':
        return this.requireTls
      case 'not requireTls':
        return !this.requireTls
      case 'reply 220':
        return reply?.code === 220
    }
  }

  #run(row: StartTlsTransition, reply: SmtpReply | undefined, out: StartTlsAction[], input: string, cause?: unknown): void {
    const from = this.#name
    for (const step of row.do) {
      switch (step) {
        case 'send EHLO':
          this.#send(out, `EHLO ${this.ehloName}`)
          break
        case 'send HELO':
          this.#send(out, `HELO ${this.ehloName}`)
          break
        case 'send STARTTLS':
          this.#send(out, 'STARTTLS')
          break
        case 'send QUIT':
          this.#send(out, 'QUIT')
          break
        case 'upgrade':
          out.push({ type: 'upgrade', servername: this.servername })
          break
        case 'enter TLS':
          // RFC 3207 §4.2: forget everything learned before TLS; EHLO is sent again.
          this.#secure = true
          this.#caps = undefined
          this.#ehloReply = undefined
          break
        case 'ready': {
          const caps = this.#caps as EhloCapabilities
          out.push({
            type: 'ready',
            secure: this.#secure,
            extensions: caps.extensions,
            capabilities: caps,
            heloOnly: this.#heloOnly,
            greeting: this.#greeting as SmtpReply,
            ehloReply: this.#ehloReply as SmtpReply,
            lastReply: reply as SmtpReply,
          })
          break
        }
        case 'close': {
          if (from === 'ready' || from === 'closed') {
            const opts = this.#error ? { cause: this.#error } : {}
            const error = new SmtpTlsError(
              'ERR_STATE',
              `${input} after the session was ${from === 'ready' ? 'handed over (ready)' : 'closed'}`,
              {
                ...opts,
                enhancedStatus: '4.3.0',
              },
            )
            out.push({ type: 'close', error })
            break
          }
          const error = this.#error ?? this.#makeError(row.reason ?? 'state', from, reply, input, cause)
          this.#error = error
          if (reply && (row.reason === 'rejected' || row.reason === 'starttls refused' || row.reason === 'unexpected reply')) {
            this.#closeReply = reply
            out.push({ type: 'close', error, reply })
          } else {
            out.push({ type: 'close', error })
          }
          break
        }
      }
    }
    this.#name = row.to
  }

  /** Send one command line; the ASCII is checked (ehloName in the constructor), so one byte per char. */
  #send(out: StartTlsAction[], line: string): void {
    this.#transcript.push(`> ${line}`)
    const n = line.length
    const bytes = new Uint8Array(n + 2)
    for (let i = 0; i < n; i++) bytes[i] = line.charCodeAt(i)
    bytes[n] = 0x0d
    bytes[n + 1] = 0x0a
    out.push({ type: 'send', bytes })
  }

  #makeError(
    reason: StartTlsCloseReason,
    from: StartTlsStateName,
    reply: SmtpReply | undefined,
    input: string,
    cause: unknown,
  ): SmtpTlsError {
    const host = this.servername || 'the server'
    const doing = EXPECT[from]?.doing ?? 'waiting for the TLS handshake'
    switch (reason) {
      case 'rejected':
        return new SmtpReplyError(
          'ERR_SMTP_REJECTED',
          `host ${host} refused to talk to me: ${replyText(reply as SmtpReply)}`,
          reply as SmtpReply,
        )
      case 'starttls refused':
        return new SmtpReplyError(
          'ERR_STARTTLS_REFUSED',
          `TLS is required, but host ${host} refused to start TLS: ${replyText(reply as SmtpReply)}`,
          reply as SmtpReply,
          { tlsrpt: 'starttls-not-supported' },
        )
      case 'unexpected reply':
        return new SmtpReplyError(
          'ERR_SMTP_PROTOCOL',
          `unexpected reply to ${EXPECT[from]?.command ?? 'the command'} from ${host}: ${replyText(reply as SmtpReply)}`,
          reply as SmtpReply,
          { enhancedStatus: '4.5.0' },
        )
      case 'starttls not offered':
        // Postfix smtp_proto.c: "TLS is required, but was not offered by host".
        return new SmtpTlsError('ERR_STARTTLS_NOT_OFFERED', `TLS is required, but was not offered by host ${host}`, {
          enhancedStatus: '4.7.4',
          tlsrpt: 'starttls-not-supported',
        })
      case 'pipelining':
        return new SmtpTlsError('ERR_SMTP_PROTOCOL', `host ${host} sent data before our command while ${doing} (improper pipelining)`, {
          enhancedStatus: '4.5.0',
        })
      case 'response injection':
        return new SmtpTlsError(
          'ERR_SMTP_RESPONSE_INJECTION',
          `host ${host} sent plaintext after the 220 reply to STARTTLS, before the TLS handshake (response injection, RFC 3207 §4.2)`,
          { enhancedStatus: '4.7.5', tlsrpt: 'validation-failure' },
        )
      case 'handshake failed': {
        const tlsrpt: TlsRptResultType = cause instanceof SmtpTlsError && cause.tlsrpt !== undefined ? cause.tlsrpt : 'validation-failure'
        return new SmtpTlsError('ERR_TLS_HANDSHAKE', `Cannot start TLS: handshake failure with host ${host}`, {
          enhancedStatus: '4.7.5',
          tlsrpt,
          cause,
        })
      }
      case 'eof':
        return new SmtpTlsError('ERR_SMTP_EOF', `lost connection with ${host} while ${doing}`, { enhancedStatus: '4.4.2' })
      case 'timeout':
        return new SmtpTlsError('ERR_SMTP_TIMEOUT', `conversation with ${host} timed out while ${doing}`, { enhancedStatus: '4.4.2' })
      case 'bad reply':
        if (cause instanceof SmtpTlsError) return cause
        return new SmtpTlsError('ERR_SMTP_PROTOCOL', `malformed reply from ${host} while ${doing}`, { enhancedStatus: '4.5.0', cause })
      case 'invalid input':
        return new SmtpTlsError('ERR_INVALID_ARGUMENT', `not a StartTlsInput (type ${input}) in state ${from}`, { enhancedStatus: '4.3.0' })
      case 'state':
        return new SmtpTlsError('ERR_STATE', `${input} is not expected in state ${from}`, { enhancedStatus: '4.3.0' })
    }
  }
}

function withoutStartTls(caps: EhloCapabilities): EhloCapabilities {
  const extensions = new Map(caps.extensions)
  extensions.delete('STARTTLS')
  return { ...caps, extensions, known: { ...caps.known, STARTTLS: false } }
}

/** Mermaid-safe label text. */
function label(t: StartTlsTransition): string {
  const on = t.on.join(', ')
  const when = t.when ? ` if ${t.when.join(' and ')}` : ''
  const steps = t.do.map((s) => (s === 'close' && t.reason ? `close (${t.reason})` : s)).join(', ')
  return `${on}${when} / ${steps}`
}

/**
 * The state diagram of {@link StartTlsClient} in Mermaid syntax, generated from {@link STARTTLS_TRANSITIONS}
 * (docs/starttls.md embeds it; a test keeps the two equal). Rows of the final states (every input
 * answered by `close` with `ERR_STATE`) are left out.
 * @public
 */
export function startTlsDiagram(): string {
  const lines = ['stateDiagram-v2', '  [*] --> awaitGreeting', '  state "any live state" as anyLive']
  for (const t of STARTTLS_TRANSITIONS) {
    if (t.from === 'ready' || t.from === 'closed') continue
    const from = t.from === '*' ? 'anyLive' : t.from
    lines.push(`  ${from} --> ${t.to} : ${label(t)}`)
  }
  lines.push('  ready --> [*]', '  closed --> [*]')
  return lines.join('\n') + '\n'
}
