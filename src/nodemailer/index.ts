/**
 * smtp-tls-policy/nodemailer: a Nodemailer transport that enforces the TLS policy of every hop.
 * `nodemailer.createTransport(new SmtpTlsTransport(options))`: direct to each recipient domain's MX
 * hosts (its own policy per domain), or through a relay (smarthost) at a fixed level. Nodemailer
 * composes, DKIM-signs and streams the message; this transport decides and carries the hop. It
 * uses only the public API of `smtp-tls-policy` and `smtp-tls-policy/node`, and never imports
 * `nodemailer` (an optional peer dependency): the transport interface is duck-typed.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events'
import type { Readable } from 'node:stream'
import { isSmtpTlsError, parseEhloCapabilities, parsePolicyTable, SmtpTlsError, SmtpTransaction } from '../index.js'
import type {
  PolicyOptions,
  PolicyTable,
  SecurityLevel,
  SmtpAuthCredentials,
  SmtpEnvelope,
  SmtpRecipient,
  SmtpRecipientResult,
  TraceStep,
} from '../index.js'
import { createResolver, openDeliverySession, probe, SmtpTlsConnectError } from '../node/index.js'
import type {
  ConnectAttempt,
  ConnectOptions,
  DeliveryResult,
  DeliverySession,
  MtaStsOptions,
  ProbeReport,
  Resolver,
  TlsRptRecordingOptions,
  TlsSessionCache,
} from '../node/index.js'

export { SmtpTlsError, isSmtpTlsError } from '../index.js'
export type {
  ErrorCode,
  PolicyOptions,
  PolicyTable,
  SecurityLevel,
  SmtpAuthCredentials,
  SmtpRecipientResult,
  SmtpReply,
  SmtpTlsErrorOptions,
  TlsRptResultType,
  TraceStep,
  Verdict,
} from '../index.js'
export type { ConnectAttempt, DeliveryResult, Resolver } from '../node/index.js'

/** Nodemailer-style credentials (`{ user, pass }`) or ours (`{ username, password, mechanism? }`). @public */
export type SmtpTlsTransportAuth = { user: string; pass: string } | SmtpAuthCredentials

/** Session reuse: idle sessions are kept per destination and reused for the next message. @public */
export interface SmtpTlsTransportPoolOptions {
  /** Messages per session before it is closed (Nodemailer's pool default: 100). */
  maxMessages?: number
  /** An idle session is closed after this long, ms. Default 5000. */
  idleTimeoutMs?: number
}

/**
 * Options of {@link SmtpTlsTransport}: `connect()`'s names (`level`, `policyTable`, `policy`,
 * `resolver`, `port`, `ehloName`, `timeoutMs`, `ca`, `families`, `maxConcurrentSessions`, `tlsSessionCache`) and the
 * transport's own.
 * @public
 */
