/**
 * The TLS part of a `Received:` header as Postfix's smtpd writes it with
 * `smtpd_tls_received_header = yes` (Postfix `src/smtpd/smtpd.c`, `src/tls/tls_misc.c`), and the
 * RFC 3848 protocol word (`ESMTPS`, `ESMTPSA`).
 *
 * Postfix 3.7 writes, for example:
 * ```
 * Received: from a (localhost [127.0.0.1])
 * 	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
 * 	 key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256
 * 	 client-signature ECDSA (prime256v1) client-digest SHA256)
 * 	(Client CN "client.example", Issuer "client.example" (not verified))
 * 	by lab.test (Postfix) with ESMTPS id D7DE720C050
 * ```
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'

/** A signature made in the handshake (Postfix `srvr_sig_*`, `clnt_sig_*`). @public */
export interface TlsSignatureFacts {
  /** Postfix's names: `RSA-PSS` (any RSA key: TLS 1.3 mandates PSS), `ECDSA`, else OpenSSL's short name (`ED25519`, `ED448`, `RSASSA-PSS`). */
  name: string
  /** EC curve (OpenSSL short name, e.g. `prime256v1`); printed instead of `bits` when set. */
  curve?: string
  /** Key size in bits (Postfix reports it for RSA keys only). */
  bits?: number
  /** Digest, e.g. `SHA256` (none for EdDSA). */
  digest?: string
}

/** The key exchange (Postfix `kex_*`). @public */
export interface TlsKeyExchangeFacts {
  /** `X25519`, `X448`, `ECDHE` (with `curve`) or `DHE` (with `bits`). */
  name: string
  curve?: string
  bits?: number
}

/** The client certificate, as the server saw it. @public */
export interface ReceivedClientCertificate {
  /** The server asked for one (Postfix `smtpd_tls_ask_ccert`). */
  requested: boolean
  presented: boolean
  /** It chained to the server's CAs (Postfix `TLS_CERT_IS_TRUSTED`). */
  verified?: boolean
  subjectCN?: string
  issuerCN?: string
}

/** The facts of one TLS session that the `Received:` clause reports. @public */
export interface TlsSessionFacts {
  /** `TLSv1.3`, `TLSv1.2`, … */
  protocol: string
  /** OpenSSL cipher name, e.g. `TLS_AES_256_GCM_SHA384`, `ECDHE-RSA-AES256-GCM-SHA384`. */
  cipher: string
  /** Secret bits used and bits of the algorithm (OpenSSL `SSL_CIPHER_get_bits`). */
  cipherBits: number
  cipherAlgBits: number
  keyExchange?: TlsKeyExchangeFacts
  serverSignature?: TlsSignatureFacts
  clientSignature?: TlsSignatureFacts
  /** Absent: no client certificate was requested. */
  clientCertificate?: ReceivedClientCertificate
  /** Facts that could not be learnt (e.g. `keyExchange` on the server side in Node). */
  unknown?: string[]
}

/** Options of {@link formatReceivedTlsClause}. @public */
export interface ReceivedClauseOptions {
  /**
   * Line break between the folded lines (each continuation line then starts with a tab, as in
   * Postfix). Default `\r\n` (RFC 5322 §2.2.3 folding); `' '` gives one unfolded line.
   */
  newline?: string
}

/**
 * Postfix `smtpd.c` `comment_sanitize`: non-ASCII, non-printable characters and the backslash
 * become `?`, an unmatched `)` becomes `?`, and a `)` is appended for every unmatched `(`.
 * (Postfix leaves double quotes alone, so a CN with `"` ends the quoted text early; so do we.)
 */
export function commentSanitize(s: string): string {
  // Postfix works on the UTF-8 bytes: each byte of a non-ASCII character becomes one "?".
  const bytes = new TextEncoder().encode(s)
  let out = ''
  let depth = 0
  for (const c of bytes) {
    if (c < 0x20 || c >= 0x7f || c === 0x5c) out += '?'
    else if (c === 0x28) {
      depth++
      out += '('
    } else if (c === 0x29) {
      if (depth > 0) {
        depth--
        out += ')'
      } else out += '?'
    } else out += String.fromCharCode(c)
  }
  return out + ')'.repeat(depth)
}

function part(label: string, x: { name: string; curve?: string; bits?: number }): string {
  let s = `${label} ${x.name}`
  // Postfix tls_misc.c: the curve when there is one, else the bits when positive.
  if (x.curve !== undefined && x.curve.length > 0) s += ` (${x.curve})`
  else if (x.bits !== undefined && x.bits > 0) s += ` (${x.bits} bits)`
  return s
}

