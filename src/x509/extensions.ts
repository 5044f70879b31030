/**
 * The X.509 v3 extensions that DANE-TA path validation and name checks need (RFC 5280 §4.2),
 * read straight from the DER with the slicer. Every defect is an `ERR_CERT_PARSE` error.
 */
import { latin1 } from '../bytes.js'
import { SmtpTlsError } from '../errors.js'
import { expectTlv, newTlv, readTlv, TAG, type CertificateSlices } from './der.js'

/** Extension OIDs (content octets, lower-case hex) this module understands. */
export const EXT = {
  subjectKeyIdentifier: '551d0e', // 2.5.29.14
  keyUsage: '551d0f', // 2.5.29.15
  subjectAltName: '551d11', // 2.5.29.17
  issuerAltName: '551d12', // 2.5.29.18
  basicConstraints: '551d13', // 2.5.29.19
  nameConstraints: '551d1e', // 2.5.29.30
  crlDistributionPoints: '551d1f', // 2.5.29.31
  certificatePolicies: '551d20', // 2.5.29.32
  policyMappings: '551d21', // 2.5.29.33
  authorityKeyIdentifier: '551d23', // 2.5.29.35
  policyConstraints: '551d24', // 2.5.29.36
  extKeyUsage: '551d25', // 2.5.29.37
  inhibitAnyPolicy: '551d36', // 2.5.29.54
} as const

/**
 * Critical extensions a verifier may accept without processing more than we do (RFC 5280 §4.2:
 * a certificate with an unrecognised critical extension MUST be rejected). Policy extensions are
 * accepted as OpenSSL does without explicit policy checking; name constraints are processed.
 */
const RECOGNISED_CRITICAL = new Set<string>([
  EXT.keyUsage,
  EXT.subjectAltName,
  EXT.basicConstraints,
  EXT.nameConstraints,
  EXT.certificatePolicies,
  EXT.policyMappings,
  EXT.policyConstraints,
  EXT.extKeyUsage,
  EXT.inhibitAnyPolicy,
  EXT.crlDistributionPoints,
])

/** KeyUsage bits (RFC 5280 §4.2.1.3) as masks over the first content octet. */
export const KU = {
  digitalSignature: 0x80,
  keyEncipherment: 0x20,
  keyAgreement: 0x08,
  keyCertSign: 0x04,
} as const

/** id-kp-serverAuth 1.3.6.1.5.5.7.3.1 (RFC 5280 §4.2.1.12). */
export const EKU_SERVER_AUTH = '2b06010505070301'

/** A dNSName subtree of a NameConstraints extension (RFC 5280 §4.2.1.10). */
export interface NameConstraints {
  permittedDns: string[]
  excludedDns: string[]
  /** Names of GeneralName forms other than dNSName present in the constraints (not processed). */
  otherForms: string[]
}

/** What path validation and name matching read from a certificate's extensions. */
export interface ExtensionInfo {
  /** basicConstraints present (RFC 5280 §4.2.1.9). */
  hasBasicConstraints: boolean
  ca: boolean
  /** pathLenConstraint, or -1 when absent. */
  pathLen: number
  /** First KeyUsage octet, or -1 when the extension is absent. */
  keyUsage: number
  /** ExtendedKeyUsage OIDs (hex), or undefined when absent. */
  extKeyUsage: string[] | undefined
  /** dNSName entries of subjectAltName, as IA5 text (RFC 5280 §4.2.1.6). */
  dnsNames: string[]
  nameConstraints: NameConstraints | undefined
  /** Critical extensions this library does not process (OIDs in dotted form). */
  unknownCritical: string[]
}

function bad(what: string, at: number): never {
  throw new SmtpTlsError('ERR_CERT_PARSE', `malformed certificate extension: ${what} at offset ${at}`, { position: at })
}

function hexOf(buf: Uint8Array, start: number, end: number): string {
  let s = ''
  for (let i = start; i < end; i++) s += (buf[i]! < 16 ? '0' : '') + buf[i]!.toString(16)
  return s
}

/** Dotted form of an OID's content octets (X.690 §8.19), for messages. */
export function oidToDotted(buf: Uint8Array, start: number, end: number): string {
  const parts: number[] = []
  let v = 0
  for (let i = start; i < end; i++) {
    v = v * 128 + (buf[i]! & 0x7f)
    if ((buf[i]! & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80)
      else parts.push(v)
      v = 0
    }
  }
  return parts.join('.')
}

function ascii(buf: Uint8Array, start: number, end: number): string {
  return latin1(buf, start, end)
}

