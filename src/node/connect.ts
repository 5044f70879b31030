/**
 * The connection driver: discovery → effective policy per MX host → TCP → STARTTLS → TLS → verdict
 * (DESIGN.md §1 data flow). It only moves bytes and gathers facts; every decision is the pure core's
 * (`resolvePolicy`, `StartTlsClient`, `decide`).
 */
import diagnostics_channel from 'node:diagnostics_channel'
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { hostname } from 'node:os'
import { createHash, type Hash } from 'node:crypto'
import {
  connect as tlsConnect,
  createSecureContext,
  type ConnectionOptions,
  type SecureContext,
  type SecureVersion,
  type TLSSocket,
} from 'node:tls'
import type { DestinationFacts, MxHostFacts } from '../dns/types.js'
import { coded } from '../args.js'
import { SmtpTlsError, type TlsRptResultType } from '../errors.js'
import { decide, type ConnectionFacts, type PkixResult, type TlsOutcome, type Verdict } from '../policy/decide.js'
import { mustEncrypt, type EffectiveLevel, type SecurityLevel } from '../policy/levels.js'
import { tlsCipherList } from '../policy/ciphers.js'
import { lookupPolicy } from '../policy/lookup.js'
import { resolvePolicy, type EffectivePolicy, type MessageTlsOptions, type PolicyOptions } from '../policy/resolve.js'
import type { PolicyTable, TlsPolicy } from '../policy/table.js'
import { formatTrace, type TraceStep } from '../policy/trace.js'
import type { EhloCapabilities } from '../smtp/ehlo.js'
import { StartTlsClient, type StartTlsAction } from '../smtp/starttls.js'
import { verifyTrustAnchors, type TrustAnchor } from '../dane/anchors.js'
import { loadTrustStore } from './trust-store.js'
import { pemToDerAll } from '../x509/pem.js'
import { sliceCertificate } from '../x509/der.js'
import { getMtaStsPolicy, type MtaStsLookup } from './mta-sts.js'
import { mtaStsVerdict, selectTransportPolicy } from '../mta-sts/apply.js'
import { createMemoryStore } from '../store/memory.js'
import type { PolicyStore } from '../store/types.js'
import { discoverDestination } from './discovery.js'
import type { TlsaRecord } from '../tlsa/types.js'
import { isSessionCache, type CachedSession, type SessionCache, type TlsSessionCache } from './tls-session-cache.js'
import { createResolver, type Resolver } from './resolver/index.js'
import {
  attemptResult,
  hostRecording,
  recordAttempt,
  tlsRptOption,
  type HostRecording,
  type TlsRptAttemptResult,
  type TlsRptRecording,
  type TlsRptRecordingOptions,
} from './tlsrpt-recording.js'

/** `node:diagnostics_channel` names this driver publishes on (undici style, instead of a logger). @public */
export const channels = {
  /** `{ host, address, port }` before each TCP connection. */
  connect: diagnostics_channel.channel('smtp-tls-policy:connect'),
  /** `{ host, address, port, servername }` when the server accepted STARTTLS. */
  starttls: diagnostics_channel.channel('smtp-tls-policy:starttls'),
  /** `{ host, address, port, protocol, cipher, authorized }` after the TLS handshake. */
  handshake: diagnostics_channel.channel('smtp-tls-policy:handshake'),
  /** `{ host, address, port, verdict }` for each verdict. */
  verdict: diagnostics_channel.channel('smtp-tls-policy:verdict'),
} as const

/** Options of {@link connect} and {@link probe}. @public */
export interface ConnectOptions {
  /** The security level when no table entry applies (Postfix `smtp_tls_security_level`). Default `may`. */
  level?: SecurityLevel
  /** Per-destination policies (Postfix `smtp_tls_policy_maps`), from `parsePolicyTable`. */
  policyTable?: PolicyTable
  /** Postfix main.cf-style settings (insecure-MX policy, match strategies, digests…). `level` overrides `defaultLevel`. */
  policy?: PolicyOptions
  /** Per-message options (RFC 8689 REQUIRETLS, `TLS-Required: No`). */
  message?: MessageTlsOptions
  /** Default: `createResolver()` (the nameservers of /etc/resolv.conf; AD trusted from loopback only). */
  resolver?: Resolver
  /** Default 25. A `host:port` or `[host]:port` destination sets it too. */
  port?: number
  /** Our name in EHLO. Default: `os.hostname()`. */
  ehloName?: string
  signal?: AbortSignal
  /** Timeout of each network step (TCP connect, each reply, the handshake), ms. Default 30000 (posttls-finger's). */
  timeoutMs?: number
  /** Trust anchors (PEM) for PKIX validation (`verify`, `secure`, and `trusted` reporting). Default: Node's root store. */
  ca?: string | readonly string[]
  /** Address families. Default both. */
  families?: readonly (4 | 6)[]
  /** Time for certificate validity checks. Default: the current time at each verdict. */
  now?: () => Date
  /**
   * SMTP sessions this process sets up at once (TCP connect, STARTTLS, handshake, verdict), across all
   * calls; default 16. Hundreds at once stall the event loop (each reply and handshake runs on it), so
   * the rest wait their turn. A session handed to the caller no longer counts.
   */
  maxConcurrentSessions?: number
  /**
   * Trust anchors for `verify` and `secure` (Postfix `smtp_tls_trust_anchor_file`), from
   * `loadTrustStore({ taFile })`: when set, only they authenticate the server, the CA roots do not.
   * A policy table's `tafile=` replaces them for its destination.
   */
  trustAnchors?: readonly TrustAnchor[]
  /**
   * Apply the recipient domain's MTA-STS policy (RFC 8461); off by default. `true` caches policies in
   * one memory store per process; pass `{ store }` to share them (`createRedisStore`). DANE wins where
   * the TLSA RRset is validated and usable (RFC 8461 §2); an explicit policy-table entry wins too.
   */
  mtaSts?: boolean | MtaStsOptions
  /**
   * Resume TLS sessions (Postfix `smtp_tls_session_cache_database`), from `createTlsSessionCache()`;
   * off by default. A session is stored only after its connection passed the policy, under a key that
   * includes the policy (TLSA RRset, pins, names, level, SNI, address…), and a resumed session's
   * certificate is judged again: see "TLS session resumption" in docs/connect.md.
   */
  tlsSessionCache?: TlsSessionCache
  /**
   * Record one TLS-RPT session result per connection attempt in `tlsRpt.store` (RFC 8460 §4): success,
   * or the failure with its result type, under the policy that applied (`tlsa`, `sts`, `no-policy-found`).
   * Fire-and-forget: it never delays the session or changes the verdict; store errors go to
   * `storeErrorChannel`. Read back and send with `sendTlsRptReports`.
   */
  tlsRpt?: TlsRptRecordingOptions
}

/** MTA-STS in {@link connect}: where policies are cached and how the policy host is reached. @public */
export interface MtaStsOptions {
  /** Default: one memory store for the process. */
  store?: PolicyStore
  /** Trust anchors (PEM) for the policy host instead of Node's root store (tests, private CAs). */
  ca?: string | string[]
  /** Allow a policy host on a loopback or private address (tests and labs only). */
  allowPrivateAddresses?: boolean
  /** HTTPS port of the policy host; default 443 (tests only). */
  port?: number
  /** The whole policy fetch, ms; default 10000. */
  timeoutMs?: number
}

/** One try at one address (or a host that could not be tried). @public */
export interface ConnectAttempt {
  host: string
  address?: string
  port: number
  /** The verdict, when the session got far enough for one. */
  verdict?: Verdict
  /** Why the attempt failed, when it did. */
  error?: SmtpTlsError
  /** SMTP transcript in posttls-finger's style (`< 220 …`, `> EHLO …`). */
  transcript: string[]
  /** Our address on the connection (RFC 8460 `sending-mta-ip`), when one was made. */
  localAddress?: string
  /** What was recorded for TLS-RPT (with the `tlsRpt` option), when the attempt was a reportable session. */
  tlsRpt?: TlsRptAttemptResult
}

/** An established, policy-compliant SMTP session, positioned after the (post-TLS) EHLO. @public */
export interface SmtpConnection {
  /** The socket to send MAIL FROM on: a `TLSSocket` when TLS is up, else the TCP socket. */
  socket: Socket | TLSSocket
  /** The MX host (as published) and the address and port used. */
  mx: string
  address: string
  port: number
  outcome: Verdict
  /** The EHLO capabilities that apply (post-TLS when secure). */
  capabilities: EhloCapabilities
  trace: TraceStep[]
  attempts: ConnectAttempt[]
  /** The DNS facts the decision was based on. */
  facts: DestinationFacts
}

