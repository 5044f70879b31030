/**
 * DNS facts with their DNSSEC status, as the Node resolver and destination discovery produce them
 * and the policy engine consumes them. Plain data only (type-only module): every value can be logged,
 * compared in tests and serialised with `JSON.stringify` (TLSA data is a `Uint8Array`).
 *
 * Vocabulary from RFC 4035 §4.3 and RFC 7672 §2.1.1: "secure", "insecure" (which includes
 * "anchorless"), "bogus" (which includes "indeterminate").
 *
 * @packageDocumentation
 */
import type { ErrorCode, TlsRptResultType } from '../errors.js'
import type { TlsaRecord } from '../tlsa/types.js'

/** Record types the resolver decodes. @public */
export type DnsRecordType = 'A' | 'AAAA' | 'MX' | 'TLSA' | 'TXT' | 'CNAME'

/** An MX record (RFC 1035 §3.3.9). A null MX (RFC 7505) has preference 0 and exchange `"."`. @public */
export interface MxRecord {
  preference: number
  /** Lower case, no trailing dot; `"."` for a null MX. */
  exchange: string
}

/** The decoded record data per query type. TXT strings are concatenated (RFC 8461 §3.1, RFC 7208 §3.3). @public */
export interface DnsRecordData {
  A: string
  AAAA: string
  MX: MxRecord
  TLSA: TlsaRecord
  TXT: string
  CNAME: string
}

/**
 * Outcome of one lookup.
 * - `secure` / `insecure`: records were found; `secure` only when a trusted validating resolver set AD.
 * - `nxdomain` / `nodata`: the name or type does not exist (not an error, RFC 7672 §2.1.1); see `secure`
 *   for whether the denial was validated.
 * - `bogus`: SERVFAIL from the validating resolver (bogus or indeterminate, RFC 7672 §2.1.1 treats them alike).
 * - `error`: any other lookup failure (timeout, malformed reply, REFUSED, network error, CNAME loop).
 * @public
 */
export type DnsStatus = 'secure' | 'insecure' | 'nxdomain' | 'nodata' | 'bogus' | 'error'

/**
 * A record of the asked type that arrived intact but cannot be decoded, so it is left out of `records`
 * (RFC 6698 §2.1: TLSA RDATA of 3 octets or fewer). Unusable, never a reason to reject the whole answer. @public
 */
export interface UndecodableRecord {
  /** The RDATA as lower-case hex (empty for zero octets). */
  rdata: string
  /** Why it was set aside, for operators: e.g. `TLSA RDATA of 3 octets (030101): no certificate association data (RFC 6698 §2.1), record unusable`. */
  reason: string
}

/** A failure as plain data (the `SmtpTlsError` it came from, minus the stack). @public */
export interface DnsFailure {
  code: ErrorCode
  message: string
  temporary: boolean
  enhancedStatus?: string
  /** RFC 8460 result type, when the failure is reported in TLS-RPT (`dnssec-invalid` for SERVFAIL and bogus). */
  tlsrpt?: TlsRptResultType
}

/** One link of a CNAME chain (RFC 1034 §3.6.2). Names are lower case without a trailing dot. @public */
export interface CnameLink {
  from: string
  to: string
}

/** A typed DNS answer. @public */
export interface DnsAnswer<T extends DnsRecordType = DnsRecordType> {
  /** The name asked for (lower case, no trailing dot). */
  name: string
  type: T
  status: DnsStatus
  /** `true` when the answer (or the denial) was validated: AD set by a trusted resolver on every response used. */
  secure: boolean
  /** Records of `type` owned by the end of the CNAME chain. Empty unless status is secure or insecure. */
  records: DnsRecordData[T][]
  /** Seconds the answer may still be cached (already clamped by the resolver's floor and ceiling); 0 for failures. */
  ttl: number
  /** CNAME links followed from `name`, in order. */
  cnames: CnameLink[]
  /** The owner of `records`: `name` after CNAME expansion. */
  canonicalName: string
  /** RCODE of the final response (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, …), absent when no response was accepted. */
  rcode?: string
  /** Why an answer is not `secure` even though it may carry data: no AD bit, or AD from an untrusted resolver. */
  insecureReason?: string
  /** The server (`address:port`) that gave the final response. */
  server?: string
  /**
   * For `bogus` and `error`. A `bogus` answer's code is `ERR_DNS_BOGUS` when the resolver attached a DNSSEC
   * EDE (RFC 8914 codes 5-12) and `ERR_DNS_SERVFAIL` when it did not, for the same failure; rely instead on
   * what both carry: `temporary: true`, `enhancedStatus: '4.4.3'`, `tlsrpt: 'dnssec-invalid'`.
   */
  error?: DnsFailure
  /**
   * RFC 8914 Extended DNS Errors the resolver attached: the INFO-CODE and the server's EXTRA-TEXT as sent
   * (free text, e.g. `{ code: 7, text: '6GJV' }`). `formatExtendedError` prints `EDE 7 (Signature Expired): "6GJV"`.
   */
  extendedErrors?: { code: number; text: string }[]
  /** `true` when served from the resolver's cache. */
  fromCache?: boolean
  /** Records of `type` at `canonicalName` that could not be decoded (see {@link UndecodableRecord}); they still make the RRset non-empty. */
  undecodable?: UndecodableRecord[]
}

