/**
 * Postfix client-certificate access tables: `relay_clientcerts` (with `permit_tls_clientcerts`) and
 * `check_ccert_access` (postconf(5), access(5)). The key is a certificate or public-key fingerprint
 * as Postfix prints it (`AB:CD:…`, `src/tls/tls_fprint.c`); the value is an access(5) action or,
 * for `relay_clientcerts`, any label (Postfix ignores it there).
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { checkDigest, fingerprintBytes, type PinDigest } from '../pin/fingerprint.js'
import type { PolicyWarning } from '../policy/table.js'
import { linePosition, readLogicalLines } from '../table-lines.js'
import { hexValue, toHexSeparated } from '../bytes.js'
import { toDer } from '../x509/pem.js'

/**
 * What an entry's value means (access(5)).
 * - `permit`: `OK`, an all-numerical value (access(5): "treated as OK"), or the restriction `permit`.
 * - `reject`: `REJECT [text]` (Postfix `access_map_reject_code`, 554), `DEFER [text]`
 *   (`access_map_defer_code`, 450), or `4NN text` / `5NN text`.
 * - `dunno`: `DUNNO`: stop looking in this table, decide nothing.
 * - `label`: anything else, e.g. a host name. `relay_clientcerts` ignores the value, so there a
 *   label permits; under `check_ccert_access` Postfix would read it as a restriction name.
 * @public
 */
export type ClientCertAction =
  { kind: 'permit' } | { kind: 'reject'; code: number; text?: string } | { kind: 'dunno' } | { kind: 'label'; text: string }

/** One table entry. @public */
export interface ClientCertEntry {
  /** The key, normalised: upper-case hex octets separated by colons. */
  fingerprint: string
  /** The value as written (continuation lines joined by one space). */
  value: string
  action: ClientCertAction
  /** 1-based line of the key. */
  line: number
}

/** A parsed client-certificate table. @public */
export interface ClientCertTable {
  /** Entries by normalised fingerprint, in table order. */
  readonly entries: ReadonlyMap<string, ClientCertEntry>
  /** What postmap only warns about (a duplicate key: the first entry wins). */
  readonly warnings: readonly PolicyWarning[]
}

/** Which fingerprint an entry matched (Postfix ≥ 3.5 `search_order` names). @public */
export type ClientCertMatchKind = 'cert_fingerprint' | 'pubkey_fingerprint'

/** Options of `lookupClientCertificate`. @public */
export interface ClientCertLookupOptions {
  /**
   * Order in which the two fingerprints are looked up; the first found wins. Default
   * `['cert_fingerprint', 'pubkey_fingerprint']` (Postfix `permit_tls_clientcerts`, and
   * `check_ccert_access` without `search_order`).
   */
  searchOrder?: readonly ClientCertMatchKind[]
  /** Postfix `smtpd_tls_fingerprint_digest`. Default `sha256` (Postfix ≥ 3.6); `md5`/`sha1` for old tables. */
  digest?: PinDigest
}

/** Both fingerprints of a client certificate. @public */
export interface ClientCertFingerprints {
  cert_fingerprint: string
  pubkey_fingerprint: string
}

/** Result of `lookupClientCertificate`. @public */
export type ClientCertLookupResult =
  | {
      found: true
      action: ClientCertAction
      /** The entry's value as written. */
      value: string
      line: number
      matched: ClientCertMatchKind
      /** The fingerprint that matched. */
      fingerprint: string
      fingerprints: ClientCertFingerprints
    }
  | { found: false; fingerprints: ClientCertFingerprints }

const MAX_TABLE_CHARS = 16 * 1024 * 1024
// md5, sha1, sha256, sha512 (postconf(5) smtpd_tls_fingerprint_digest)
const DIGEST_OCTETS = [16, 20, 32, 64]

class Defect extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message)
  }
}

