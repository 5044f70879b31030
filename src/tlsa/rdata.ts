/** TLSA wire format (RFC 6698 §2.1) through `dns-packet`'s codec. */
import { coded, describeValue, invalidArgument, isBytes } from '../args.js'
import dnsPacket from 'dns-packet'
import { SmtpTlsError } from '../errors.js'
import type { TlsaRecord } from './types.js'

/** RDATA is at most 65535 bytes (RFC 1035 §3.2.1), three of them the fixed fields. */
export const MAX_TLSA_DATA = 65535 - 3

interface DnsPacketTlsa {
  usage: number
  selector: number
  matchingType: number
  certificate: Buffer
}
interface TlsaCodec {
  encode(data: DnsPacketTlsa): Buffer
  decode(buf: Buffer, offset?: number): DnsPacketTlsa
}
const codec = (dnsPacket as unknown as { tlsa: TlsaCodec }).tlsa

function rdataError(message: string): never {
  throw new SmtpTlsError('ERR_TLSA_RDATA', `malformed TLSA RDATA: ${message}`, { temporary: true })
}

/**
 * Decode TLSA RDATA (usage, selector, matching type, association data). RDATA of 3 bytes or fewer
 * carries no association data and is malformed (RFC 6698 §2.1.4).
 * @throws {@link SmtpTlsError} `ERR_TLSA_RDATA`
 * @public
 */
export function decodeTlsaRdata(rdata: Uint8Array): TlsaRecord {
  try {
    return decodeTlsaRdataChecked(rdata)
  } catch (e) {
    throw coded(e, 'decodeTlsaRdata')
  }
}

function decodeTlsaRdataChecked(rdata: Uint8Array): TlsaRecord {
  if (!(rdata instanceof Uint8Array)) rdataError('input must be a Uint8Array')
  if (rdata.length <= 3) rdataError(`${rdata.length} bytes; at least 4 are needed`)
  if (rdata.length > 65535) rdataError(`${rdata.length} bytes exceeds the 65535-byte RDATA limit`)
  // dns-packet's rdata codecs take the 16-bit RDLENGTH prefix as it stands in a message.
  const buf = Buffer.allocUnsafe(rdata.length + 2)
  buf.writeUInt16BE(rdata.length, 0)
  buf.set(rdata, 2)
  return fromDnsPacketTlsa(codec.decode(buf, 0))
}

/**
 * Convert `dns-packet`'s decoded TLSA answer data into a {@link TlsaRecord} (a copy of the data).
 * @public
 */
export function fromDnsPacketTlsa(d: { usage: number; selector: number; matchingType: number; certificate: Uint8Array }): TlsaRecord {
  try {
    return fromDnsPacketTlsaChecked(d)
  } catch (e) {
    throw coded(e, 'fromDnsPacketTlsa')
  }
}

function fromDnsPacketTlsaChecked(d: { usage: number; selector: number; matchingType: number; certificate: Uint8Array }): TlsaRecord {
  if (typeof d !== 'object' || d === null || !isBytes(d.certificate)) {
    throw invalidArgument(`fromDnsPacketTlsa needs a dns-packet TLSA record with certificate bytes, got ${describeValue(d)}`)
  }
  if (d.certificate.length === 0) rdataError('no certificate association data')
  return { usage: d.usage, selector: d.selector, matchingType: d.matchingType, data: new Uint8Array(d.certificate) }
}

/**
 * Encode a record as TLSA RDATA.
 * @throws {@link SmtpTlsError} `ERR_TLSA_RDATA` for out-of-range fields or empty or oversized data.
 * @public
 */
export function encodeTlsaRdata(r: TlsaRecord): Uint8Array {
  try {
    return encodeTlsaRdataChecked(r)
  } catch (e) {
    throw coded(e, 'encodeTlsaRdata')
  }
}

function encodeTlsaRdataChecked(r: TlsaRecord): Uint8Array {
  checkRecordShape(r, rdataError)
  const wire = codec.encode({
    usage: r.usage,
    selector: r.selector,
    matchingType: r.matchingType,
    certificate: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength),
  })
  return new Uint8Array(wire.buffer, wire.byteOffset + 2, wire.byteLength - 2)
}

/** Validate the shape of a caller-supplied record; `fail` throws the caller's coded error. */
export function checkRecordShape(r: TlsaRecord, fail: (message: string) => never): void {
  if (r === null || typeof r !== 'object') fail('record must be an object')
  for (const k of ['usage', 'selector', 'matchingType'] as const) {
    const v = r[k]
    if (!Number.isInteger(v) || v < 0 || v > 255) fail(`${k} must be an integer 0-255`)
  }
  if (!(r.data instanceof Uint8Array)) fail('data must be a Uint8Array')
  if (r.data.length === 0) fail('no certificate association data')
  if (r.data.length > MAX_TLSA_DATA) fail(`association data longer than ${MAX_TLSA_DATA} bytes`)
}
