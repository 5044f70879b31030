/** Policy table lookup by next-hop destination (postconf(5) `smtp_tls_policy_maps`). */
import { coded, readOptions } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { normalizePolicyKey } from './names.js'
import { isValidHostname, type PolicyTable, type TlsPolicy } from './table.js'

/** Options of {@link lookupPolicy}. @public */
export interface LookupPolicyOptions {
  /** The port that is left out of lookup keys (postconf(5): "any non-default destination server port suffix"). Default 25. */
  defaultPort?: number
}

/**
 * The keys tried for a next hop, in order (postconf(5) `smtp_tls_policy_maps`; Postfix
 * `tls_policy_lookup`): the full next hop as written (lower case, brackets kept), then without a
 * default-port suffix; then, only for a bare domain (no brackets, no port), its parent domains with a
 * leading dot: `a.example.com` → `a.example.com`, `.example.com`, `.com`.
 * @public
 */
export function policyLookupKeys(nexthop: string, opts: LookupPolicyOptions = {}): string[] {
  try {
    return policyLookupKeysChecked(nexthop, opts)
  } catch (e) {
    throw coded(e, 'policyLookupKeys')
  }
}

function policyLookupKeysChecked(nexthop: string, opts: LookupPolicyOptions = {}): string[] {
  if (typeof nexthop !== 'string' || nexthop.length === 0)
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'nexthop must be a non-empty string')
  const defaultPort = readOptions(opts, 'policyLookupKeys options', ['defaultPort']).defaultPort ?? 25
  let key = nexthop.trim().toLowerCase()
  const keys: string[] = []
  const m = /^(\[[^\]]*\]|[^:[\]]+):(\d+)$/.exec(key)
  if (m && Number(m[2]) === defaultPort) {
    // Postfix looks the next hop up as written ("[mx.example.com]:25" in a transport entry matches a
    // table key "[mx.example.com]:25", as the lab's smtp(8) shows); the form without the default
    // port follows, so "[mx.example.com]" matches too.
    keys.push(normalizePolicyKey(key))
    key = m[1]!
  }
  // A trailing dot on a bare domain is the same name.
  if (!key.startsWith('[') && key.endsWith('.') && key.length > 1) key = key.slice(0, -1)
  // The same name check as the table keys: U-labels as A-labels, nothing cut (x509/names.ts).
  key = normalizePolicyKey(key)
  keys.push(key)
  // Only one lookup for [nexthop], [nexthop]:port, nexthop:port and anything not a host name.
  if (!isValidHostname(key)) return keys
  for (let i = key.indexOf('.', 1); i >= 0; i = key.indexOf('.', i + 1)) keys.push(key.slice(i))
  return keys
}

/**
 * Find the policy for a next-hop destination: the exact key first (`example.com`,
 * `[mx.example.com]:587`), then parent domains as `.example.com` for bare domains only.
 * Returns `undefined` when nothing matches (the global default level applies). A policy whose
 * entry was defective (lenient parsing) carries `defect` and must defer delivery.
 *
 * @example
 * ```ts
 * lookupPolicy(table, 'example.com')          // entry "example.com"
 * lookupPolicy(table, 'mx1.example.com')      // entry ".example.com" (parent-domain match)
 * lookupPolicy(table, '[mx.example.com]:587') // only entry "[mx.example.com]:587"
 * ```
 * @public
 */
export function lookupPolicy(table: PolicyTable, nexthop: string, opts: LookupPolicyOptions = {}): TlsPolicy | undefined {
  try {
    return lookupPolicyChecked(table, nexthop, opts)
  } catch (e) {
    throw coded(e, 'lookupPolicy')
  }
}

function lookupPolicyChecked(table: PolicyTable, nexthop: string, opts: LookupPolicyOptions = {}): TlsPolicy | undefined {
  if (table === null || typeof table !== 'object' || !(table.entries instanceof Map)) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'table must come from parsePolicyTable')
  }
  for (const k of policyLookupKeys(nexthop, opts)) {
    const e = table.entries.get(k)
    if (e !== undefined) return e.policy
  }
  return undefined
}
