/**
 * TLSA presentation format (RFC 6698 §2.2) with RFC 7218 mnemonics, zone-file and `dig` lines,
 * and the RFC 3597 generic `\# len hex` form.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import { hexValue } from '../bytes.js'
import { decodeTlsaRdata, MAX_TLSA_DATA } from './rdata.js'
import type { TlsaRecord } from './types.js'

interface Token {
  text: string
  pos: number
}

function syntax(message: string, position: number): never {
  throw new SmtpTlsError('ERR_TLSA_SYNTAX', `invalid TLSA record: ${message} (at offset ${position})`, {
    position,
    temporary: true,
  })
}

/** Split into whitespace-separated tokens; `;` starts a comment to end of line, parentheses group lines (RFC 1035 §5.1). */
function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x3b /* ; */) {
      while (i < n && text.charCodeAt(i) !== 0x0a) i++
      continue
    }
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x28 || c === 0x29) {
      i++
      continue
    }
    const start = i
    while (i < n) {
      const d = text.charCodeAt(i)
      if (d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d || d === 0x28 || d === 0x29 || d === 0x3b) break
      i++
    }
    tokens.push({ text: text.slice(start, i), pos: start })
  }
  return tokens
}

const USAGE: Readonly<Record<string, number>> = { 'pkix-ta': 0, 'pkix-ee': 1, 'dane-ta': 2, 'dane-ee': 3, privcert: 255 }
const SELECTOR: Readonly<Record<string, number>> = { cert: 0, spki: 1, privsel: 255 }
const MATCHING: Readonly<Record<string, number>> = { full: 0, 'sha2-256': 1, 'sha2-512': 2, privmatch: 255 }

function field(tok: Token | undefined, name: string, mnemonics: Readonly<Record<string, number>>, end: number): number {
  if (tok === undefined) syntax(`missing ${name}`, end)
  const t = tok.text
  if (/^[0-9]{1,3}$/.test(t)) {
    const v = Number(t)
    if (v > 255) syntax(`${name} ${t} is out of range 0-255`, tok.pos)
    return v
  }
  const v = mnemonics[t.toLowerCase()]
  if (v === undefined)
    syntax(`${name} "${t.length > 20 ? t.slice(0, 20) + '…' : t}" is neither a number 0-255 nor an RFC 7218 mnemonic`, tok.pos)
  return v
}

/** Decode hex tokens (whitespace allowed between them) into bytes. */
function hexTokens(tokens: readonly Token[], from: number, end: number): Uint8Array {
  let digits = 0
  for (let k = from; k < tokens.length; k++) digits += tokens[k]!.text.length
  if (digits === 0) syntax('missing certificate association data', end)
  if (digits % 2 !== 0) syntax(`odd number of hex digits (${digits})`, tokens[tokens.length - 1]!.pos)
  if (digits / 2 > MAX_TLSA_DATA) syntax(`certificate association data longer than ${MAX_TLSA_DATA} bytes`, tokens[from]!.pos)
  const out = new Uint8Array(digits / 2)
  let hi = -1
  let o = 0
  for (let k = from; k < tokens.length; k++) {
    const { text, pos } = tokens[k]!
    for (let i = 0; i < text.length; i++) {
      const v = hexValue(text.charCodeAt(i))
      if (v < 0) syntax(`non-hex character "${text[i]}" in certificate association data`, pos + i)
      if (hi < 0) hi = v
      else {
        out[o++] = (hi << 4) | v
        hi = -1
      }
    }
  }
  return out
}

/**
 * Parse a TLSA record in presentation format.
 *
 * Accepts `3 1 1 ab12…` (hex may contain whitespace, any case), RFC 7218 mnemonics
 * (`DANE-EE SPKI SHA2-256 ab12…`), a whole zone-file or `dig` line
 * (`_25._tcp.mx.example.com. 300 IN TLSA 3 1 1 …`) and the RFC 3597 form `\# 35 030101…`.
 *
 * @throws {@link SmtpTlsError} `ERR_TLSA_SYNTAX` naming the problem and its offset.
 * @example
 * ```ts
 * const r = parseTlsaRecord('DANE-EE SPKI SHA2-256 8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1')
 * // { usage: 3, selector: 1, matchingType: 1, data: Uint8Array(32) }
 * ```
 * @public
 */
export function parseTlsaRecord(text: string): TlsaRecord {
  try {
    return parseTlsaRecordChecked(text)
  } catch (e) {
    throw coded(e, 'parseTlsaRecord')
  }
}

function parseTlsaRecordChecked(text: string): TlsaRecord {
  if (typeof text !== 'string') {
    throw new SmtpTlsError('ERR_TLSA_SYNTAX', 'invalid TLSA record: input must be a string', { position: 0 })
  }
  const all = tokenize(text)
  // Zone-file or dig line: everything up to the TLSA type (RFC 1035 §5.1; TYPE52 per RFC 3597 §5).
  let first = 0
  for (let k = 0; k < all.length; k++) {
    const u = all[k]!.text.toUpperCase()
    if (u === 'TLSA' || u === 'TYPE52') {
      first = k + 1
      break
    }
  }
  const tokens = first === 0 ? all : all.slice(first)
  const end = text.length
  if (tokens.length === 0) syntax('empty record', end)
  if (tokens[0]!.text === '\\#') return parseGeneric(tokens, end)
  const usage = field(tokens[0], 'certificate usage', USAGE, end)
  const selector = field(tokens[1], 'selector', SELECTOR, end)
  const matchingType = field(tokens[2], 'matching type', MATCHING, end)
  const data = hexTokens(tokens, 3, end)
  return { usage, selector, matchingType, data }
}

/** RFC 3597 §5: `\# <rdlength> <hex>`. */
function parseGeneric(tokens: readonly Token[], end: number): TlsaRecord {
  const lenTok = tokens[1]
  if (lenTok === undefined) syntax('missing RDATA length after \\#', end)
  if (!/^[0-9]{1,5}$/.test(lenTok.text)) syntax(`RDATA length "${lenTok.text.slice(0, 20)}" is not a decimal number`, lenTok.pos)
  const len = Number(lenTok.text)
  const bytes = tokens.length > 2 ? hexTokens(tokens, 2, end) : new Uint8Array(0)
  if (bytes.length !== len) syntax(`RDATA length ${len} does not match ${bytes.length} bytes of hex`, lenTok.pos)
  try {
    return decodeTlsaRdata(bytes)
  } catch (e) {
    syntax(e instanceof Error ? e.message : 'malformed RDATA', tokens[2]?.pos ?? end)
  }
}