/**
 * Delivery to a destination failed: every attempt's outcome, and the error of the last one.
 * `temporary` is false only for a null MX (RFC 7505), a domain that does not exist, and REQUIRETLS's 5.7.30.
 * @public
 */
export class SmtpTlsConnectError extends SmtpTlsError {
  readonly attempts: ConnectAttempt[]
  readonly facts?: DestinationFacts
  constructor(last: SmtpTlsError, attempts: ConnectAttempt[], facts?: DestinationFacts) {
    // Never throws, like SmtpTlsError: a `last` that is no SmtpTlsError (or a Proxy) is described.
    if (!isSmtpTlsErrorSafe(last))
      last = new SmtpTlsError('ERR_INVALID_ARGUMENT', 'SmtpTlsConnectError needs the SmtpTlsError of the last attempt', {
        temporary: false,
      })
    if (!isArraySafe(attempts)) attempts = []
    super(last.code, last.message, {
      temporary: last.temporary,
      ...(last.enhancedStatus !== undefined ? { enhancedStatus: last.enhancedStatus } : {}),
      ...(last.tlsrpt !== undefined ? { tlsrpt: last.tlsrpt } : {}),
      cause: last,
    })
    this.name = 'SmtpTlsConnectError'
    this.attempts = attempts
    if (facts !== undefined && facts !== null && typeof facts === 'object') this.facts = facts
  }
}

/** `Array.isArray` that a revoked Proxy cannot turn into a throw. */
function isArraySafe(x: unknown): x is unknown[] {
  try {
    return Array.isArray(x)
  } catch {
    return false
  }
}

/** `instanceof` that a Proxy's getPrototypeOf trap cannot turn into a throw. */
function isSmtpTlsErrorSafe(x: unknown): x is SmtpTlsError {
  try {
    return x instanceof SmtpTlsError
  } catch {
    return false
  }
}

interface Settings {
  nexthop: string
  destination: string
  port: number
  ehloName: string
  timeoutMs: number
  /** the caller's trust anchors, or undefined for Node's built-in root store */
  ca: string[] | undefined
  /** identifies `ca` in the secure-context cache */
  caKey: string
  resolver: Resolver
  policy: PolicyOptions
  message: MessageTlsOptions
  table: PolicyTable | undefined
  families: readonly (4 | 6)[]
  signal: AbortSignal | undefined
  now: () => Date
  /** probe: stop after the verdict with QUIT */
  probe: boolean
  maxConcurrentSessions: number
  trustAnchors: readonly TrustAnchor[] | undefined
  mtaSts: MtaStsOptions | undefined
  tlsSessionCache: SessionCache | undefined
  tlsRpt: TlsRptRecording | undefined
}

let sessionsInFlight = 0
const sessionWaiters: Array<() => void> = []

/**
 * At most STARTS_PER_TURN `connect()`/`probe()` calls begin their DNS discovery and policy work in one
 * turn of the event loop; the rest begin on the next turns, in order. A caller that starts hundreds at
 * once (a queue manager after a restart) would otherwise run every discovery in one microtask drain
 * and stall the event loop: 4-23 ms for 200 calls with a warm DNS cache (issue 11). Those calls would
 * wait for a session slot anyway; nothing is lost but the stall.
 */
const STARTS_PER_TURN = 16
let startsThisTurn = 0
const startWaiters: Array<() => void> = []
let turnArmed = false

function startGate(): Promise<void> | undefined {
  if (startWaiters.length === 0 && startsThisTurn < STARTS_PER_TURN) {
    startsThisTurn++
    armTurn()
    return undefined
  }
  armTurn()
  return new Promise<void>((resolve) => startWaiters.push(resolve))
}

function armTurn(): void {
  if (turnArmed) return
  turnArmed = true
  setImmediate(nextTurn)
}

/** A new turn: the count starts again, and the next callers in line begin. */
function nextTurn(): void {
  turnArmed = false
  startsThisTurn = 0
  while (startWaiters.length > 0 && startsThisTurn < STARTS_PER_TURN) {
    startsThisTurn++
    startWaiters.shift()!()
  }
  if (startsThisTurn > 0) armTurn()
}

/**
 * Run `start` when fewer than `limit` SMTP sessions are being set up in this process (TCP connect to
 * verdict); the returned function gives the slot back (idempotent). Not started when released first.
 */
function sessionSlot(limit: number, start: () => void): () => void {
  let state: 'waiting' | 'running' | 'done' = 'waiting'
  const run = () => {
    if (state !== 'waiting') return
    state = 'running'
    sessionsInFlight++
    start()
  }
  if (sessionsInFlight < limit) run()
  else sessionWaiters.push(run)
  return () => {
    if (state === 'running') {
      sessionsInFlight--
      // start the next waiter that is still waiting
      while (sessionWaiters.length > 0 && sessionsInFlight < limit) sessionWaiters.shift()!()
    } else if (state === 'waiting') {
      const i = sessionWaiters.indexOf(run)
      if (i >= 0) sessionWaiters.splice(i, 1)
    }
    state = 'done'
  }
}

const LEVELS: readonly SecurityLevel[] = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure']

function invalid(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', message, { temporary: false })
}

/**
 * Split a Postfix-style next hop into the destination for discovery and the port:
 * `example.com`, `example.com:587`, `[mx.example.com]`, `[mx.example.com]:587`, `[192.0.2.1]`, `[ipv6:2001:db8::1]:25`.
 */
export function parseNexthop(nexthop: string, defaultPort: number): { destination: string; port: number } {
  if (typeof nexthop !== 'string' || nexthop.length === 0 || nexthop.length > 300)
    invalid('destination must be a domain, [host] or host:port')
  let destination = nexthop.trim()
  let port = defaultPort
  const m = /^(\[[^\]]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(destination)
  if (m) {
    destination = m[1]!
    port = Number(m[2])
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) invalid(`invalid port in destination ${JSON.stringify(nexthop)}`)
  if (/\s/.test(destination) || destination === '[]') invalid(`invalid destination ${JSON.stringify(nexthop)}`)
  return { destination, port }
}

function caSetting(ca: ConnectOptions['ca']): { ca: string[] | undefined; caKey: string } {
  if (ca === undefined) return { ca: undefined, caKey: 'node-root-store' }
  const list = typeof ca === 'string' ? [ca] : [...ca]
  if (list.some((c) => typeof c !== 'string')) invalid('ca must be PEM text or a list of PEM texts')
  const h = createHash('sha256')
  for (const c of list) h.update(c).update('\0')
  const caKey = h.digest('hex')
  if (!checkedCa.has(caKey)) {
    // Node's TLS ignores a `ca` block it cannot parse, which would quietly narrow the trust anchors
    // (issue 14): every block must be a certificate, or the caller hears of it before any I/O.
    list.forEach((pem, i) => {
      let ders: Uint8Array[]
      try {
        ders = pemToDerAll(pem)
        for (const der of ders) sliceCertificate(der)
      } catch (e) {
        invalid(`ca entry ${i + 1} is not PEM certificates: ${e instanceof Error ? e.message : String(e)}`)
      }
      if (ders.length === 0) invalid(`ca entry ${i + 1} holds no PEM certificate`)
    })
    if (checkedCa.size >= 64) checkedCa.clear()
    checkedCa.add(caKey)
  }
  return { ca: list, caKey }
}
/** `ca` option values already checked (by hash): a queue manager passes the same bundle every time. */
const checkedCa = new Set<string>()

/**
 * Secure contexts are expensive to build (a root store of 140 certificates costs milliseconds of CPU
 * per connection, and stalls the event loop when many connections start at once), so each distinct
 * (trust anchors, protocol range) is built once and shared.
 */
const contexts = new Map<string, SecureContext>()
function secureContext(
  caKey: string,
  ca: string[] | undefined,
  minVersion: SecureVersion,
  maxVersion: SecureVersion,
  ciphers: string | undefined,
): SecureContext {
  const key = `${caKey} ${minVersion} ${maxVersion} ${ciphers ?? ''}`
  let ctx = contexts.get(key)
  if (ctx === undefined) {
    // ca undefined: Node's built-in root store; [] : no trusted CA at all. A cipher list that matches
    // nothing throws here: the caller turns it into a failed handshake (4.7.5).
    ctx = createSecureContext({
      minVersion,
      maxVersion,
      ...(ca !== undefined ? { ca } : {}),
      ...(ciphers !== undefined ? { ciphers } : {}),
    })
    if (contexts.size >= 64) contexts.delete(contexts.keys().next().value as string)
    contexts.set(key, ctx)
  }
  return ctx
}

function settings(destination: string, o: ConnectOptions, probe: boolean): Settings {
  if (o === null || typeof o !== 'object') invalid('options must be an object')
  if (o.level !== undefined && !LEVELS.includes(o.level)) invalid(`level must be one of ${LEVELS.join(', ')}`)
  const timeoutMs = o.timeoutMs ?? 30_000
  const maxConcurrentSessions = o.maxConcurrentSessions ?? 16
  if (!Number.isInteger(maxConcurrentSessions) || maxConcurrentSessions < 1) invalid('maxConcurrentSessions must be a positive integer')
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 3_600_000) invalid('timeoutMs must be an integer from 1 to 3600000')
  const p = parseNexthop(destination, o.port ?? 25)
  const policy: PolicyOptions = { ...o.policy }
  if (o.level !== undefined) policy.defaultLevel = o.level
  return {
    nexthop: destination.trim(),
    destination: p.destination,
    port: p.port,
    ehloName: o.ehloName ?? hostname(),
    timeoutMs,
    ...caSetting(o.ca),
    resolver: o.resolver ?? createResolver(),
    policy,
    message: { ...o.message },
    table: o.policyTable,
    families: o.families ?? [4, 6],
    signal: o.signal,
    now: o.now ?? (() => new Date()),
    probe,
    maxConcurrentSessions,
    trustAnchors: anchorsOption(o.trustAnchors),
    mtaSts: mtaStsOption(o.mtaSts),
    tlsSessionCache: sessionCacheOption(o.tlsSessionCache),
    tlsRpt: tlsRptOption(o.tlsRpt),
  }
}

