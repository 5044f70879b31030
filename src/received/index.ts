/** The `Received:` header's TLS clause (Postfix `smtpd_tls_received_header`) and RFC 3848 protocol words. */
export { formatReceivedTlsClause, receivedProtocol } from './clause.js'
export type { ReceivedClauseOptions, ReceivedClientCertificate, TlsKeyExchangeFacts, TlsSessionFacts, TlsSignatureFacts } from './clause.js'
