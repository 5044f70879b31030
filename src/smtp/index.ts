/**
 * SMTP reply parsing (RFC 5321 §4.2), EHLO capabilities (RFC 5321 §4.1.1.1), the sans-IO
 * STARTTLS client (RFC 3207) and the sans-IO mail transaction {@link SmtpTransaction} (RFC 5321
 * §3.3). See docs/starttls.md and docs/transaction.md for the state diagrams and drivers.
 *
 * @example Driving {@link StartTlsClient} over a socket (the full version is examples/custom-driver.ts):
 * ```ts
 * // connect() is node:net's connect, tlsConnect() is node:tls's connect (the driver's I/O, not the core's)
 * const client = new StartTlsClient({ ehloName: 'client.example', requireTls: true, servername: 'mx.example.com' })
 * const raw = connect(25, 'mx.example.com')
 * let io: NodeJS.ReadWriteStream = raw
 * const run = (acts: StartTlsAction[]) => {
 *   for (const a of acts) {
 *     if (a.type === 'send') io.write(a.bytes)
 *     else if (a.type === 'upgrade') {
 *       raw.removeAllListeners('data')
 *       const tls = tlsConnect({ socket: raw, servername: a.servername }, () => run(client.handle({ type: 'tlsEstablished' })))
 *       tls.on('data', (b) => run(client.handle({ type: 'data', bytes: b })))
 *       tls.on('error', (cause) => run(client.handle({ type: 'tlsFailed', cause })))
 *       io = tls
 *     } else if (a.type === 'ready') console.log('ready, secure:', a.secure)
 *     else if (a.type === 'close') { console.error(a.error?.message); raw.destroy() }
 *   }
 * }
 * raw.on('data', (b) => run(client.handle({ type: 'data', bytes: b })))
 * raw.on('end', () => run(client.handle({ type: 'eof' })))
 * ```
 * @packageDocumentation
 */
export { ReplyParser, parseReply, formatReplyLines, DEFAULT_MAX_LINE_LENGTH, DEFAULT_MAX_LINES } from './reply.js'
export type { SmtpReply, ReplyParserOptions } from './reply.js'
export { parseEhloCapabilities } from './ehlo.js'
export type { EhloCapabilities, KnownExtensions } from './ehlo.js'
export { StartTlsClient, SmtpReplyError, STARTTLS_TRANSITIONS, startTlsDiagram } from './starttls.js'
export type {
  StartTlsInput,
  StartTlsAction,
  StartTlsClientOptions,
  StartTlsState,
  StartTlsStateName,
  StartTlsEvent,
  StartTlsGuard,
  StartTlsStep,
  StartTlsCloseReason,
  StartTlsTransition,
} from './starttls.js'
export { SmtpTransaction, SMTP_TRANSACTION_TRANSITIONS, smtpTransactionDiagram } from './transaction.js'
export type {
  SmtpTransactionInput,
  SmtpTransactionAction,
  SmtpTransactionOptions,
  SmtpTransactionResult,
  SmtpRecipientResult,
  SmtpAuthCredentials,
  SmtpTransactionState,
  SmtpTransactionStateName,
  SmtpTransactionEvent,
  SmtpTransactionGuard,
  SmtpTransactionStep,
  SmtpTransactionCloseReason,
  SmtpTransactionTransition,
  SmtpEnvelope,
  SmtpRecipient,
} from './transaction.js'
