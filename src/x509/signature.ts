/**
 * Certificate signature verification with node:crypto (RFC 5280 §4.1.1.2-4.1.1.3).
 *
 * The signature AlgorithmIdentifier is mapped to `crypto.verify` arguments; anything not listed
 * (SHA-1, MD5, DSA, unknown OIDs) is refused with a reason, never guessed.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto'
import { expectTlv, newTlv, readTlv, TAG } from './der.js'

type Family = 'rsa' | 'rsa-pss' | 'ec' | 'ed25519' | 'ed448'

interface Algorithm {
  name: string
  /** node digest name, or null for the EdDSA algorithms that hash internally */
  hash: string | null
  family: Family
}

/** Signature algorithm OIDs (content octets, hex) → how node verifies them. */
const ALGORITHMS: ReadonlyMap<string, Algorithm> = new Map([
  // RFC 4055 §5 / RFC 8017 A.2.4: sha{224,256,384,512}WithRSAEncryption
  ['2a864886f70d01010e', { name: 'sha224WithRSAEncryption', hash: 'sha224', family: 'rsa' }],
  ['2a864886f70d01010b', { name: 'sha256WithRSAEncryption', hash: 'sha256', family: 'rsa' }],
  ['2a864886f70d01010c', { name: 'sha384WithRSAEncryption', hash: 'sha384', family: 'rsa' }],
  ['2a864886f70d01010d', { name: 'sha512WithRSAEncryption', hash: 'sha512', family: 'rsa' }],
  // RFC 4055 §3.1: RSASSA-PSS; hash, MGF1 hash and salt length come from the parameters
  ['2a864886f70d01010a', { name: 'RSASSA-PSS', hash: null, family: 'rsa-pss' }],
  // RFC 5758 §3.2: ecdsa-with-SHA{256,384,512}
  ['2a8648ce3d040302', { name: 'ecdsa-with-SHA256', hash: 'sha256', family: 'ec' }],
  ['2a8648ce3d040303', { name: 'ecdsa-with-SHA384', hash: 'sha384', family: 'ec' }],
  ['2a8648ce3d040304', { name: 'ecdsa-with-SHA512', hash: 'sha512', family: 'ec' }],
  // RFC 8410 §3: Ed25519, Ed448
  ['2b6570', { name: 'Ed25519', hash: null, family: 'ed25519' }],
  ['2b6571', { name: 'Ed448', hash: null, family: 'ed448' }],
])

/** Refused on purpose, with the reason an operator can read. */
const WEAK: ReadonlyMap<string, string> = new Map([
  ['2a864886f70d010104', 'md5WithRSAEncryption'],
  ['2a864886f70d010105', 'sha1WithRSAEncryption'],
  ['2a8648ce3d0401', 'ecdsa-with-SHA1'],
  ['2a8648ce380403', 'dsa-with-sha1'],
])

/** Hash OIDs allowed inside RSASSA-PSS parameters (RFC 4055 §2.1; SHA-1 refused). */
const PSS_HASHES: ReadonlyMap<string, string> = new Map([
  ['608648016503040204', 'sha224'],
  ['608648016503040201', 'sha256'],
  ['608648016503040202', 'sha384'],
  ['608648016503040203', 'sha512'],
])
const MGF1 = '2a864886f70d010108'

function hexOf(buf: Uint8Array, start: number, end: number): string {
  let s = ''
  for (let i = start; i < end; i++) s += (buf[i]! < 16 ? '0' : '') + buf[i]!.toString(16)
  return s
}

/** How to verify one certificate's signature, decided once from its AlgorithmIdentifier. */
export type SignatureMethod =
  { ok: true; name: string; hash: string | null; family: Family; saltLength: number } | { ok: false; reason: string }

/**
 * Decode a signature AlgorithmIdentifier at `[start, end)` (the whole TLV). Never throws: a
 * malformed or unsupported algorithm is `{ ok: false, reason }`.
 */
export function signatureMethod(der: Uint8Array, start: number, end: number): SignatureMethod {
  try {
    const t = expectTlv(der, start, end, TAG.SEQUENCE, newTlv(), 'AlgorithmIdentifier')
    const algEnd = t.end
    expectTlv(der, t.valueStart, algEnd, TAG.OID, t, 'algorithm OID')
    const oid = hexOf(der, t.valueStart, t.end)
    const paramsStart = t.end
    const weak = WEAK.get(oid)
    if (weak !== undefined) return { ok: false, reason: `signature algorithm ${weak} is too weak` }
    const alg = ALGORITHMS.get(oid)
    if (alg === undefined) return { ok: false, reason: `unsupported signature algorithm (OID content ${oid})` }
    if (alg.family !== 'rsa-pss') {
      if (alg.family === 'rsa' && paramsStart < algEnd) {
        // RFC 4055 §5: parameters MUST be NULL (absent is tolerated, as OpenSSL does).
        readTlv(der, paramsStart, algEnd, t)
        if (t.tag !== TAG.NULL || t.end !== t.valueStart || t.end !== algEnd)
          return { ok: false, reason: `${alg.name} with parameters other than NULL` }
      } else if (alg.family !== 'rsa' && paramsStart !== algEnd) {
        // RFC 5758 §3.2, RFC 8410 §3: parameters MUST be absent.
        return { ok: false, reason: `${alg.name} with parameters (must be absent)` }
      }
      return { ok: true, name: alg.name, hash: alg.hash, family: alg.family, saltLength: 0 }
    }
    return pssMethod(der, paramsStart, algEnd)
  } catch {
    return { ok: false, reason: 'malformed signature AlgorithmIdentifier' }
  }
}

