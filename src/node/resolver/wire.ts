/**
 * DNS messages on the wire (RFC 1035 §4.1) through `dns-packet`, hardened: every response is framed and
 * bounds-checked here before `dns-packet` decodes a single record, and any defect becomes a coded
 * `ERR_DNS_MALFORMED` instead of an exception from inside the codec.
 */
import dnsPacket from 'dns-packet'
import { SmtpTlsError } from '../../errors.js'
import type { DnsRecordData, DnsRecordType, UndecodableRecord } from '../../dns/types.js'
import { fromDnsPacketTlsa } from '../../tlsa/rdata.js'

/** RFC 1035 type codes of what we decode. */
export const TYPE_CODE: Readonly<Record<DnsRecordType, number>> = { A: 1, CNAME: 5, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 }
const TYPE_SOA = 6
const TYPE_OPT = 41
const CLASS_IN = 1
/** EDNS0 UDP payload size: the DNS Flag Day 2020 value that avoids IP fragmentation. */
export const EDNS_UDP_PAYLOAD = 1232
/** RFC 8914 §2: the Extended DNS Error option code. */
const OPTION_EDE = 15
/** Longest CNAME chain followed (Postfix and most stubs use 8 or fewer). */
export const MAX_CNAME_CHAIN = 8

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE']

export function malformed(message: string, cause?: unknown): SmtpTlsError {
  return new SmtpTlsError('ERR_DNS_MALFORMED', `malformed DNS response: ${message}`, cause === undefined ? {} : { cause })
}

/**
 * Check and normalise a query name: ASCII letters, digits, `-` and `_` (service labels, RFC 6698 §3),
 * labels of 1-63 octets, at most 253 octets in all (RFC 1035 §2.3.4). Returns lower case without the final dot.
 */
export function normaliseName(name: unknown): string {
  if (typeof name !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'a DNS name must be a string')
  // One scan, no allocation when the name is already in normal form (every lookup of a connection
  // passes here; issue 11): lower case, labels of [a-z0-9_-], no final dot.
  const n = name.length
  let label = 0
  let normal = n > 0 && n <= 253
  for (let i = 0; normal && i < n; i++) {
    const c = name.charCodeAt(i)
    if (c === 0x2e) {
      if (label === 0) normal = false
      label = 0
    } else if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) {
      if (++label > 63) normal = false
    } else normal = false
  }
  if (normal && label > 0) return name
  return normaliseSlow(name)
}

function normaliseSlow(name: string): string {
  let n = name.toLowerCase()
  if (n.endsWith('.')) n = n.slice(0, -1)
  if (n.length === 0 || n.length > 253) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `invalid DNS name ${JSON.stringify(name)}: length`)
  for (const label of n.split('.')) {
    if (label.length === 0 || label.length > 63 || !/^[a-z0-9_-]+$/.test(label)) {
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `invalid DNS name ${JSON.stringify(name)}: label ${JSON.stringify(label)}`)
    }
  }
  return n
}

/** A query ready to send, and what a matching response must echo. */
export interface EncodedQuery {
  id: number
  /** The DNS message (UDP form). */
  message: Buffer
  /** Offset range of the question section inside `message`. */
  questionEnd: number
}

/**
 * Encode a recursive query with EDNS0 (RFC 6891: UDP payload 1232), the DO bit (RFC 3225: send DNSSEC records)
 * and the AD bit (RFC 6840 §5.7: ask the validating resolver to report AD).
 */
export function encodeQuery(id: number, name: string, type: DnsRecordType): EncodedQuery {
  const message = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
    questions: [{ name, type, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_PAYLOAD, flags: dnsPacket.DNSSEC_OK, options: [] } as never],
  })
  // header (12) + encoded name (length of `name` + 2) + type + class
  return { id, message, questionEnd: 12 + name.length + 2 + 4 }
}

/** What {@link matchResponse} decides about a datagram. */
export type MatchVerdict = 'accept' | 'drop'

/**
 * Anti-spoofing (RFC 5452 §4.3, §9.1): a response is considered only when it is a response (QR), carries our
 * ID, exactly one question, and that question equals ours (name case-insensitively, type and class exactly).
 * Anything else is dropped, never trusted. The caller checks the source address and port.
 */