/** Read every extension of a certificate (RFC 5280 §4.1.2.9). Duplicate extensions are an error (§4.2). */
export function readExtensions(der: Uint8Array, s: CertificateSlices): ExtensionInfo {
  const info: ExtensionInfo = {
    hasBasicConstraints: false,
    ca: false,
    pathLen: -1,
    keyUsage: -1,
    extKeyUsage: undefined,
    dnsNames: [],
    nameConstraints: undefined,
    unknownCritical: [],
  }
  if (s.extensionsStart < 0) return info
  const t = newTlv()
  const seen = new Set<string>()
  // extensionsStart/End cover the whole Extensions SEQUENCE TLV.
  expectTlv(der, s.extensionsStart, s.extensionsEnd, TAG.SEQUENCE, t, 'Extensions')
  let p = t.valueStart
  const end = t.end
  if (p === end) bad('empty Extensions SEQUENCE (RFC 5280 §4.1: SIZE (1..MAX))', p)
  while (p < end) {
    expectTlv(der, p, end, TAG.SEQUENCE, t, 'Extension')
    const extEnd = t.end
    p = extEnd
    expectTlv(der, t.valueStart, extEnd, TAG.OID, t, 'extnID')
    const oidStart = t.valueStart
    const oidEnd = t.end
    if (oidEnd === oidStart) bad('empty OID', t.start)
    const oid = hexOf(der, oidStart, oidEnd)
    if (seen.has(oid)) bad(`duplicate extension ${oidToDotted(der, oidStart, oidEnd)} (RFC 5280 §4.2)`, t.start)
    seen.add(oid)
    let critical = false
    readTlv(der, t.end, extEnd, t)
    if (t.tag === TAG.BOOLEAN) {
      if (t.end - t.valueStart !== 1) bad('critical BOOLEAN', t.start)
      critical = der[t.valueStart] !== 0
      readTlv(der, t.end, extEnd, t)
    }
    if (t.tag !== TAG.OCTET_STRING || t.end !== extEnd) bad('extnValue OCTET STRING', t.start)
    const vStart = t.valueStart
    const vEnd = t.end
    switch (oid) {
      case EXT.basicConstraints:
        readBasicConstraints(der, vStart, vEnd, info)
        break
      case EXT.keyUsage:
        readKeyUsage(der, vStart, vEnd, info)
        break
      case EXT.extKeyUsage:
        info.extKeyUsage = readOidList(der, vStart, vEnd)
        break
      case EXT.subjectAltName:
        readGeneralNames(der, vStart, vEnd, info.dnsNames, undefined)
        break
      case EXT.nameConstraints:
        info.nameConstraints = readNameConstraints(der, vStart, vEnd)
        break
      default:
        if (critical && !RECOGNISED_CRITICAL.has(oid)) info.unknownCritical.push(oidToDotted(der, oidStart, oidEnd))
    }
  }
  return info
}

function readBasicConstraints(der: Uint8Array, start: number, end: number, info: ExtensionInfo): void {
  // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
  const t = expectTlv(der, start, end, TAG.SEQUENCE, newTlv(), 'BasicConstraints')
  if (t.end !== end) bad('trailing bytes after BasicConstraints', t.end)
  info.hasBasicConstraints = true
  let p = t.valueStart
  const seqEnd = t.end
  if (p < seqEnd && readTlv(der, p, seqEnd, t).tag === TAG.BOOLEAN) {
    if (t.end - t.valueStart !== 1) bad('cA BOOLEAN', t.start)
    info.ca = der[t.valueStart] !== 0
    p = t.end
  }
  if (p < seqEnd) {
    expectTlv(der, p, seqEnd, TAG.INTEGER, t, 'pathLenConstraint INTEGER')
    const n = t.end - t.valueStart
    if (n < 1 || n > 4 || (der[t.valueStart]! & 0x80) !== 0) bad('pathLenConstraint out of range', t.start)
    let v = 0
    for (let i = t.valueStart; i < t.end; i++) v = v * 256 + der[i]!
    info.pathLen = v
    if (t.end !== seqEnd) bad('trailing bytes in BasicConstraints', t.end)
  }
}

function readKeyUsage(der: Uint8Array, start: number, end: number, info: ExtensionInfo): void {
  const t = expectTlv(der, start, end, TAG.BIT_STRING, newTlv(), 'KeyUsage BIT STRING')
  if (t.end !== end || t.end - t.valueStart < 1) bad('KeyUsage', t.start)
  info.keyUsage = t.end - t.valueStart >= 2 ? der[t.valueStart + 1]! : 0
}

function readOidList(der: Uint8Array, start: number, end: number): string[] {
  const t = expectTlv(der, start, end, TAG.SEQUENCE, newTlv(), 'ExtKeyUsageSyntax')
  if (t.end !== end) bad('trailing bytes after ExtKeyUsageSyntax', t.end)
  const out: string[] = []
  let p = t.valueStart
  while (p < end) {
    expectTlv(der, p, end, TAG.OID, t, 'KeyPurposeId')
    out.push(hexOf(der, t.valueStart, t.end))
    p = t.end
  }
  return out
}

const GENERAL_NAME_FORMS = [
  'otherName',
  'rfc822Name',
  'dNSName',
  'x400Address',
  'directoryName',
  'ediPartyName',
  'uri',
  'iPAddress',
  'registeredID',
]