/** Normalise a fingerprint key: hex octets separated by single colons, any case (Postfix folds keys). */
function normaliseKey(key: string): string {
  const octets = key.split(':')
  for (let i = 0; i < octets.length; i++) {
    const o = octets[i]!
    if (o.length !== 2 || hexValue(o.charCodeAt(0)) < 0 || hexValue(o.charCodeAt(1)) < 0) {
      const at = octets.slice(0, i).join(':').length + (i > 0 ? 1 : 0)
      // Postfix compares the key as a string with the fingerprint it prints: a key in any other
      // form can never match, so it is an error here rather than an entry that silently never applies.
      throw new Defect(`"${key}" is not a fingerprint: expected hex octets separated by colons (AB:CD:…)`, at)
    }
  }
  if (!DIGEST_OCTETS.includes(octets.length)) {
    throw new Defect(`"${key}": ${octets.length} octets is no digest length (md5 16, sha1 20, sha256 32, sha512 64)`, 0)
  }
  return key.toUpperCase()
}

/** access(5) actions. */
function classify(value: string): ClientCertAction {
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(value)!
  const word = m[1]!
  const rest = m[2]?.trim()
  const upper = word.toUpperCase()
  if (upper === 'OK' || upper === 'PERMIT' || /^\d+$/.test(value)) return { kind: 'permit' }
  if (upper === 'DUNNO') return { kind: 'dunno' }
  const withText = (code: number): ClientCertAction =>
    rest !== undefined && rest.length > 0 ? { kind: 'reject', code, text: rest } : { kind: 'reject', code }
  if (upper === 'REJECT') return withText(554) // access_map_reject_code
  if (upper === 'DEFER') return withText(450) // access_map_defer_code
  if (/^[45]\d\d$/.test(word) && rest !== undefined && rest.length > 0) return { kind: 'reject', code: Number(word), text: rest }
  return { kind: 'label', text: value }
}

/**
 * Parse a client-certificate table in Postfix access-table syntax (postmap(1) text form): one
 * `fingerprint value` entry per logical line, `#` comments, continuation lines starting with
 * whitespace. Keys are case-insensitive.
 *
 * @throws {@link SmtpTlsError} `ERR_POLICY_SYNTAX` with 1-based `line` and `column` for a key that
 * is not a fingerprint, a key without a value, or text that continues no entry.
 * @example
 * ```ts
 * const table = parseClientCertTable(`
 * # relay_clientcerts
 * 3F:1A:…:9C  client1.example
 * `)
 * lookupClientCertificate(table, leafDer) // { found: true, matched: 'cert_fingerprint', … }
 * ```
 * @public
 */
export function parseClientCertTable(text: string): ClientCertTable {
  if (typeof text !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'client certificate table text must be a string')
  const fail = (message: string, line: number, column: number): SmtpTlsError =>
    new SmtpTlsError('ERR_POLICY_SYNTAX', `client certificate table line ${line} column ${column}: ${message}`, {
      line,
      column,
      enhancedStatus: '4.3.5', // Postfix: a table error is a server configuration error (451 4.3.5)
    })
  if (text.length > MAX_TABLE_CHARS) throw fail(`table is larger than ${MAX_TABLE_CHARS} characters`, 1, 1)
  const lines = readLogicalLines(text, (line) => {
    throw fail('text starts with whitespace but continues no entry', line, 1)
  })
  const entries = new Map<string, ClientCertEntry>()
  const warnings: PolicyWarning[] = []
  for (const lg of lines) {
    const m = /^(\S+)(\s*)/.exec(lg.text)!
    const keyRaw = m[1]!
    const line = lg.segments[0]!.line
    let entry: ClientCertEntry
    try {
      const fingerprint = normaliseKey(keyRaw)
      const value = lg.text.slice(m[0].length).replace(/\s+/g, ' ').trim()
      if (value.length === 0) throw new Defect(`expected format: key whitespace value (no value for "${keyRaw}")`, keyRaw.length)
      entry = { fingerprint, value, action: classify(value), line }
    } catch (e) {
      if (!(e instanceof Defect)) throw e
      const p = linePosition(lg.segments, e.offset)
      throw fail(e.message, p.line, p.column)
    }
    const first = entries.get(entry.fingerprint)
    if (first !== undefined) {
      warnings.push({ line, column: 1, message: `duplicate entry "${keyRaw}" ignored (first at line ${first.line})` })
      continue
    }
    entries.set(entry.fingerprint, entry)
  }
  return { entries, warnings }
}