/** A host address. @public */
export interface HostAddress {
  address: string
  family: 4 | 6
}

/**
 * TLSA outcome for one host (RFC 7672 §2.2):
 * - `secure`: a validated, non-empty TLSA RRset (its records may still all be unusable: that is the policy
 *   engine's call, RFC 7672 §2.2 "secure non-empty TLSA RRset where all the records are unusable").
 * - `secure-denial`: validated proof that no TLSA records exist at any candidate base domain.
 * - `insecure`: TLSA records or their absence were not validated (`records` holds what an insecure answer carried;
 *   RFC 7672 §2.2.3 allows using them but never reporting the result as secure).
 * - `lookup-failed`: a TLSA query failed: the host MUST be treated as unreachable (RFC 7672 §2.1.2).
 * - `not-looked-up`: the address records were insecure, so TLSA was not queried (RFC 7672 §2.2.2).
 * @public
 */
export type TlsaLookupStatus = 'secure' | 'secure-denial' | 'insecure' | 'lookup-failed' | 'not-looked-up'

/** TLSA facts for one host. @public */
export interface TlsaFacts {
  status: TlsaLookupStatus
  records: TlsaRecord[]
  /** The TLSA qname `_<port>._tcp.<base>` that produced the outcome (RFC 7672 §2.2.3). */
  qname: string
  /** The TLSA base domain (RFC 7672 §2.2.2). */
  base: string
  /** Candidate base domains in the order tried. */
  candidates: string[]
  /** CNAME links followed at the TLSA qname (they do not change the base domain, RFC 7672 §2.2.3). */
  cnames: CnameLink[]
  ttl: number
  /**
   * Records of the RRset that could not be decoded (TLSA RDATA of 3 octets or fewer, RFC 6698 §2.1), each with its
   * reason. They are unusable and left out of `records`; the others are used (Postfix, RFC 6698 §4.1). A secure RRset
   * holding only such records is "secure, non-empty, all unusable" (RFC 7672 §2.2).
   */
  undecodable?: UndecodableRecord[]
  error?: DnsFailure
}

/** Facts about one SMTP server host (an MX host, an implicit MX, or a configured relay). @public */
export interface MxHostFacts {
  /** The MX exchange as published (unexpanded, RFC 7672 §2.2.1 "SHOULD log unexpanded MX hostnames"). */
  host: string
  preference: number
  /** Host name after CNAME expansion of the address lookup (`host` when there was no CNAME). */
  canonicalHost: string
  cnames: CnameLink[]
  addresses: HostAddress[]
  /** Every address response (A and AAAA, including any CNAME chain) was validated. */
  addressSecure: boolean
  /** For a CNAME'd host whose address answer is insecure: whether the host's own CNAME record is secure (RFC 7672 §2.2.2 "Insecure CNAME"). */
  cnameSecure?: boolean
  tlsa: TlsaFacts
  /** DANE-TA reference identifiers (RFC 7672 §3.2.2), lower case, TLSA base domain first. */
  referenceNames: string[]
  /** `false` when mail must not be delivered via this host: no addresses, an address lookup failure, or a TLSA lookup failure. */
  usable: boolean
  unusableReason?: string
  error?: DnsFailure
}

/**
 * Outcome for a destination:
 * - `ok`: hosts in `mx` (some may be unusable; if none is usable, delivery is deferred).
 * - `null-mx`: RFC 7505 null MX: the domain accepts no mail (permanent).
 * - `no-such-domain`: the domain does not exist (NXDOMAIN on MX and addresses).
 * - `deferred`: a lookup failure prevented choosing servers (RFC 7672 §2.1.2): delay delivery.
 * @public
 */
export type DestinationStatus = 'ok' | 'null-mx' | 'no-such-domain' | 'deferred'

/** DNS facts for one next-hop destination and port (RFC 7672 §2.1-2.2). @public */
export interface DestinationFacts {
  /** The next-hop domain (lower case, no brackets). */
  domain: string
  port: number
  /** `false` for `[host]` destinations (no MX lookup, Postfix syntax) and address literals. */
  mxLookup: boolean
  status: DestinationStatus
  /** The MX RRset (or its denial) and every CNAME leading to it were validated. */
  mxSecure: boolean
  nullMx: boolean
  /** No MX records: the domain itself is the only host (RFC 5321 §5.1). */
  implicitMx: boolean
  /** The next-hop domain after CNAME expansion of the MX lookup. */
  canonicalDomain: string
  cnames: CnameLink[]
  /** Hosts sorted by preference (equal preferences in random order, RFC 5321 §5.1). */
  mx: MxHostFacts[]
  error?: DnsFailure
}