/**
 * GeneralNames (RFC 5280 §4.2.1.6): collect dNSName ([2] IA5String) entries; names of other forms
 * go to `other` when given.
 */
function readGeneralNames(der: Uint8Array, start: number, end: number, dns: string[], other: string[] | undefined): void {
  const t = expectTlv(der, start, end, TAG.SEQUENCE, newTlv(), 'GeneralNames')
  if (t.end !== end) bad('trailing bytes after GeneralNames', t.end)
  let p = t.valueStart
  while (p < end) {
    readTlv(der, p, end, t)
    if ((t.tag & 0xc0) !== 0x80) bad('GeneralName must be context-tagged', t.start)
    const form = t.tag & 0x1f
    if (form === 2) {
      if (t.tag !== 0x82) bad('dNSName must be primitive', t.start)
      dns.push(ascii(der, t.valueStart, t.end))
    } else if (other) other.push(GENERAL_NAME_FORMS[form] ?? `[${form}]`)
    p = t.end
  }
}

function readNameConstraints(der: Uint8Array, start: number, end: number): NameConstraints {
  // NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] ... }
  const nc: NameConstraints = { permittedDns: [], excludedDns: [], otherForms: [] }
  const t = expectTlv(der, start, end, TAG.SEQUENCE, newTlv(), 'NameConstraints')
  if (t.end !== end) bad('trailing bytes after NameConstraints', t.end)
  let p = t.valueStart
  while (p < end) {
    readTlv(der, p, end, t)
    const listEnd = t.end
    if (t.tag !== 0xa0 && t.tag !== 0xa1) bad('NameConstraints subtree tag', t.start)
    const into = t.tag === 0xa0 ? nc.permittedDns : nc.excludedDns
    let q = t.valueStart
    while (q < listEnd) {
      // GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0, maximum [1] OPTIONAL }
      expectTlv(der, q, listEnd, TAG.SEQUENCE, t, 'GeneralSubtree')
      const subEnd = t.end
      const baseTag = readTlv(der, t.valueStart, subEnd, t).tag
      if ((baseTag & 0xc0) !== 0x80) bad('GeneralSubtree base', t.start)
      const form = baseTag & 0x1f
      if (form === 2 && baseTag === 0x82) into.push(ascii(der, t.valueStart, t.end))
      else nc.otherForms.push(GENERAL_NAME_FORMS[form] ?? `[${form}]`)
      q = subEnd
    }
    p = listEnd
  }
  return nc
}

/** Character strings of X.520 attribute values (RFC 5280 §4.1.2.4), decoded for display and matching. */
export function decodeDirectoryString(der: Uint8Array, tag: number, start: number, end: number): string | undefined {
  const bytes = der.subarray(start, end)
  switch (tag) {
    case TAG.UTF8_STRING:
      return new TextDecoder('utf-8', { fatal: false }).decode(bytes)
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.T61_STRING:
      return ascii(der, start, end)
    case TAG.BMP_STRING: {
      if (bytes.length % 2 !== 0) return undefined
      let s = ''
      for (let i = 0; i < bytes.length; i += 2) s += String.fromCharCode((bytes[i]! << 8) | bytes[i + 1]!)
      return s
    }
    case TAG.UNIVERSAL_STRING: {
      if (bytes.length % 4 !== 0) return undefined
      let s = ''
      for (let i = 0; i < bytes.length; i += 4) {
        const cp = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0
        if (cp > 0x10ffff) return undefined
        s += String.fromCodePoint(cp)
      }
      return s
    }
    default:
      return undefined
  }
}

/** id-at-commonName 2.5.4.3 content octets. */
const CN_OID = [0x55, 0x04, 0x03]

/** The commonName values of a Name (RFC 5280 §4.1.2.4), in order. */
export function readCommonNames(der: Uint8Array, nameStart: number, nameEnd: number): string[] {
  const out: string[] = []
  const t = expectTlv(der, nameStart, nameEnd, TAG.SEQUENCE, newTlv(), 'Name')
  const end = t.end
  let p = t.valueStart
  while (p < end) {
    expectTlv(der, p, end, TAG.SET, t, 'RelativeDistinguishedName')
    const setEnd = t.end
    p = setEnd
    let q = t.valueStart
    while (q < setEnd) {
      expectTlv(der, q, setEnd, TAG.SEQUENCE, t, 'AttributeTypeAndValue')
      const avaEnd = t.end
      q = avaEnd
      expectTlv(der, t.valueStart, avaEnd, TAG.OID, t, 'AttributeType')
      const isCn =
        t.end - t.valueStart === 3 &&
        der[t.valueStart] === CN_OID[0] &&
        der[t.valueStart + 1] === CN_OID[1] &&
        der[t.valueStart + 2] === CN_OID[2]
      readTlv(der, t.end, avaEnd, t)
      if (isCn) {
        const v = decodeDirectoryString(der, t.tag, t.valueStart, t.end)
        if (v !== undefined) out.push(v)
      }
    }
  }
  return out
}
