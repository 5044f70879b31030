/**
 * The envelope of one message and the MAIL/RCPT command lines built from it (RFC 5321 §4.1.1.2,
 * §4.1.1.3) with the parameters of SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531),
 * REQUIRETLS (RFC 8689) and DSN (RFC 3461).
 */
import { SmtpTlsError } from '../errors.js'

/**
 * One recipient with its DSN parameters (RFC 3461 §4), sent only when the server offers `DSN`.
 * @public
 */
export interface SmtpRecipient {
  /** The mailbox, without angle brackets. Non-ASCII needs the server's `SMTPUTF8` (RFC 6531). */
  address: string
  /** RFC 3461 §4.1 `NOTIFY`: `'NEVER'`, or any of `SUCCESS`, `FAILURE`, `DELAY`. */
  notify?: 'NEVER' | readonly ('SUCCESS' | 'FAILURE' | 'DELAY')[]
  /** RFC 3461 §4.2 `ORCPT`: the original recipient, sent as `rfc822;<xtext>` (`utf-8;…` when non-ASCII, RFC 6533 §3). */
  orcpt?: string
}

/**
 * What one message needs from the server, besides its bytes.
 * @public
 */
export interface SmtpEnvelope {
  /** The reverse-path without angle brackets; `''` is the null sender `<>` (bounces, RFC 5321 §4.5.5). */
  from: string
  /** At least one recipient. */
  to: readonly (string | SmtpRecipient)[]
  /** RFC 1870 declared message size in octets; sent as `SIZE=` and checked against the server's limit before `MAIL`. */
  size?: number
  /** RFC 6152: `'8BITMIME'` when the body has 8-bit bytes (refused where the server lacks 8BITMIME), `'7BIT'` otherwise. */
  body?: '7BIT' | '8BITMIME'
  /** RFC 6531: the message needs SMTPUTF8 (UTF-8 headers) even when every address is ASCII. */
  smtputf8?: boolean
  /** RFC 8689: send `REQUIRETLS`; refused unless the session is `verified` and the server offers it after TLS. */
  requireTls?: boolean
  /** RFC 3461 §4.3, §4.4: `RET` and `ENVID` (plain text; xtext-encoded here), sent when the server offers `DSN`. */
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string }
}

/** An envelope after validation: recipients as objects, addresses classified. */
export interface CheckedEnvelope {
  from: string
  fromProblem?: AddressProblem
  to: CheckedRecipient[]
  size?: number
  body?: '7BIT' | '8BITMIME'
  smtputf8: boolean
  requireTls: boolean
  ret?: 'FULL' | 'HDRS'
  envid?: string
}

export interface CheckedRecipient {
  address: string
  problem?: AddressProblem
  nonAscii: boolean
  notify?: string
  orcpt?: string
}

/** Why an address cannot be sent as is: bad syntax (5.1.3 / 5.1.7) or non-ASCII (needs SMTPUTF8). */
export type AddressProblem = 'syntax' | 'non-ascii'

const te = new TextEncoder()

function invalid(message: string): SmtpTlsError {
  return new SmtpTlsError('ERR_INVALID_ARGUMENT', message, { temporary: false, enhancedStatus: '4.3.0' })
}

/**
 * Classify an address: `undefined` (fine as ASCII), `'non-ascii'` (fine with SMTPUTF8) or `'syntax'`.
 * Never sent when it could break the command line: no controls (CR, LF, NUL: command injection), no
 * angle brackets, no space outside a quoted local part, at most 254 octets (RFC 5321 §4.5.3.1.3: a
 * path of 256 octets with its brackets).
 */
export function addressProblem(address: string): AddressProblem | undefined {
  let nonAscii = false
  const quoted = address.charCodeAt(0) === 0x22
  let inQuote = quoted
  for (let i = quoted ? 1 : 0; i < address.length; i++) {
    const c = address.charCodeAt(i)
    if (c < 0x20 || c === 0x7f || c === 0x3c || c === 0x3e) return 'syntax'
    if (c >= 0x80) nonAscii = true
    else if (c === 0x22) inQuote = false
    else if (c === 0x20 && !inQuote) return 'syntax'
  }
  const octets = nonAscii ? te.encode(address).length : address.length
  if (octets > 254) return 'syntax'
  return nonAscii ? 'non-ascii' : undefined
}

const NOTIFY = new Set(['SUCCESS', 'FAILURE', 'DELAY'])

/** Validate the caller's envelope (JS types too); throws ERR_INVALID_ARGUMENT for a caller's mistake. */
export function checkEnvelope(e: unknown): CheckedEnvelope {
  if (typeof e !== 'object' || e === null) throw invalid('the envelope must be an object')
  const env = e as Partial<SmtpEnvelope>
  if (typeof env.from !== 'string') throw invalid("envelope.from must be a string ('' for the null sender)")
  if (!Array.isArray(env.to) || env.to.length === 0) throw invalid('envelope.to must be a non-empty array')
  const out: CheckedEnvelope = { from: env.from, to: [], smtputf8: false, requireTls: false }
  if (env.from !== '') {
    const p = addressProblem(env.from)
    if (p) out.fromProblem = p
  }
  for (const r of env.to as unknown[]) out.to.push(checkRecipient(r))
  if (env.size !== undefined) {
    if (typeof env.size !== 'number' || !Number.isSafeInteger(env.size) || env.size < 0) {
      throw invalid('envelope.size must be a non-negative integer')
    }
    out.size = env.size
  }
  if (env.body !== undefined) {
    if (env.body !== '7BIT' && env.body !== '8BITMIME') throw invalid("envelope.body must be '7BIT' or '8BITMIME'")
    out.body = env.body
  }
  for (const k of ['smtputf8', 'requireTls'] as const) {
    const v = env[k]
    if (v !== undefined && typeof v !== 'boolean') throw invalid(`envelope.${k} must be a boolean`)
    out[k] = v === true
  }
  if (env.dsn !== undefined) {
    if (typeof env.dsn !== 'object' || env.dsn === null) throw invalid('envelope.dsn must be an object')
    const { ret, envid } = env.dsn
    if (ret !== undefined) {
      if (ret !== 'FULL' && ret !== 'HDRS') throw invalid("envelope.dsn.ret must be 'FULL' or 'HDRS'")
      out.ret = ret
    }
    if (envid !== undefined) {
      // RFC 3461 §4.4: printable ASCII, at most 100 characters before encoding.
      if (typeof envid !== 'string' || envid.length === 0 || envid.length > 100 || !/^[\x20-\x7e]+$/.test(envid)) {
        throw invalid('envelope.dsn.envid must be 1-100 printable ASCII characters')
      }
      out.envid = envid
    }
  }
  return out
}