export function matchResponse(buf: Uint8Array, q: EncodedQuery): MatchVerdict {
  if (buf.length < q.questionEnd) return 'drop'
  if (buf[0] !== q.message[0] || buf[1] !== q.message[1]) return 'drop'
  if (((buf[2] as number) & 0x80) === 0) return 'drop' // QR
  if (((buf[2] as number) & 0x78) !== 0) return 'drop' // OPCODE must be QUERY
  if (buf[4] !== 0 || buf[5] !== 1) return 'drop' // QDCOUNT 1
  for (let i = 12; i < q.questionEnd; i++) {
    let a = buf[i] as number
    let b = q.message[i] as number
    if (a >= 0x41 && a <= 0x5a) a |= 0x20
    if (b >= 0x41 && b <= 0x5a) b |= 0x20
    if (a !== b) return 'drop'
  }
  return 'accept'
}

/** One resource record as it sits in the message. */
interface RawRecord {
  /** offset of the owner name */
  start: number
  end: number
  type: number
  klass: number
  ttl: number
  rdStart: number
  rdLength: number
}

/** A response, framed and checked, with the answer section decoded. */
export interface ParsedResponse {
  rcode: string
  /** TC: truncated, retry over TCP (RFC 7766 §5). */
  truncated: boolean
  /** AD: authentic data (RFC 4035 §3.2.3), meaningful only from a trusted validating resolver. */
  authenticData: boolean
  /** Answer-section records of the decoded types, class IN. */
  answers: { name: string; type: DnsRecordType; ttl: number; data: DnsRecordData[DnsRecordType] }[]
  /** RFC 2308 §5 negative-caching TTL from the authority SOA: min(SOA TTL, SOA MINIMUM); undefined without SOA. */
  negativeTtl: number | undefined
  /** RFC 8914 Extended DNS Errors. */
  extendedErrors: { code: number; text: string }[]
  /**
   * Answer-section records of a decoded type that are framed correctly but cannot be decoded: TLSA RDATA of
   * 3 octets or fewer (RFC 6698 §2.1). They are left out of `answers`; the rest of the message stands.
   */
  undecodable: { name: string; type: DnsRecordType; ttl: number; record: UndecodableRecord }[]
}

/**
 * Skip a (possibly compressed) domain name at `off`, checking it (RFC 1035 §4.1.4): pointers only to earlier
 * octets (so no loops), labels of at most 63 octets, 255 octets in all. Returns the offset after the name's
 * in-place octets. With `hostname`, also refuses label octets that would make the text form ambiguous ('.',
 * controls, non-ASCII) since such names are compared and reported.
 */
function skipName(buf: Uint8Array, off: number, limit: number, hostname: boolean): number {
  let pos = off
  let end = -1
  let total = 0
  let floor = off // a pointer must go strictly below the start of what it was read from
  for (let hops = 0; ;) {
    if (pos >= limit) throw malformed('name runs past the end')
    const len = buf[pos] as number
    if (len === 0) {
      if (end < 0) end = pos + 1
      if (total + 1 > 255) throw malformed('name longer than 255 octets')
      return end
    }
    const kind = len & 0xc0
    if (kind === 0xc0) {
      if (pos + 1 >= limit) throw malformed('truncated compression pointer')
      const target = ((len & 0x3f) << 8) | (buf[pos + 1] as number)
      if (end < 0) end = pos + 2
      if (target >= floor) throw malformed('compression pointer does not point backwards (loop)')
      if (++hops > 127) throw malformed('too many compression pointers')
      floor = target
      pos = target
      continue
    }
    if (kind !== 0) throw malformed('unknown label type')
    if (pos + 1 + len > limit) throw malformed('label runs past the end')
    if (hostname) {
      for (let i = pos + 1; i <= pos + len; i++) {
        const c = buf[i] as number
        if (c <= 0x20 || c >= 0x7f || c === 0x2e) throw malformed('unexpected octet in a host name')
      }
    }
    total += len + 1
    if (total > 255) throw malformed('name longer than 255 octets')
    pos += len + 1
  }
}

function u16(buf: Uint8Array, off: number): number {
  return ((buf[off] as number) << 8) | (buf[off + 1] as number)
}
function u32(buf: Uint8Array, off: number): number {
  return (
    (((buf[off] as number) << 24) | ((buf[off + 1] as number) << 16) | ((buf[off + 2] as number) << 8) | (buf[off + 3] as number)) >>> 0
  )
}

const CODE_TO_TYPE = new Map<number, DnsRecordType>(Object.entries(TYPE_CODE).map(([k, v]) => [v, k as DnsRecordType]))

