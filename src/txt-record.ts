/**
 * The `tag=value; tag=value` TXT grammar shared by MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3):
 * a fixed version field, then `1*(field-delim field) [field-delim]` with `field-delim = *WSP ";" *WSP`.
 * Values never contain `;` (RFC 8461 §3.1 `sts-ext-value`; RFC 8460 §3 requires `;` in URIs to be
 * percent-encoded), so splitting on `;` is exact.
 */
import { SmtpTlsError, type ErrorCode } from './errors.js'

/** One `name=value` field after the version. */
export interface TagField {
  name: string
  value: string
  /** Offset of the field's name in the record. */
  position: number
}

/** RFC 8461 §3.1 `sts-ext-name`, RFC 8460 §3 `tlsrpt-ext-name`: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
export const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/
/** RFC 8461 §3.1 `sts-ext-value`, RFC 8460 §3 `tlsrpt-ext-value`: 1*(%x21-3A / %x3C / %x3E-7E). */
export const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/

function isWsp(c: number): boolean {
  return c === 0x20 || c === 0x09
}

/** Throw the area's syntax error with the offset of the defect. */
export function tagSyntax(code: ErrorCode, what: string, message: string, position: number): never {
  throw new SmtpTlsError(code, `invalid ${what}: ${message} (at offset ${position})`, { position })
}

/**
 * Split a record that must begin with `version` (case-sensitive, `%s"…"`) into its fields. Checks the
 * delimiters and the field-name grammar; the caller checks values.
 */
export function splitTagRecord(txt: string, version: string, code: ErrorCode, what: string): TagField[] {
  if (!txt.startsWith(version)) tagSyntax(code, what, `must begin with "${version}"`, 0)
  const fields: TagField[] = []
  let i = version.length
  const n = txt.length
  // After the version: *WSP ";" or the end (then there is no field at all).
  for (;;) {
    let j = i
    while (j < n && isWsp(txt.charCodeAt(j))) j++
    if (j === n) {
      if (fields.length === 0) tagSyntax(code, what, 'no field after the version', j)
      return fields
    }
    if (txt.charCodeAt(j) !== 0x3b) tagSyntax(code, what, `expected ";" but found ${JSON.stringify(txt[j])}`, j)
    j++
    while (j < n && isWsp(txt.charCodeAt(j))) j++
    if (j === n) {
      // the optional trailing field-delim
      if (fields.length === 0) tagSyntax(code, what, 'no field after the version', j)
      return fields
    }
    let end = txt.indexOf(';', j)
    if (end < 0) end = n
    let k = end
    while (k > j && isWsp(txt.charCodeAt(k - 1))) k--
    const field = txt.slice(j, k)
    const eq = field.indexOf('=')
    if (eq <= 0) tagSyntax(code, what, `expected name=value, found ${JSON.stringify(field)}`, j)
    const name = field.slice(0, eq)
    if (!EXT_NAME.test(name)) tagSyntax(code, what, `invalid field name ${JSON.stringify(name)}`, j)
    fields.push({ name, value: field.slice(eq + 1), position: j })
    i = k
  }
}