function checkFacts(f: TlsSessionFacts): void {
  if (f === null || typeof f !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'facts must be an object')
  for (const k of ['protocol', 'cipher'] as const)
    if (typeof f[k] !== 'string' || f[k].length === 0)
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `facts.${k} must be a non-empty string`)
  for (const k of ['cipherBits', 'cipherAlgBits'] as const)
    if (!Number.isInteger(f[k]) || f[k] < 0) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `facts.${k} must be a non-negative integer`)
  for (const k of ['keyExchange', 'serverSignature', 'clientSignature'] as const) {
    const x = f[k]
    if (x !== undefined && (x === null || typeof x !== 'object' || typeof x.name !== 'string'))
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `facts.${k} must be an object with a name`)
  }
}

/**
 * The TLS clause of a `Received:` header, field for field as Postfix's smtpd writes it
 * (`smtpd_tls_received_header = yes`): the `(using …)` comment with key exchange and signatures
 * (TLS 1.3 only, as in Postfix), then the client-certificate comment. The result has no leading tab; continuation lines start
 * with a tab. Put it after `Received: from … (… […])` + newline + tab.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for malformed facts.
 * @example
 * ```ts
 * formatReceivedTlsClause({ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cipherBits: 256, cipherAlgBits: 256,
 *   keyExchange: { name: 'X25519' }, serverSignature: { name: 'RSA-PSS', bits: 2048, digest: 'SHA256' } }, { newline: ' ' })
 * // '(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519
 * //   server-signature RSA-PSS (2048 bits) server-digest SHA256) (No client certificate requested)'
 * ```
 * @public
 */
export function formatReceivedTlsClause(facts: TlsSessionFacts, opts: ReceivedClauseOptions = {}): string {
  try {
    return formatReceivedTlsClauseChecked(facts, opts)
  } catch (e) {
    throw coded(e, 'formatReceivedTlsClause')
  }
}

function formatReceivedTlsClauseChecked(facts: TlsSessionFacts, opts: ReceivedClauseOptions = {}): string {
  checkFacts(facts)
  const nl = opts.newline ?? '\r\n'
  if (typeof nl !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'newline must be a string')
  // folded: newline + tab, and the handshake lines keep Postfix's extra leading space; one line: one space
  const cont = nl === ' ' ? '' : `${nl}\t`
  // Postfix smtpd.c: "\t(using %s with cipher %s (%d/%d bits)"
  let s = `(using ${facts.protocol} with cipher ${facts.cipher} (${facts.cipherBits}/${facts.cipherAlgBits} bits)`
  // Postfix tls_misc.c tls_get_signature_params ("TLS 1.3 signature details") returns early below
  // TLS 1.3: key exchange and signatures are reported for TLS 1.3 only.
  const tls13 = facts.protocol === 'TLSv1.3'
  // Postfix: the rest of the handshake on one continuation line " key-exchange … server-signature …",
  // the client signature on another.
  const kexLine: string[] = []
  if (tls13 && facts.keyExchange !== undefined && facts.keyExchange.name.length > 0) kexLine.push(part('key-exchange', facts.keyExchange))
  const srv = tls13 ? facts.serverSignature : undefined
  if (srv !== undefined && srv.name.length > 0) {
    kexLine.push(part('server-signature', srv))
    if (srv.digest !== undefined && srv.digest.length > 0) kexLine.push(`server-digest ${srv.digest}`)
  }
  if (kexLine.length > 0) s += `${cont} ${kexLine.join(' ')}`
  const cli = tls13 ? facts.clientSignature : undefined
  if (cli !== undefined && cli.name.length > 0) {
    s += `${cont} ${part('client-signature', cli)}`
    if (cli.digest !== undefined && cli.digest.length > 0) s += ` client-digest ${cli.digest}`
  }
  s += ')'
  const sep = cont === '' ? ' ' : cont
  const cc = facts.clientCertificate
  if (cc !== undefined && cc.presented) {
    const cn = commentSanitize(cc.subjectCN ?? '')
    const issuer = commentSanitize(cc.issuerCN ?? '')
    s += `${sep}(Client CN "${cn}", Issuer "${issuer}" (${cc.verified === true ? 'verified OK' : 'not verified'}))`
  } else if (cc !== undefined && cc.requested) s += `${sep}(Client did not present a certificate)`
  else s += `${sep}(No client certificate requested)`
  return s
}

/**
 * The `with` protocol word of a `Received:` header (RFC 3848 §1): `ESMTP` plus `S` over TLS and
 * `A` when authenticated; plain `SMTP` (HELO) gets neither, as in Postfix ("RFC 3848 is defined for
 * ESMTP only").
 * @public
 */
export function receivedProtocol(p: { esmtp: boolean; tls: boolean; authenticated?: boolean }): string {
  try {
    return receivedProtocolChecked(p)
  } catch (e) {
    throw coded(e, 'receivedProtocol')
  }
}

function receivedProtocolChecked(p: { esmtp: boolean; tls: boolean; authenticated?: boolean }): string {
  if (p === null || typeof p !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'argument must be an object')
  if (!p.esmtp) return 'SMTP'
  return `ESMTP${p.tls ? 'S' : ''}${p.authenticated === true ? 'A' : ''}`
}
