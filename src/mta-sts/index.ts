/**
 * MTA-STS (RFC 8461), pure: the TXT record, the policy file, MX matching, the cache decision,
 * DANE/MTA-STS precedence and the per-connection verdict. Fetching the policy over HTTPS is the
 * Node adapter's job.
 *
 * @example
 * ```ts
 * import { parseMtaStsPolicy, mtaStsMatchesMx } from 'smtp-tls-policy'
 * const policy = parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 604800\n')
 * mtaStsMatchesMx(policy, 'mx1.example.net') // true
 * ```
 */
export { parseMtaStsRecord, formatMtaStsRecord } from './record.js'
export type { MtaStsRecord, MtaStsExtension } from './record.js'
export { parseMtaStsPolicy, formatMtaStsPolicy, MTA_STS_MAX_AGE_LIMIT } from './policy.js'
export type { MtaStsPolicy, MtaStsMode } from './policy.js'
export { mtaStsMatchesMx, mtaStsMatchingPattern } from './match.js'
export { decideMtaStsCache } from './cache.js'
export type { CachedMtaStsPolicy, MtaStsTxtState, MtaStsCacheInput, MtaStsCacheDecision } from './cache.js'
export { selectTransportPolicy, mtaStsVerdict } from './apply.js'
export type {
  PrecedenceTlsaFacts,
  TransportPolicyInput,
  TransportPolicyKind,
  TransportPolicyChoice,
  MtaStsConnectionFacts,
  MtaStsVerdict,
} from './apply.js'
