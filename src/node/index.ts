/**
 * smtp-tls-policy/node: the Node I/O adapters (DNSSEC-aware resolver, destination discovery, connection driver, probe and
 * delivery, the MTA-STS fetcher, trust stores, the socketmap policy server, smtp-server helpers and the domain checker).
 * They gather facts, hand them to the pure core and carry out its decision.
 *
 * @packageDocumentation
 */
export { SmtpTlsError, isSmtpTlsError } from '../errors.js'
export type { ErrorCode, TlsRptResultType } from '../errors.js'
export { readCertificateFile } from './files.js'
export {
  createResolver,
  extendedErrorName,
  formatDnsServer,
  formatExtendedError,
  isLoopbackAddress,
  parseDnsServer,
  parseResolvConf,
} from './resolver/index.js'
export type {
  DnsServer,
  LookupOptions,
  ResolvConf,
  Resolver,
  ResolverCacheOptions,
  ResolverConfig,
  ResolverOptions,
  ResolverStats,
} from './resolver/index.js'
export { discoverDestination } from './discovery.js'
export { createTlsSessionCache } from './tls-session-cache.js'
export type { TlsSessionCache, TlsSessionCacheOptions, TlsSessionCacheStats } from './tls-session-cache.js'
export { channels, connect, probe, SmtpTlsConnectError, summaryLine } from './connect.js'
export type { ConnectAttempt, ConnectOptions, MtaStsOptions, ProbeOutcome, ProbeReport, SmtpConnection } from './connect.js'
export type { TlsRptAttemptResult, TlsRptRecordingOptions } from './tlsrpt-recording.js'
export { check } from './check/index.js'
// The renderers are pure (src/check/) and also exported by the core entry; here so that check() and its output come from one import.
export { formatCheckReport, formatCheckReportHtml } from '../check/index.js'
export type {
  CheckAddressReport,
  CheckCertificate,
  CheckFinding,
  CheckHostReport,
  CheckOptions,
  CheckReport,
  CheckSeverity,
} from './check/types.js'
export { deliver, openDeliverySession } from './deliver.js'
export type { DeliverOptions, DeliveryBody, DeliveryMessage, DeliveryResult, DeliverySession } from './deliver.js'
export type { DiscoverOptions } from './discovery.js'
export type {
  CnameLink,
  DestinationFacts,
  DestinationStatus,
  DnsAnswer,
  DnsFailure,
  DnsRecordData,
  DnsRecordType,
  DnsStatus,
  HostAddress,
  MxHostFacts,
  MxRecord,
  TlsaFacts,
  TlsaLookupStatus,
  UndecodableRecord,
} from '../dns/types.js'
export type { TlsaRecord } from '../tlsa/types.js'
export { gzipTlsRptReport, createTlsRptMail } from './tlsrpt.js'
export { sendTlsRptReports, scheduleTlsRptReports, tlsRptSendChannel } from './tlsrpt-send.js'
export type {
  SendTlsRptReportsOptions,
  ScheduleTlsRptReportsOptions,
  TlsRptDomainSendResult,
  TlsRptSchedule,
  TlsRptSendResult,
  TlsRptUriResult,
} from './tlsrpt-send.js'
export type { TlsRptMailInput, TlsRptMail } from './tlsrpt.js'
export type { TlsRptReport } from '../tlsrpt/report.js'
export { createMemoryStore } from '../store/index.js'
export type { MemoryStore, MemoryStoreOptions, PolicyStore, Awaitable } from '../store/index.js'
export {
  CLIENT_CERTIFICATE_PROPERTY,
  clientCertificateFacts,
  clientCertificateOf,
  smtpServerClientCertificates,
  TLS_SESSION_FACTS_PROPERTY,
  tlsSessionFactsOf,
} from './smtp-server.js'
export type { ClientCertificateFacts, SmtpServerClientCertHooks, SmtpServerClientCertOptions } from './smtp-server.js'
export { tlsSessionFacts } from './tls-facts.js'
export type { TlsSessionFactsOptions } from './tls-facts.js'
export { loadTrustStore } from './trust-store.js'
export type { TrustStore, TrustStoreOptions, TrustStoreSource } from './trust-store.js'
export type {
  ClientCertAction,
  ClientCertEntry,
  ClientCertFingerprints,
  ClientCertLookupOptions,
  ClientCertLookupResult,
  ClientCertMatchKind,
  ClientCertTable,
} from '../clientcert/table.js'
export type { ReceivedClientCertificate, TlsKeyExchangeFacts, TlsSessionFacts, TlsSignatureFacts } from '../received/clause.js'
export type { PinDigest } from '../pin/fingerprint.js'
export type { PolicyWarning } from '../policy/table.js'
export type { TrustAnchor } from '../dane/anchors.js'
export { fetchMtaStsPolicy, getMtaStsPolicy, getTlsRptRecord, storeErrorChannel, MTA_STS_MAX_POLICY_BYTES } from './mta-sts.js'
export type { GetMtaStsPolicyOptions, MtaStsFetchOptions, MtaStsFetchResult, MtaStsLookup, TlsRptRecordOptions } from './mta-sts.js'
export type { MtaStsPolicy, MtaStsRecord, MtaStsTxtState, MtaStsCacheDecision, MtaStsMode, MtaStsExtension } from '../mta-sts/index.js'
export type { TlsRptRecord, TlsRptExtension } from '../tlsrpt/record.js'
export type { TraceStep } from '../policy/trace.js'
export { createSocketmapServer } from './socketmap.js'
export { createSocketmapMetrics, startMetricsServer } from './socketmap-metrics.js'
export type { MetricsServer, MetricsServerOptions, SocketmapMetrics, SocketmapMetricsOptions } from './socketmap-metrics.js'
export type { SocketmapLogEvent, SocketmapLookup, SocketmapPrefetchOptions, SocketmapServer, SocketmapServerOptions } from './socketmap.js'
export type { SocketmapProfile } from '../socketmap/answer.js'
