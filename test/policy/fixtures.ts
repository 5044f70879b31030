// Shared fixtures for the policy tests: real certificates (openssl CLI) and a scenario builder.
import {
  certificateFingerprint,
  createTlsaRecord,
  decide,
  lookupPolicy,
  parsePolicyTable,
  parseTlsaRecord,
  resolvePolicy,
  type ConnectionFacts,
  type EffectivePolicy,
  type MessageTlsOptions,
  type PolicyOptions,
  type TlsaRecord,
  type TlsaLookupStatus,
  type TlsPolicy,
  type Verdict,
} from '../../src/index.js'
import { makeCert } from '../helpers/openssl.js'

export const root = makeCert({ key: 'ec256', subject: '/CN=Policy Test Root', ca: true })
/** mx.example.com, issued by root */
export const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.example.com', dns: ['mx.example.com'], issuer: root })
/** other.test, issued by root (a DANE-TA name mismatch for mx.example.com) */
export const otherLeaf = makeCert({ key: 'ec256', subject: '/CN=other.test', dns: ['other.test'], issuer: root })
/** unrelated self-signed certificate */
export const stranger = makeCert({ key: 'ec256', subject: '/CN=stranger.test', dns: ['stranger.test'] })

export const ee = createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 })
export const ta = createTlsaRecord(root.der, { usage: 2, selector: 0, matchingType: 1 })
export const eeWrong = createTlsaRecord(stranger.der, { usage: 3, selector: 1, matchingType: 1 })
/** PKIX-EE: unusable for SMTP (RFC 7672 §3.1.3) */
export const unusable = parseTlsaRecord('1 1 1 ' + 'ab'.repeat(32))
export const unusable2 = parseTlsaRecord('3 1 1 ' + 'ab'.repeat(31)) // wrong digest length

export const pinCert = certificateFingerprint(leaf.der)
export const pinKey = certificateFingerprint(leaf.der, { of: 'publicKey' })
export const pinSha512 = certificateFingerprint(leaf.der, { digest: 'sha512' })
export const pinWrong = certificateFingerprint(stranger.der)

export const CHAIN = [leaf.der, root.der]

export interface Dns {
  domain?: string
  mxSecure?: boolean
  mxLookup?: boolean
  implicitMx?: boolean
  host?: string
  addressSecure?: boolean
  tlsa?: TlsaLookupStatus
  records?: TlsaRecord[]
}

/** Default: secure MX, secure addresses, a secure TLSA RRset with the leaf's 3 1 1. */
export function facts(d: Dns = {}) {
  const host = d.host ?? 'mx.example.com'
  const status = d.tlsa ?? 'secure'
  return {
    destination: {
      domain: d.domain ?? 'example.com',
      mxSecure: d.mxSecure ?? true,
      mxLookup: d.mxLookup ?? true,
      implicitMx: d.implicitMx ?? false,
    },
    host: {
      host,
      addressSecure: d.addressSecure ?? status !== 'not-looked-up',
      tlsa: {
        status,
        records: d.records ?? (status === 'secure' || status === 'insecure' ? [ee] : []),
        base: host,
        qname: `_25._tcp.${host}`,
        ...(status === 'lookup-failed' ? { error: { message: 'SERVFAIL' } } : {}),
      },
    },
  }
}

/** A policy from one table line's value, e.g. `secure match=nexthop`. */
export function policyOf(value: string, lenient = false): TlsPolicy {
  const t = parsePolicyTable(`example.com ${value}`, lenient ? { onError: 'defer' } : {})
  return lookupPolicy(t, 'example.com')!
}

export const TLS_OK: ConnectionFacts = {
  starttls: 'offered',
  handshake: 'ok',
  chain: CHAIN,
  pkix: { trusted: true },
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_256_GCM_SHA384',
}

export function run(
  policy: string | undefined,
  dns: Dns,
  conn: ConnectionFacts,
  options: PolicyOptions = {},
  message: MessageTlsOptions = {},
): { eff: EffectivePolicy; v: Verdict } {
  const f = facts(dns)
  const eff = resolvePolicy({ policy: policy === undefined ? undefined : policyOf(policy, true), ...f, options, message })
  return { eff, v: decide(eff, conn, { now: new Date() }) }
}