/** Per-type RDATA shape checks, so `dns-packet` never reads outside a record. */
function checkRdata(buf: Uint8Array, r: RawRecord): void {
  const end = r.rdStart + r.rdLength
  switch (r.type) {
    case 1:
      if (r.rdLength !== 4) throw malformed(`A record of ${r.rdLength} octets`)
      return
    case 28:
      if (r.rdLength !== 16) throw malformed(`AAAA record of ${r.rdLength} octets`)
      return
    case 5:
      if (skipName(buf, r.rdStart, end, true) !== end) throw malformed('CNAME RDATA length mismatch')
      return
    case 15:
      if (r.rdLength < 3) throw malformed('MX RDATA too short')
      if (skipName(buf, r.rdStart + 2, end, true) !== end) throw malformed('MX RDATA length mismatch')
      return
    case 52:
      // RFC 6698 §2.1: any length frames; RDATA of 3 octets or fewer is one unusable record, not a bad message
      return
    case 16: {
      let p = r.rdStart
      while (p < end) p += 1 + (buf[p] as number)
      if (p !== end) throw malformed('TXT character-string runs past its record')
      return
    }
    case TYPE_SOA: {
      const afterMname = skipName(buf, r.rdStart, end, false)
      const afterRname = skipName(buf, afterMname, end, false)
      if (afterRname + 20 !== end) throw malformed('SOA RDATA length mismatch')
      return
    }
  }
}

interface AnswerCodec {
  decode: ((buf: Buffer, offset: number) => { name: string; data: unknown }) & { bytes: number }
}
/** `dns-packet`'s per-record decoder (exported at runtime, absent from its type declarations). */
const answerCodec = (dnsPacket as unknown as { answer: AnswerCodec }).answer

const textDecoder = new TextDecoder('utf-8', { fatal: false })

/**
 * Frame and check a whole response, then decode what we use. Throws only `ERR_DNS_MALFORMED`.
 * Checks: section counts agree with the octets present (no missing, no trailing records), every RDATA
 * inside the message, known RDATA shapes exact, at most one OPT (RFC 6891 §6.1.1) and only in the
 * additional section.
 */
export function parseResponse(buf: Uint8Array): ParsedResponse {
  if (buf.length < 12) throw malformed('shorter than a header')
  const flags = u16(buf, 2)
  const counts = [u16(buf, 4), u16(buf, 6), u16(buf, 8), u16(buf, 10)] as const
  // The smallest record is 11 octets (root name + 10), a question 5: wrong counts are caught early.
  if (counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * 11 > buf.length - 12) throw malformed('section counts exceed the message size')
  let off = 12
  for (let i = 0; i < counts[0]; i++) {
    off = skipName(buf, off, buf.length, false) + 4
    if (off > buf.length) throw malformed('question runs past the end')
  }
  const sections: RawRecord[][] = [[], [], []]
  for (let s = 0; s < 3; s++) {
    const n = counts[s + 1] as number
    for (let i = 0; i < n; i++) {
      const start = off
      off = skipName(buf, off, buf.length, s === 0)
      if (off + 10 > buf.length) throw malformed('record header runs past the end')
      const rdLength = u16(buf, off + 8)
      const rdStart = off + 10
      const end = rdStart + rdLength
      if (end > buf.length) throw malformed('RDATA runs past the end')
      const rec: RawRecord = { start, end, type: u16(buf, off), klass: u16(buf, off + 2), ttl: u32(buf, off + 4), rdStart, rdLength }
      if (rec.type === TYPE_OPT && s !== 2) throw malformed('OPT record outside the additional section')
      checkRdata(buf, rec)
      ;(sections[s] as RawRecord[]).push(rec)
      off = end
    }
  }
  if (off !== buf.length) throw malformed(`${buf.length - off} octets after the last record`)

  let rcodeValue = flags & 0x0f
  const extendedErrors: { code: number; text: string }[] = []
  const opts = (sections[2] as RawRecord[]).filter((r) => r.type === TYPE_OPT)
  if (opts.length > 1) throw malformed('more than one OPT record')
  const opt = opts[0]
  if (opt) {
    if (buf[opt.start] !== 0) throw malformed('OPT owner is not the root')
    rcodeValue |= ((opt.ttl >>> 24) & 0xff) << 4 // RFC 6891 §6.1.3 extended RCODE
    const end = opt.rdStart + opt.rdLength
    for (let p = opt.rdStart; p < end;) {
      if (p + 4 > end) throw malformed('EDNS option header runs past the OPT record')
      const code = u16(buf, p)
      const len = u16(buf, p + 2)
      if (p + 4 + len > end) throw malformed('EDNS option runs past the OPT record')
      if (code === OPTION_EDE && len >= 2) {
        extendedErrors.push({ code: u16(buf, p + 4), text: textDecoder.decode(buf.subarray(p + 6, p + 4 + len)) })
      }
      p += 4 + len
    }
  }

  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  const answers: ParsedResponse['answers'] = []
  const undecodable: ParsedResponse['undecodable'] = []
  try {
    for (const r of sections[0] as RawRecord[]) {
      const type = CODE_TO_TYPE.get(r.type)
      if (type === undefined || r.klass !== CLASS_IN) continue
      if (type === 'TLSA' && r.rdLength <= 3) {
        undecodable.push({ name: ownerName(b, r.start), type, ttl: ttl31(r.ttl), record: shortTlsa(buf, r) })
        continue
      }
      const a = answerCodec.decode(b, r.start)
      if (answerCodec.decode.bytes !== r.end - r.start) throw malformed(`${type} record decoded to a different length`)
      answers.push({ name: a.name.toLowerCase(), type, ttl: ttl31(r.ttl), data: convert(type, a.data) })
    }
  } catch (e) {
    if (e instanceof SmtpTlsError && e.code === 'ERR_DNS_MALFORMED') throw e
    throw malformed(e instanceof Error ? e.message : String(e), e)
  }

  let negativeTtl: number | undefined
  for (const r of sections[1] as RawRecord[]) {
    if (r.type !== TYPE_SOA || r.klass !== CLASS_IN) continue
    const minimum = u32(buf, r.rdStart + r.rdLength - 4)
    negativeTtl = Math.min(ttl31(r.ttl), ttl31(minimum))
    break
  }

  return {
    rcode: RCODES[rcodeValue] ?? `RCODE${rcodeValue}`,
    truncated: (flags & 0x0200) !== 0,
    authenticData: (flags & 0x0020) !== 0,
    answers,
    negativeTtl,
    extendedErrors,
    undecodable,
  }
}