function checkRecipient(r: unknown): CheckedRecipient {
  const rec: Partial<SmtpRecipient> = typeof r === 'string' ? { address: r } : typeof r === 'object' && r !== null ? r : {}
  if (typeof rec.address !== 'string' || rec.address === '') throw invalid('each recipient must be a non-empty address')
  const problem = addressProblem(rec.address)
  const out: CheckedRecipient = { address: rec.address, nonAscii: problem === 'non-ascii' }
  if (problem) out.problem = problem
  if (rec.notify !== undefined) {
    const n = rec.notify
    if (n === 'NEVER') out.notify = 'NEVER'
    else if (Array.isArray(n) && n.length > 0 && n.every((x) => NOTIFY.has(x as string)) && new Set(n).size === n.length) {
      out.notify = n.join(',')
    } else {
      // RFC 3461 §4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY.
      throw invalid(`recipient ${JSON.stringify(rec.address)}: notify must be 'NEVER' or a list of SUCCESS, FAILURE, DELAY`)
    }
  }
  if (rec.orcpt !== undefined) {
    if (typeof rec.orcpt !== 'string' || rec.orcpt === '' || addressProblem(rec.orcpt) === 'syntax') {
      throw invalid(`recipient ${JSON.stringify(rec.address)}: orcpt must be an address`)
    }
    out.orcpt = rec.orcpt
  }
  return out
}

/** RFC 3461 §4: xtext: "!".."~" except "+" and "=" as is, anything else as "+" and two upper-case hex digits. */
export function xtext(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    out += c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d ? s[i] : '+' + c.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

/** RFC 6533 §3 utf-8-addr-xtext: non-ASCII, "+", "=", "\\" and controls as `\x{HEX}`; pure ASCII on the wire. */
function utf8AddrXtext(s: string): string {
  let out = ''
  for (const ch of s) {
    const c = ch.codePointAt(0) as number
    out += c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d && c !== 0x5c ? ch : `\\x{${c.toString(16).toUpperCase()}}`
  }
  return out
}

/** What the server offers and the session is, for building command lines. */
export interface Offer {
  size: boolean
  eightBit: boolean
  smtputf8: boolean
  requireTls: boolean
  dsn: boolean
}

/** `MAIL FROM:<…>` with the parameters the server offers and the message needs. */
export function mailLine(env: CheckedEnvelope, offer: Offer, useUtf8: boolean): string {
  let line = `MAIL FROM:<${env.from}>`
  if (offer.size && env.size !== undefined) line += ` SIZE=${env.size}` // RFC 1870 §6
  if (offer.eightBit && env.body !== undefined) line += ` BODY=${env.body}` // RFC 6152 §2
  if (useUtf8) line += ' SMTPUTF8' // RFC 6531 §3.4
  if (env.requireTls) line += ' REQUIRETLS' // RFC 8689 §4.1 (checked before: verified and offered)
  if (offer.dsn) {
    if (env.ret !== undefined) line += ` RET=${env.ret}` // RFC 3461 §4.3
    if (env.envid !== undefined) line += ` ENVID=${xtext(env.envid)}` // RFC 3461 §4.4
  }
  return line
}

/** `RCPT TO:<…>` with the DSN parameters when offered. */
export function rcptLine(r: CheckedRecipient, offer: Offer): string {
  let line = `RCPT TO:<${r.address}>`
  if (offer.dsn) {
    if (r.notify !== undefined) line += ` NOTIFY=${r.notify}` // RFC 3461 §4.1
    if (r.orcpt !== undefined) {
      // RFC 3461 §4.2 / RFC 6533 §3
      line += /^[\x00-\x7f]*$/.test(r.orcpt) ? ` ORCPT=rfc822;${xtext(r.orcpt)}` : ` ORCPT=utf-8;${utf8AddrXtext(r.orcpt)}`
    }
  }
  return line
}

/** A command line as bytes with CRLF: one byte per char for ASCII, UTF-8 otherwise (RFC 6531 §3.3). */
export function lineBytes(line: string): Uint8Array {
  const n = line.length
  let ascii = true
  for (let i = 0; i < n; i++) {
    if (line.charCodeAt(i) >= 0x80) {
      ascii = false
      break
    }
  }
  if (!ascii) {
    const body = te.encode(line)
    const out = new Uint8Array(body.length + 2)
    out.set(body)
    out[body.length] = 0x0d
    out[body.length + 1] = 0x0a
    return out
  }
  const out = new Uint8Array(n + 2)
  for (let i = 0; i < n; i++) out[i] = line.charCodeAt(i)
  out[n] = 0x0d
  out[n + 1] = 0x0a
  return out
}