export interface SmtpTlsTransportOptions {
  level?: SecurityLevel
  policyTable?: PolicyTable
  policy?: PolicyOptions
  resolver?: Resolver
  port?: number
  ehloName?: string
  timeoutMs?: number
  ca?: string | readonly string[]
  families?: readonly (4 | 6)[]
  maxConcurrentSessions?: number
  /** Resume TLS sessions: `createTlsSessionCache()` from `smtp-tls-policy/node` (see `connect()`). */
  tlsSessionCache?: TlsSessionCache
  /**
   * Relay mode: every message goes to this next hop, Postfix style (`[smtp.example.net]:587`,
   * `[192.0.2.1]`, or a domain for an MX lookup). Without it, each recipient domain's MX hosts.
   */
  relay?: string
  /**
   * The relay's policy, as the right-hand side of a Postfix `smtp_tls_policy_maps` entry:
   * `fingerprint match=AB:CD:…|EF:01:…`, `secure match=smtp.example.net`, `encrypt`, `dane-only`.
   * Default: `level` (and `policy`).
   */
  relayPolicy?: string
  /** SASL credentials for the relay (AUTH PLAIN/LOGIN, only over TLS, only after the policy accepted the peer). */
  auth?: SmtpTlsTransportAuth
  /**
   * Per-destination policies, each the right-hand side of a Postfix table entry:
   * `{ 'example.com': 'dane-only', 'example.net': 'secure match=.example.net' }`. They win over `policyTable`.
   */
  destinations?: Record<string, string>
  /** Recipient domains delivered at once for one message. Default 4. */
  maxConcurrentDomains?: number
  /** Keep sessions open for the next message (`true`: defaults). Default false: one session per message and domain. */
  pool?: boolean | SmtpTlsTransportPoolOptions
  /** Messages in flight at once before `isIdle()` answers false. Default 5 (Nodemailer's `maxConnections`). */
  maxConnections?: number
  /** What `verify()` probes in direct mode (in relay mode: the relay). */
  verifyDomain?: string
  /** Apply recipient domains' MTA-STS policies (RFC 8461), as `connect()`'s `mtaSts`. */
  mtaSts?: boolean | MtaStsOptions
  /**
   * Record one TLS-RPT result per connection attempt (RFC 8460), as `connect()`'s `tlsRpt`. A message
   * with a `TLS-Report-Domain` header (a report) is never recorded, and gets a session of its own.
   */
  tlsRpt?: TlsRptRecordingOptions
}

/** The part of Nodemailer's `MailMessage` this transport reads (`send(mail, callback)`). @public */
export interface NodemailerMail {
  data: {
    envelope?: unknown
    dsn?: { id?: string; return?: string; notify?: string | string[]; recipient?: string }
    requireTLSExtensionEnabled?: boolean
    signal?: AbortSignal
  }
  message: {
    /** The RFC 5322 message, DKIM-signed when Nodemailer's `dkim` option is set. */
    createReadStream(): Readable
    getEnvelope(): { from?: string | false; to?: string[] }
    messageId(): string
    /** Nodemailer's MimeNode: a header's value (read for `TLS-Report-Domain`). */
    getHeader?(key: string): unknown
  }
}

/** How one recipient domain (or the relay) fared. @public */
export interface SmtpTlsDomainResult {
  /** The next hop: the domain, or the relay. */
  destination: string
  /** `sent`: at least one recipient accepted; `deferred`: none, and some must be retried; `failed`: all rejected. */
  status: 'sent' | 'deferred' | 'failed'
  recipients: readonly SmtpRecipientResult[]
  /** The policy verdict (`verified`, `trusted`, …) when a session was established. */
  outcome?: DeliveryResult['outcome']
  trace: TraceStep[]
  mx?: string
  address?: string
  port?: number
  attempts: ConnectAttempt[]
  /** The final reply (queue id), when one came. */
  response?: string
  error?: SmtpTlsError
  /** The session transcript (credentials redacted). */
  transcript: string[]
}

/** `info` for Nodemailer's callback: its usual fields, and ours per domain. @public */
export interface SmtpTlsSentInfo {
  envelope: { from: string; to: string[] }
  messageId: string
  accepted: string[]
  rejected: string[]
  pending: string[]
  rejectedErrors: SmtpTlsError[]
  /** The final replies, one line per destination (`250 2.0.0 Ok: queued as …`). */
  response: string
  domains: Record<string, SmtpTlsDomainResult>
}

/**
 * The error when no recipient was accepted: a 4xx `responseCode` and `temporary` when any recipient
 * must be retried (keep the message queued), else 5xx.
 * @public
 */
export interface SmtpTlsTransportError extends SmtpTlsError {
  responseCode: number
  response: string
  accepted: string[]
  rejected: string[]
  pending: string[]
  rejectedErrors: SmtpTlsError[]
  info: SmtpTlsSentInfo
}

const LEVELS: readonly SecurityLevel[] = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure']
const KEYS = [
  'tlsSessionCache',
  'level',
  'policyTable',
  'policy',
  'resolver',
  'port',
  'ehloName',
  'timeoutMs',
  'ca',
  'families',
  'maxConcurrentSessions',
  'relay',
  'relayPolicy',
  'auth',
  'destinations',
  'maxConcurrentDomains',
  'pool',
  'maxConnections',
  'verifyDomain',
  'mtaSts',
  'tlsRpt',
] as const

