/** The DNSSEC-aware stub resolver: public surface. */
export { createResolver } from './resolver.js'
export type { LookupOptions, Resolver, ResolverCacheOptions, ResolverConfig, ResolverOptions, ResolverStats } from './resolver.js'
export { formatDnsServer, isLoopbackAddress, parseDnsServer, parseResolvConf } from './config.js'
export type { DnsServer, ResolvConf } from './config.js'
export { extendedErrorName, formatExtendedError } from './ede.js'
