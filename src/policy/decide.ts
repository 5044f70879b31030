/**
 * The verdict for one connection: what the effective policy required against what the connection
 * produced. Outcome words are Postfix's (`tls_log_summary`: Anonymous, Untrusted, Trusted,
 * Verified) plus `plaintext` and `deferred`; RFC 7435 §3: never report more than was achieved.
 */
import { coded } from '../args.js'
import { verifyDane, type DaneFailureCode } from '../dane/verify.js'
import { SmtpTlsError, type ErrorCode, type TlsRptResultType } from '../errors.js'
import { matchPins } from '../pin/match.js'
import { certificateDnsNames, matchCertificateName } from '../x509/names.js'
import { mustEncrypt, type EffectiveLevel, type SecurityLevel } from './levels.js'
import { policyError, type EffectivePolicy } from './resolve.js'
import { protocolAllowed } from './table.js'
import type { TraceStep } from './trace.js'

/** What a connection achieved, or `deferred`. @public */
export type TlsOutcome = 'verified' | 'trusted' | 'untrusted' | 'anonymous' | 'plaintext' | 'deferred'

/** The TLS stack's PKIX verdict for the peer chain (chain and dates only: names are checked here). @public */
export interface PkixResult {
  /** The chain leads to a trusted root (Node: `socket.authorized` with `checkServerIdentity` disabled). */
  trusted: boolean
  /** The stack's reason when not trusted, e.g. Node's `authorizationError` (`CERT_HAS_EXPIRED`). */
  error?: string
}

/** What one connection produced. @public */
export interface ConnectionFacts {
  /** STARTTLS in the EHLO reply and the server's answer (RFC 3207 §4). */
  starttls: 'offered' | 'not-offered' | 'refused'
  /** The server's reply to STARTTLS when `refused`, e.g. `454 4.7.0 TLS not available`. */
  starttlsReply?: string
  /** The handshake result, when STARTTLS was accepted. */
  handshake?: 'ok' | 'failed'
  /** The TLS stack's error for a failed handshake. */
  handshakeError?: string
  /** The peer chain, DER, leaf first, as sent (empty or absent: no certificate). */
  chain?: readonly Uint8Array[]
  pkix?: PkixResult
  /** Negotiated protocol as Node reports it (`TLSv1.3`). */
  protocol?: string
  cipher?: string
  /** REQUIRETLS appeared in the EHLO reply after STARTTLS (RFC 8689 §2; Postfix smtp_proto.c). */
  requireTlsAdvertised?: boolean
  /**
   * The server resumed a session (RFC 8446 §2.2): `chain` and `pkix` are those of the full handshake
   * that created it, judged here like any other; only the trace says so.
   */
  resumed?: boolean
}

/** Options of {@link decide}. @public */
export interface DecideOptions {
  /** Time for DANE-TA validity checks. Default: the current time. */
  now?: Date
}

/** The verdict for one connection. @public */
export interface Verdict {
  status: TlsOutcome
  /** `true` unless `deferred`: the message may be sent on this connection. */
  deliver: boolean
  configuredLevel: SecurityLevel
  level: EffectiveLevel
  host: string
  /** For `deferred`: the error (temporary 4.7.x; only REQUIRETLS's 5.7.30 is permanent). */
  error?: SmtpTlsError
  enhancedStatus?: string
  tlsrpt?: TlsRptResultType
  /** For `deferred`: a plain-English reason an operator can act on. */
  reason?: string
  /**
   * A plaintext retry on a new connection is allowed (only at `may`, after a failed handshake,
   * without REQUIRETLS or SASL: Postfix `PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE`).
   */
  plaintextRetry: boolean
  /** What authenticated the peer: `TLSA 3 1 1 … at depth 0`, `pin AB:CD:…`, `name mx.example.com`. */
  matched?: string
  protocol?: string
  cipher?: string
  trace: TraceStep[]
}

const DANE_TLSRPT: Readonly<Record<DaneFailureCode, TlsRptResultType>> = {
  // RFC 8460 §4.3.2.1 tlsa-invalid: "None of the records in the RRset were found to be valid."
  ERR_DANE_NO_USABLE_RECORDS: 'tlsa-invalid',
  ERR_DANE_NO_MATCH: 'tlsa-invalid',
  // RFC 8460 §4.3.1
  ERR_DANE_NAME_MISMATCH: 'certificate-host-mismatch',
  ERR_DANE_CHAIN_INVALID: 'certificate-not-trusted',
  ERR_DANE_EXPIRED: 'certificate-expired',
}