function invalid(message: string, cause?: unknown): SmtpTlsError {
  return new SmtpTlsError('ERR_INVALID_ARGUMENT', message, cause === undefined ? { temporary: false } : { temporary: false, cause })
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'undefined') return String(v)
  return `a ${typeof v}`
}

interface Settings {
  connect: ConnectOptions
  relay: string | undefined
  relayTable: PolicyTable | undefined
  auth: SmtpAuthCredentials | undefined
  destinations: Map<string, PolicyTable>
  maxConcurrentDomains: number
  pool: { maxMessages: number; idleTimeoutMs: number } | undefined
  maxConnections: number
  verifyDomain: string | undefined
}

function positiveInt(v: unknown, name: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
    throw invalid(`${name} must be an integer from 1 to ${max}, got ${describe(v)}`)
  return v
}

function checkAuth(a: unknown): SmtpAuthCredentials {
  if (typeof a !== 'object' || a === null) throw invalid(`auth must be { user, pass } or { username, password }, got ${describe(a)}`)
  const o = a as Record<string, unknown>
  const username = o.username ?? o.user
  const password = o.password ?? o.pass
  if (typeof username !== 'string' || typeof password !== 'string') throw invalid('auth needs a string user (username) and pass (password)')
  const out: SmtpAuthCredentials = { username, password }
  if (o.mechanism !== undefined) {
    if (o.mechanism !== 'PLAIN' && o.mechanism !== 'LOGIN') throw invalid("auth.mechanism must be 'PLAIN' or 'LOGIN'")
    out.mechanism = o.mechanism
  }
  if (o.authzid !== undefined) {
    if (typeof o.authzid !== 'string') throw invalid('auth.authzid must be a string')
    out.authzid = o.authzid
  }
  // the transaction's own checks (non-empty username, no NUL), now rather than after a connection
  new SmtpTransaction({ capabilities: parseEhloCapabilities(['check']), secure: true, auth: out })
  return out
}

