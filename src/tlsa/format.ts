/** TLSA presentation output (RFC 6698 §2.2, RFC 7218). */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { toHex } from '../bytes.js'
import { checkRecordShape } from './rdata.js'
import { MATCHING_NAMES, SELECTOR_NAMES, USAGE_NAMES, type TlsaRecord } from './types.js'

function formatError(message: string): never {
  throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `cannot format TLSA record: ${message}`)
}

/**
 * Format as `usage selector mtype <lowercase hex>`, e.g. `3 1 1 ab12…`.
 * @public
 */
export function formatTlsaRecord(r: TlsaRecord): string {
  try {
    return formatTlsaRecordChecked(r)
  } catch (e) {
    throw coded(e, 'formatTlsaRecord')
  }
}

function formatTlsaRecordChecked(r: TlsaRecord): string {
  checkRecordShape(r, formatError)
  return `${r.usage} ${r.selector} ${r.matchingType} ${toHex(r.data)}`
}

/**
 * Format with RFC 7218 mnemonics where the value has one, e.g. `DANE-EE SPKI SHA2-256 ab12…`.
 * @public
 */
export function formatTlsaRecordMnemonic(r: TlsaRecord): string {
  try {
    return formatTlsaRecordMnemonicChecked(r)
  } catch (e) {
    throw coded(e, 'formatTlsaRecordMnemonic')
  }
}

function formatTlsaRecordMnemonicChecked(r: TlsaRecord): string {
  checkRecordShape(r, formatError)
  const u = USAGE_NAMES[r.usage] ?? String(r.usage)
  const s = SELECTOR_NAMES[r.selector] ?? String(r.selector)
  const m = MATCHING_NAMES[r.matchingType] ?? String(r.matchingType)
  return `${u} ${s} ${m} ${toHex(r.data)}`
}

/**
 * The TLSA owner name for an SMTP server (RFC 7672 §2.2.3, RFC 6698 §3): `_<port>._tcp.<host>.`
 * @public
 */
export function tlsaOwnerName(host: string, port = 25): string {
  try {
    return tlsaOwnerNameChecked(host, port)
  } catch (e) {
    throw coded(e, 'tlsaOwnerName')
  }
}

function tlsaOwnerNameChecked(host: string, port = 25): string {
  if (typeof host !== 'string' || host.length === 0) formatError('host must be a non-empty string')
  if (!Number.isInteger(port) || port < 1 || port > 65535) formatError('port must be an integer 1-65535')
  const h = host.endsWith('.') ? host : host + '.'
  return `_${port}._tcp.${h.toLowerCase()}`
}
