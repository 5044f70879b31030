/**
 * The facts of an established TLS session that a `Received:` clause reports
 * (`formatReceivedTlsClause`), gathered from a Node `TLSSocket` on either side.
 *
 * What Node cannot tell (Node 20):
 * - On the server side there is no API for the negotiated key-exchange group
 *   (`getEphemeralKeyInfo()` returns `null` there). It is known only when the server offers a
 *   single group (`ecdhCurve: 'X25519'`): pass that as `ecdhCurve`. Otherwise `keyExchange` is left
 *   out and listed in `unknown`.
 * - No side can read which signature scheme was used. It is inferred from the signing key (its type
 *   and size) and the first shared scheme that fits it in `getSharedSigalgs()` order, which is the
 *   order OpenSSL picks from; TLS 1.3 forbids PKCS#1 v1.5 and ties ECDSA's digest to the curve
 *   (RFC 8446 §4.2.3).
 * - Cipher bits (OpenSSL `SSL_CIPHER_get_bits`) are not exposed: they come from the cipher name.
 */
import { coded } from '../args.js'
import { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { SmtpTlsError } from '../errors.js'
import type { ReceivedClientCertificate, TlsKeyExchangeFacts, TlsSessionFacts, TlsSignatureFacts } from '../received/clause.js'

/** Options of {@link tlsSessionFacts}. @public */
export interface TlsSessionFactsOptions {
  /** Which side `socket` is; by default the server side is recognised by `getEphemeralKeyInfo() === null`. */
  role?: 'client' | 'server'
  /** Server side: the `ecdhCurve` the server was configured with; a single group names the key exchange. */
  ecdhCurve?: string
  /** Server side: the client-certificate facts (from `clientCertificateOf(session)`); absent means none was requested. */
  clientCertificate?: ReceivedClientCertificate
}

/** OpenSSL `SSL_CIPHER_get_bits` (used/algorithm bits) from the cipher name. */
export function cipherBits(name: string): [number, number] {
  const n = name.toUpperCase()
  if (/CHACHA20/.test(n)) return [256, 256]
  if (/(AES|CAMELLIA|ARIA)[_-]?256/.test(n)) return [256, 256]
  if (/(AES|CAMELLIA|ARIA)[_-]?128/.test(n)) return [128, 128]
  if (/DES-CBC3|3DES/.test(n)) return [112, 168]
  if (/SM4/.test(n)) return [128, 128]
  return [0, 0]
}

/** Postfix's key-exchange words: X25519/X448 by name, ECDHE with the curve, DHE with the bits. */
function keyExchangeOf(info: { type?: string; name?: string; size?: number }): TlsKeyExchangeFacts | undefined {
  if (info.type === 'ECDH' && info.name !== undefined) {
    if (info.name === 'X25519' || info.name === 'X448') return { name: info.name }
    return { name: 'ECDHE', curve: info.name }
  }
  if (info.type === 'DH' && info.size !== undefined) return { name: 'DHE', bits: info.size }
  return undefined
}

const CURVE_ALIASES: Readonly<Record<string, string>> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }

function groupFromConfig(ecdhCurve: string | undefined): TlsKeyExchangeFacts | undefined {
  if (ecdhCurve === undefined || ecdhCurve.includes(':') || ecdhCurve.toLowerCase() === 'auto') return undefined
  const g = CURVE_ALIASES[ecdhCurve] ?? ecdhCurve
  if (g.toUpperCase() === 'X25519' || g.toUpperCase() === 'X448') return { name: g.toUpperCase() }
  return { name: 'ECDHE', curve: g }
}

// RFC 8446 §4.2.3: in TLS 1.3 the ECDSA scheme fixes the curve and the digest.
const TLS13_ECDSA_DIGEST: Readonly<Record<string, string>> = { prime256v1: 'SHA256', secp384r1: 'SHA384', secp521r1: 'SHA512' }