function sessionCacheOption(c: unknown): SessionCache | undefined {
  if (c === undefined) return undefined
  if (!isSessionCache(c)) invalid('tlsSessionCache must come from createTlsSessionCache()')
  return c
}

/** The store of `mtaSts: true` (and of an options object without one): one per process. */
let processStore: PolicyStore | undefined
function mtaStsOption(v: unknown): MtaStsOptions | undefined {
  if (v === undefined || v === false) return undefined
  if (v !== true && (v === null || typeof v !== 'object')) invalid('mtaSts must be a boolean or an object')
  const o: MtaStsOptions = v === true ? {} : (v as MtaStsOptions)
  return { ...o, store: o.store ?? (processStore ??= createMemoryStore({ maxEntries: 10_000 })) }
}

/**
 * The recipient domain's MTA-STS policy (RFC 8461 §3), through the store. A lookup that fails with
 * nothing cached is no policy (§5: deliver as before); the failure stays in the trace for TLS-RPT.
 */
async function mtaStsLookup(facts: DestinationFacts, s: Settings): Promise<MtaStsLookup | undefined> {
  const o = s.mtaSts
  if (o === undefined || !facts.mxLookup) return undefined
  try {
    return await getMtaStsPolicy(facts.domain, {
      resolver: s.resolver,
      ...(o.store ? { store: o.store } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.allowPrivateAddresses !== undefined ? { allowPrivateAddresses: o.allowPrivateAddresses } : {}),
      ...(o.port !== undefined ? { port: o.port } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(s.signal ? { signal: s.signal } : {}),
    })
  } catch (e) {
    if (s.signal?.aborted) throw e
    return undefined
  }
}

/** The policy an MTA-STS `enforce` host is held to: PKIX and the MX host name (RFC 8461 §4.2), SNI the MX host. */
const STS_ENFORCE: TlsPolicy = Object.freeze({ level: 'secure', match: ['hostname'], servername: 'hostname' }) as TlsPolicy

/**
 * Which policy governs one MX host when the domain publishes MTA-STS (RFC 8461 §2, §4, §5): the
 * table entry for the host, the trace steps to put first, or a deferral without connecting.
 */
function mtaStsForHost(
  sts: MtaStsLookup | undefined,
  host: MxHostFacts,
  entry: TlsPolicy | undefined,
): { entry: TlsPolicy | undefined; steps: TraceStep[]; error?: SmtpTlsError; applies?: string } {
  if (sts === undefined) return { entry, steps: [] }
  const steps: TraceStep[] = [...sts.trace]
  const policy = sts.policy
  if (policy === undefined || policy.mode === 'none') return { entry, steps }
  const choice = selectTransportPolicy({ tlsa: host.tlsa, sts: policy })
  steps.push(...choice.trace)
  if (choice.applies === 'defer') {
    // RFC 8461 §2: a DANE temporary failure never falls back to MTA-STS.
    const error = new SmtpTlsError('ERR_DANE_TLSA_LOOKUP', `TLSA lookup for ${host.host} failed: DANE decides, MTA-STS does not apply`, {
      enhancedStatus: '4.7.5',
      ...(choice.tlsrpt !== undefined ? { tlsrpt: choice.tlsrpt } : {}),
    })
    return { entry, steps, error, applies: 'defer' }
  }
  if (choice.applies !== 'sts-enforce' && choice.applies !== 'sts-testing') return { entry, steps, applies: choice.applies }
  const pre = mtaStsVerdict(policy, { mxHost: host.host })
  steps.push(...pre.trace)
  if (!pre.ok && !pre.deliver) {
    // RFC 8461 §4.1: an MX that matches no pattern is not used under `enforce`.
    const error = new SmtpTlsError('ERR_POLICY_NOT_MET', `MTA-STS: ${pre.detail}`, { enhancedStatus: '4.7.5', tlsrpt: pre.result })
    return { entry, steps, error, applies: choice.applies }
  }
  if (choice.applies === 'sts-testing') {
    steps.push({ rule: 'MTA-STS testing → the configured level applies; failures are reported, not enforced', ref: 'RFC 8461 §5' })
    return { entry, steps, applies: choice.applies }
  }
  if (entry !== undefined) {
    steps.push({
      rule: 'MTA-STS enforce, but a policy-table entry exists → the table entry applies',
      ref: 'postconf(5) smtp_tls_policy_maps',
    })
    return { entry, steps, applies: choice.applies }
  }
  steps.push({ rule: 'MTA-STS enforce → secure, match=hostname, servername=hostname', ref: 'RFC 8461 §4.2, §5' })
  return { entry: STS_ENFORCE, steps, applies: choice.applies }
}

function anchorsOption(a: unknown): readonly TrustAnchor[] | undefined {
  if (a === undefined) return undefined
  if (
    !Array.isArray(a) ||
    !a.every(
      (x) => x !== null && typeof x === 'object' && (x.type === 'certificate' || x.type === 'publicKey') && x.der instanceof Uint8Array,
    )
  ) {
    invalid('trustAnchors must be the anchors of loadTrustStore({ taFile })')
  }
  return a as TrustAnchor[]
}

/**
 * `tafile=` files, loaded once a minute at most (a queue manager calls connect() per message). A file
 * that is missing or does not parse defers the host (ERR_TRUST_STORE, temporary): never a weaker check.
 */
const anchorFiles = new Map<string, { at: number; anchors: Promise<TrustAnchor[]> }>()
function tafileAnchors(paths: readonly string[]): Promise<TrustAnchor[]> {
  const key = paths.join('\0')
  const now = Date.now()
  const hit = anchorFiles.get(key)
  if (hit && now - hit.at < 60_000) return hit.anchors
  const anchors = loadTrustStore({ taFile: [...paths] }).then((t) => t.anchors)
  anchors.catch(() => anchorFiles.delete(key))
  if (anchorFiles.size >= 64) anchorFiles.delete(anchorFiles.keys().next().value as string)
  anchorFiles.set(key, { at: now, anchors })
  return anchors
}

/** The anchors that apply to a host: only at `verify`/`secure` (Postfix TLS_MUST_PKIX), table before option. */
async function anchorsFor(eff: EffectivePolicy, s: Settings): Promise<readonly TrustAnchor[] | undefined> {
  if (eff.level !== 'verify' && eff.level !== 'secure') return undefined
  if (eff.tafile !== undefined && eff.tafile.length > 0) return tafileAnchors(eff.tafile)
  return s.trustAnchors
}

const VERSIONS: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']

/**
 * The TLS protocol range: what the policy's `protocols=` allows (postconf(5) `smtp_tls_protocols`;
 * Node takes one contiguous range, so the block that holds the highest allowed version), with a
 * floor of TLS 1.2 wherever TLS is mandatory (`encrypt` and above): TLS 1.0 and 1.1 are deprecated
 * (RFC 8996) and mox sets the same floor. Only `may` goes lower, when the table allows it. A range
 * with nothing left is a policy that cannot be met: `ERR_POLICY_CONFIG`, a failed handshake (4.7.5).
 */
function protocolRange(eff: EffectivePolicy): [SecureVersion, SecureVersion] {
  const p = eff.protocols
  const floor = eff.level === 'may' || eff.level === 'none' ? 0 : 2
  const lo = Math.max(floor, p.min !== undefined ? VERSIONS.indexOf(p.min as SecureVersion) : 0)
  const hi = p.max !== undefined ? VERSIONS.indexOf(p.max as SecureVersion) : VERSIONS.length - 1
  const allowed = (i: number) =>
    i >= lo && i <= hi && !p.exclude.includes(VERSIONS[i]!) && (p.include.length === 0 || p.include.includes(VERSIONS[i]!))
  let max = VERSIONS.length - 1
  while (max >= 0 && !allowed(max)) max--
  if (max < 0) {
    throw new SmtpTlsError('ERR_POLICY_CONFIG', `no TLS version is left: protocols=${p.text} with a floor of ${VERSIONS[floor]}`, {
      enhancedStatus: '4.7.5',
      tlsrpt: 'validation-failure',
    })
  }
  let min = max
  while (min > 0 && allowed(min - 1)) min--
  return [VERSIONS[min]!, VERSIONS[max]!]
}

/** Node's TLS options for one connection under an effective policy. */
function tlsOptions(
  eff: EffectivePolicy,
  s: Settings,
  servername: string,
  socket: Socket,
  anchors: readonly TrustAnchor[] | undefined,
): { options: ConnectionOptions; contextKey: string } {
  const authenticating = eff.level !== 'may' && eff.level !== 'encrypt' && eff.level !== 'none'
  const [minVersion, maxVersion] = protocolRange(eff)
  // No CA is trusted at DANE and fingerprint levels, nor where trust anchors replace the CA roots
  // (Postfix tafile=): the chain judged is then the one the server sent.
  const daneLevel =
    eff.level === 'dane' || eff.level === 'dane-only' || eff.level === 'half-dane' || eff.level === 'fingerprint' || anchors !== undefined
  // Postfix `ciphers=` / `exclude=` for TLS 1.2 and below (RFC 7672 §8.2: no aNULL when authenticating).
  const ciphers = tlsCipherList({
    authenticating,
    ...(eff.ciphers !== undefined ? { ciphers: eff.ciphers } : {}),
    ...(eff.exclude !== undefined ? { exclude: eff.exclude } : {}),
  })
  const caKey = daneLevel ? 'none' : s.caKey
  const opts: ConnectionOptions = {
    socket,
    rejectUnauthorized: false,
    // Names are the policy engine's job (RFC 7672 §3.2.3, Postfix match strategies): Node must not check them.
    checkServerIdentity: () => undefined,
    // At DANE and fingerprint levels no CA is trusted: the chain Node reports is then the one the server sent.
    secureContext: daneLevel
      ? secureContext(caKey, [], minVersion, maxVersion, ciphers)
      : secureContext(caKey, s.ca, minVersion, maxVersion, ciphers),
  }
  // RFC 6066 SNI needs a host name, not an address literal.
  if (servername.length > 0 && isIP(servername) === 0) opts.servername = servername
  return { options: opts, contextKey: `${caKey} ${minVersion} ${maxVersion} ${ciphers ?? ''}` }
}

/** Digests of trust-anchor sets, for session keys (a tafile's anchors are one array until it is reloaded). */
const anchorDigests = new WeakMap<readonly TrustAnchor[], string>()
function anchorsDigest(anchors: readonly TrustAnchor[]): string {
  let d = anchorDigests.get(anchors)
  if (d === undefined) {
    const h = createHash('sha256')
    for (const a of anchors) h.update(a.type).update('\0').update(a.der).update('\0')
    d = h.digest('hex')
    anchorDigests.set(anchors, d)
  }
  return d
}

/**
 * The session cache key: Postfix's server id (`smtp:address:port:…`, smtp_proto.c) and a digest of
 * everything the policy checks (tls_client.c `tls_serverid_digest`: level, match names, pins and their
 * digest, the TLSA RRset as published and as usable, trust anchors, protocols and ciphers). A policy
 * that changes in any way that matters gets a new key, so it never resumes a session judged under
 * the old one; the server's identity is the host, address, port and SNI.
 */
function sessionKey(
  eff: EffectivePolicy,
  s: Settings,
  address: string,
  servername: string,
  contextKey: string,
  anchors: readonly TrustAnchor[] | undefined,
): string {
  const tlsa = eff.tlsa
  const policy = JSON.stringify([
    eff.configuredLevel,
    eff.level,
    eff.matchNames,
    eff.pins ?? null,
    eff.fingerprintDigest,
    tlsa ? [tlsa.base, tlsa.qname ?? null, tlsa.records.length, tlsa.usable.length] : null,
    eff.daneDigests,
    eff.tafile ?? null,
    anchors ? anchorsDigest(anchors) : null,
    contextKey,
    eff.mtaStsEnforced,
    eff.protocols.text,
  ])
  const h = createHash('sha256').update(policy)
  // the RRset as published and as usable, in an order that does not depend on the DNS answer's
  if (tlsa) for (const set of [tlsa.records, tlsa.usable]) for (const r of sortedRecords(set)) hashRecord(h, r)
  return `smtp:${address}:${eff.port}:${servername}:${eff.host}:${eff.nexthop}:${s.ehloName}:${h.digest('base64')}`
}

function compareRecords(a: TlsaRecord, b: TlsaRecord): number {
  return a.usage - b.usage || a.selector - b.selector || a.matchingType - b.matchingType || Buffer.compare(a.data, b.data)
}

function sortedRecords(set: readonly TlsaRecord[]): readonly TlsaRecord[] {
  return set.length < 2 ? set : [...set].sort(compareRecords)
}

function hashRecord(h: Hash, r: TlsaRecord): void {
  const n = r.data.length
  // usage, selector, matching type and the data's length, then the data: one record, one framing
  h.update(
    new Uint8Array([r.usage & 0xff, r.selector & 0xff, r.matchingType & 0xff, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]),
  )
  h.update(r.data)
}

/**
 * The peer chain, DER, leaf first, as OpenSSL built it from what the server sent. Only DANE with a
 * trust-anchor record (RFC 7672 §3.1.2) needs the certificates above the leaf; every other check
 * reads the leaf alone (DANE-EE, RFC 7672 §3.1.1; pins; the names at `verify`/`secure`, whose chain
 * OpenSSL has checked; the presence of a certificate at `may`/`encrypt`), so only the leaf is read,
 * without turning the whole chain into objects (issue 11: 160-230 µs at `encrypt`).
 */
function peerChain(tls: TLSSocket, eff: EffectivePolicy, anchors: readonly TrustAnchor[] | undefined): Uint8Array[] {
  const daneLevel = eff.level === 'dane' || eff.level === 'dane-only' || eff.level === 'half-dane'
  const leafOnly = anchors === undefined && !(daneLevel && eff.tlsa !== undefined && eff.tlsa.usable.some((r) => r.usage !== 3))
  if (leafOnly) {
    // getPeerX509Certificate() may be called once per socket on Node 20; this is the only call.
    const leaf = tls.getPeerX509Certificate()
    return leaf ? [new Uint8Array(leaf.raw)] : []
  }
  const chain: Uint8Array[] = []
  let c = tls.getPeerCertificate(true)
  const seen = new Set<string>()
  while (c && c.raw && chain.length < 16) {
    const key = c.fingerprint256
    if (seen.has(key)) break
    seen.add(key)
    chain.push(new Uint8Array(c.raw))
    if (!c.issuerCertificate || c.issuerCertificate === c) break
    c = c.issuerCertificate
  }
  return chain
}

/**
 * Write the post-TLS EHLO once the server's first TLS 1.3 session ticket has arrived (issue 11).
 * A TLS 1.3 server sends its tickets after our Finished; Postfix's smtpd then holds its EHLO reply
 * (Nagle) until the ticket segment is acknowledged, and when our EHLO left with the Finished, we had
 * nothing more to send, so Linux delayed that ACK by 40 ms. Written after the ticket, the EHLO's
 * segment acknowledges it and the reply leaves at once. A server that sends no ticket costs one more
 * handshake time (at least TICKET_WAIT_MIN_MS, at most 200 ms), the time a ticket would have taken to
 * arrive. The floor: a fast handshake says little about when a busy server gets round to its tickets,
 * and an EHLO sent just before them brings the stall back.
 */
/** The shortest wait for a TLS 1.3 session ticket (see afterFirstTicket): half a delayed ACK. */
const TICKET_WAIT_MIN_MS = 20

function afterFirstTicket(t: TLSSocket, handshakeStarted: number, go: (ticket: boolean) => void): void {
  let done = false
  const proceed = (ticket: boolean) => {
    if (done) return
    done = true
    clearTimeout(timer)
    t.removeListener('session', onSession)
    go(ticket)
  }
  // 'session' is emitted from inside OpenSSL's read of the ticket: writing there breaks the session,
  // so the EHLO goes out on the next turn of the event loop.
  const onSession = () => setImmediate(proceed, true)
  t.on('session', onSession)
  const timer = setTimeout(proceed, Math.min(200, Math.max(TICKET_WAIT_MIN_MS, performance.now() - handshakeStarted)), false)
}

/** RFC 8446 §6 alert descriptions, as posttls-finger names them (OpenSSL's SSL_alert_desc_string_long). */
const TLS_ALERTS: Readonly<Record<number, string>> = {
  0: 'close notify',
  10: 'unexpected message',
  20: 'bad record mac',
  22: 'record overflow',
  40: 'handshake failure',
  42: 'bad certificate',
  43: 'unsupported certificate',
  44: 'certificate revoked',
  45: 'certificate expired',
  46: 'certificate unknown',
  47: 'illegal parameter',
  48: 'unknown CA',
  49: 'access denied',
  50: 'decode error',
  51: 'decrypt error',
  70: 'protocol version',
  71: 'insufficient security',
  80: 'internal error',
  86: 'inappropriate fallback',
  90: 'user canceled',
  109: 'missing extension',
  110: 'unsupported extension',
  112: 'unrecognized name',
  113: 'bad certificate status response',
  115: 'unknown PSK identity',
  116: 'certificate required',
  120: 'no application protocol',
}

/**
 * Why a handshake failed, in one phrase: the TLS alert the server sent (`TLS alert 70, protocol
 * version`), OpenSSL's reason when it failed on our side, or what happened to the connection.
 */
function handshakeReason(cause: unknown): string {
  if (cause instanceof SmtpTlsError) return cause.message
  if (!(cause instanceof Error)) return 'unknown cause'
  const alert = /SSL alert number (\d+)/.exec(cause.message)
  if (alert) {
    const n = Number(alert[1])
    return `TLS alert ${n}, ${TLS_ALERTS[n] ?? 'unknown'} (received from the server)`
  }
  const reason = (cause as Error & { reason?: unknown }).reason
  if (typeof reason === 'string' && reason.length > 0) return `${reason} (OpenSSL)`
  return cause.message
}

/** The 'error' listener every socket of ours keeps until it is destroyed (see `session`). */
function ignore(): void {}

type SessionEnd = (
  | {
      kind: 'ready'
      action: Extract<StartTlsAction, { type: 'ready' }>
      socket: Socket | TLSSocket
      facts: ConnectionFacts
      /** the verdict taken right after the TLS handshake, if there was one */
      verdict?: Verdict
    }
  | { kind: 'refused'; verdict: Verdict }
  | { kind: 'closed'; error: SmtpTlsError; facts?: ConnectionFacts }
) & {
  /** our address on the connection, once connected */
  localAddress?: string
}

/**
 * The PKIX fact under trust anchors (Postfix tafile=, tls_dane_load_trustfile): the chain leads to an
 * anchor, which does not expire and may be an intermediate or the leaf itself. Names are then the
 * level's match= names, checked by decide() as for any verify/secure connection.
 */
function anchorPkix(anchors: readonly TrustAnchor[], chain: readonly Uint8Array[], eff: EffectivePolicy, s: Settings): PkixResult {
  const r = verifyTrustAnchors({ anchors, chain, names: eff.matchNames, now: s.now() })
  if (r.ok || r.code === 'ERR_DANE_NAME_MISMATCH') return { trusted: true }
  return { trusted: false, error: `no trust anchor of the tafile authenticates the chain: ${r.detail}` }
}

/** What a plaintext `ready` tells the policy engine: STARTTLS was not offered, or was refused. */
function plaintextFacts(a: Extract<StartTlsAction, { type: 'ready' }>): ConnectionFacts {
  if (a.lastReply !== a.ehloReply) return { starttls: 'refused', starttlsReply: `${a.lastReply.code} ${a.lastReply.lines.join(' ')}` }
  return { starttls: 'not-offered' }
}

/** A session the machine closed; the failures the policy engine judges (RFC 3207 §4, Postfix TLS_README) carry their facts. */
function closedEnd(a: Extract<StartTlsAction, { type: 'close' }>, host: string, address: string): SessionEnd {
  const error = a.error ?? new SmtpTlsError('ERR_SMTP_PROTOCOL', `session with ${host}[${address}] closed`)
  if (error.code === 'ERR_STARTTLS_NOT_OFFERED') return { kind: 'closed', error, facts: { starttls: 'not-offered' } }
  if (error.code === 'ERR_STARTTLS_REFUSED') {
    const r = a.reply
    return { kind: 'closed', error, facts: { starttls: 'refused', ...(r ? { starttlsReply: `${r.code} ${r.lines.join(' ')}` } : {}) } }
  }
  if (error.code === 'ERR_TLS_HANDSHAKE') {
    return { kind: 'closed', error, facts: { starttls: 'offered', handshake: 'failed', handshakeError: handshakeReason(error.cause) } }
  }
  return { kind: 'closed', error }
}

/** One SMTP session on one address: the machine decides, this moves bytes and gathers facts. */
function session(
  eff: EffectivePolicy,
  address: string,
  s: Settings,
  skipStartTls: boolean,
  transcript: string[],
  anchors: readonly TrustAnchor[] | undefined,
): Promise<SessionEnd> {
  return new Promise<SessionEnd>((resolve) => new DriverSession(eff, address, s, skipStartTls, transcript, anchors, resolve).start())
}

/**
 * The I/O of one session, in named steps: `start` (TCP), `run` (carry out the machine's actions),
 * `upgrade` (STARTTLS → TLS), `secured` (facts and the verdict after the handshake), `finish`.
 */
class DriverSession {
  private readonly host: string
  private readonly machine: StartTlsClient
  private raw!: Socket
  private io!: Socket | TLSSocket
  private tls: TLSSocket | undefined
  private timer: NodeJS.Timeout | undefined
  private settled = false
  private tlsFacts: ConnectionFacts | undefined
  /** the verdict right after the handshake; final unless REQUIRETLS needs the post-TLS EHLO (RFC 8689) */
  private firstVerdict: Verdict | undefined
  private handshakeStarted = 0
  /** the session cache key of this connection, when a cache is in use */
  private cacheKey: string | undefined
  /** the cached session offered to the server */
  private offered: CachedSession | undefined
  /** the facts a stored session carries; set once the verdict allowed delivery */
  private verified: { chain: readonly Uint8Array[]; pkix: PkixResult; from: CachedSession | undefined } | undefined
  /** a session that arrived before the verdict (TLS 1.2 sends it within the handshake) */
  private pendingSession: Buffer | undefined

  constructor(
    private readonly eff: EffectivePolicy,
    private readonly address: string,
    private readonly s: Settings,
    skipStartTls: boolean,
    private readonly transcript: string[],
    private readonly anchors: readonly TrustAnchor[] | undefined,
    private readonly resolve: (end: SessionEnd) => void,
  ) {
    this.host = eff.host
    this.machine = new StartTlsClient({
      ehloName: s.ehloName,
      requireTls: mustEncrypt(eff.level) && !skipStartTls,
      servername: eff.servername ?? eff.host,
      skipStartTls: skipStartTls || eff.level === 'none',
    })
  }

  private readonly onData = (b: Buffer): void => this.feed({ type: 'data', bytes: b })
  private readonly onEnd = (): void => this.feed({ type: 'eof' })
  private readonly onAbort = (): void =>
    this.finish({ kind: 'closed', error: new SmtpTlsError('ERR_ABORTED', 'aborted', { cause: this.s.signal?.reason }) }, false)
  private readonly onError = (e: Error): void => {
    if (this.settled) return
    if (this.tls && !this.tlsFacts) return this.feed({ type: 'tlsFailed', cause: e })
    if (this.machine.transcript.length === 0) {
      const { host, address, eff } = this
      const error = new SmtpTlsError('ERR_CONNECT', `connect to ${host}[${address}]:${eff.port}: ${e.message}`, {
        enhancedStatus: '4.4.1',
        cause: e,
      })
      return this.finish({ kind: 'closed', error }, false)
    }
    this.feed({ type: 'eof' })
  }

  start(): void {
    const { eff, address, s } = this
    const raw = netConnect({ host: address, port: eff.port, family: isIP(address) })
    this.raw = raw
    this.io = raw
    // Never without an 'error' listener until destroyed (issue 10 §1): `onError` comes and goes with
    // the session's logic; this one stays, so a hostile peer's late reset cannot crash the process.
    raw.on('error', ignore)
    // Our commands are small and each waits for a reply: never hold one back for an ACK (Nagle).
    // See "Latency" in docs/connect.md (issue 11).
    raw.setNoDelay(true)
    // The channels' messages are built only for a subscriber (issue 11: four objects per session).
    if (channels.connect.hasSubscribers) channels.connect.publish({ host: this.host, address, port: eff.port })
    raw.on('data', this.onData)
    raw.on('end', this.onEnd)
    raw.on('close', this.onEnd)
    raw.on('error', this.onError)
    if (s.signal?.aborted) return this.onAbort()
    s.signal?.addEventListener('abort', this.onAbort, { once: true })
    // the connect timeout, then one per reply
    this.arm()
  }

  /** The connect timeout, then one per reply: one timer for the session, restarted in place. */
  private arm(): void {
    if (this.timer) this.timer.refresh()
    else this.timer = setTimeout(this.onTimeout, this.s.timeoutMs)
  }

  private readonly onTimeout = (): void => this.feed({ type: 'timeout' })

  private feed(input: Parameters<StartTlsClient['handle']>[0]): void {
    if (!this.settled) this.run(this.machine.handle(input))
  }

  private run(actions: StartTlsAction[]): void {
    for (const a of actions) {
      if (this.settled) return
      switch (a.type) {
        case 'send':
          this.io.write(a.bytes)
          this.arm()
          break
        case 'upgrade':
          this.upgrade(a.servername)
          break
        case 'ready':
          this.finish(
            {
              kind: 'ready',
              action: a,
              socket: this.io,
              facts: this.tlsFacts ?? plaintextFacts(a),
              ...(this.firstVerdict ? { verdict: this.firstVerdict } : {}),
            },
            true,
          )
          break
        case 'close':
          this.finish(closedEnd(a, this.host, this.address), false)
          break
      }
    }
  }

  private upgrade(sni: string): void {
    const { raw, eff, s } = this
    if (channels.starttls.hasSubscribers)
      channels.starttls.publish({ host: this.host, address: this.address, port: eff.port, servername: sni })
    // RFC 3207 §4.2: nothing read in plaintext after the 220 may be used; the machine has checked
    // what was already read, and from here on raw bytes belong to the TLS layer only.
    raw.removeListener('data', this.onData)
    raw.removeListener('end', this.onEnd)
    raw.removeListener('close', this.onEnd)
    raw.pause()
    this.arm()
    this.handshakeStarted = performance.now()
    let t: TLSSocket
    try {
      const { options, contextKey } = tlsOptions(eff, s, sni, raw, this.anchors)
      const cache = s.tlsSessionCache
      if (cache) {
        this.cacheKey = sessionKey(eff, s, this.address, options.servername ?? '', contextKey, this.anchors)
        this.offered = cache.lookup(this.cacheKey)
        if (this.offered) options.session = this.offered.session
      }
      t = tlsConnect(options)
    } catch (e) {
      return this.feed({ type: 'tlsFailed', cause: e })
    }
    this.tls = t
    t.on('error', ignore)
    t.on('error', this.onError)
    if (this.cacheKey !== undefined) t.on('session', this.onSession)
    t.once('secureConnect', () => this.secured(t))
  }

  /** A new session (TLS 1.3: a ticket after the handshake): stored once the verdict allowed delivery. */
  private readonly onSession = (session: Buffer): void => {
    const v = this.verified
    if (v === undefined) {
      this.pendingSession = session
      return
    }
    this.s.tlsSessionCache?.store(this.cacheKey!, session, v.chain, v.pkix, v.from)
  }

  /** RFC 3207 §4.1: judge the peer right after the handshake; QUIT at once when it falls short. */
  private secured(t: TLSSocket): void {
    if (this.settled) return
    const { eff, s } = this
    const cipher = t.getCipher()
    const protocol = t.getProtocol() ?? undefined
    const resumed = this.offered !== undefined && t.isSessionReused()
    let chain: readonly Uint8Array[]
    let pkix: PkixResult
    if (resumed) {
      // RFC 8446 §2.2: the server is the one the full handshake authenticated. Node reports no peer
      // certificate now; the entry kept the chain and PKIX fact of that handshake (checked against
      // OpenSSL's record of the session when it was stored), and they are judged again below.
      s.tlsSessionCache?.countResumed()
      chain = this.offered!.chain
      pkix = this.offered!.pkix
    } else {
      chain = peerChain(t, eff, this.anchors)
      pkix = this.anchors
        ? anchorPkix(this.anchors, chain, eff, s)
        : t.authorized
          ? { trusted: true }
          : { trusted: false, error: String(t.authorizationError ?? 'not trusted') }
    }
    const facts: ConnectionFacts = {
      starttls: 'offered',
      handshake: 'ok',
      chain,
      pkix,
      ...(protocol ? { protocol } : {}),
      ...(cipher ? { cipher: cipher.standardName ?? cipher.name } : {}),
      ...(resumed ? { resumed } : {}),
    }
    this.tlsFacts = facts
    if (channels.handshake.hasSubscribers) {
      channels.handshake.publish({
        host: this.host,
        address: this.address,
        port: eff.port,
        protocol,
        cipher: cipher?.name,
        authorized: t.authorized,
      })
    }
    // Decided once: only REQUIRETLS (RFC 8689 §4.2.1) needs what the post-TLS EHLO adds.
    const first = decide(eff, { ...facts, requireTlsAdvertised: true }, { now: s.now() })
    this.firstVerdict = first
    if (this.cacheKey !== undefined) this.cacheAfterVerdict(first, chain, pkix, resumed)
    if (!first.deliver) {
      t.write('QUIT\r\n')
      this.finish({ kind: 'refused', verdict: first }, false)
      this.transcript.push('> QUIT')
      return
    }
    this.io = t
    t.on('data', this.onData)
    t.on('end', this.onEnd)
    t.on('close', this.onEnd)
    // A resumed session gets a new ticket only from servers that renew them (Postfix and OpenSSL's
    // default do not): once a server was seen sending none, its resumed sessions do not wait for one.
    const offered = resumed ? this.offered : undefined
    if (protocol === 'TLSv1.3' && offered?.ticketOnResume !== false) {
      afterFirstTicket(t, this.handshakeStarted, (ticket) => {
        if (offered && !ticket) offered.ticketOnResume = false
        this.feed({ type: 'tlsEstablished' })
      })
    } else this.feed({ type: 'tlsEstablished' })
  }

  /**
   * Sessions are stored only for a connection the policy accepted (its tickets, TLS 1.3, come after
   * this point; a TLS 1.2 session that came within the handshake is stored now). A session whose
   * resumption the policy refused is forgotten.
   */
  private cacheAfterVerdict(v: Verdict, chain: readonly Uint8Array[], pkix: PkixResult, resumed: boolean): void {
    if (!v.deliver) {
      if (resumed) this.s.tlsSessionCache?.delete(this.cacheKey!)
      this.pendingSession = undefined
      return
    }
    this.verified = { chain, pkix, from: resumed ? this.offered : undefined }
    const pending = this.pendingSession
    this.pendingSession = undefined
    if (pending) this.onSession(pending)
  }

  private finish(end: SessionEnd, keepOpen: boolean): void {
    if (this.settled) return
    this.settled = true
    const { raw, tls } = this
    // RFC 8460 sending-mta-ip: read before the sockets are destroyed
    const local = raw.localAddress
    if (local !== undefined) end.localAddress = local
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.s.signal?.removeEventListener('abort', this.onAbort)
    this.transcript.length = 0
    for (const line of this.machine.transcript) this.transcript.push(line)
    // tickets that arrive later still belong in the cache: the 'session' listener stays on a socket
    // handed to the caller, and goes with a socket we close
    if (tls && !keepOpen) tls.removeListener('session', this.onSession)
    for (const sock of tls ? [raw, tls] : [raw]) {
      sock.removeListener('data', this.onData)
      sock.removeListener('end', this.onEnd)
      sock.removeListener('error', this.onError)
      sock.removeListener('close', this.onEnd)
    }
    // The sockets keep their `ignore` error listeners for life (issue 10): a reset or a TLS alert
    // after this point must not crash the process, whether we close them or the caller owns them.
    if (!keepOpen) {
      if (tls && !this.tlsFacts) {
        // the handshake never completed: there is nobody to say goodbye to
        tls.destroy()
        raw.destroy()
      } else {
        const sock = tls ?? raw
        sock.end()
        setTimeout(() => {
          sock.destroy()
          raw.destroy()
        }, 1000).unref()
      }
    }
    this.resolve(end)
  }
}

function outcomeOf(end: SessionEnd, eff: EffectivePolicy, s: Settings): { verdict?: Verdict; error?: SmtpTlsError } {
  if (end.kind === 'refused') return { verdict: end.verdict, ...(end.verdict.error ? { error: end.verdict.error } : {}) }
  if (end.kind === 'ready') {
    // The verdict after the handshake stands unless REQUIRETLS asks whether the post-TLS EHLO offered it.
    if (end.verdict && !eff.requireTls) return { verdict: end.verdict }
    const facts: ConnectionFacts = { ...end.facts, requireTlsAdvertised: end.action.secure && end.action.capabilities.known.REQUIRETLS }
    const v = decide(eff, facts, { now: s.now() })
    return { verdict: v, ...(v.error ? { error: v.error } : {}) }
  }
  if (end.facts) {
    const v = decide(eff, end.facts, { now: s.now() })
    return { verdict: v, ...(v.error ? { error: v.error } : { error: end.error }) }
  }
  return { error: end.error }
}

interface Success {
  connection: Omit<SmtpConnection, 'attempts' | 'facts'>
}

/** Record the attempt's TLS-RPT result (fire-and-forget) and say on the attempt what was recorded. */
function noteAttempt(
  r: TlsRptRecording,
  rec: HostRecording,
  attempt: ConnectAttempt,
  facts: ConnectionFacts | undefined,
  retry: boolean,
  levelNone: boolean,
): void {
  const result = attemptResult(rec, {
    host: attempt.host,
    address: attempt.address,
    localAddress: attempt.localAddress,
    transcript: attempt.transcript,
    verdict: attempt.verdict,
    error: attempt.error,
    facts,
    retry,
    levelNone,
  })
  if (result === undefined) return
  attempt.tlsRpt = {
    policyType: rec.policy.type,
    policyDomain: rec.policy.domain,
    result: result === 'success' ? 'success' : result.resultType,
  }
  recordAttempt(r, rec, result)
}

async function tryHost(
  host: MxHostFacts,
  eff: EffectivePolicy,
  s: Settings,
  attempts: ConnectAttempt[],
  anchors: readonly TrustAnchor[] | undefined,
  rec: HostRecording | undefined,
): Promise<Success | undefined> {
  for (const a of host.addresses) {
    if (!s.families.includes(a.family)) continue
    let skipStartTls = false
    for (;;) {
      if (s.signal?.aborted) throw new SmtpTlsError('ERR_ABORTED', 'aborted', { cause: s.signal.reason })
      const transcript: string[] = []
      let release: () => void = () => undefined
      await new Promise<void>((resolve) => {
        release = sessionSlot(s.maxConcurrentSessions, resolve)
      })
      const end = await session(eff, a.address, s, skipStartTls, transcript, anchors).finally(() => release())
      const { verdict, error } = outcomeOf(end, eff, s)
      if (verdict && channels.verdict.hasSubscribers)
        channels.verdict.publish({ host: eff.host, address: a.address, port: eff.port, verdict })
      const attempt: ConnectAttempt = { host: host.host, address: a.address, port: eff.port, transcript }
      if (verdict) attempt.verdict = verdict
      if (error && !(verdict && verdict.deliver)) attempt.error = error
      if (end.localAddress !== undefined) attempt.localAddress = end.localAddress
      attempts.push(attempt)
      if (rec !== undefined && s.tlsRpt !== undefined) {
        const tlsFacts = end.kind === 'refused' ? undefined : end.facts
        noteAttempt(s.tlsRpt, rec, attempt, tlsFacts, skipStartTls, eff.level === 'none')
      }
      if (end.kind === 'ready' && verdict && verdict.deliver) {
        return {
          connection: {
            socket: end.socket,
            mx: host.host,
            address: a.address,
            port: eff.port,
            outcome: verdict,
            capabilities: end.action.capabilities,
            trace: verdict.trace,
          },
        }
      }
      if (end.kind === 'ready') {
        // A deferral decided after the post-TLS EHLO (REQUIRETLS not offered): say goodbye (RFC 5321 §4.1.1.10).
        transcript.push('> QUIT')
        await quit(end.socket, s.timeoutMs)
      }
      // Postfix TLS_README: only `may` retries in plaintext, on a new connection, after a failed handshake.
      if (verdict?.plaintextRetry && !skipStartTls) {
        skipStartTls = true
        continue
      }
      break
    }
  }
  return undefined
}

function destinationError(facts: DestinationFacts): SmtpTlsError | undefined {
  if (facts.status === 'null-mx') {
    // RFC 7505 §4.3: a null MX is a permanent failure, 5.1.10.
    return new SmtpTlsError('ERR_DNS_NULL_MX', `${facts.domain} does not accept mail (null MX, RFC 7505)`, {
      temporary: false,
      enhancedStatus: '5.1.10',
    })
  }
  if (facts.status === 'no-such-domain') {
    return new SmtpTlsError('ERR_DNS_NXDOMAIN', `Host or domain name not found: ${facts.domain}`, {
      temporary: false,
      enhancedStatus: '5.1.2',
    })
  }
  if (facts.status === 'deferred' && facts.mx.length === 0) {
    // RFC 7672 §2.1.2: a lookup failure that prevents choosing servers delays delivery.
    const e = facts.error
    return new SmtpTlsError(
      e?.code ?? 'ERR_DNS_SERVFAIL',
      `cannot choose servers for ${facts.domain}: ${e?.message ?? 'DNS lookup failed'}`,
      // RFC 8460 §4.3: `dnssec-invalid` for SERVFAIL and bogus answers (the resolver says so); a timeout
      // or a network error is no TLS failure and carries no result type.
      { enhancedStatus: '4.4.3', ...(e?.tlsrpt !== undefined ? { tlsrpt: e.tlsrpt } : {}) },
    )
  }
  return undefined
}

async function run(destination: string, o: ConnectOptions, probe: boolean): Promise<SmtpConnection> {
  let s: Settings
  try {
    s = settings(destination, o, probe)
  } catch (e) {
    // a getter or Proxy trap in the caller's options: coded, before any I/O (DESIGN.md §3)
    throw coded(e, probe ? 'probe' : 'connect')
  }
  const gate = startGate()
  if (gate) await gate
  const facts = await discoverDestination(s.destination, {
    resolver: s.resolver,
    port: s.port,
    families: s.families,
    ...(s.signal ? { signal: s.signal } : {}),
  })
  const attempts: ConnectAttempt[] = []
  const derr = destinationError(facts)
  if (derr) throw new SmtpTlsConnectError(derr, attempts, facts)
  const entry = s.table ? lookupPolicy(s.table, s.nexthop, { defaultPort: 25 }) : undefined
  const sts = await mtaStsLookup(facts, s)
  // RFC 8460 §5.3: a session that carries a report is never recorded (no report loops).
  const recording = s.tlsRpt !== undefined && !s.tlsRpt.reportMail ? s.tlsRpt : undefined
  const note = (host: MxHostFacts, eff: EffectivePolicy | undefined, applies: string | undefined, attempt: ConnectAttempt): void => {
    if (recording !== undefined)
      noteAttempt(recording, hostRecording(facts.domain, host, eff, sts, applies), attempt, undefined, false, false)
  }
  let last: SmtpTlsError | undefined
  for (const host of facts.mx) {
    const governs = mtaStsForHost(sts, host, entry)
    if (governs.error) {
      const attempt: ConnectAttempt = { host: host.host, port: s.port, error: governs.error, transcript: [] }
      attempts.push(attempt)
      note(host, undefined, governs.applies, attempt)
      last = governs.error
      continue
    }
    const eff = resolvePolicy({ policy: governs.entry, destination: facts, host, options: s.policy, message: s.message })
    if (governs.steps.length > 0) eff.trace.unshift(...governs.steps)
    if (!host.usable || eff.error) {
      const error =
        eff.error ??
        new SmtpTlsError(host.error?.code ?? 'ERR_DNS_NO_ADDRESS', host.unusableReason ?? `no usable address for ${host.host}`, {
          enhancedStatus: host.error?.enhancedStatus ?? '4.4.3',
        })
      const attempt: ConnectAttempt = { host: host.host, port: s.port, error, transcript: [] }
      attempts.push(attempt)
      note(host, eff, governs.applies, attempt)
      last = error
      continue
    }
    let anchors: readonly TrustAnchor[] | undefined
    try {
      anchors = await anchorsFor(eff, s)
    } catch (e) {
      // A tafile= that cannot be read defers this host (Postfix: "TLS trust anchor file … unusable"):
      // never a connection judged by weaker rules.
      const error =
        e instanceof SmtpTlsError
          ? new SmtpTlsError(e.code, e.message, { enhancedStatus: '4.7.5', tlsrpt: 'validation-failure', cause: e })
          : new SmtpTlsError('ERR_TRUST_STORE', `tafile= could not be loaded: ${String(e)}`, { enhancedStatus: '4.7.5', cause: e })
      const attempt: ConnectAttempt = { host: host.host, port: s.port, error, transcript: [] }
      attempts.push(attempt)
      note(host, eff, governs.applies, attempt)
      last = error
      continue
    }
    const rec = recording !== undefined ? hostRecording(facts.domain, host, eff, sts, governs.applies) : undefined
    const ok = await tryHost(host, eff, s, attempts, anchors, rec)
    if (ok) return { ...ok.connection, attempts, facts }
    const lastAttempt = attempts[attempts.length - 1]
    last = lastAttempt?.error ?? lastAttempt?.verdict?.error ?? last
  }
  throw new SmtpTlsConnectError(
    last ?? new SmtpTlsError('ERR_DNS_NO_ADDRESS', `no usable server for ${facts.domain}`, { enhancedStatus: '4.4.3' }),
    attempts,
    facts,
  )
}

/**
 * Connect to a mail destination under its TLS policy and return an SMTP session ready for
 * `MAIL FROM`, or reject with an {@link SmtpTlsConnectError} that lists every attempt.
 *
 * Destination: `example.com` (MX lookup), `example.com:587`, `[mx.example.com]`, `[192.0.2.1]:25`.
 * Each MX host is tried in preference order, each of its addresses in turn; a host that fails the
 * policy is never used (RFC 7672 §2.2, Postfix TLS_README), and the message stays queued. Calls made
 * at once begin their DNS work at most 16 per turn of the event loop, and set up at most
 * `maxConcurrentSessions` SMTP sessions at a time.
 *
 * @example
 * ```ts
 * const conn = await connect('example.com', { level: 'dane', resolver: createResolver({ servers: ['127.0.0.1'] }) })
 * console.log(conn.outcome.status, formatTrace(conn.trace)) // 'verified', 'TLSA 3 1 1 … matched at depth 0'
 * conn.socket.write('MAIL FROM:<a@example.org>\r\n')
 * ```
 * @public
 */
export async function connect(destination: string, options: ConnectOptions = {}): Promise<SmtpConnection> {
  return run(destination, options, false)
}

/** The outcome line of a {@link ProbeReport}, in the words of DESIGN.md §2. @public */
export interface ProbeOutcome {
  status: TlsOutcome
  host?: string
  address?: string
  port: number
  protocol?: string
  cipher?: string
  match?: string
  code?: string
  enhancedStatus?: string
  tlsrptResult?: TlsRptResultType
  reason?: string
  /** The failure is permanent (null MX, no such domain, REQUIRETLS 5.7.30). */
  permanent?: boolean
}

/** What {@link probe} found, JSON-ready (`--json` in the CLI). @public */
export interface ProbeReport {
  destination: string
  level: SecurityLevel
  effectiveLevel?: EffectiveLevel
  attempts: ConnectAttempt[]
  outcome: ProbeOutcome
  trace: TraceStep[]
  facts?: DestinationFacts
}

/**
 * Probe a destination like Postfix's posttls-finger: the same path as {@link connect}, recording the
 * transcript and the verdict, then `QUIT`. Never rejects for a policy failure: that is the report.
 *
 * @example
 * ```ts
 * const r = await probe('example.com', { level: 'dane' })
 * console.log(r.outcome.status, r.outcome.enhancedStatus ?? '')
 * ```
 * @public
 */
export async function probe(destination: string, options: ConnectOptions = {}): Promise<ProbeReport> {
  let level: SecurityLevel
  try {
    if (options === null || typeof options !== 'object') invalid('options must be an object')
    level = options.level ?? options.policy?.defaultLevel ?? 'may'
  } catch (e) {
    throw coded(e, 'probe')
  }
  try {
    const c = await run(destination, options, true)
    await quit(c.socket, options.timeoutMs ?? 30_000)
    const last = c.attempts[c.attempts.length - 1]
    if (last) last.transcript.push('> QUIT')
    const v = c.outcome
    return {
      destination,
      level,
      effectiveLevel: v.level,
      attempts: c.attempts,
      outcome: {
        status: v.status,
        host: c.mx,
        address: c.address,
        port: c.port,
        ...(v.protocol ? { protocol: v.protocol } : {}),
        ...(v.cipher ? { cipher: v.cipher } : {}),
        ...(v.matched ? { match: v.matched } : {}),
      },
      trace: v.trace,
      facts: c.facts,
    }
  } catch (e) {
    if (!(e instanceof SmtpTlsError)) throw e
    if (e.code === 'ERR_INVALID_ARGUMENT') throw e
    const attempts = e instanceof SmtpTlsConnectError ? e.attempts : []
    const last = attempts[attempts.length - 1]
    const v = last?.verdict
    const outcome: ProbeOutcome = {
      status: 'deferred',
      port: last?.port ?? options.port ?? 25,
      code: e.code,
      reason: v?.reason ?? e.message,
      ...(last ? { host: last.host } : {}),
      ...(last?.address ? { address: last.address } : {}),
      ...(e.enhancedStatus ? { enhancedStatus: e.enhancedStatus } : {}),
      ...(e.tlsrpt ? { tlsrptResult: e.tlsrpt } : {}),
      ...(v?.protocol ? { protocol: v.protocol } : {}),
      ...(v?.cipher ? { cipher: v.cipher } : {}),
      ...(!e.temporary ? { permanent: true } : {}),
    }
    const report: ProbeReport = { destination, level, attempts, outcome, trace: v?.trace ?? [] }
    if (v) report.effectiveLevel = v.level
    if (e instanceof SmtpTlsConnectError && e.facts) report.facts = e.facts
    return report
  }
}

/** Send QUIT and wait (bounded) for the server to answer or close (RFC 5321 §4.1.1.10). */
function quit(socket: Socket | TLSSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t)
      socket.destroy()
      resolve()
    }
    const t = setTimeout(done, Math.min(timeoutMs, 5000))
    socket.once('data', done)
    socket.once('close', done)
    socket.once('error', done)
    socket.write('QUIT\r\n')
  })
}