/** RSASSA-PSS-params (RFC 4055 §3.1): hashAlgorithm [0], maskGenAlgorithm [1], saltLength [2], trailerField [3]. */
function pssMethod(der: Uint8Array, start: number, end: number): SignatureMethod {
  if (start >= end) return { ok: false, reason: 'RSASSA-PSS without parameters (SHA-1 defaults are refused)' }
  const t = expectTlv(der, start, end, TAG.SEQUENCE, newTlv(), 'RSASSA-PSS-params')
  const pEnd = t.end
  let p = t.valueStart
  let hash: string | undefined
  let mgfHash: string | undefined
  let salt = 20
  while (p < pEnd) {
    readTlv(der, p, pEnd, t)
    const fieldEnd = t.end
    const tag = t.tag
    p = fieldEnd
    if (tag === 0xa0 || tag === 0xa1) {
      expectTlv(der, t.valueStart, fieldEnd, TAG.SEQUENCE, t, 'AlgorithmIdentifier')
      const aEnd = t.end
      expectTlv(der, t.valueStart, aEnd, TAG.OID, t, 'OID')
      const oid = hexOf(der, t.valueStart, t.end)
      if (tag === 0xa0) {
        hash = PSS_HASHES.get(oid)
        if (hash === undefined) return { ok: false, reason: 'RSASSA-PSS with an unsupported or weak hash' }
      } else {
        if (oid !== MGF1) return { ok: false, reason: 'RSASSA-PSS with a mask generation function other than MGF1' }
        expectTlv(der, t.end, aEnd, TAG.SEQUENCE, t, 'MGF1 hash AlgorithmIdentifier')
        expectTlv(der, t.valueStart, t.end, TAG.OID, t, 'OID')
        mgfHash = PSS_HASHES.get(hexOf(der, t.valueStart, t.end))
        if (mgfHash === undefined) return { ok: false, reason: 'RSASSA-PSS with an unsupported or weak MGF1 hash' }
      }
    } else if (tag === 0xa2) {
      expectTlv(der, t.valueStart, fieldEnd, TAG.INTEGER, t, 'saltLength')
      if (t.end - t.valueStart > 2) return { ok: false, reason: 'RSASSA-PSS salt length out of range' }
      salt = 0
      for (let i = t.valueStart; i < t.end; i++) salt = salt * 256 + der[i]!
    } else if (tag === 0xa3) {
      expectTlv(der, t.valueStart, fieldEnd, TAG.INTEGER, t, 'trailerField')
      if (t.end - t.valueStart !== 1 || der[t.valueStart] !== 1) return { ok: false, reason: 'RSASSA-PSS trailer field other than 1' }
    } else return { ok: false, reason: 'malformed RSASSA-PSS parameters' }
  }
  if (hash === undefined || mgfHash === undefined) return { ok: false, reason: 'RSASSA-PSS with SHA-1 default hash (refused)' }
  // node's crypto.verify uses the signature hash for MGF1 as well.
  if (hash !== mgfHash) return { ok: false, reason: 'RSASSA-PSS with different signature and MGF1 hashes (unsupported)' }
  return { ok: true, name: `RSASSA-PSS/${hash}`, hash, family: 'rsa-pss', saltLength: salt }
}

/**
 * Importing a public key costs more than verifying with it (RSA-2048: ~4x), and MTAs meet the same
 * issuers over and over, so imported keys are memoised by their exact SPKI bytes. A KeyObject is
 * a pure function of those bytes: the cache changes speed, never results. Bounded; oldest out first.
 */
const KEY_CACHE_MAX = 256
const keyCache = new Map<string, KeyObject | string>()

/** Empty the key memo (benchmarks measure the cold path with it). */
export function clearKeyCache(): void {
  keyCache.clear()
}

/** A public key from a DER SubjectPublicKeyInfo, or a reason why node cannot use it. */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject | string {
  const buf = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength)
  const id = buf.toString('latin1')
  const hit = keyCache.get(id)
  if (hit !== undefined) return hit
  let key: KeyObject | string
  try {
    key = createPublicKey({ key: buf, format: 'der', type: 'spki' })
  } catch (e) {
    key = `unusable public key (${e instanceof Error ? e.message : String(e)})`
  }
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!)
  keyCache.set(id, key)
  return key
}

/**
 * Verify `signature` over `tbs` with `key` using `method`. Returns `undefined` when valid, else
 * the reason. Never throws.
 */
export function verifySignature(method: SignatureMethod, tbs: Uint8Array, signature: Uint8Array, key: KeyObject): string | undefined {
  if (!method.ok) return method.reason
  const kt = key.asymmetricKeyType
  // The key must be of the algorithm's family: an ECDSA OID with an RSA key is a forgery attempt.
  const familyOk = method.family === 'rsa-pss' ? kt === 'rsa' || kt === 'rsa-pss' : kt === method.family
  if (!familyOk) return `${method.name} signature with a ${kt ?? 'unknown'} key`
  try {
    const ok =
      method.family === 'rsa-pss'
        ? verify(method.hash, tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: method.saltLength }, signature)
        : verify(method.hash, tbs, key, signature)
    return ok ? undefined : `bad ${method.name} signature`
  } catch (e) {
    return `${method.name} signature could not be checked (${e instanceof Error ? e.message : String(e)})`
  }
}
