/**
 * Delivery: {@link connect} (discovery, policy, STARTTLS, verification, MX failover), then the mail
 * transaction ({@link SmtpTransaction}) over the verified socket. This module only moves bytes: the
 * machine decides what to send, the policy engine decided whether this socket may carry mail.
 */
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { coded, describeValue, invalidArgument, isBytes } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { Verdict } from '../policy/decide.js'
import type { TraceStep } from '../policy/trace.js'
import { parseEhloCapabilities, type EhloCapabilities } from '../smtp/ehlo.js'
import { checkEnvelope } from '../smtp/envelope.js'
import type { SmtpReply } from '../smtp/reply.js'
import {
  SmtpTransaction,
  type SmtpAuthCredentials,
  type SmtpEnvelope,
  type SmtpRecipientResult,
  type SmtpTransactionAction,
  type SmtpTransactionInput,
  type SmtpTransactionResult,
} from '../smtp/transaction.js'
import type { DestinationFacts } from '../dns/types.js'
import { isTlsRptReportMessage } from '../tlsrpt/message.js'
import { connect, type ConnectAttempt, type ConnectOptions, type SmtpConnection } from './connect.js'

/**
 * The RFC 5322 message: bytes, a string (sent as UTF-8), or a stream of chunks (a Node `Readable`,
 * any async iterable of `Uint8Array`/string chunks), read one chunk at a time as the socket drains.
 * @public
 */
export type DeliveryBody = Uint8Array | string | AsyncIterable<Uint8Array | string>

/** One message: the SMTP envelope and the RFC 5322 message. @public */
export interface DeliveryMessage {
  envelope: SmtpEnvelope
  body: DeliveryBody
}

/** Options of `deliver` and {@link openDeliverySession}: those of {@link connect}, and AUTH for a relay. @public */
export interface DeliverOptions extends ConnectOptions {
  /** SASL credentials (RFC 4954) for a relay: sent only over TLS, after the policy accepted the peer; redacted everywhere. */
  auth?: SmtpAuthCredentials
}

/**
 * The outcome of one message on one session: per recipient, and the session's verdict, trace and
 * transcript (credentials redacted).
 * @public
 */
export interface DeliveryResult {
  /** The destination as given (`example.com`, `[smtp.example.net]:587`). */
  destination: string
  /** The MX host (as published), and the address and port used. */
  mx: string
  address: string
  port: number
  /** The policy verdict of the session (`verified`, `trusted`, `untrusted`, `anonymous`, `plaintext`). */
  outcome: Verdict
  /** The rules that produced the verdict (format with `formatTrace`). */
  trace: TraceStep[]
  /** Every connection attempt, failed ones first (MX failover); the last one carried the mail. */
  attempts: ConnectAttempt[]
  /** One entry per envelope recipient, in order: `accepted`, `pending` (4xx: retry) or `rejected` (5xx). */
  recipients: readonly SmtpRecipientResult[]
  accepted: readonly string[]
  pending: readonly string[]
  rejected: readonly string[]
  /** The final reply to the message (its text carries the queue id), when one came. */
  dataReply?: SmtpReply
  /** Why the message as a whole failed, when it did (temporary errors carry a 4.x.x status). */
  error?: SmtpTlsError
  /** The session's SMTP transcript up to this message's end: connection, STARTTLS, EHLO, then this message. */
  transcript: string[]
}

/**
 * An open, policy-checked SMTP session to one destination, for several messages in a row (RSET
 * between them). `send` queues: one message at a time goes on the wire.
 * @public
 */
export interface DeliverySession {
  readonly destination: string
  readonly mx: string
  readonly address: string
  readonly port: number
  readonly outcome: Verdict
  readonly trace: TraceStep[]
  readonly attempts: ConnectAttempt[]
  readonly capabilities: EhloCapabilities
  readonly facts: DestinationFacts
  /** The session ended (QUIT, the server closed it, an error): `send` now gives every recipient pending. */
  readonly closed: boolean
  /** Messages sent or queued and not yet finished. */
  readonly busy: number
  /** Messages this session has finished. */
  readonly messages: number
  /** Send one message; never rejects for the server's answers (they are the result), only for a bad message. */
  send(message: DeliveryMessage, options?: { signal?: AbortSignal }): Promise<DeliveryResult>
  /** Finish the queued messages, then QUIT (RFC 5321 §4.1.1.10) and close. */
  close(): Promise<void>
}