/**
 * One log line for a verdict, in Postfix's words (tls_misc.c tls_log_summary). Pass the report's
 * `destination` so that a failure before any connection names it.
 * @public
 */
export function summaryLine(outcome: ProbeOutcome, trace: readonly TraceStep[] = [], destination?: string): string {
  try {
    return summary(outcome, Array.isArray(trace) ? trace : [], typeof destination === 'string' ? destination : undefined)
  } catch (e) {
    throw coded(e, 'summaryLine')
  }
}

function summary(outcome: ProbeOutcome, trace: readonly TraceStep[], destination: string | undefined): string {
  if (outcome === null || typeof outcome !== 'object') invalid('summaryLine needs a ProbeOutcome')
  // Postfix's host[address]:port; with no connection at all (DNS failed, null MX), the destination.
  const where =
    outcome.host === undefined
      ? (destination ?? 'the destination')
      : `${outcome.host}${outcome.address !== undefined ? `[${outcome.address}]` : ''}:${outcome.port}`
  const tls = outcome.protocol ? `: ${outcome.protocol}${outcome.cipher ? ` with cipher ${outcome.cipher}` : ''}` : ''
  switch (outcome.status) {
    case 'verified':
      return `Verified TLS connection established to ${where}${tls}`
    case 'trusted':
      return `Trusted TLS connection established to ${where}${tls}`
    case 'untrusted':
      return `Untrusted TLS connection established to ${where}${tls}`
    case 'anonymous':
      return `Anonymous TLS connection established to ${where}${tls}`
    case 'plaintext':
      return `Plaintext connection established to ${where}`
    case 'deferred':
      return `Delivery deferred for ${where}: ${outcome.enhancedStatus ?? '4.7.0'} ${outcome.reason ?? ''}${trace.length ? ` (${formatTrace(trace)})` : ''}`.trimEnd()
  }
}
