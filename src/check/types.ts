/**
 * The report of `check()` (smtp-tls-policy/node): plain, JSON-ready data. The renderers (text and HTML,
 * pure code in this folder) read only this. Keys are written in a fixed order and hosts and addresses are
 * sorted, so `--json` is stable.
 */
import type { CnameLink, DestinationStatus, TlsaLookupStatus } from '../dns/types.js'

/** How bad a finding is: `error` breaks delivery or security, `warning` is a risk, `ok` is a passed check. @public */
export type CheckSeverity = 'ok' | 'warning' | 'error'

/** One check's result. @public */
export interface CheckFinding {
  severity: CheckSeverity
  /** A stable identifier of the check, e.g. `dane-match`, `tlsa-rollover`, `cert-expiry`. */
  id: string
  /** The rule it comes from: an RFC section (`RFC 7671 §8`) or `Postfix behaviour`. */
  rule: string
  /** One line of what was found. */
  message: string
  /** One line on how to fix it (warnings and errors). */
  remedy?: string
  /** The address the finding is about, when it is about one address. */
  address?: string
}

/** A certificate the server sent. @public */
export interface CheckCertificate {
  subject: string
  issuer: string
  /** ISO 8601. */
  notAfter: string
  /** Whole days from the check's time to `notAfter` (negative: expired). */
  daysLeft: number
  /** SHA2-256 of the SubjectPublicKeyInfo, hex: the data of a `3 1 1` record. */
  spkiSha256: string
}

/** What one address of a host answered. @public */
export interface CheckAddressReport {
  address: string
  family: 4 | 6
  /** `true` when the TCP connection and the greeting succeeded. */
  connected: boolean
  /** The server offered STARTTLS (RFC 3207); absent when the session did not get that far. */
  starttls?: boolean
  protocol?: string
  cipher?: string
  /** The chain as sent, leaf first. */
  chain: CheckCertificate[]
  /** The TLSA records (presentation form) that match the chain sent here, each alone. */
  matchingRecords: string[]
  /** Why the session failed, when it did. */
  error?: string
}

/** One MX host. @public */
export interface CheckHostReport {
  host: string
  preference: number
  canonicalHost: string
  cnames: CnameLink[]
  addressSecure: boolean
  tlsa: {
    status: TlsaLookupStatus
    qname: string
    base: string
    /** The RRset in presentation form (`3 1 1 ab12…`). */
    records: string[]
  }
  addresses: CheckAddressReport[]
  findings: CheckFinding[]
}

/** What `check()` (smtp-tls-policy/node) found. @public */
export interface CheckReport {
  domain: string
  port: number
  /** ISO 8601 time of the check (certificate days are counted from it). */
  checkedAt: string
  status: DestinationStatus
  mxSecure: boolean
  nullMx: boolean
  implicitMx: boolean
  /** Findings about the domain: MX RRset, DNSSEC, MTA-STS, TLS-RPT. */
  findings: CheckFinding[]
  hosts: CheckHostReport[]
  summary: { errors: number; warnings: number; ok: number }
}