/** Bytes per body chunk read from a `Uint8Array` or string body. */
const CHUNK = 64 * 1024
const QUIT_WAIT_MS = 5000

function ignore(): void {}

/** Check a message before any I/O; returns the body source. */
function checkMessage(message: unknown, what: string): DeliveryMessage {
  if (typeof message !== 'object' || message === null)
    throw invalidArgument(`${what} must be { envelope, body }, got ${describeValue(message)}`)
  let envelope: unknown
  let body: unknown
  try {
    ;({ envelope, body } = message as DeliveryMessage)
  } catch (e) {
    throw coded(e, what)
  }
  // the same checks the machine makes, before any connection (DESIGN.md §3)
  checkEnvelope(envelope)
  if (typeof body === 'string' || isBytes(body) || isAsyncIterable(body)) return { envelope: envelope as SmtpEnvelope, body }
  throw invalidArgument(`${what}.body must be a Uint8Array, a string or an async iterable of chunks, got ${describeValue(body)}`)
}

function isAsyncIterable(v: unknown): v is AsyncIterable<Uint8Array | string> {
  try {
    return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  } catch {
    return false
  }
}

/** A pull source of body chunks: `undefined` at the end. */
interface BodySource {
  next(): Promise<Uint8Array | undefined> | Uint8Array | undefined
  cancel(): void
}

function bodySource(body: DeliveryBody): BodySource {
  if (typeof body === 'string' || isBytes(body)) {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
    let at = 0
    return {
      next: () => {
        if (at >= bytes.length) return undefined
        const c = bytes.subarray(at, Math.min(bytes.length, at + CHUNK))
        at += c.length
        return c
      },
      cancel: ignore,
    }
  }
  const it = body[Symbol.asyncIterator]()
  let finished = false
  return {
    next: async () => {
      for (;;) {
        const r = await it.next()
        if (r.done) {
          finished = true
          return undefined
        }
        const v: unknown = r.value
        if (typeof v === 'string') {
          if (v.length > 0) return Buffer.from(v, 'utf8')
        } else if (isBytes(v)) {
          if (v.length > 0) return v
        } else {
          throw invalidArgument(`the message body stream gave ${describeValue(v)}, not a Uint8Array or string chunk`)
        }
      }
    },
    cancel: () => {
      if (finished) return
      finished = true
      // a Readable's iterator destroys the stream on return(): the caller's source is released
      Promise.resolve()
        .then(() => it.return?.())
        .catch(ignore)
    },
  }
}

interface InFlight {
  message: DeliveryMessage
  source: BodySource
  resolve: (r: DeliveryResult) => void
  /** transcript lines logged before this message (see `logged`) */
  mark: number
  /** the body source failed: the message's error */
  sourceError?: SmtpTlsError
  signal: AbortSignal | undefined
  onAbort: () => void
}

/** Lines a transaction has logged in all (its transcript keeps the last 1000 and counts the rest). */
function logged(t: readonly string[]): number {
  const head = t[0]
  if (head !== undefined && head.startsWith('… ')) return Number.parseInt(head.slice(2), 10) + t.length - 1
  return t.length
}

class Session implements DeliverySession {
  readonly destination: string
  readonly mx: string
  readonly address: string
  readonly port: number
  readonly outcome: Verdict
  readonly trace: TraceStep[]
  readonly attempts: ConnectAttempt[]
  readonly capabilities: EhloCapabilities
  readonly facts: DestinationFacts
  messages = 0
  #socket: Socket | TLSSocket
  #tx: SmtpTransaction
  #timeoutMs: number
  #timer: NodeJS.Timeout | undefined = undefined
  #closed = false
  #closeError: SmtpTlsError | undefined = undefined
  #connectTranscript: string[]
  #current: InFlight | undefined = undefined
  #queue: Array<() => void> = []
  #busy = 0
  /** the last write was refused by the socket buffer: wait for 'drain' before reading more body */
  #full = false
  #drainWaiters: Array<() => void> = []
  #bodyWanted = false
  #pumping = false
  #sessionSignal: AbortSignal | undefined
  /** resolves once the socket is destroyed (after QUIT: its reply, its close, or 5 s) */
  #ended: Promise<void>
  #endedResolve: () => void = ignore

