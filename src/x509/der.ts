/**
 * A minimal, allocation-light DER reader for the hot path (TLSA matching).
 *
 * It reads tag-length-value headers and returns offsets into the caller's buffer; it never copies
 * and never reads outside `[start, end)`. Only definite, minimal (DER, X.690 §10.1) lengths are
 * accepted; indefinite lengths (BER) and high tag numbers are rejected. Every defect is an
 * {@link SmtpTlsError} with code `ERR_CERT_PARSE`.
 */
import { SmtpTlsError } from '../errors.js'

/** ASN.1 universal tags used by X.509 (X.680 §8.6). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

/** A decoded TLV header. Reused by callers to avoid allocating one object per element. */
export interface Tlv {
  /** The identifier octet. */
  tag: number
  /** Offset of the identifier octet. */
  start: number
  /** Offset of the first content octet. */
  valueStart: number
  /** Offset one past the last content octet. */
  end: number
}

/** A fresh, zeroed {@link Tlv} to reuse across {@link readTlv} calls. */
export function newTlv(): Tlv {
  return { tag: 0, start: 0, valueStart: 0, end: 0 }
}

function fail(what: string, offset: number): never {
  throw new SmtpTlsError('ERR_CERT_PARSE', `malformed DER: ${what} at offset ${offset}`, {
    position: offset,
    temporary: true,
  })
}

/**
 * Read the TLV that starts at `offset`, which must end at or before `limit`. Fills `out` and
 * returns it.
 */
export function readTlv(buf: Uint8Array, offset: number, limit: number, out: Tlv): Tlv {
  if (offset + 2 > limit) fail('truncated header', offset)
  const tag = buf[offset]!
  // X.690 §8.1.2.4: tag number 31 means a multi-byte tag; nothing in X.509 needs one.
  if ((tag & 0x1f) === 0x1f) fail('high tag number form', offset)
  let lenByte = buf[offset + 1]!
  let p = offset + 2
  let len: number
  if (lenByte < 0x80) {
    len = lenByte
  } else {
    lenByte &= 0x7f
    // X.690 §10.1: DER forbids the indefinite form (0x80).
    if (lenByte === 0) fail('indefinite length', offset)
    if (lenByte > 4) fail('length too large', offset)
    if (p + lenByte > limit) fail('truncated length', offset)
    if (buf[p] === 0) fail('non-minimal length', offset)
    len = 0
    for (let i = 0; i < lenByte; i++) len = len * 256 + buf[p + i]!
    if (len < 0x80) fail('non-minimal length', offset)
    p += lenByte
  }
  if (len > limit - p) fail('content overruns its container', offset)
  out.tag = tag
  out.start = offset
  out.valueStart = p
  out.end = p + len
  return out
}

/** Read a TLV and require its tag. */
export function expectTlv(buf: Uint8Array, offset: number, limit: number, tag: number, out: Tlv, what: string): Tlv {
  readTlv(buf, offset, limit, out)
  if (out.tag !== tag) fail(`expected ${what}`, offset)
  return out
}

/** Offsets of the parts of an X.509 certificate (RFC 5280 §4.1), each as `[start, end)` of the whole TLV. */
export interface CertificateSlices {
  /** TBSCertificate, the signed bytes. */
  tbsStart: number
  tbsEnd: number
  /** TBSCertificate version: 0 for v1, 2 for v3. */
  version: number
  serialStart: number
  serialEnd: number
  /** The signature AlgorithmIdentifier inside TBSCertificate. */
  tbsSigAlgStart: number
  tbsSigAlgEnd: number
  issuerStart: number
  issuerEnd: number
  /** The UTCTime/GeneralizedTime TLVs. */
  notBeforeStart: number
  notBeforeEnd: number
  notAfterStart: number
  notAfterEnd: number
  subjectStart: number
  subjectEnd: number
  /** SubjectPublicKeyInfo, the input of the SPKI(1) selector (RFC 6698 §2.1.2). */
  spkiStart: number
  spkiEnd: number
  /** Content of the `[3]` wrapper: the `Extensions` SEQUENCE, or -1 when absent. */
  extensionsStart: number
  extensionsEnd: number
  /** The outer signatureAlgorithm AlgorithmIdentifier. */
  sigAlgStart: number
  sigAlgEnd: number
  /** Content of the signatureValue BIT STRING, without the unused-bits octet. */
  signatureStart: number
  signatureEnd: number
}

const scratch = newTlv()

function isTime(tag: number): boolean {
  return tag === TAG.UTC_TIME || tag === TAG.GENERALIZED_TIME
}