/** RFC 8460 §4.3.1 result type for a TLS stack's PKIX error (Node/OpenSSL error codes). */
export function pkixTlsRpt(error: string | undefined): TlsRptResultType {
  if (error === undefined) return 'certificate-not-trusted'
  if (/EXPIRED/i.test(error)) return 'certificate-expired'
  if (/ALTNAME|HOSTNAME|HOST_MISMATCH/i.test(error)) return 'certificate-host-mismatch'
  if (/ISSUER|SELF_SIGNED|UNTRUSTED|UNABLE_TO_VERIFY|INVALID_CA|CHAIN_TOO_LONG|PATH_LENGTH|not trusted/i.test(error))
    return 'certificate-not-trusted'
  return 'validation-failure'
}

/**
 * Decide the outcome of one connection under an effective policy ({@link resolvePolicy}).
 *
 * - STARTTLS not offered: `plaintext` at `none`/`may`, else deferred 4.7.4 (RFC 3207 §6, RFC 7672 §1.3.1).
 * - STARTTLS refused: `plaintext` at `may`, else deferred 4.7.5 with the server's reply.
 * - Handshake failed: deferred 4.7.5; at `may` a plaintext retry on a new connection is allowed.
 * - Authentication by level: pins (`fingerprint`), TLSA (`dane`, `dane-only`, `half-dane` → `trusted`),
 *   PKIX + names (`verify`, `secure`); failures defer 4.7.5 with the RFC 8460 §4.3 result type.
 * - `may`/`encrypt` report `trusted` (PKIX chain ok), `untrusted` or `anonymous` (no certificate).
 * - REQUIRETLS: a DANE- or MTA-STS-verified peer that advertises REQUIRETLS after STARTTLS, else 5.7.30.
 *
 * @example
 * ```ts
 * const v = decide(eff, { starttls: 'offered', handshake: 'ok', chain, pkix: { trusted: socket.authorized }, protocol: 'TLSv1.3' })
 * if (v.status === 'deferred') queue.defer(v.enhancedStatus, v.reason) // e.g. 4.7.5
 * log.info(`${v.status} TLS connection to ${v.host}: ${formatTrace(v.trace)}`)
 * ```
 * @public
 */
export function decide(effective: EffectivePolicy, conn: ConnectionFacts, opts: DecideOptions = {}): Verdict {
  try {
    return decideChecked(effective, conn, opts)
  } catch (e) {
    throw coded(e, 'decide')
  }
}

function decideChecked(effective: EffectivePolicy, conn: ConnectionFacts, opts: DecideOptions = {}): Verdict {
  checkFacts(effective, conn)
  const j = new Judgement(effective, conn)
  // Each step returns the verdict when it settles the connection, undefined to go on.
  return beforeTls(j) ?? handshake(j) ?? authenticate(j, opts)
}

function checkFacts(effective: EffectivePolicy, conn: ConnectionFacts): void {
  if (effective === null || typeof effective !== 'object' || !Array.isArray(effective.trace)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'decide needs the result of resolvePolicy')
  }
  if (conn === null || typeof conn !== 'object' || !['offered', 'not-offered', 'refused'].includes(conn.starttls)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'connection.starttls must be offered, not-offered or refused')
  }
  if (conn.chain !== undefined && (!Array.isArray(conn.chain) || !conn.chain.every((c) => c instanceof Uint8Array))) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'connection.chain must be an array of DER certificates (Uint8Array)')
  }
}

/** The verdict being built for one connection, and the ways a step can settle it. */
class Judgement {
  readonly v: Verdict
  readonly trace: TraceStep[]
  constructor(
    readonly effective: EffectivePolicy,
    readonly conn: ConnectionFacts,
  ) {
    this.trace = effective.trace.slice()
    this.v = {
      status: 'deferred',
      deliver: false,
      configuredLevel: effective.configuredLevel,
      level: effective.level,
      host: effective.host,
      plaintextRetry: false,
      trace: this.trace,
    }
  }

