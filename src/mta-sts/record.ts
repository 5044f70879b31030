/** The `_mta-sts` TXT record (RFC 8461 §3.1). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { EXT_VALUE, splitTagRecord, tagSyntax } from '../txt-record.js'

/** An extension field `name=value` (RFC 8461 §3.1 `sts-extension`, §3.2 `sts-policy-extension`). @public */
export interface MtaStsExtension {
  name: string
  value: string
}

/** A parsed `_mta-sts.<domain>` TXT record. @public */
export interface MtaStsRecord {
  version: 'STSv1'
  /** 1-32 letters and digits; a change tells senders to fetch the policy again (RFC 8461 §3.1). */
  id: string
  /** Unknown fields in record order (RFC 8461 §3.1: ignored by senders, kept for display). */
  extensions: MtaStsExtension[]
}

const VERSION = 'v=STSv1'
const ID = /^[A-Za-z0-9]{1,32}$/ // RFC 8461 §3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT)

function parseOne(txt: string): MtaStsRecord {
  const fields = splitTagRecord(txt, VERSION, 'ERR_MTA_STS_SYNTAX', 'MTA-STS record')
  let id: string | undefined
  const extensions: MtaStsExtension[] = []
  for (const f of fields) {
    if (f.name === 'id') {
      if (!ID.test(f.value)) tagSyntax('ERR_MTA_STS_SYNTAX', 'MTA-STS record', 'id must be 1-32 letters or digits', f.position)
      // The grammar allows the field twice; the first one is the policy id (as for policy keys, §3.2).
      id ??= f.value
    } else {
      if (!EXT_VALUE.test(f.value)) {
        tagSyntax('ERR_MTA_STS_SYNTAX', 'MTA-STS record', `invalid value for ${f.name}`, f.position)
      }
      extensions.push({ name: f.name, value: f.value })
    }
  }
  if (id === undefined) tagSyntax('ERR_MTA_STS_SYNTAX', 'MTA-STS record', 'no id field', txt.length)
  return { version: 'STSv1', id, extensions }
}

/**
 * Parse the `_mta-sts.<domain>` TXT record (RFC 8461 §3.1).
 *
 * Given one string (the record's TXT strings already joined), it must be a valid `v=STSv1` record.
 * Given the whole TXT RRset, strings that do not begin with `v=STSv1` are discarded; none left returns
 * `undefined` (the domain has no MTA-STS), more than one is an error (§3.1: "If the number of resulting
 * records is not one, or if the resulting record is syntactically invalid, senders MUST assume the
 * recipient domain does not have an available MTA-STS Policy").
 *
 * @throws {@link SmtpTlsError} `ERR_MTA_STS_SYNTAX` for an invalid record or several records,
 * `ERR_INVALID_ARGUMENT` when the input is not a string or a list of strings.
 * @example
 * ```ts
 * parseMtaStsRecord('v=STSv1; id=20160831085700Z;') // { version: 'STSv1', id: '20160831085700Z', extensions: [] }
 * parseMtaStsRecord(['v=spf1 -all']) // undefined
 * ```
 * @public
 */
export function parseMtaStsRecord(txt: string): MtaStsRecord
export function parseMtaStsRecord(rrset: readonly string[]): MtaStsRecord | undefined
export function parseMtaStsRecord(txt: string | readonly string[]): MtaStsRecord | undefined
export function parseMtaStsRecord(txt: string | readonly string[]): MtaStsRecord | undefined {
  try {
    return parseMtaStsRecordChecked(txt)
  } catch (e) {
    throw coded(e, 'parseMtaStsRecord')
  }
}

function parseMtaStsRecordChecked(txt: string | readonly string[]): MtaStsRecord | undefined {
  if (typeof txt === 'string') return parseOne(txt)
  if (!Array.isArray(txt) || txt.some((s) => typeof s !== 'string')) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'an MTA-STS record must be a string or a list of TXT strings')
  }
  const candidates = (txt as readonly string[]).filter((s) => s.startsWith(VERSION)) // RFC 8461 §3.1
  if (candidates.length === 0) return undefined
  if (candidates.length > 1) {
    throw new SmtpTlsError('ERR_MTA_STS_SYNTAX', `invalid MTA-STS record: ${candidates.length} records begin with v=STSv1`)
  }
  return parseOne(candidates[0]!)
}

/** Format a record in its canonical form: `v=STSv1; id=…[; name=value]…`. @public */
export function formatMtaStsRecord(record: MtaStsRecord): string {
  try {
    return formatMtaStsRecordChecked(record)
  } catch (e) {
    throw coded(e, 'formatMtaStsRecord')
  }
}

function formatMtaStsRecordChecked(record: MtaStsRecord): string {
  let s = `${VERSION}; id=${record.id}`
  for (const e of record.extensions) s += `; ${e.name}=${e.value}`
  return s
}