/** The signature a key made in the handshake, inferred from the key and the shared schemes. */
export function signatureOf(certDer: Uint8Array | undefined, shared: readonly string[], protocol: string): TlsSignatureFacts | undefined {
  if (certDer === undefined || certDer.length === 0) return undefined
  let key
  try {
    key = new X509Certificate(certDer).publicKey
  } catch {
    return undefined
  }
  const type = key.asymmetricKeyType
  const d = key.asymmetricKeyDetails ?? {}
  const tls13 = protocol === 'TLSv1.3'
  const first = (re: RegExp): string | undefined => {
    const s = shared.find((x) => re.test(x))
    return s?.split('+')[1]
  }
  // Postfix tls_misc.c tls_get_signature_params: any RSA key is "RSA-PSS" with its bits (TLS 1.3
  // mandates PSS), EC is "ECDSA" with the curve, anything else OpenSSL's short name without bits;
  // the digest is the one signed with (none for EdDSA).
  if (type === 'rsa') {
    const r: TlsSignatureFacts = { name: tls13 || first(/^RSA-PSS\+/) !== undefined ? 'RSA-PSS' : 'RSA' }
    if (d.modulusLength !== undefined) r.bits = d.modulusLength
    const dg = r.name === 'RSA-PSS' ? first(/^RSA-PSS\+/) : first(/^RSA\+/)
    if (dg !== undefined) r.digest = dg
    return r
  }
  if (type === 'rsa-pss') {
    const r: TlsSignatureFacts = { name: 'RSASSA-PSS' }
    const dg = first(/^RSA-PSS\+/)
    if (dg !== undefined) r.digest = dg
    return r
  }
  if (type === 'ec') {
    const r: TlsSignatureFacts = { name: 'ECDSA' }
    if (d.namedCurve !== undefined) r.curve = d.namedCurve
    const dg = tls13 && d.namedCurve !== undefined ? TLS13_ECDSA_DIGEST[d.namedCurve] : first(/^ECDSA\+/)
    if (dg !== undefined) r.digest = dg
    return r
  }
  if (type === 'ed25519') return { name: 'ED25519' }
  if (type === 'ed448') return { name: 'ED448' }
  return undefined
}

function rawOf(c: { raw?: Buffer } | null | undefined): Uint8Array | undefined {
  return c && c.raw && c.raw.length > 0 ? new Uint8Array(c.raw) : undefined
}

/**
 * Gather the facts of an established TLS session for `formatReceivedTlsClause`: protocol, cipher
 * and bits, key exchange, the server's and the client's handshake signatures, and (server side)
 * the client certificate. Works on both sides; see the module notes for what the server side
 * cannot know.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` when the socket has no established TLS session.
 * @public
 */
export function tlsSessionFacts(socket: TLSSocket, opts: TlsSessionFactsOptions = {}): TlsSessionFacts {
  try {
    return tlsSessionFactsChecked(socket, opts)
  } catch (e) {
    throw coded(e, 'tlsSessionFacts')
  }
}

function tlsSessionFactsChecked(socket: TLSSocket, opts: TlsSessionFactsOptions = {}): TlsSessionFacts {
  if (socket === null || typeof socket !== 'object' || typeof socket.getCipher !== 'function')
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'socket must be a tls.TLSSocket')
  const protocol = socket.getProtocol()
  const cipher = socket.getCipher() as { name?: string } | undefined
  if (!protocol || protocol === 'unknown' || !cipher?.name)
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'the TLS handshake has not completed')
  const [bits, alg] = cipherBits(cipher.name)
  const facts: TlsSessionFacts = { protocol, cipher: cipher.name, cipherBits: bits, cipherAlgBits: alg }
  const eph = socket.getEphemeralKeyInfo() as { type?: string; name?: string; size?: number } | null
  const role = opts.role ?? (eph === null ? 'server' : 'client')
  const shared = socket.getSharedSigalgs()
  const own = rawOf(socket.getCertificate() as { raw?: Buffer } | null)
  const peer = rawOf(socket.getPeerCertificate(false) as { raw?: Buffer } | null)
  const kex = role === 'client' ? keyExchangeOf(eph ?? {}) : groupFromConfig(opts.ecdhCurve)
  if (kex !== undefined) facts.keyExchange = kex
  else if (role === 'server') facts.unknown = ['keyExchange']
  const serverSig = signatureOf(role === 'server' ? own : peer, shared, protocol)
  const clientSig = signatureOf(role === 'server' ? peer : own, shared, protocol)
  if (serverSig !== undefined) facts.serverSignature = serverSig
  if (clientSig !== undefined) facts.clientSignature = clientSig
  if (opts.clientCertificate !== undefined) facts.clientCertificate = opts.clientCertificate
  return facts
}