  /** Deferred (or failed, for REQUIRETLS) with `err`; `retry`: a plaintext retry is allowed at `may`. */
  defer(err: SmtpTlsError, ref: string, retry = false): Verdict {
    const { effective, v } = this
    let e = err
    if (effective.requireTls && e.code !== 'ERR_REQUIRETLS' && effective.error === undefined) {
      // RFC 8689 §4.2.1: when no MX satisfies REQUIRETLS the message is returned with 5.7.30.
      e = new SmtpTlsError('ERR_REQUIRETLS', `REQUIRETLS not satisfied by ${effective.host}: ${err.message}`, {
        temporary: false,
        enhancedStatus: '5.7.30',
        ...(err.tlsrpt === undefined ? {} : { tlsrpt: err.tlsrpt }),
        cause: err,
      })
    }
    v.status = 'deferred'
    v.deliver = false
    v.error = e
    if (e.enhancedStatus !== undefined) v.enhancedStatus = e.enhancedStatus
    if (e.tlsrpt !== undefined) v.tlsrpt = e.tlsrpt
    v.reason = e.message
    v.plaintextRetry = retry && effective.plaintextFallback && !effective.requireTls
    this.trace.push({ rule: `${e.temporary ? 'defer' : 'fail'} ${e.enhancedStatus ?? ''}: ${e.message}`, ref })
    if (v.plaintextRetry)
      this.trace.push({
        rule: 'level may → plaintext retry on a new connection allowed',
        ref: 'Postfix smtp_proto.c PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE',
      })
    return v
  }

  fail(code: ErrorCode, message: string, tlsrpt: TlsRptResultType | undefined, ref: string, status = '4.7.5', retry = false): Verdict {
    return this.defer(policyError(code, message, status, tlsrpt, !status.startsWith('5')), ref, retry)
  }

  /** Delivery goes on, with what was achieved (no authentication required). */
  done(status: Exclude<TlsOutcome, 'deferred'>, rule: string, ref: string): Verdict {
    this.v.status = status
    this.v.deliver = true
    this.trace.push({ rule, ref })
    return this.v
  }

  /** Success at an authenticating level; REQUIRETLS adds its own conditions (RFC 8689 §4.2.1). */
  finish(status: 'verified' | 'trusted', rule: string, ref: string): Verdict {
    const { effective } = this
    this.trace.push({ rule, ref })
    if (effective.requireTls) {
      if (status !== 'verified') {
        return this.fail(
          'ERR_REQUIRETLS',
          `REQUIRETLS: ${effective.host} was not verified by DANE or MTA-STS`,
          undefined,
          'RFC 8689 §4.2.1',
          '5.7.30',
        )
      }
      if (this.conn.requireTlsAdvertised !== true) {
        return this.fail(
          'ERR_REQUIRETLS',
          `REQUIRETLS: ${effective.host} did not advertise REQUIRETLS after STARTTLS`,
          undefined,
          'RFC 8689 §4.2.1',
          '5.7.30',
        )
      }
      this.trace.push({ rule: 'REQUIRETLS advertised after STARTTLS', ref: 'RFC 8689 §4.2.1' })
    }
    this.v.status = status
    this.v.deliver = true
    return this.v
  }

  noCert(): Verdict {
    return this.fail(
      'ERR_POLICY_NOT_MET',
      `Server certificate not verified: ${this.effective.host} presented no certificate`,
      'validation-failure',
      'Postfix smtp_proto.c',
    )
  }
}