function settings(options: unknown): Settings {
  if (options === undefined) options = {}
  if (typeof options !== 'object' || options === null) throw invalid(`SmtpTlsTransport options must be an object, got ${describe(options)}`)
  const o: Partial<Record<(typeof KEYS)[number], unknown>> = {}
  try {
    for (const k of KEYS) {
      const v = (options as Record<string, unknown>)[k]
      if (v !== undefined) o[k] = v
    }
  } catch (e) {
    throw invalid('SmtpTlsTransport: could not read the options', e)
  }
  if (o.level !== undefined && !LEVELS.includes(o.level as SecurityLevel)) throw invalid(`level must be one of ${LEVELS.join(', ')}`)
  for (const k of ['relay', 'relayPolicy', 'ehloName', 'verifyDomain'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || (o[k] as string).trim() === '')) throw invalid(`${k} must be a non-empty string`)
  }
  for (const k of ['policyTable', 'policy', 'resolver'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'object' || o[k] === null)) throw invalid(`${k} must be an object`)
  }
  if (o.relayPolicy !== undefined && o.relay === undefined) throw invalid('relayPolicy needs relay')
  const connect: ConnectOptions = {}
  if (o.level !== undefined) connect.level = o.level as SecurityLevel
  if (o.policyTable !== undefined) connect.policyTable = o.policyTable as PolicyTable
  if (o.policy !== undefined) connect.policy = o.policy as PolicyOptions
  if (o.resolver !== undefined) connect.resolver = o.resolver as Resolver
  if (o.port !== undefined) connect.port = positiveInt(o.port, 'port', 65535)
  if (o.ehloName !== undefined) connect.ehloName = o.ehloName as string
  if (o.timeoutMs !== undefined) connect.timeoutMs = positiveInt(o.timeoutMs, 'timeoutMs', 3_600_000)
  if (o.ca !== undefined) {
    const ca = o.ca
    if (typeof ca !== 'string' && !(Array.isArray(ca) && ca.every((c) => typeof c === 'string')))
      throw invalid('ca must be PEM text or a list of PEM texts')
    connect.ca = ca as string | string[]
  }
  if (o.families !== undefined) {
    const f = o.families
    if (!Array.isArray(f) || f.length === 0 || !f.every((x) => x === 4 || x === 6)) throw invalid('families must be a list of 4 and 6')
    connect.families = f as (4 | 6)[]
  }
  // checked by connect(): only createTlsSessionCache() makes one
  if (o.tlsSessionCache !== undefined) connect.tlsSessionCache = o.tlsSessionCache as TlsSessionCache
  if (o.maxConcurrentSessions !== undefined)
    connect.maxConcurrentSessions = positiveInt(o.maxConcurrentSessions, 'maxConcurrentSessions', 1_000_000)
  if (o.mtaSts !== undefined) {
    if (typeof o.mtaSts !== 'boolean' && (typeof o.mtaSts !== 'object' || o.mtaSts === null))
      throw invalid('mtaSts must be a boolean or an object')
    connect.mtaSts = o.mtaSts as boolean | MtaStsOptions
  }
  if (o.tlsRpt !== undefined) {
    const t = o.tlsRpt as Partial<TlsRptRecordingOptions> | null
    if (typeof t !== 'object' || t === null || typeof t.store !== 'object' || t.store === null)
      throw invalid('tlsRpt must be { store, ... }')
    connect.tlsRpt = t as TlsRptRecordingOptions
  }
  const relay = o.relay === undefined ? undefined : (o.relay as string).trim()
  // A Postfix table entry keyed by the relay itself: its level and attributes apply to the relay only.
  const relayTable =
    relay !== undefined && o.relayPolicy !== undefined ? parsePolicyTable(`${relay} ${o.relayPolicy as string}\n`) : undefined
  const destinations = new Map<string, PolicyTable>()
  if (o.destinations !== undefined) {
    const d = o.destinations
    if (typeof d !== 'object' || d === null || Array.isArray(d)) throw invalid('destinations must be an object of domain → policy')
    for (const [domain, rhs] of Object.entries(d)) {
      if (typeof rhs !== 'string')
        throw invalid(`destinations[${JSON.stringify(domain)}] must be a Postfix policy string such as 'dane-only'`)
      destinations.set(domain.toLowerCase(), parsePolicyTable(`${domain} ${rhs}\n`))
    }
  }
  let pool: Settings['pool']
  if (o.pool === true) pool = { maxMessages: 100, idleTimeoutMs: 5000 }
  else if (o.pool !== undefined && o.pool !== false) {
    if (typeof o.pool !== 'object' || o.pool === null) throw invalid('pool must be a boolean or { maxMessages, idleTimeoutMs }')
    const p = o.pool as SmtpTlsTransportPoolOptions
    pool = {
      maxMessages: p.maxMessages === undefined ? 100 : positiveInt(p.maxMessages, 'pool.maxMessages', 1_000_000),
      idleTimeoutMs: p.idleTimeoutMs === undefined ? 5000 : positiveInt(p.idleTimeoutMs, 'pool.idleTimeoutMs', 3_600_000),
    }
  }
  return {
    connect,
    relay,
    relayTable,
    auth: o.auth === undefined ? undefined : checkAuth(o.auth),
    destinations,
    maxConcurrentDomains: o.maxConcurrentDomains === undefined ? 4 : positiveInt(o.maxConcurrentDomains, 'maxConcurrentDomains', 1000),
    pool,
    maxConnections: o.maxConnections === undefined ? 5 : positiveInt(o.maxConnections, 'maxConnections', 100_000),
    verifyDomain: o.verifyDomain as string | undefined,
  }
}

interface PoolEntry {
  session: DeliverySession
  idle: NodeJS.Timeout | undefined
}

/** A message carrying a TLS-RPT report (RFC 8460 §5.3 `TLS-Report-Domain`): its session is never recorded. */
function isReportMail(mail: NodemailerMail): boolean {
  try {
    const v = mail.message.getHeader?.('TLS-Report-Domain')
    return typeof v === 'string' ? v.trim() !== '' : v !== undefined && v !== null && v !== false
  } catch {
    return false
  }
}

