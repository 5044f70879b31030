/**
 * Helpers for `smtp-server` (nodemailer/smtp-server) on the receiving side: ask for client
 * certificates and record, on the session, what Postfix's smtpd knows about them
 * (`smtpd_tls_ask_ccert`, `relay_clientcerts`, `check_ccert_access`).
 *
 * The options returned are spread into `new SMTPServer({...})`. smtp-server passes `requestCert`
 * and `rejectUnauthorized` to the TLS socket it creates for STARTTLS and, from 3.19.23, for implicit
 * TLS (`secure: true`, port 465) too; the tests check both paths (test/node/smtp-server.test.ts).
 */
import { coded } from '../args.js'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import {
  lookupClientCertificate,
  type ClientCertLookupOptions,
  type ClientCertLookupResult,
  type ClientCertTable,
} from '../clientcert/table.js'
import { SmtpTlsError } from '../errors.js'
import type { TlsSessionFacts } from '../received/clause.js'
import { tlsSessionFacts, type TlsSessionFactsOptions } from './tls-facts.js'
import { sliceCertificate } from '../x509/der.js'
import { readCommonNames } from '../x509/extensions.js'

/** What the server learnt about the client certificate of a session. @public */
export interface ClientCertificateFacts {
  /**
   * A certificate was asked for (Postfix `smtpd_tls_ask_ccert = yes`). False only when the TLS
   * socket was created without `requestCert` (smtp-server before 3.19.23 on implicit TLS).
   */
  requested: boolean
  /** The client presented a certificate. */
  presented: boolean
  /** The certificate chains to the configured CAs (`ca`, Postfix `smtpd_tls_CAfile`). */
  verified: boolean
  /** OpenSSL's reason when not verified, e.g. `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`. */
  verifyError?: string
  /** First commonName of the subject and of the issuer (Postfix `ccert_subject`, `ccert_issuer`). */
  subjectCN?: string
  issuerCN?: string
  /** The leaf, DER. */
  certificate?: Uint8Array
  /** The table lookup (when a table is configured and a certificate was presented). */
  lookup?: ClientCertLookupResult
}

/** Options of {@link smtpServerClientCertificates}. @public */
export interface SmtpServerClientCertOptions extends ClientCertLookupOptions {
  /** The access table (`relay_clientcerts` / `check_ccert_access`), from `parseClientCertTable`. */
  table?: ClientCertTable
  /** CA certificates (PEM) that client certificates are verified against (Postfix `smtpd_tls_CAfile`); see `loadTrustStore`. */
  ca?: string | Buffer | readonly (string | Buffer)[]
  /**
   * The `ecdhCurve` the server was given, so that the recorded TLS facts can name the key exchange
   * (Node cannot tell a server which group was negotiated unless it offered one).
   */
  ecdhCurve?: string
  /** Your own `onSecure`, called after the facts are recorded (pass an error to refuse the session). */
  onSecure?: (socket: Socket, session: object, callback: (err?: Error | null) => void) => void
}

/** What to spread into `new SMTPServer({...})`. @public */
export interface SmtpServerClientCertHooks {
  requestCert: true
  /** Postfix asks for a certificate but does not require one (`smtpd_tls_req_ccert = no`). */
  rejectUnauthorized: false
  ca?: string | Buffer | (string | Buffer)[]
  /** smtp-server passes the TLS socket (typed `net.Socket` there). */
  onSecure(socket: Socket, session: object, callback: (err?: Error | null) => void): void
}

/** The property of the smtp-server session that holds {@link ClientCertificateFacts}. @public */
export const CLIENT_CERTIFICATE_PROPERTY = 'clientCertificate'

/** The property of the smtp-server session that holds the session's `TlsSessionFacts`. @public */
export const TLS_SESSION_FACTS_PROPERTY = 'tlsSessionFacts'

/**
 * Read the TLS facts recorded by {@link smtpServerClientCertificates} (`session.tlsSessionFacts`),
 * ready for `formatReceivedTlsClause`. Undefined before TLS.
 * @public
 */
export function tlsSessionFactsOf(session: object): TlsSessionFacts | undefined {
  try {
    return tlsSessionFactsOfChecked(session)
  } catch (e) {
    throw coded(e, 'tlsSessionFactsOf')
  }
}

function tlsSessionFactsOfChecked(session: object): TlsSessionFacts | undefined {
  if (session === null || typeof session !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'session must be an object')
  return (session as Record<string, unknown>)[TLS_SESSION_FACTS_PROPERTY] as TlsSessionFacts | undefined
}

/** Read the facts recorded by {@link smtpServerClientCertificates} (`session.clientCertificate`). @public */
export function clientCertificateOf(session: object): ClientCertificateFacts | undefined {
  try {
    return clientCertificateOfChecked(session)
  } catch (e) {
    throw coded(e, 'clientCertificateOf')
  }
}

function clientCertificateOfChecked(session: object): ClientCertificateFacts | undefined {
  if (session === null || typeof session !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'session must be an object')
  return (session as Record<string, unknown>)[CLIENT_CERTIFICATE_PROPERTY] as ClientCertificateFacts | undefined
}