  constructor(destination: string, c: SmtpConnection, o: DeliverOptions) {
    this.destination = destination
    this.mx = c.mx
    this.address = c.address
    this.port = c.port
    this.outcome = c.outcome
    this.trace = c.trace
    this.attempts = c.attempts
    this.capabilities = c.capabilities
    this.facts = c.facts
    this.#socket = c.socket
    this.#timeoutMs = o.timeoutMs ?? 30_000
    this.#connectTranscript = c.attempts[c.attempts.length - 1]?.transcript ?? []
    const secure = (c.socket as TLSSocket).encrypted === true
    // Built before any listener: a bad `auth` is the caller's error (coded), and the socket is closed.
    try {
      this.#tx = new SmtpTransaction({
        capabilities: c.capabilities,
        secure,
        // RFC 8689 §4.2.1: REQUIRETLS only on a session whose peer was authenticated
        verified: secure && c.outcome.status === 'verified',
        servername: c.mx,
        ...(o.auth !== undefined ? { auth: o.auth } : {}),
      })
    } catch (e) {
      c.socket.destroy()
      throw e
    }
    const s = this.#socket
    // connect() left a permanent no-op 'error' listener (issue 10 §1); this one stays too.
    s.on('error', ignore)
    s.on('error', this.#onError)
    s.on('data', this.#onData)
    s.on('end', this.#onEof)
    s.on('close', this.#onEof)
    s.on('drain', this.#onDrain)
    this.#ended = new Promise((resolve) => (this.#endedResolve = resolve))
    this.#sessionSignal = o.signal
    if (o.signal) {
      if (o.signal.aborted) queueMicrotask(this.#onSessionAbort)
      else o.signal.addEventListener('abort', this.#onSessionAbort, { once: true })
    }
  }

  get closed(): boolean {
    return this.#closed
  }

  get busy(): number {
    return this.#busy
  }

  send(message: DeliveryMessage, options: { signal?: AbortSignal } = {}): Promise<DeliveryResult> {
    let m: DeliveryMessage
    let signal: AbortSignal | undefined
    try {
      m = checkMessage(message, 'message')
      signal = readSignal(options)
    } catch (e) {
      return Promise.reject(coded(e, 'send'))
    }
    this.#busy++
    return new Promise<DeliveryResult>((resolve) => {
      const start = () =>
        this.#start(m, signal, (r) => {
          this.#busy--
          this.messages++
          resolve(r)
          // not from inside the action loop that delivered `done` (a `close` may follow it)
          queueMicrotask(() => this.#queue.shift()?.())
        })
      if (this.#current === undefined && this.#queue.length === 0) start()
      else this.#queue.push(start)
    })
  }

  close(): Promise<void> {
    const go = () => {
      if (!this.#closed) this.#feed({ type: 'quit' })
    }
    if (this.#current === undefined && this.#queue.length === 0) go()
    else this.#queue.push(go)
    return this.#ended
  }

  #start(message: DeliveryMessage, signal: AbortSignal | undefined, resolve: (r: DeliveryResult) => void): void {
    const source = bodySource(message.body)
    const f: InFlight = { message, source, resolve, mark: logged(this.#tx.transcript), signal, onAbort: () => this.#abort(signal) }
    if (this.#closed || signal?.aborted) {
      // never on the wire: aborted while it waited its turn, or the session has ended
      source.cancel()
      const aborted = !this.#closed && signal?.aborted
      resolve(
        this.#unsent(
          message,
          aborted
            ? new SmtpTlsError('ERR_ABORTED', 'aborted before it was sent', { enhancedStatus: '4.3.0', cause: signal?.reason })
            : undefined,
        ),
      )
      return
    }
    this.#current = f
    signal?.addEventListener('abort', f.onAbort, { once: true })
    this.#arm()
    this.#run(this.#tx.handle({ type: 'mail', envelope: message.envelope }))
  }

  /** A message that never went on the wire (the session had ended, or it was aborted): every recipient pending. */
  #unsent(message: DeliveryMessage, why?: SmtpTlsError): DeliveryResult {
    const error =
      why ??
      this.#closeError ??
      new SmtpTlsError('ERR_STATE', `the session with ${this.mx}[${this.address}] is closed`, { enhancedStatus: '4.3.0' })
    const recipients: SmtpRecipientResult[] = message.envelope.to.map((r) => ({
      address: typeof r === 'string' ? r : r.address,
      status: 'pending',
      enhancedStatus: error.enhancedStatus ?? '4.0.0',
      text: error.message,
    }))
    return this.#result({ recipients, accepted: [], pending: recipients.map((r) => r.address), rejected: [], error }, [])
  }

  #result(r: SmtpTransactionResult, lines: string[]): DeliveryResult {
    const out: DeliveryResult = {
      destination: this.destination,
      mx: this.mx,
      address: this.address,
      port: this.port,
      outcome: this.outcome,
      trace: this.trace,
      attempts: this.attempts,
      recipients: r.recipients,
      accepted: r.accepted,
      pending: r.pending,
      rejected: r.rejected,
      transcript: [...this.#connectTranscript, ...lines],
    }
    if (r.dataReply) out.dataReply = r.dataReply
    if (r.error) out.error = r.error
    return out
  }

  /** Carry out the machine's actions, in order. */
  #run(actions: SmtpTransactionAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          if (!this.#socket.destroyed && !this.#socket.write(a.bytes)) this.#full = true
          if (this.#current) this.#arm()
          break
        case 'needBody':
          this.#bodyWanted = true
          if (!this.#pumping) void this.#pump()
          break
        case 'done':
          this.#done(a.result)
          break
        case 'close':
          this.#close(a.error)
          break
      }
    }
  }

  #feed(input: SmtpTransactionInput): void {
    this.#run(this.#tx.handle(input))
  }

  /**
   * Read the body one chunk per `needBody`, only once the socket has drained (backpressure: the
   * message is never held in memory), iteratively so that a long synchronous body cannot recurse.
   */
  async #pump(): Promise<void> {
    this.#pumping = true
    try {
      while (this.#bodyWanted && !this.#closed) {
        const f = this.#current
        if (!f) return
        this.#bodyWanted = false
        if (this.#full) await this.#drained()
        if (this.#closed || this.#current !== f) return
        let chunk: Uint8Array | undefined
        try {
          const n = f.source.next()
          chunk = n instanceof Promise ? await n : n
        } catch (e) {
          if (this.#closed || this.#current !== f) return
          // The caller's source failed: the message cannot be finished, and the stream is mid-DATA,
          // so the session is abandoned without QUIT (the machine's `quit` during a message).
          f.sourceError = new SmtpTlsError('ERR_ABORTED', `the message body could not be read: ${errorText(e)}`, {
            enhancedStatus: '4.3.0',
            cause: e,
          })
          this.#feed({ type: 'quit' })
          return
        }
        if (this.#closed || this.#current !== f) {
          f.source.cancel()
          return
        }
        this.#arm()
        this.#feed(chunk === undefined ? { type: 'bodyEnd' } : { type: 'body', bytes: chunk })
      }
    } finally {
      this.#pumping = false
    }
  }

  #drained(): Promise<void> {
    if (!this.#full || this.#closed) return Promise.resolve()
    return new Promise((resolve) => this.#drainWaiters.push(resolve))
  }

  #onDrain = (): void => {
    this.#full = false
    if (this.#current) this.#arm()
    const w = this.#drainWaiters.splice(0)
    for (const r of w) r()
  }

  #done(result: SmtpTransactionResult): void {
    const f = this.#current
    this.#current = undefined
    this.#bodyWanted = false
    this.#disarm()
    if (!f) return
    f.signal?.removeEventListener('abort', f.onAbort)
    f.source.cancel()
    const t = this.#tx.transcript
    const n = Math.min(t.length, logged(t) - f.mark)
    let r = result
    if (f.sourceError) r = { ...r, error: f.sourceError }
    f.resolve(this.#result(r, t.slice(t.length - n)))
  }

  #close(error: SmtpTlsError | undefined): void {
    if (this.#closed) return
    this.#closed = true
    this.#closeError = error
    this.#disarm()
    this.#sessionSignal?.removeEventListener('abort', this.#onSessionAbort)
    const s = this.#socket
    s.removeListener('data', this.#onData)
    s.removeListener('drain', this.#onDrain)
    for (const r of this.#drainWaiters.splice(0)) r()
    // QUIT was the machine's last send (RFC 5321 §4.1.1.10): give the server a moment to answer
    const t = this.#tx.transcript
    const quitSent = t[t.length - 1] === '> QUIT'
    if (!quitSent || s.destroyed) {
      s.destroy()
      this.#endedResolve()
    } else {
      const end = this.#endedResolve
      const finish = () => {
        clearTimeout(timer)
        s.removeListener('data', finish)
        s.removeListener('close', finish)
        s.destroy()
        end()
      }
      const timer = setTimeout(finish, Math.min(this.#timeoutMs, QUIT_WAIT_MS))
      s.once('data', finish)
      s.once('close', finish)
    }
    // a message in flight got its `done` first; anything queued is answered, unsent
    for (const go of this.#queue.splice(0)) go()
  }

  #onData = (b: Buffer): void => {
    if (this.#current) this.#arm()
    this.#feed({ type: 'data', bytes: b })
  }

  #onEof = (): void => {
    if (!this.#closed) this.#feed({ type: 'eof' })
  }

  #onError = (): void => {
    // a reset or a TLS alert: the connection is gone (the permanent no-op listener stays)
    if (!this.#closed) this.#feed({ type: 'eof' })
    this.#socket.destroy()
  }

  #abort(signal: AbortSignal | undefined): void {
    if (this.#closed || !this.#current || this.#current.signal !== signal) return
    // RFC 5321 has no way to take back a message mid-DATA: the session is abandoned (ERR_ABORTED).
    this.#feed({ type: 'quit' })
  }

  #onSessionAbort = (): void => {
    if (this.#closed) return
    this.#feed({ type: 'quit' })
  }

  #arm(): void {
    if (this.#timer) this.#timer.refresh()
    else this.#timer = setTimeout(() => this.#feed({ type: 'timeout' }), this.#timeoutMs)
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

/** A string or byte body whose header says it is a TLS-RPT report (`TLS-Report-Domain`, report-type tlsrpt). */
function carriesTlsRptReport(body: DeliveryBody): boolean {
  if (typeof body === 'string') return isTlsRptReportMessage(body.slice(0, 16384))
  if (isBytes(body))
    return isTlsRptReportMessage(Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 16384)).toString('latin1'))
  return false
}

function errorText(e: unknown): string {
  try {
    return e instanceof Error ? e.message : String(e)
  } catch {
    return 'unknown error'
  }
}

function readSignal(o: unknown): AbortSignal | undefined {
  if (o === undefined) return undefined
  if (typeof o !== 'object' || o === null) throw invalidArgument(`options must be an object, got ${describeValue(o)}`)
  const s = (o as { signal?: unknown }).signal
  if (s === undefined) return undefined
  if (!(s instanceof AbortSignal)) throw invalidArgument('signal must be an AbortSignal')
  return s
}

function checkDestination(destination: unknown, what: string): string {
  if (typeof destination !== 'string') throw invalidArgument(`${what}: destination must be a string, got ${describeValue(destination)}`)
  return destination
}

function checkOptions(options: unknown, what: string): DeliverOptions {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null)
    throw invalidArgument(`${what}: options must be an object, got ${describeValue(options)}`)
  const o = options as DeliverOptions
  // The credentials are checked before any I/O: the machine's own check, on capabilities of nothing.
  if (o.auth !== undefined) new SmtpTransaction({ capabilities: NO_CAPABILITIES, secure: true, auth: o.auth })
  return o
}

const NO_CAPABILITIES = parseEhloCapabilities(['check'])

/**
 * Open a policy-checked session to a destination for several messages ({@link connect}, then the
 * mail transaction on demand). Rejects like {@link connect} (an `SmtpTlsConnectError` when no MX
 * host meets the policy): nothing of a message is written before the policy accepted the peer.
 *
 * @example
 * ```ts
 * const s = await openDeliverySession('example.com', { level: 'dane', resolver })
 * for (const m of batch) console.log((await s.send(m)).accepted)
 * await s.close()
 * ```
 * @public
 */
export async function openDeliverySession(destination: string, options: DeliverOptions = {}): Promise<DeliverySession> {
  let dest: string
  let o: DeliverOptions
  try {
    dest = checkDestination(destination, 'openDeliverySession')
    o = checkOptions(options, 'openDeliverySession')
  } catch (e) {
    throw coded(e, 'openDeliverySession')
  }
  const c = await connect(dest, o)
  try {
    return new Session(dest, c, o)
  } catch (e) {
    throw coded(e, 'openDeliverySession')
  }
}

/**
 * Deliver a message (or several, on one session) to a destination under its TLS policy: discovery,
 * policy, STARTTLS and verification with MX failover ({@link connect}), then `MAIL FROM`, `RCPT TO`
 * and the body, streamed with backpressure.
 *
 * Rejects with an `SmtpTlsConnectError` when no MX host meets the policy (temporary, 4.7.x: keep the
 * message queued) or the destination cannot be reached: then no `MAIL FROM` and no body byte was
 * written. Otherwise resolves with the server's answer per recipient; a session that ends mid-message
 * (421, EOF, `timeoutMs` without a reply, an abort) leaves every undecided recipient `pending` with a
 * 4.x.x status.
 *
 * @example
 * ```ts
 * const r = await deliver('example.com', { envelope: { from: 'a@example.org', to: ['b@example.com'] }, body: rfc5322 }, { level: 'dane' })
 * console.log(r.outcome.status, r.accepted, r.dataReply?.lines[0]) // 'verified', ['b@example.com'], '2.0.0 Ok: queued as …'
 * ```
 * @public
 */
export async function deliver(destination: string, message: DeliveryMessage, options?: DeliverOptions): Promise<DeliveryResult>
/** Several messages on one session (RSET between them): one result per message, in order. @public */
export async function deliver(
  destination: string,
  messages: readonly DeliveryMessage[],
  options?: DeliverOptions,
): Promise<DeliveryResult[]>
export async function deliver(
  destination: string,
  message: DeliveryMessage | readonly DeliveryMessage[],
  options: DeliverOptions = {},
): Promise<DeliveryResult | DeliveryResult[]> {
  let list: DeliveryMessage[]
  let single: boolean
  let o: DeliverOptions
  try {
    const dest = checkDestination(destination, 'deliver')
    o = checkOptions(options, 'deliver')
    single = !Array.isArray(message)
    const given = single ? [message as DeliveryMessage] : [...(message as readonly DeliveryMessage[])]
    if (given.length === 0) throw invalidArgument('deliver: no message to send')
    list = given.map((m, i) => checkMessage(m, single ? 'message' : `messages[${i}]`))
    destination = dest
  } catch (e) {
    throw coded(e, 'deliver')
  }
  // RFC 8689 §4.2.1: a REQUIRETLS message needs a verified peer, so the driver chooses the MX hosts
  // with that in mind (a host that cannot be verified is skipped, as REQUIRETLS's 5.7.30 says).
  if (o.message?.requireTls === undefined && list.some((m) => m.envelope.requireTls === true)) {
    o = { ...o, message: { ...o.message, requireTls: true } }
  }
  // RFC 8460 §5.3: the delivery of a report is never recorded (reports about reports would loop).
  if (o.tlsRpt !== undefined && o.tlsRpt !== null && o.tlsRpt.reportMail !== true && list.some((m) => carriesTlsRptReport(m.body))) {
    o = { ...o, tlsRpt: { ...o.tlsRpt, reportMail: true } }
  }
  const session = await openDeliverySession(destination, o)
  try {
    const results = await Promise.all(list.map((m) => session.send(m)))
    return single ? results[0]! : results
  } finally {
    await session.close()
  }
}