/**
 * Locate the parts of a DER certificate without copying anything (RFC 5280 §4.1).
 *
 * The whole buffer must be exactly one certificate: trailing bytes are an error.
 * Throws {@link SmtpTlsError} `ERR_CERT_PARSE` on any defect.
 */
export function sliceCertificate(der: Uint8Array): CertificateSlices {
  const t = scratch
  const end = der.length
  expectTlv(der, 0, end, TAG.SEQUENCE, t, 'Certificate SEQUENCE')
  if (t.end !== end) fail('trailing bytes after certificate', t.end)
  const certEnd = t.end
  // tbsCertificate
  expectTlv(der, t.valueStart, certEnd, TAG.SEQUENCE, t, 'TBSCertificate SEQUENCE')
  const tbsStart = t.start
  const tbsEnd = t.end
  let p = t.valueStart
  let version = 0
  if (readTlv(der, p, tbsEnd, t).tag === 0xa0) {
    // [0] EXPLICIT Version
    const vEnd = t.end
    expectTlv(der, t.valueStart, vEnd, TAG.INTEGER, t, 'version INTEGER')
    if (t.end !== vEnd || t.end - t.valueStart !== 1) fail('bad version', t.start)
    version = der[t.valueStart]!
    if (version > 2) fail('unknown certificate version', t.start)
    p = vEnd
  }
  expectTlv(der, p, tbsEnd, TAG.INTEGER, t, 'serialNumber INTEGER')
  const serialStart = t.start
  const serialEnd = t.end
  expectTlv(der, t.end, tbsEnd, TAG.SEQUENCE, t, 'signature AlgorithmIdentifier')
  const tbsSigAlgStart = t.start
  const tbsSigAlgEnd = t.end
  expectTlv(der, t.end, tbsEnd, TAG.SEQUENCE, t, 'issuer Name')
  const issuerStart = t.start
  const issuerEnd = t.end
  expectTlv(der, t.end, tbsEnd, TAG.SEQUENCE, t, 'Validity SEQUENCE')
  const validityEnd = t.end
  if (!isTime(readTlv(der, t.valueStart, validityEnd, t).tag)) fail('expected notBefore time', t.start)
  const notBeforeStart = t.start
  const notBeforeEnd = t.end
  if (!isTime(readTlv(der, t.end, validityEnd, t).tag)) fail('expected notAfter time', t.start)
  const notAfterStart = t.start
  const notAfterEnd = t.end
  if (t.end !== validityEnd) fail('trailing bytes in Validity', t.end)
  expectTlv(der, validityEnd, tbsEnd, TAG.SEQUENCE, t, 'subject Name')
  const subjectStart = t.start
  const subjectEnd = t.end
  expectTlv(der, t.end, tbsEnd, TAG.SEQUENCE, t, 'SubjectPublicKeyInfo')
  const spkiStart = t.start
  const spkiEnd = t.end
  checkSpkiBody(der, t.valueStart, spkiEnd)
  p = spkiEnd
  let extensionsStart = -1
  let extensionsEnd = -1
  while (p < tbsEnd) {
    const tag = readTlv(der, p, tbsEnd, t).tag
    if (tag === 0x81 || tag === 0xa1 || tag === 0x82 || tag === 0xa2) {
      // issuerUniqueID / subjectUniqueID (RFC 5280 §4.1.2.8), skipped
      p = t.end
      continue
    }
    if (tag === 0xa3) {
      const wrapEnd = t.end
      expectTlv(der, t.valueStart, wrapEnd, TAG.SEQUENCE, t, 'Extensions SEQUENCE')
      if (t.end !== wrapEnd) fail('trailing bytes after Extensions', t.end)
      extensionsStart = t.start
      extensionsEnd = t.end
      p = wrapEnd
      if (p !== tbsEnd) fail('data after Extensions', p)
      break
    }
    fail('unexpected element in TBSCertificate', p)
  }
  // signatureAlgorithm, signatureValue
  expectTlv(der, tbsEnd, certEnd, TAG.SEQUENCE, t, 'signatureAlgorithm')
  const sigAlgStart = t.start
  const sigAlgEnd = t.end
  expectTlv(der, t.end, certEnd, TAG.BIT_STRING, t, 'signatureValue BIT STRING')
  if (t.end !== certEnd) fail('trailing bytes in Certificate', t.end)
  if (t.end - t.valueStart < 1 || der[t.valueStart] !== 0) fail('signature BIT STRING with unused bits', t.start)
  return {
    tbsStart,
    tbsEnd,
    version,
    serialStart,
    serialEnd,
    tbsSigAlgStart,
    tbsSigAlgEnd,
    issuerStart,
    issuerEnd,
    notBeforeStart,
    notBeforeEnd,
    notAfterStart,
    notAfterEnd,
    subjectStart,
    subjectEnd,
    spkiStart,
    spkiEnd,
    extensionsStart,
    extensionsEnd,
    sigAlgStart,
    sigAlgEnd,
    signatureStart: t.valueStart + 1,
    signatureEnd: t.end,
  }
}

