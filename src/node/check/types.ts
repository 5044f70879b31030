/** The options of {@link check}; the report types live in the pure core (src/check/types.ts). */
import type { Resolver } from '../resolver/resolver.js'
import type { MtaStsFetchOptions } from '../mta-sts.js'

export type { CheckAddressReport, CheckCertificate, CheckFinding, CheckHostReport, CheckReport, CheckSeverity } from '../../check/types.js'

/** Options of {@link check}. @public */
export interface CheckOptions {
  /** Default: `createResolver()` (the nameservers of /etc/resolv.conf; AD trusted from loopback only). */
  resolver?: Resolver
  /** SMTP port. Default 25. */
  port?: number
  /** Timeout of each network step (TCP connect, each reply, the handshake), ms. Default 15000. */
  timeoutMs?: number
  /** Our name in EHLO. Default: `os.hostname()` (or `localhost` when that is no valid EHLO name). */
  ehloName?: string
  /** Address families. Default both. */
  families?: readonly (4 | 6)[]
  /** Sessions at once across all addresses. Default 8. */
  concurrency?: number
  /** Time for certificate checks. Default: now. */
  now?: Date
  signal?: AbortSignal
  /** Options of the MTA-STS policy fetch (the resolver is `resolver`), or `false` to skip MTA-STS. */
  mtaSts?: false | Omit<MtaStsFetchOptions, 'resolver' | 'signal'>
  /** Look up the TLS-RPT record (default `true`). */
  tlsRpt?: boolean
}