/** The domain of an address (after the last `@`), lower-cased; undefined when there is none. */
function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@')
  if (at < 1 || at === address.length - 1) return undefined
  return address.slice(at + 1).toLowerCase()
}

/** A Nodemailer-style reply line from a recipient's result. */
function responseOf(r: SmtpRecipientResult): string {
  const code = r.code ?? (r.status === 'rejected' ? 550 : 451)
  return `${code} ${r.enhancedStatus} ${r.text}`
}

/**
 * A Nodemailer transport that delivers under a TLS policy: direct to MX (each recipient domain its
 * own policy: DANE, a Postfix-style table, per-destination overrides) or through a relay at a fixed
 * level with optional AUTH. A policy failure never falls back to plaintext: the recipients stay
 * pending and the callback gets a 4xx error, so the message stays queued.
 *
 * @example
 * ```ts
 * import nodemailer from 'nodemailer'
 * import { SmtpTlsTransport } from 'smtp-tls-policy/nodemailer'
 * const mailer = nodemailer.createTransport(new SmtpTlsTransport({ level: 'dane', destinations: { 'example.com': 'dane-only' } }))
 * const info = await mailer.sendMail({ from: 'a@example.org', to: 'b@example.com', text: 'hi' })
 * console.log(info.accepted, info.domains['example.com'].outcome?.status) // ['b@example.com'] 'verified'
 * ```
 * @public
 */
export class SmtpTlsTransport extends EventEmitter {
  readonly name = 'SmtpTlsTransport'
  readonly version = '0.1.0'
  /** Nodemailer: the transport honours `mail.data.signal`. */
  readonly supportsAbortSignal = true
  /** Set by Nodemailer's `createTransport`. */
  mailer?: unknown
  #s: Settings
  #inFlight = 0
  #pool = new Map<string, PoolEntry[]>()
  #closed = false

  constructor(options: SmtpTlsTransportOptions = {}) {
    super()
    try {
      this.#s = settings(options)
    } catch (e) {
      throw isSmtpTlsError(e) ? e : invalid('SmtpTlsTransport: bad options', e)
    }
  }