/** The verification result OpenSSL left on the socket. */
function verification(socket: TLSSocket): { verified: boolean; error?: string } {
  if (socket.authorized === true) return { verified: true }
  if (typeof socket.authorizationError === 'string' || socket.authorizationError instanceof Error)
    return { verified: false, error: String((socket.authorizationError as { code?: string }).code ?? socket.authorizationError) }
  // A TLSSocket created with `new tls.TLSSocket(…, { isServer: true })` (smtp-server) is not given
  // `authorized` by Node; the result is on the handle, where tls.Server reads it too.
  const handle = (socket as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle
  const err = handle?.verifyError?.()
  if (err === undefined) return { verified: false, error: 'verification result not available' }
  return err === null ? { verified: true } : { verified: false, error: err.code ?? err.message }
}

/** Gather the client-certificate facts of an established server-side TLS socket. @public */
export function clientCertificateFacts(socket: TLSSocket, opts: SmtpServerClientCertOptions = {}): ClientCertificateFacts {
  try {
    return clientCertificateFactsChecked(socket, opts)
  } catch (e) {
    throw coded(e, 'clientCertificateFacts')
  }
}

function clientCertificateFactsChecked(socket: TLSSocket, opts: SmtpServerClientCertOptions = {}): ClientCertificateFacts {
  // smtp-server before 3.19.23 did not pass requestCert to the socket of an implicit-TLS
  // connection: Node then records _requestCert = false, and no certificate was asked for.
  const requested = (socket as unknown as { _requestCert?: boolean })._requestCert !== false
  const peer = socket.getPeerCertificate(false) as { raw?: Buffer } | null
  if (peer === null || peer.raw === undefined || peer.raw.length === 0) return { requested, presented: false, verified: false }
  const der = new Uint8Array(peer.raw)
  const facts: ClientCertificateFacts = { requested, presented: true, verified: false, certificate: der }
  const v = verification(socket)
  facts.verified = v.verified
  if (v.error !== undefined) facts.verifyError = v.error
  try {
    const s = sliceCertificate(der)
    const cn = readCommonNames(der, s.subjectStart, s.subjectEnd)[0]
    const icn = readCommonNames(der, s.issuerStart, s.issuerEnd)[0]
    if (cn !== undefined) facts.subjectCN = cn
    if (icn !== undefined) facts.issuerCN = icn
    if (opts.table !== undefined) {
      const o: ClientCertLookupOptions = {}
      if (opts.digest !== undefined) o.digest = opts.digest
      if (opts.searchOrder !== undefined) o.searchOrder = opts.searchOrder
      facts.lookup = lookupClientCertificate(opts.table, der, o)
    }
  } catch (e) {
    // OpenSSL accepted the certificate but our parser does not: it is presented, matches nothing.
    if (!(e instanceof SmtpTlsError) || e.code === 'ERR_INVALID_ARGUMENT') throw e
  }
  return facts
}

/**
 * Options for `smtp-server` that ask every TLS client for a certificate (Postfix
 * `smtpd_tls_ask_ccert = yes`), verify it against `ca` without requiring it, look it up in `table`,
 * and record the result as `session.clientCertificate` ({@link clientCertificateOf}), and the TLS
 * facts for the `Received:` clause as `session.tlsSessionFacts` ({@link tlsSessionFactsOf}).
 *
 * @example
 * ```ts
 * const certs = smtpServerClientCertificates({ table: parseClientCertTable(text), ca: caPem })
 * new SMTPServer({ key, cert, ...certs,
 *   onRcptTo(address, session, cb) {
 *     if (isLocal(address.address) || clientCertPermits(clientCertificateOf(session)?.lookup)) return cb()
 *     cb(Object.assign(new Error('5.7.1 Relay access denied'), { responseCode: 554 }))
 *   } })
 * ```
 * @public
 */
export function smtpServerClientCertificates(opts: SmtpServerClientCertOptions = {}): SmtpServerClientCertHooks {
  try {
    return smtpServerClientCertificatesChecked(opts)
  } catch (e) {
    throw coded(e, 'smtpServerClientCertificates')
  }
}

function smtpServerClientCertificatesChecked(opts: SmtpServerClientCertOptions = {}): SmtpServerClientCertHooks {
  if (opts === null || typeof opts !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'options must be an object')
  if (opts.table !== undefined && (opts.table === null || !(opts.table.entries instanceof Map)))
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'table must come from parseClientCertTable')
  if (opts.ecdhCurve !== undefined && typeof opts.ecdhCurve !== 'string')
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'ecdhCurve must be a string')
  if (opts.onSecure !== undefined && typeof opts.onSecure !== 'function')
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'onSecure must be a function')
  const hooks: SmtpServerClientCertHooks = {
    requestCert: true,
    rejectUnauthorized: false,
    onSecure(socket, session, callback) {
      let facts: ClientCertificateFacts
      try {
        if (typeof (socket as Partial<TLSSocket>).getPeerCertificate !== 'function')
          throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'onSecure was called with a socket that is not a TLS socket')
        facts = clientCertificateFacts(socket as TLSSocket, opts)
      } catch (e) {
        callback(e as Error)
        return
      }
      ;(session as Record<string, unknown>)[CLIENT_CERTIFICATE_PROPERTY] = facts
      try {
        const o: TlsSessionFactsOptions = { role: 'server', clientCertificate: facts }
        if (opts.ecdhCurve !== undefined) o.ecdhCurve = opts.ecdhCurve
        ;(session as Record<string, unknown>)[TLS_SESSION_FACTS_PROPERTY] = tlsSessionFacts(socket as TLSSocket, o)
      } catch (e) {
        callback(e as Error)
        return
      }
      if (opts.onSecure !== undefined) opts.onSecure(socket, session, callback)
      else callback()
    },
  }
  if (opts.ca !== undefined) hooks.ca = typeof opts.ca === 'string' || Buffer.isBuffer(opts.ca) ? opts.ca : [...opts.ca]
  return hooks
}