/** Before TLS: a policy already failed, level `none`, STARTTLS not offered or refused. */
function beforeTls(j: Judgement): Verdict | undefined {
  const { effective, conn, v } = j
  const level = effective.level
  if (effective.error !== undefined) {
    // The policy could not be met before connecting (TLSA lookup error, bad entry, REQUIRETLS…).
    v.error = effective.error
    if (effective.error.enhancedStatus !== undefined) v.enhancedStatus = effective.error.enhancedStatus
    if (effective.error.tlsrpt !== undefined) v.tlsrpt = effective.error.tlsrpt
    v.reason = effective.error.message
    return v
  }
  if (level === 'none') {
    // Postfix TLS_README "Disabling TLS": STARTTLS is not used.
    return j.done('plaintext', 'level none → no STARTTLS, plaintext', 'postconf(5) smtp_tls_security_level')
  }
  if (conn.starttls === 'not-offered') {
    if (mustEncrypt(level)) {
      return j.fail(
        'ERR_STARTTLS_NOT_OFFERED',
        `TLS is required, but was not offered by host ${effective.host}`,
        'starttls-not-supported',
        'RFC 3207 §6, RFC 7672 §1.3.1, Postfix smtp_proto.c',
        '4.7.4',
      )
    }
    return j.done('plaintext', 'STARTTLS not offered, level may → plaintext', 'Postfix TLS_README "Opportunistic TLS"')
  }
  if (conn.starttls === 'refused') {
    const reply = conn.starttlsReply !== undefined ? `: ${conn.starttlsReply}` : ''
    if (mustEncrypt(level)) {
      return j.fail(
        'ERR_STARTTLS_REFUSED',
        `TLS is required, but host ${effective.host} refused to start TLS${reply}`,
        'starttls-not-supported',
        'RFC 3207 §4, Postfix smtp_proto.c',
      )
    }
    return j.done('plaintext', `STARTTLS refused${reply}, level may → continue in plaintext`, 'Postfix smtp_proto.c')
  }
  return undefined
}

/** STARTTLS accepted (220): the handshake and the protocol it negotiated. */
function handshake(j: Judgement): Verdict | undefined {
  const { effective, conn, v } = j
  if (conn.handshake === undefined) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'connection.handshake is required when STARTTLS was offered')
  }
  if (conn.handshake === 'failed') {
    // Postfix's words, then the cause once (the TLS alert or OpenSSL's reason), as posttls-finger logs it.
    const why = conn.handshakeError !== undefined ? `: ${conn.handshakeError}` : ''
    return j.fail(
      'ERR_TLS_HANDSHAKE',
      `Cannot start TLS: handshake failure with ${effective.host}${why}`,
      'validation-failure',
      'RFC 7672 §1.3.1, Postfix smtp_proto.c',
      '4.7.5',
      true,
    )
  }
  if (conn.protocol !== undefined) v.protocol = conn.protocol
  if (conn.cipher !== undefined) v.cipher = conn.cipher
  if (conn.protocol !== undefined && !protocolAllowed(effective.protocols, conn.protocol)) {
    return j.fail(
      'ERR_POLICY_NOT_MET',
      `negotiated ${conn.protocol}, but the policy allows only "${effective.protocols.text}"`,
      'validation-failure',
      'postconf(5) smtp_tls_protocols',
      '4.7.5',
      true,
    )
  }
  j.trace.push({ rule: `TLS ${conn.protocol ?? '(protocol not given)'}${conn.cipher ? ` with ${conn.cipher}` : ''}`, ref: 'RFC 3207 §4.1' })
  if (conn.resumed === true) {
    j.trace.push({
      rule: 'TLS session resumed: the certificate of the full handshake that created it is judged again',
      ref: 'RFC 8446 §2.2, postconf(5) smtp_tls_session_cache_database',
    })
  }
  return undefined
}

/** After the handshake: authenticate the peer as the level asks. */
function authenticate(j: Judgement, opts: DecideOptions): Verdict {
  const level = j.effective.level
  switch (level) {
    case 'may':
    case 'encrypt':
      return opportunistic(j, level)
    case 'fingerprint':
      return fingerprint(j)
    case 'half-dane':
    case 'dane':
    case 'dane-only':
      return dane(j, level, opts)
    case 'verify':
    case 'secure':
      return pkixAndNames(j, level)
  }
  // Exhaustive: `none` returned in beforeTls.
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `unknown level ${String(level)}`)
}

/** `may`/`encrypt`: no authentication required; report what was achieved (Postfix tls_log_summary). */
function opportunistic(j: Judgement, level: 'may' | 'encrypt'): Verdict {
  const ref = 'Postfix TLS_README, RFC 7435 §3'
  if (j.conn.chain?.[0] === undefined) return j.done('anonymous', `level ${level}: no server certificate → anonymous`, ref)
  if (j.conn.pkix?.trusted === true) return j.done('trusted', `level ${level}: chain trusted, names not checked → trusted`, ref)
  return j.done('untrusted', `level ${level}: certificate not authenticated → untrusted`, ref)
}

