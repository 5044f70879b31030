/**
 * The policy engine (Postfix TLS security levels, `smtp_tls_policy_maps` tables, effective policy
 * per MX host, and the verdict for a connection), pure and synchronous.
 *
 * @example
 * ```ts
 * import { parsePolicyTable, lookupPolicy, resolvePolicy, decide, formatTrace } from 'smtp-tls-policy'
 *
 * const table = parsePolicyTable('example.com secure match=nexthop:dot-nexthop\n.example.net dane-only\n')
 * const eff = resolvePolicy({
 *   policy: lookupPolicy(table, 'example.com'),
 *   destination: { domain: 'example.com', mxSecure: false },
 *   host: { host: 'mx1.example.com', addressSecure: false, tlsa: { status: 'not-looked-up', records: [] } },
 * })
 * const v = decide(eff, { starttls: 'offered', handshake: 'ok', chain: [leafDer], pkix: { trusted: true }, protocol: 'TLSv1.3' })
 * console.log(v.status, formatTrace(v.trace)) // "verified" "table match example.com (line 1) → secure […]; …"
 * ```
 * @packageDocumentation
 */
export type { SecurityLevel, EffectiveLevel } from './levels.js'
export {
  SECURITY_LEVELS,
  CONFIGURABLE_LEVELS,
  levelRank,
  isSecurityLevel,
  mustEncrypt,
  mustMatch,
  mustPkix,
  isOpportunistic,
  isDaneBased,
  minLevel,
} from './levels.js'
export type { TraceStep } from './trace.js'
export { formatTrace } from './trace.js'
export type {
  TlsProtocolVersion,
  ProtocolPolicy,
  CipherGrade,
  PolicySource,
  ExternalPolicyInfo,
  PolicyDefect,
  TlsPolicy,
  PolicyTableEntry,
  PolicyWarning,
  PolicyTable,
  ParsePolicyTableOptions,
} from './table.js'
export { parsePolicyTable, protocolAllowed, TLS_PROTOCOL_VERSIONS } from './table.js'
export type { CipherPolicy } from './ciphers.js'
export { tlsCipherList } from './ciphers.js'
export type { LookupPolicyOptions } from './lookup.js'
export { lookupPolicy, policyLookupKeys } from './lookup.js'
export type {
  PolicyDestinationFacts,
  PolicyTlsaFacts,
  PolicyHostFacts,
  MessageTlsOptions,
  PolicyOptions,
  ResolvePolicyInput,
  EffectiveTlsa,
  EffectivePolicy,
} from './resolve.js'
export { resolvePolicy } from './resolve.js'
export type { TlsOutcome, PkixResult, ConnectionFacts, DecideOptions, Verdict } from './decide.js'
export { decide } from './decide.js'
