/**
 * smtp-tls-policy/node: the Node I/O adapters (DNSSEC-aware resolver, destination discovery, connection driver, probe and delivery).
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
export { channels, connect, probe, SmtpTlsConnectError, summaryLine } from './connect.js'
export type { ConnectAttempt, ConnectOptions, ProbeOutcome, ProbeReport, SmtpConnection } from './connect.js'
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