/** The owner name of a record (already checked by {@link skipName}), lower case, no trailing dot. */
function ownerName(b: Buffer, start: number): string {
  return (dnsPacket as unknown as { name: { decode(buf: Buffer, offset: number): string } }).name.decode(b, start).toLowerCase()
}

/**
 * A TLSA record too short to hold the three one-octet fields and any certificate association data
 * (RFC 6698 §2.1). Postfix (`dns_get_rr`, `parse_tlsa_rr` "truncated TLSA RR") drops such a record and goes on with
 * the rest of the RRset, as RFC 6698 §4.1 does with every unusable record; so do we, and say why.
 */
function shortTlsa(buf: Uint8Array, r: RawRecord): UndecodableRecord {
  const rdata = Buffer.from(buf.subarray(r.rdStart, r.rdStart + r.rdLength)).toString('hex')
  return {
    rdata,
    reason: `TLSA RDATA of ${r.rdLength} octet${r.rdLength === 1 ? '' : 's'}${r.rdLength === 0 ? '' : ` (${rdata})`}: no certificate association data (RFC 6698 §2.1), record unusable`,
  }
}

/** RFC 2181 §8: a TTL with the top bit set is treated as zero. */
function ttl31(t: number): number {
  return t > 0x7fffffff ? 0 : t
}

function convert(type: DnsRecordType, d: unknown): DnsRecordData[DnsRecordType] {
  switch (type) {
    case 'A':
    case 'AAAA':
      return d as string
    case 'CNAME':
      return lowerName(d as string)
    case 'MX': {
      const m = d as { preference: number; exchange: string }
      return { preference: m.preference, exchange: m.exchange === '.' ? '.' : lowerName(m.exchange) }
    }
    case 'TXT':
      return Buffer.concat(d as Buffer[]).toString('utf8')
    case 'TLSA': {
      const t = d as { usage: number; selector: number; matchingType: number; certificate: Buffer }
      try {
        return fromDnsPacketTlsa(t)
      } catch (e) {
        throw malformed('TLSA RDATA', e)
      }
    }
  }
}

function lowerName(n: string): string {
  return n.toLowerCase()
}

/** Read the message ID of a (possibly malformed) datagram, or -1. */
export function messageId(buf: Uint8Array): number {
  return buf.length >= 2 ? u16(buf, 0) : -1
}