const DEFAULT_ORDER: readonly ClientCertMatchKind[] = Object.freeze(['cert_fingerprint', 'pubkey_fingerprint'] as const)

function checkOrder(o: unknown): readonly ClientCertMatchKind[] {
  if (o === undefined) return DEFAULT_ORDER
  if (!Array.isArray(o) || o.length === 0 || o.length > 2)
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'searchOrder must list cert_fingerprint and/or pubkey_fingerprint')
  const seen = new Set<string>()
  for (const k of o) {
    if (k !== 'cert_fingerprint' && k !== 'pubkey_fingerprint')
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `searchOrder: unknown name ${String(k)} (cert_fingerprint, pubkey_fingerprint)`)
    if (seen.has(k)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `searchOrder: ${k} is listed twice`)
    seen.add(k)
  }
  return o as ClientCertMatchKind[]
}

/**
 * Look a client certificate up in a table as Postfix does (`smtpd_check.c`
 * `permit_tls_clientcerts`, `check_ccert_access`): compute the certificate fingerprint (digest of
 * the DER certificate) and the public-key fingerprint (digest of the DER SubjectPublicKeyInfo),
 * then try them in `searchOrder`; the first entry found wins.
 *
 * @throws {@link SmtpTlsError} `ERR_CERT_PARSE`/`ERR_PEM_SYNTAX` for a bad certificate,
 * `ERR_INVALID_ARGUMENT` for bad options or a table that is not one.
 * @public
 */
export function lookupClientCertificate(
  table: ClientCertTable,
  leafDer: Uint8Array | string,
  opts: ClientCertLookupOptions = {},
): ClientCertLookupResult {
  try {
    return lookupClientCertificateChecked(table, leafDer, opts)
  } catch (e) {
    throw coded(e, 'lookupClientCertificate')
  }
}

function lookupClientCertificateChecked(
  table: ClientCertTable,
  leafDer: Uint8Array | string,
  opts: ClientCertLookupOptions = {},
): ClientCertLookupResult {
  if (table === null || typeof table !== 'object' || !(table.entries instanceof Map))
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'table must come from parseClientCertTable')
  if (opts === null || typeof opts !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'options must be an object')
  const digest = checkDigest(opts.digest)
  const order = checkOrder(opts.searchOrder)
  const der = toDer(leafDer)
  const fingerprints: ClientCertFingerprints = {
    cert_fingerprint: toHexSeparated(fingerprintBytes(der, digest, 'certificate'), ':'),
    pubkey_fingerprint: toHexSeparated(fingerprintBytes(der, digest, 'publicKey'), ':'),
  }
  for (const kind of order) {
    const fp = fingerprints[kind]
    const e = table.entries.get(fp)
    if (e !== undefined)
      return { found: true, action: e.action, value: e.value, line: e.line, matched: kind, fingerprint: fp, fingerprints }
  }
  return { found: false, fingerprints }
}

/**
 * Does a lookup result permit the client under a Postfix restriction?
 * - `permit_tls_clientcerts` (with `relay_clientcerts`): any entry found permits, whatever its value.
 * - `check_ccert_access`: only a `permit` action (`OK`, `permit`, all-numerical) permits.
 * @public
 */
export function clientCertPermits(
  result: ClientCertLookupResult | undefined,
  restriction: 'permit_tls_clientcerts' | 'check_ccert_access' = 'permit_tls_clientcerts',
): boolean {
  try {
    return clientCertPermitsChecked(result, restriction)
  } catch (e) {
    throw coded(e, 'clientCertPermits')
  }
}

function clientCertPermitsChecked(
  result: ClientCertLookupResult | undefined,
  restriction: 'permit_tls_clientcerts' | 'check_ccert_access' = 'permit_tls_clientcerts',
): boolean {
  if (restriction !== 'permit_tls_clientcerts' && restriction !== 'check_ccert_access')
    throw new SmtpTlsError(
      'ERR_INVALID_ARGUMENT',
      `restriction must be permit_tls_clientcerts or check_ccert_access, got ${String(restriction)}`,
    )
  if (result === undefined || !result.found) return false
  return restriction === 'permit_tls_clientcerts' || result.action.kind === 'permit'
}
