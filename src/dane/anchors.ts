/**
 * Trust anchors from a file (Postfix `tafile=`, `smtp_tls_trust_anchor_file`) as TLSA records, the
 * way Postfix loads them (`src/tls/tls_dane.c` `tls_dane_load_trustfile`): every certificate or
 * public key becomes a full-data (matching type 0) DANE-TA(2) record **and** a DANE-EE(3) record,
 * selector 0 for a certificate and 1 for a public key ("We also allow the trust-anchors to directly
 * match the leaf certificate or public key"). Anchors do not expire and may be intermediates.
 */
import { coded } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { TlsaRecord } from '../tlsa/types.js'
import { isSpkiDer, sliceCertificate } from '../x509/der.js'
import { matchCertificateName } from '../x509/names.js'
import { verifyDane, type DaneResult } from './verify.js'

/** A trust anchor: a certificate (DER) or a bare public key (DER SubjectPublicKeyInfo). @public */
export type TrustAnchor = { type: 'certificate'; der: Uint8Array } | { type: 'publicKey'; der: Uint8Array }

/**
 * The TLSA records Postfix derives from trust anchors: for each anchor `2 S 0 <data>` and
 * `3 S 0 <data>` (S = 0 for a certificate, 1 for a public key), in that order.
 *
 * With these records, `verifyDane({ records, chain, names })` authenticates the chain as Postfix
 * does at `verify`/`secure` with `tafile=`: a DANE-TA match checks the chain up to the anchor and
 * the names (RFC 7672 §3.2.2 rules, applied by `verifyDane`); a DANE-EE match (the leaf itself
 * is an anchor) skips the chain, so the caller must still check the names at those levels
 * (`matchCertificateName`), since Postfix keeps name checks on for non-DANE levels.
 *
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for an anchor that is not a well-formed
 * certificate or SubjectPublicKeyInfo.
 * @public
 */
export function trustAnchorTlsaRecords(anchors: readonly TrustAnchor[]): TlsaRecord[] {
  try {
    return trustAnchorTlsaRecordsChecked(anchors)
  } catch (e) {
    throw coded(e, 'trustAnchorTlsaRecords')
  }
}

function trustAnchorTlsaRecordsChecked(anchors: readonly TrustAnchor[]): TlsaRecord[] {
  if (!Array.isArray(anchors)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'anchors must be an array')
  const out: TlsaRecord[] = []
  anchors.forEach((a: TrustAnchor, i) => {
    if (a === null || typeof a !== 'object' || !(a.der instanceof Uint8Array))
      throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `anchor ${i + 1}: expected { type, der: Uint8Array }`)
    let selector: number
    if (a.type === 'certificate') {
      try {
        sliceCertificate(a.der)
      } catch (e) {
        throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `anchor ${i + 1}: not a certificate: ${(e as Error).message}`, { cause: e })
      }
      selector = 0
    } else if (a.type === 'publicKey') {
      if (!isSpkiDer(a.der)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `anchor ${i + 1}: not a SubjectPublicKeyInfo`)
      selector = 1
    } else throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `anchor ${i + 1}: type must be "certificate" or "publicKey"`)
    // Postfix tls_dane_load_trustfile: a DANE-TA and a DANE-EE record, full data (matching type 0)
    out.push({ usage: 2, selector, matchingType: 0, data: a.der })
    out.push({ usage: 3, selector, matchingType: 0, data: a.der })
  })
  return out
}

/** Input of {@link verifyTrustAnchors}. @public */
export interface TrustAnchorVerifyInput {
  anchors: readonly TrustAnchor[]
  /** DER, leaf first, as the server sent it. */
  chain: readonly Uint8Array[]
  /** Reference identifiers of the level (`secure`: the `match=` names, e.g. nexthop and dot-nexthop). */
  names: readonly string[]
  now?: Date
}

/**
 * Authenticate a server chain with trust anchors as Postfix does at `verify`/`secure` with
 * `tafile=` (only the anchors are trusted; the CA roots are not): `verifyDane` with
 * {@link trustAnchorTlsaRecords}, and the name checks also for a DANE-EE match (Postfix keeps
 * OpenSSL's name checks on outside the DANE levels).
 * @public
 */
export function verifyTrustAnchors(input: TrustAnchorVerifyInput): DaneResult {
  try {
    return verifyTrustAnchorsChecked(input)
  } catch (e) {
    throw coded(e, 'verifyTrustAnchors')
  }
}

function verifyTrustAnchorsChecked(input: TrustAnchorVerifyInput): DaneResult {
  if (input === null || typeof input !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'input must be an object')
  const records = trustAnchorTlsaRecords(input.anchors)
  if (records.length === 0) return { ok: false, code: 'ERR_DANE_NO_USABLE_RECORDS', detail: 'no trust anchors' }
  const r = verifyDane({ records, chain: input.chain, names: input.names, ...(input.now !== undefined ? { now: input.now } : {}) })
  if (r.ok && r.record.usage === 3 && matchCertificateName(input.chain[0]!, input.names) === undefined) {
    return {
      ok: false,
      code: 'ERR_DANE_NAME_MISMATCH',
      detail: `the leaf is a trust anchor but matches none of ${input.names.join(', ')}`,
    }
  }
  return r
}