  /** Nodemailer's entry point: deliver `mail`, then `callback(error, info)`. */
  send(mail: NodemailerMail, callback: (err: Error | null, info?: SmtpTlsSentInfo) => void): void {
    if (typeof callback !== 'function') throw invalid('send needs a callback')
    this.#inFlight++
    this.#send(mail).then(
      (r) => this.#finish(() => (r.ok ? callback(null, r.info) : callback(r.error))),
      (e: unknown) =>
        this.#finish(() => callback(isSmtpTlsError(e) ? e : invalid(`send: ${e instanceof Error ? e.message : 'failed'}`, e))),
    )
  }

  #finish(call: () => void): void {
    this.#inFlight--
    try {
      call()
    } finally {
      if (this.isIdle()) this.emit('idle')
    }
  }

  /** True while fewer than `maxConnections` messages are in flight (Nodemailer's pool semantics). */
  isIdle(): boolean {
    return this.#inFlight < this.#s.maxConnections
  }

  /**
   * Probe the relay (direct mode: `verifyDomain`, else nothing to probe: true) like posttls-finger;
   * resolves true when the policy is met, rejects with the deferral otherwise.
   */
  verify(): Promise<true>
  /** The same, reported to a Nodemailer-style callback. */
  verify(callback: (err: Error | null, ok?: true) => void): undefined
  verify(callback?: (err: Error | null, ok?: true) => void): Promise<true> | undefined {
    const target = this.#s.relay ?? this.#s.verifyDomain
    const p: Promise<true> =
      target === undefined
        ? this.#checkResolver()
        : probe(target, this.#connectOptions(target)).then((r: ProbeReport) => {
            if (r.outcome.status !== 'deferred') return true
            const e = new SmtpTlsError(
              (r.outcome.code as SmtpTlsError['code'] | undefined) ?? 'ERR_POLICY_NOT_MET',
              r.outcome.reason ?? `${target}: policy not met`,
              {
                temporary: r.outcome.permanent !== true,
                ...(r.outcome.enhancedStatus ? { enhancedStatus: r.outcome.enhancedStatus } : {}),
              },
            )
            throw Object.assign(e, { report: r })
          })
    if (typeof callback !== 'function') return p
    p.then(
      (ok) => callback(null, ok),
      (e: Error) => callback(e),
    )
    return undefined
  }

  /** Close every idle pooled session (QUIT); sessions in use close when their message is done. */
  close(): void {
    this.#closed = true
    for (const list of this.#pool.values()) {
      for (const e of list) if (e.session.busy === 0) this.#drop(list, e)
    }
  }

  /**
   * Direct mode without `verifyDomain` has no destination to probe: what can be checked is the
   * resolver every delivery depends on. A name under `.invalid` (RFC 6761 §6.4) is answered
   * NXDOMAIN by any working resolver; no answer at all rejects with the resolver's coded error.
   */
  async #checkResolver(): Promise<true> {
    const resolver = this.#s.connect.resolver ?? createResolver()
    const a = await resolver.lookup('smtp-tls-policy-verify.invalid', 'MX')
    if (a.status === 'error') {
      const f = a.error
      throw new SmtpTlsError(f?.code ?? 'ERR_DNS_NETWORK', `verify: the resolver did not answer: ${f?.message ?? 'no response'}`, {
        enhancedStatus: f?.enhancedStatus ?? '4.4.3',
      })
    }
    return true
  }

  #connectOptions(destination: string): ConnectOptions {
    const o: ConnectOptions = { ...this.#s.connect }
    if (this.#s.relay !== undefined) {
      if (this.#s.relayTable) o.policyTable = this.#s.relayTable
    } else {
      const t = this.#s.destinations.get(destination)
      if (t) o.policyTable = t
    }
    return o
  }

  async #send(mail: NodemailerMail): Promise<{ ok: true; info: SmtpTlsSentInfo } | { ok: false; error: SmtpTlsTransportError }> {
    let env: { from?: string | false; to?: string[] }
    let messageId: string
    try {
      env = mail.message.getEnvelope()
      messageId = mail.message.messageId()
    } catch (e) {
      throw invalid('send: not a Nodemailer mail object', e)
    }
    const from = typeof env.from === 'string' ? env.from : ''
    const to = Array.isArray(env.to) ? env.to.filter((x): x is string => typeof x === 'string') : []
    if (to.length === 0) throw invalid('send: the message has no recipient')
    const signal = mail.data.signal
    const reportMail = isReportMail(mail)
    const groups = new Map<string, string[]>()
    const local: SmtpRecipientResult[] = []
    for (const address of to) {
      const d = this.#s.relay ?? domainOf(address)
      if (d === undefined) {
        local.push({
          address,
          status: 'rejected',
          enhancedStatus: '5.1.3',
          text: `bad recipient address syntax: ${JSON.stringify(address)}`,
        })
        continue
      }
      let g = groups.get(d)
      if (!g) groups.set(d, (g = []))
      g.push(address)
    }
    const done = new Map<string, SmtpTlsDomainResult>()
    const queue = [...groups.entries()]
    // domains at once, within the bound; each domain's recipients in one transaction
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [dest, rcpts] = next
        done.set(dest, await this.#deliverGroup(dest, from, rcpts, mail, signal, reportMail))
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#s.maxConcurrentDomains, queue.length) }, worker))
    // in the order of the recipients
    const domains: Record<string, SmtpTlsDomainResult> = {}
    for (const d of groups.keys()) domains[d] = done.get(d)!
    return this.#outcome(from, to, messageId, domains, local)
  }

  #envelope(from: string, rcpts: string[], mail: NodemailerMail): SmtpEnvelope {
    const dsn = mail.data.dsn
    const notify = dsn?.notify === undefined ? undefined : ([] as string[]).concat(dsn.notify).map((n) => String(n).toUpperCase())
    const to: (string | SmtpRecipient)[] = rcpts.map((address) =>
      notify || dsn?.recipient
        ? {
            address,
            ...(notify ? { notify: notify as never } : {}),
            ...(dsn?.recipient ? { orcpt: dsn.recipient } : {}),
          }
        : address,
    )
    return {
      from,
      to,
      ...(dsn && (dsn.return || dsn.id)
        ? {
            dsn: {
              ...(dsn.return ? { ret: /^h/i.test(dsn.return) ? ('HDRS' as const) : ('FULL' as const) } : {}),
              ...(dsn.id ? { envid: dsn.id } : {}),
            },
          }
        : {}),
      ...(mail.data.requireTLSExtensionEnabled ? { requireTls: true } : {}),
    }
  }

  async #deliverGroup(
    dest: string,
    from: string,
    rcpts: string[],
    mail: NodemailerMail,
    signal: AbortSignal | undefined,
    reportMail: boolean,
  ): Promise<SmtpTlsDomainResult> {
    let session: DeliverySession
    let entry: PoolEntry | undefined
    try {
      ;({ session, entry } = await this.#acquire(dest, signal, mail.data.requireTLSExtensionEnabled === true, reportMail))
    } catch (e) {
      const error = isSmtpTlsError(e)
        ? e
        : new SmtpTlsError('ERR_CONNECT', e instanceof Error ? e.message : 'connection failed', { cause: e })
      const attempts = e instanceof SmtpTlsConnectError ? e.attempts : []
      const last = attempts[attempts.length - 1]
      const status = error.temporary ? 'pending' : 'rejected'
      return {
        destination: dest,
        status: error.temporary ? 'deferred' : 'failed',
        recipients: rcpts.map((address) => ({
          address,
          status,
          enhancedStatus: error.enhancedStatus ?? (error.temporary ? '4.0.0' : '5.0.0'),
          text: error.message,
        })),
        trace: last?.verdict?.trace ?? [],
        attempts,
        error,
        transcript: last?.transcript ?? [],
      }
    }
    // The body is read only when the machine asks for it: one fresh (DKIM-signed) stream per destination.
    const body: AsyncIterable<Uint8Array | string> = {
      [Symbol.asyncIterator]: () => (mail.message.createReadStream() as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator](),
    }
    let r: DeliveryResult
    try {
      r = await session.send({ envelope: this.#envelope(from, rcpts, mail), body }, signal ? { signal } : {})
    } finally {
      this.#release(dest, session, entry)
    }
    const accepted = r.accepted.length > 0
    const out: SmtpTlsDomainResult = {
      destination: dest,
      status: accepted ? 'sent' : r.pending.length > 0 ? 'deferred' : 'failed',
      recipients: r.recipients,
      outcome: r.outcome,
      trace: r.trace,
      mx: r.mx,
      address: r.address,
      port: r.port,
      attempts: r.attempts,
      transcript: r.transcript,
    }
    if (r.dataReply) out.response = `${r.dataReply.code} ${r.dataReply.lines.join(' ')}`
    if (r.error) out.error = r.error
    return out
  }

  async #acquire(
    dest: string,
    signal: AbortSignal | undefined,
    requireTls: boolean,
    reportMail: boolean,
  ): Promise<{ session: DeliverySession; entry?: PoolEntry }> {
    // RFC 8689 §4.2.1: a REQUIRETLS message gets its own session, chosen for a verified peer (never pooled);
    // so does a TLS-RPT report, whose session is not recorded (RFC 8460 §5.3)
    const pool = requireTls || reportMail ? undefined : this.#s.pool
    if (pool) {
      const list = this.#pool.get(dest) ?? []
      const free = list.find((e) => e.session.busy === 0 && !e.session.closed)
      if (free) {
        if (free.idle) clearTimeout(free.idle)
        free.idle = undefined
        return { session: free.session, entry: free }
      }
    }
    const o = this.#connectOptions(dest)
    if (requireTls) o.message = { requireTls: true }
    if (reportMail && o.tlsRpt !== undefined) o.tlsRpt = { ...o.tlsRpt, reportMail: true }
    const session = await openDeliverySession(dest, {
      ...o,
      ...(this.#s.auth && this.#s.relay !== undefined ? { auth: this.#s.auth } : {}),
      ...(signal && !pool ? { signal } : {}),
    })
    if (!pool) return { session }
    const entry: PoolEntry = { session, idle: undefined }
    const list = this.#pool.get(dest) ?? []
    list.push(entry)
    this.#pool.set(dest, list)
    return { session, entry }
  }

  #release(dest: string, session: DeliverySession, entry: PoolEntry | undefined): void {
    const pool = this.#s.pool
    if (!pool || !entry) {
      void session.close()
      return
    }
    const list = this.#pool.get(dest) ?? []
    if (this.#closed || session.closed || session.messages >= pool.maxMessages) {
      this.#drop(list, entry)
      return
    }
    if (session.busy > 0) return
    entry.idle = setTimeout(() => this.#drop(list, entry), pool.idleTimeoutMs)
    entry.idle.unref()
  }

  #drop(list: PoolEntry[], entry: PoolEntry): void {
    if (entry.idle) clearTimeout(entry.idle)
    const i = list.indexOf(entry)
    if (i >= 0) list.splice(i, 1)
    void entry.session.close()
  }

  #outcome(
    from: string,
    to: string[],
    messageId: string,
    domains: Record<string, SmtpTlsDomainResult>,
    local: SmtpRecipientResult[],
  ): { ok: true; info: SmtpTlsSentInfo } | { ok: false; error: SmtpTlsTransportError } {
    const all = [...Object.values(domains).flatMap((d) => d.recipients), ...local]
    const accepted = all.filter((r) => r.status === 'accepted').map((r) => r.address)
    const pending = all.filter((r) => r.status === 'pending').map((r) => r.address)
    const rejectedResults = all.filter((r) => r.status === 'rejected')
    const codeOf = (r: SmtpRecipientResult) =>
      Object.values(domains).find((d) => d.recipients.includes(r))?.error?.code ?? 'ERR_SMTP_REJECTED'
    const rejectedErrors = rejectedResults.map((r) =>
      Object.assign(new SmtpTlsError(codeOf(r), `${r.address}: ${responseOf(r)}`, { temporary: false, enhancedStatus: r.enhancedStatus }), {
        recipient: r.address,
        responseCode: r.code ?? 550,
        response: responseOf(r),
        command: 'RCPT TO',
      }),
    )
    const info: SmtpTlsSentInfo = {
      envelope: { from, to },
      messageId,
      accepted,
      rejected: rejectedResults.map((r) => r.address),
      pending,
      rejectedErrors,
      response: Object.values(domains)
        .map((d) => d.response)
        .filter((x): x is string => x !== undefined)
        .join('\n'),
      domains,
    }
    if (accepted.length > 0) return { ok: true, info }
    // Nothing accepted: a temporary failure wins (the queue must keep the message), else a bounce.
    const first = all.find((r) => r.status === 'pending') ?? all[0]!
    const temporary = first.status === 'pending'
    const domainError = Object.values(domains).find((d) => d.recipients.includes(first))?.error
    const code = domainError?.code ?? 'ERR_SMTP_REJECTED'
    const responseCode = first.code ?? (temporary ? 451 : 550)
    const response = responseOf(first)
    const error = new SmtpTlsError(code, `no recipient accepted: ${first.address}: ${response}`, {
      temporary,
      enhancedStatus: first.enhancedStatus,
      ...(domainError?.tlsrpt ? { tlsrpt: domainError.tlsrpt } : {}),
      ...(domainError ? { cause: domainError } : {}),
    })
    return {
      ok: false,
      error: Object.assign(error, {
        responseCode: temporary && responseCode >= 500 ? 451 : responseCode,
        response,
        accepted,
        rejected: info.rejected,
        pending,
        rejectedErrors,
        info,
      }),
    }
  }
}