/** SubjectPublicKeyInfo body: AlgorithmIdentifier SEQUENCE { OID, params? }, BIT STRING (RFC 5280 §4.1.2.7). */
function checkSpkiBody(der: Uint8Array, start: number, end: number): void {
  const t = newTlv()
  expectTlv(der, start, end, TAG.SEQUENCE, t, 'AlgorithmIdentifier SEQUENCE')
  const algEnd = t.end
  expectTlv(der, t.valueStart, algEnd, TAG.OID, t, 'algorithm OID')
  if (t.end === t.valueStart) fail('empty OID', t.start)
  if (t.end < algEnd) {
    readTlv(der, t.end, algEnd, t)
    if (t.end !== algEnd) fail('trailing bytes in AlgorithmIdentifier', t.end)
  }
  expectTlv(der, algEnd, end, TAG.BIT_STRING, t, 'subjectPublicKey BIT STRING')
  if (t.end !== end) fail('trailing bytes in SubjectPublicKeyInfo', t.end)
  if (t.end - t.valueStart < 1) fail('empty BIT STRING', t.start)
}

/**
 * Locate the SubjectPublicKeyInfo of a DER certificate: the SPKI(1) selector input.
 * Returns a view into `der` (no copy). Hot path of DANE-EE `3 1 x` matching.
 */
export function spkiOf(der: Uint8Array): Uint8Array {
  const s = sliceCertificate(der)
  return der.subarray(s.spkiStart, s.spkiEnd)
}

/** True when `der` is exactly one well-formed DER certificate (RFC 6698 §2.1.2, selector 0 with Full data). */
export function isCertificateDer(der: Uint8Array): boolean {
  try {
    sliceCertificate(der)
    return true
  } catch {
    return false
  }
}

/** True when `der` is exactly one well-formed DER SubjectPublicKeyInfo (selector 1 with Full data). */
export function isSpkiDer(der: Uint8Array): boolean {
  try {
    const t = expectTlv(der, 0, der.length, TAG.SEQUENCE, newTlv(), 'SubjectPublicKeyInfo')
    if (t.end !== der.length) return false
    checkSpkiBody(der, t.valueStart, t.end)
    return true
  } catch {
    return false
  }
}

function digits(buf: Uint8Array, p: number, n: number, at: number): number {
  let v = 0
  for (let i = 0; i < n; i++) {
    const c = buf[p + i]! - 0x30
    if (c < 0 || c > 9) fail('non-digit in time', at)
    v = v * 10 + c
  }
  return v
}

/**
 * Decode a UTCTime or GeneralizedTime TLV at `[start, end)` to milliseconds since the epoch.
 * RFC 5280 §4.1.2.5: UTCTime is YYMMDDHHMMSSZ (YY ≥ 50 means 19YY), GeneralizedTime YYYYMMDDHHMMSSZ.
 */
export function decodeTime(der: Uint8Array, start: number, end: number): number {
  const t = readTlv(der, start, end, newTlv())
  const p = t.valueStart
  const len = t.end - p
  let year: number
  let q: number
  if (t.tag === TAG.UTC_TIME) {
    if (len !== 13) fail('UTCTime must be YYMMDDHHMMSSZ', start)
    year = digits(der, p, 2, start)
    year += year >= 50 ? 1900 : 2000
    q = p + 2
  } else if (t.tag === TAG.GENERALIZED_TIME) {
    if (len !== 15) fail('GeneralizedTime must be YYYYMMDDHHMMSSZ', start)
    year = digits(der, p, 4, start)
    q = p + 4
  } else {
    fail('expected a time', start)
  }
  if (der[t.end - 1] !== 0x5a /* Z */) fail('time not in UTC', start)
  const month = digits(der, q, 2, start)
  const day = digits(der, q + 2, 2, start)
  const hour = digits(der, q + 4, 2, start)
  const minute = digits(der, q + 6, 2, start)
  const second = digits(der, q + 8, 2, start)
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    fail('time out of range', start)
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second)
  // Date.UTC maps years 0-99 to 1900-1999; GeneralizedTime means what it says.
  return year < 100 ? new Date(ms).setUTCFullYear(year) : ms
}