/** `fingerprint`: the leaf's certificate or public-key digest is pinned. */
function fingerprint(j: Judgement): Verdict {
  const { effective, v } = j
  const leaf = j.conn.chain?.[0]
  if (leaf === undefined) return j.noCert()
  const ref = 'Postfix TLS_README "Certificate fingerprint verification"'
  const res = matchPins(leaf, effective.pins ?? [], { digest: effective.fingerprintDigest })
  if (!res.ok) return j.fail(res.code, `Server certificate not trusted: ${res.detail}`, 'certificate-not-trusted', ref)
  v.matched = `pin ${res.pin} (${res.of === 'certificate' ? 'certificate' : 'public key'})`
  return j.finish('verified', `${effective.fingerprintDigest} ${v.matched} matched`, ref)
}

/** DANE levels: the TLSA RRset authenticates the chain (RFC 7672 §3). */
function dane(j: Judgement, level: 'half-dane' | 'dane' | 'dane-only', opts: DecideOptions): Verdict {
  const { effective, conn, v } = j
  if (conn.chain?.[0] === undefined) return j.noCert()
  const tlsa = effective.tlsa
  if (tlsa === undefined) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'a DANE effective policy without TLSA records')
  const res = verifyDane({
    records: tlsa.records,
    chain: conn.chain,
    names: effective.matchNames,
    digests: effective.daneDigests,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
  })
  if (!res.ok) return j.fail(res.code, `Server certificate not verified by DANE: ${res.detail}`, DANE_TLSRPT[res.code], 'RFC 7672 §3.2')
  v.matched = `TLSA ${res.record.usage} ${res.record.selector} ${res.record.matchingType} matched at depth ${res.depth}${res.name !== undefined ? `, name ${res.name}` : ''}`
  if (level === 'half-dane') {
    // RFC 7672 §2.2.1: MUST NOT report DANE with an insecure MX RRset as secure delivery.
    return j.finish(
      'trusted',
      `${v.matched}; MX insecure → trusted, not verified`,
      'RFC 7672 §2.2.1, postconf(5) smtp_tls_dane_insecure_mx_policy',
    )
  }
  return j.finish('verified', v.matched, 'RFC 7672 §3')
}

/** `verify`/`secure`: a trusted PKIX chain (the TLS stack's verdict) and a name the policy matches. */
function pkixAndNames(j: Judgement, level: 'verify' | 'secure'): Verdict {
  const { effective, conn, v } = j
  const leaf = conn.chain?.[0]
  if (leaf === undefined) return j.noCert()
  const pkix = conn.pkix
  const ref = 'Postfix TLS_README "Mandatory server certificate verification"'
  if (pkix === undefined || !pkix.trusted) {
    const why = pkix?.error ?? (pkix === undefined ? 'no PKIX verdict from the TLS stack' : 'not trusted')
    return j.fail('ERR_PKIX_UNTRUSTED', `Server certificate not trusted: ${why}`, pkixTlsRpt(pkix?.error), ref)
  }
  let name: string | undefined
  try {
    name = matchCertificateName(leaf, effective.matchNames)
  } catch (e) {
    if (e instanceof SmtpTlsError && e.code === 'ERR_CERT_PARSE') {
      return j.fail('ERR_CERT_PARSE', `Server certificate not verified: ${e.message}`, 'validation-failure', 'RFC 6125 §6')
    }
    throw e
  }
  if (name === undefined) {
    let presented = ''
    try {
      presented = certificateDnsNames(leaf).join(', ')
    } catch {
      presented = '(unreadable)'
    }
    return j.fail(
      'ERR_PKIX_NAME_MISMATCH',
      `Server certificate not verified: names [${presented}] match none of ${effective.matchNames.join(', ')}`,
      'certificate-host-mismatch',
      `${ref}, RFC 6125 §6.4`,
    )
  }
  v.matched = `name ${name}`
  return j.finish('verified', `PKIX chain trusted, certificate matches ${name}`, `postconf(5) smtp_tls_${level}_cert_match`)
}
