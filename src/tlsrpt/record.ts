/** The `_smtp._tls` TXT record (RFC 8460 §3). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { EXT_VALUE, splitTagRecord, tagSyntax } from '../txt-record.js'

/** An extension field `name=value` (RFC 8460 §3 `tlsrpt-extension`). @public */
export interface TlsRptExtension {
  name: string
  value: string
}

/** A parsed `_smtp._tls.<domain>` TXT record. @public */
export interface TlsRptRecord {
  version: 'TLSRPTv1'
  /** Report destinations in record order: `mailto:` and `https:` URIs (RFC 8460 §3, `rua`). */
  rua: string[]
  extensions: TlsRptExtension[]
}

const VERSION = 'v=TLSRPTv1'
const WHAT = 'TLS-RPT record'
/** RFC 3986 characters; `,` and `;` excluded (RFC 8460 §3: they MUST be percent-encoded in a URI). */
const URI_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+=%]+$/
const PCT = /%(?![0-9A-Fa-f]{2})/

function checkUri(uri: string, position: number): void {
  if (!URI_CHARS.test(uri) || PCT.test(uri)) tagSyntax('ERR_TLSRPT_SYNTAX', WHAT, `invalid URI ${JSON.stringify(uri)}`, position)
  const colon = uri.indexOf(':')
  const scheme = uri.slice(0, colon).toLowerCase()
  if (scheme === 'mailto') {
    // RFC 6068: mailto:local@domain[?hfields]; one address at least
    const addr = uri.slice(colon + 1).split('?')[0]!
    const at = addr.lastIndexOf('@')
    if (at <= 0 || at === addr.length - 1) tagSyntax('ERR_TLSRPT_SYNTAX', WHAT, `mailto URI without an address: ${uri}`, position)
    return
  }
  if (scheme === 'https') {
    let host = ''
    // WHATWG URL repairs "https:///x" into https://x/: insist on an authority first.
    if (/^https:\/\/[^/?#]/i.test(uri))
      try {
        host = new URL(uri).hostname
      } catch {
        /* reported below */
      }
    if (host === '') tagSyntax('ERR_TLSRPT_SYNTAX', WHAT, `invalid https URI ${JSON.stringify(uri)}`, position)
    return
  }
  tagSyntax('ERR_TLSRPT_SYNTAX', WHAT, `rua URI must be mailto: or https:, got ${JSON.stringify(uri)}`, position)
}

function parseOne(txt: string): TlsRptRecord {
  const fields = splitTagRecord(txt, VERSION, 'ERR_TLSRPT_SYNTAX', WHAT)
  const rua: string[] = []
  let sawRua = false
  const extensions: TlsRptExtension[] = []
  for (const f of fields) {
    if (f.name === 'rua') {
      // tlsrpt-rua = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
      sawRua = true
      for (const part of f.value.split(',')) {
        const uri = part.replace(/^[ \t]+|[ \t]+$/g, '')
        if (uri.length === 0) tagSyntax('ERR_TLSRPT_SYNTAX', WHAT, 'empty URI in rua', f.position)
        checkUri(uri, f.position)
        rua.push(uri)
      }
    } else {
      if (!EXT_VALUE.test(f.value)) tagSyntax('ERR_TLSRPT_SYNTAX', WHAT, `invalid value for ${f.name}`, f.position)
      extensions.push({ name: f.name, value: f.value })
    }
  }
  if (!sawRua) tagSyntax('ERR_TLSRPT_SYNTAX', WHAT, 'no rua field', txt.length)
  return { version: 'TLSRPTv1', rua, extensions }
}

/**
 * Parse the `_smtp._tls.<domain>` TXT record (RFC 8460 §3).
 *
 * Given one string (the record's TXT strings joined), it must be a valid `v=TLSRPTv1` record with at
 * least one `rua` URI (`mailto:` or `https:`). Given the whole TXT RRset, strings that do not begin with
 * `v=TLSRPTv1` are ignored; none left returns `undefined` (no reporting), more than one is an error
 * (RFC 8460 §3: "If the number of resulting records is not one, senders MUST assume the recipient domain
 * does not implement TLSRPT").
 *
 * @throws {@link SmtpTlsError} `ERR_TLSRPT_SYNTAX`, or `ERR_INVALID_ARGUMENT` for a non-string.
 * @example
 * ```ts
 * parseTlsRptRecord('v=TLSRPTv1; rua=mailto:reports@example.com').rua // ['mailto:reports@example.com']
 * ```
 * @public
 */
export function parseTlsRptRecord(txt: string): TlsRptRecord
export function parseTlsRptRecord(rrset: readonly string[]): TlsRptRecord | undefined
export function parseTlsRptRecord(txt: string | readonly string[]): TlsRptRecord | undefined
export function parseTlsRptRecord(txt: string | readonly string[]): TlsRptRecord | undefined {
  try {
    return parseTlsRptRecordChecked(txt)
  } catch (e) {
    throw coded(e, 'parseTlsRptRecord')
  }
}

function parseTlsRptRecordChecked(txt: string | readonly string[]): TlsRptRecord | undefined {
  if (typeof txt === 'string') return parseOne(txt)
  if (!Array.isArray(txt) || txt.some((s) => typeof s !== 'string')) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'a TLS-RPT record must be a string or a list of TXT strings')
  }
  const candidates = (txt as readonly string[]).filter((s) => s.startsWith(VERSION))
  if (candidates.length === 0) return undefined
  if (candidates.length > 1) {
    throw new SmtpTlsError('ERR_TLSRPT_SYNTAX', `invalid TLS-RPT record: ${candidates.length} records begin with v=TLSRPTv1`)
  }
  return parseOne(candidates[0]!)
}

/** Format a record canonically: `v=TLSRPTv1; rua=a,b[; name=value]…`. @public */
export function formatTlsRptRecord(record: TlsRptRecord): string {
  try {
    return formatTlsRptRecordChecked(record)
  } catch (e) {
    throw coded(e, 'formatTlsRptRecord')
  }
}

function formatTlsRptRecordChecked(record: TlsRptRecord): string {
  let s = `${VERSION}; rua=${record.rua.join(',')}`
  for (const e of record.extensions) s += `; ${e.name}=${e.value}`
  return s
}
