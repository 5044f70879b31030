// The policy engine's scenario table: configured level × DNS facts × connection facts →
// outcome, enhanced status, TLS-RPT result type and whether a plaintext retry is allowed.
// Every row cites the Postfix document or RFC section it encodes.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatTrace, type ConnectionFacts, type MessageTlsOptions, type PolicyOptions, type TlsRptResultType } from '../../src/index.js'
import {
  CHAIN,
  ee,
  eeWrong,
  leaf,
  otherLeaf,
  pinCert,
  pinKey,
  pinSha512,
  pinWrong,
  root,
  run,
  ta,
  TLS_OK,
  unusable,
  unusable2,
  type Dns,
} from './fixtures.js'

const NOT_OFFERED: ConnectionFacts = { starttls: 'not-offered' }
const REFUSED: ConnectionFacts = { starttls: 'refused', starttlsReply: '454 4.7.0 TLS not available due to local problem' }
const HS_FAIL: ConnectionFacts = { starttls: 'offered', handshake: 'failed', handshakeError: 'ECONNRESET' }
const ANON: ConnectionFacts = { starttls: 'offered', handshake: 'ok', chain: [], protocol: 'TLSv1.2', cipher: 'ADH-AES256-GCM-SHA384' }
const UNTRUSTED: ConnectionFacts = { ...TLS_OK, pkix: { trusted: false, error: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' } }
const EXPIRED: ConnectionFacts = { ...TLS_OK, pkix: { trusted: false, error: 'CERT_HAS_EXPIRED' } }
const NO_PKIX: ConnectionFacts = { starttls: 'offered', handshake: 'ok', chain: CHAIN, protocol: 'TLSv1.3' }
const OTHER_CHAIN: ConnectionFacts = { ...TLS_OK, chain: [otherLeaf.der, root.der] }
const SSLV3: ConnectionFacts = { ...TLS_OK, protocol: 'SSLv3' }
const TLS11: ConnectionFacts = { ...TLS_OK, protocol: 'TLSv1.1' }
const TLS12: ConnectionFacts = { ...UNTRUSTED, protocol: 'TLSv1.2' }
const ADVERTISED: ConnectionFacts = { ...TLS_OK, requireTlsAdvertised: true }

interface Expect {
  status: string
  level?: string
  es?: string
  rpt?: TlsRptResultType
  retry?: boolean
  code?: string
  permanent?: boolean
}
type Row = [
  name: string,
  policy: string | undefined,
  dns: Dns,
  conn: ConnectionFacts,
  expect: Expect,
  cite: string,
  opts?: PolicyOptions,
  msg?: MessageTlsOptions,
]

const rows: Row[] = [
  // ---- none
  [
    'none: STARTTLS offered but not used',
    'none',
    {},
    TLS_OK,
    { status: 'plaintext', level: 'none' },
    'postconf(5) smtp_tls_security_level "none"',
  ],
  ['none: STARTTLS not offered', 'none', {}, NOT_OFFERED, { status: 'plaintext' }, 'postconf(5) smtp_tls_security_level "none"'],
  // ---- may (opportunistic TLS)
  [
    'may: not offered → plaintext',
    'may',
    {},
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'Postfix TLS_README "Opportunistic TLS"; RFC 7435 §3',
  ],
  [
    'may: STARTTLS refused → continue in plaintext',
    'may',
    {},
    REFUSED,
    { status: 'plaintext' },
    'Postfix smtp_proto.c (STARTTLS rejected, TLS not required)',
  ],
  [
    'may: handshake failure → defer this connection, plaintext retry allowed',
    'may',
    {},
    HS_FAIL,
    { status: 'deferred', es: '4.7.5', rpt: 'validation-failure', retry: true, code: 'ERR_TLS_HANDSHAKE' },
    'Postfix PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE; requirements E.43',
  ],
  [
    'may: handshake failure with SASL configured → no plaintext retry',
    'may',
    {},
    HS_FAIL,
    { status: 'deferred', es: '4.7.5', retry: false },
    'Postfix PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE (no SASL)',
    { saslConfigured: true },
  ],
  ['may: no certificate → anonymous', 'may', {}, ANON, { status: 'anonymous' }, 'Postfix tls_log_summary "Anonymous"; RFC 7435 §3'],
  ['may: certificate not trusted → untrusted', 'may', {}, UNTRUSTED, { status: 'untrusted' }, 'Postfix tls_log_summary "Untrusted"'],
  [
    'may: PKIX chain trusted → trusted, never verified (no name check)',
    'may',
    {},
    TLS_OK,
    { status: 'trusted' },
    'Postfix tls_log_summary "Trusted"; RFC 7435 §3',
  ],
  [
    'may: SSLv3 negotiated → below default >=TLSv1, retry allowed',
    'may',
    {},
    SSLV3,
    { status: 'deferred', es: '4.7.5', retry: true, code: 'ERR_POLICY_NOT_MET' },
    'postconf(5) smtp_tls_protocols default >=TLSv1',
  ],
  [
    'no table entry: default level may',
    undefined,
    {},
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'postconf(5) smtp_tls_security_level (library default may)',
  ],
  [
    'no table entry, default level verify from options',
    undefined,
    {},
    NOT_OFFERED,
    { status: 'deferred', level: 'verify', es: '4.7.4' },
    'postconf(5) smtp_tls_security_level',
    { defaultLevel: 'verify' },
  ],
  // ---- encrypt (mandatory TLS)
  [
    'encrypt: not offered → 4.7.4',
    'encrypt',
    {},
    NOT_OFFERED,
    { status: 'deferred', es: '4.7.4', rpt: 'starttls-not-supported', code: 'ERR_STARTTLS_NOT_OFFERED' },
    'Postfix TLS_README "Mandatory TLS encryption"; RFC 3207 §6',
  ],
  [
    'encrypt: STARTTLS refused → 4.7.5 with the reply',
    'encrypt',
    {},
    REFUSED,
    { status: 'deferred', es: '4.7.5', rpt: 'starttls-not-supported', code: 'ERR_STARTTLS_REFUSED' },
    'Postfix smtp_proto.c "refused to start TLS"; requirements E.43',
  ],
  [
    'encrypt: handshake failure → 4.7.5, no plaintext retry',
    'encrypt',
    {},
    HS_FAIL,
    { status: 'deferred', es: '4.7.5', retry: false },
    'Postfix smtp_proto.c "Cannot start TLS: handshake failure"',
  ],
  [
    'encrypt: anonymous TLS is enough',
    'encrypt',
    {},
    ANON,
    { status: 'anonymous' },
    'Postfix TLS_README "Mandatory TLS encryption" (aNULL allowed)',
  ],
  [
    'encrypt: untrusted certificate is enough',
    'encrypt',
    {},
    UNTRUSTED,
    { status: 'untrusted' },
    'Postfix TLS_README "Mandatory TLS encryption"',
  ],
  ['encrypt: trusted chain reported as trusted', 'encrypt', {}, TLS_OK, { status: 'trusted' }, 'Postfix tls_log_summary "Trusted"'],
  [
    'encrypt protocols=>=TLSv1.2: TLSv1.1 negotiated → defer',
    'encrypt protocols=>=TLSv1.2',
    {},
    TLS11,
    { status: 'deferred', es: '4.7.5', retry: false },
    'postconf(5) smtp_tls_mandatory_protocols',
  ],
  [
    'encrypt protocols=>=TLSv1.2: TLSv1.2 negotiated → untrusted',
    'encrypt protocols=>=TLSv1.2',
    {},
    TLS12,
    { status: 'untrusted' },
    'postconf(5) smtp_tls_mandatory_protocols',
  ],
  // ---- fingerprint
  [
    'fingerprint: certificate pin matches → verified',
    `fingerprint match=${pinCert}`,
    {},
    TLS_OK,
    { status: 'verified', level: 'fingerprint' },
    'Postfix TLS_README "Certificate fingerprint verification"',
  ],
  [
    'fingerprint: public-key pin matches → verified',
    `fingerprint match=${pinKey}`,
    {},
    TLS_OK,
    { status: 'verified' },
    'postconf(5) smtp_tls_fingerprint_cert_match (key fingerprints)',
  ],
  [
    'fingerprint: second of two pins matches',
    `fingerprint match=${pinWrong}|${pinCert}`,
    {},
    TLS_OK,
    { status: 'verified' },
    'postconf(5) smtp_tls_policy_maps match= "|"',
  ],
  [
    'fingerprint: no pin matches → 4.7.5',
    `fingerprint match=${pinWrong}`,
    {},
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'certificate-not-trusted', code: 'ERR_PIN_MISMATCH' },
    'Postfix TLS_README "Certificate fingerprint verification"',
  ],
  [
    'fingerprint: no pins configured → defer',
    'fingerprint',
    {},
    TLS_OK,
    { status: 'deferred', es: '4.7.5', code: 'ERR_POLICY_CONFIG' },
    'Postfix smtp_tls_policy.c "configured at fingerprint security level, but with no fingerprints"',
  ],
  [
    'fingerprint: pins from smtp_tls_fingerprint_cert_match',
    'fingerprint',
    {},
    TLS_OK,
    { status: 'verified' },
    'postconf(5) smtp_tls_fingerprint_cert_match',
    { fingerprintMatch: [pinCert] },
  ],
  [
    'fingerprint: sha256 pin under digest sha512 → configuration problem',
    `fingerprint match=${pinCert}`,
    {},
    TLS_OK,
    { status: 'deferred', es: '4.7.5', code: 'ERR_POLICY_CONFIG' },
    'postconf(5) smtp_tls_fingerprint_digest',
    { fingerprintDigest: 'sha512' },
  ],
  [
    'fingerprint: sha512 pin under digest sha512',
    `fingerprint match=${pinSha512}`,
    {},
    TLS_OK,
    { status: 'verified' },
    'postconf(5) smtp_tls_fingerprint_digest',
    { fingerprintDigest: 'sha512' },
  ],
  [
    'fingerprint: not offered → 4.7.4',
    `fingerprint match=${pinCert}`,
    {},
    NOT_OFFERED,
    { status: 'deferred', es: '4.7.4', rpt: 'starttls-not-supported' },
    'Postfix TLS_README (TLS required above may)',
  ],
  [
    'fingerprint: no certificate → 4.7.5',
    `fingerprint match=${pinCert}`,
    {},
    ANON,
    { status: 'deferred', es: '4.7.5' },
    'Postfix smtp_proto.c "Server certificate not verified"',
  ],
  [
    'fingerprint: PKIX verdict irrelevant',
    `fingerprint match=${pinCert}`,
    {},
    UNTRUSTED,
    { status: 'verified' },
    'Postfix TLS_README "Certificate fingerprint verification" (no CA)',
  ],
  // ---- dane, secure MX
  ['dane: DANE-EE 3 1 1 matches → verified', 'dane', {}, TLS_OK, { status: 'verified', level: 'dane' }, 'RFC 7672 §3.1.1'],
  ['dane: DANE-TA 2 0 1 matches the root → verified', 'dane', { records: [ta] }, TLS_OK, { status: 'verified' }, 'RFC 7672 §3.1.2, §3.2.2'],
  [
    'dane: no record matches → 4.7.5 tlsa-invalid',
    'dane',
    { records: [eeWrong] },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'tlsa-invalid', code: 'ERR_DANE_NO_MATCH' },
    'RFC 7672 §3.2 (MUST NOT deliver); RFC 8460 §4.3.2',
  ],
  [
    'dane: usable TLSA, not offered → 4.7.4',
    'dane',
    {},
    NOT_OFFERED,
    { status: 'deferred', es: '4.7.4', rpt: 'starttls-not-supported' },
    'RFC 7672 §2.2.3 (never plaintext with secure TLSA)',
  ],
  ['dane: usable TLSA, STARTTLS refused → 4.7.5', 'dane', {}, REFUSED, { status: 'deferred', es: '4.7.5' }, 'RFC 7672 §2.2.3'],
  [
    'dane: usable TLSA, handshake failure → no plaintext retry',
    'dane',
    {},
    HS_FAIL,
    { status: 'deferred', es: '4.7.5', retry: false },
    'RFC 7672 §2.2.3; Postfix (retry only at may)',
  ],
  [
    'dane: TLSA insecure → may, not offered → plaintext',
    'dane',
    { tlsa: 'insecure' },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'RFC 7672 §2.2; Postfix dane_init "no TLSA records found"',
  ],
  [
    'dane: TLSA insecure → may, untrusted TLS',
    'dane',
    { tlsa: 'insecure' },
    UNTRUSTED,
    { status: 'untrusted', level: 'may' },
    'RFC 7672 §2.2 (insecure TLSA never used)',
  ],
  [
    'dane: secure denial → may, PKIX trusted → trusted',
    'dane',
    { tlsa: 'secure-denial' },
    TLS_OK,
    { status: 'trusted', level: 'may' },
    'RFC 7672 §2.2',
  ],
  [
    'dane: address insecure, TLSA not looked up → may',
    'dane',
    { tlsa: 'not-looked-up' },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'RFC 7672 §2.2.2; postconf(5) smtp_tls_force_insecure_host_tlsa_lookup',
  ],
  [
    'dane: TLSA lookup failed → defer 4.7.5 before connecting',
    'dane',
    { tlsa: 'lookup-failed' },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'dnssec-invalid', code: 'ERR_DANE_TLSA_LOOKUP' },
    'RFC 7672 §2.1.2; Postfix "TLSA lookup error for host:port"',
  ],
  [
    'dane: every record unusable → encrypt, not offered → 4.7.4',
    'dane',
    { records: [unusable, unusable2] },
    NOT_OFFERED,
    { status: 'deferred', level: 'encrypt', es: '4.7.4' },
    'RFC 7672 §2.2 (all unusable: TLS mandatory)',
  ],
  [
    'dane: every record unusable → encrypt, untrusted TLS delivers',
    'dane',
    { records: [unusable] },
    UNTRUSTED,
    { status: 'untrusted', level: 'encrypt' },
    'RFC 7672 §2.2; Postfix dane_incompat DANE_CANTAUTH',
  ],
  [
    'dane: every record unusable, handshake failure → no retry',
    'dane',
    { records: [unusable] },
    HS_FAIL,
    { status: 'deferred', level: 'encrypt', retry: false },
    'RFC 7672 §2.2',
  ],
  [
    'dane: usable and unusable records → authenticate',
    'dane',
    { records: [unusable, ee] },
    TLS_OK,
    { status: 'verified' },
    'RFC 6698 §4.1 (unusable records ignored)',
  ],
  [
    'dane: DANE-TA, leaf name does not match → certificate-host-mismatch',
    'dane',
    { records: [ta] },
    OTHER_CHAIN,
    { status: 'deferred', es: '4.7.5', rpt: 'certificate-host-mismatch', code: 'ERR_DANE_NAME_MISMATCH' },
    'RFC 7672 §3.2.2',
  ],
  ['dane: DANE-EE of another key → tlsa-invalid', 'dane', {}, OTHER_CHAIN, { status: 'deferred', rpt: 'tlsa-invalid' }, 'RFC 7672 §3.1.1'],
  [
    'dane: secure but empty RRset → treated as no records → may',
    'dane',
    { records: [] },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'RFC 7672 §2.2 (no TLSA records)',
  ],
  ['dane: no certificate → 4.7.5', 'dane', {}, ANON, { status: 'deferred', es: '4.7.5' }, 'RFC 7672 §3.2'],
  [
    'dane: PKIX untrusted is irrelevant to DANE-EE',
    'dane',
    {},
    UNTRUSTED,
    { status: 'verified' },
    'RFC 7672 §3.1.1 (no PKIX, names or expiry)',
  ],
  [
    'dane: [host] next hop (no MX lookup) → verified',
    'dane',
    { mxLookup: false, mxSecure: false },
    TLS_OK,
    { status: 'verified', level: 'dane' },
    'RFC 7672 §2.2.2 (non-MX destination)',
  ],
  [
    'dane: implicit MX (no MX RRset) → verified',
    'dane',
    { implicitMx: true, mxSecure: false },
    TLS_OK,
    { status: 'verified', level: 'dane' },
    'RFC 7672 §2.2.2; Postfix dane_init (iter->mx unset)',
  ],
  // ---- dane, insecure MX (smtp_tls_dane_insecure_mx_policy)
  [
    'dane: MX insecure, policy dane → half-dane, success is trusted',
    'dane',
    { mxSecure: false },
    TLS_OK,
    { status: 'trusted', level: 'half-dane' },
    'RFC 7672 §2.2.1; postconf(5) smtp_tls_dane_insecure_mx_policy',
  ],
  [
    'dane: MX insecure, half-dane, no match → 4.7.5',
    'dane',
    { mxSecure: false, records: [eeWrong] },
    TLS_OK,
    { status: 'deferred', level: 'half-dane', es: '4.7.5', rpt: 'tlsa-invalid' },
    'postconf(5) smtp_tls_dane_insecure_mx_policy "dane"',
  ],
  [
    'dane: MX insecure, half-dane, not offered → 4.7.4',
    'dane',
    { mxSecure: false },
    NOT_OFFERED,
    { status: 'deferred', es: '4.7.4' },
    'postconf(5) smtp_tls_dane_insecure_mx_policy "dane"',
  ],
  [
    'dane: MX insecure, policy may → may',
    'dane',
    { mxSecure: false },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'postconf(5) smtp_tls_dane_insecure_mx_policy "may"',
    { insecureMxPolicy: 'may' },
  ],
  [
    'dane: MX insecure, policy encrypt → encrypt, untrusted',
    'dane',
    { mxSecure: false },
    UNTRUSTED,
    { status: 'untrusted', level: 'encrypt' },
    'postconf(5) smtp_tls_dane_insecure_mx_policy "encrypt"',
    { insecureMxPolicy: 'encrypt' },
  ],
  [
    'dane: MX insecure, policy encrypt, not offered → 4.7.4',
    'dane',
    { mxSecure: false },
    NOT_OFFERED,
    { status: 'deferred', level: 'encrypt', es: '4.7.4' },
    'postconf(5) smtp_tls_dane_insecure_mx_policy "encrypt"',
    { insecureMxPolicy: 'encrypt' },
  ],
  [
    'dane: MX insecure, policy encrypt, no TLSA → may',
    'dane',
    { mxSecure: false, tlsa: 'insecure' },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'Postfix dane_init (no TLSA before insecure-MX encrypt)',
    { insecureMxPolicy: 'encrypt' },
  ],
  [
    'dane: MX insecure, no TLSA → may',
    'dane',
    { mxSecure: false, tlsa: 'secure-denial' },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'RFC 7672 §2.2.1 (pre-DANE opportunistic TLS)',
  ],
  [
    'dane: MX insecure, TLSA lookup failed → 4.7.5',
    'dane',
    { mxSecure: false, tlsa: 'lookup-failed' },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'dnssec-invalid' },
    'RFC 7672 §2.1.2; Postfix dane_init',
  ],
  [
    'dane: MX insecure, policy may, TLSA lookup failed → may (TLSA not used)',
    'dane',
    { mxSecure: false, tlsa: 'lookup-failed' },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'Postfix dane_init (insecure-MX may returns before tls_dane_resolve)',
    { insecureMxPolicy: 'may' },
  ],
  // ---- dane-only (mandatory DANE)
  [
    'dane-only: DANE-EE matches → verified',
    'dane-only',
    {},
    TLS_OK,
    { status: 'verified', level: 'dane-only' },
    'RFC 7672 §6; postconf(5) "dane-only"',
  ],
  ['dane-only: DANE-TA matches → verified', 'dane-only', { records: [ta] }, TLS_OK, { status: 'verified' }, 'RFC 7672 §3.2.2'],
  [
    'dane-only: MX insecure → defer dane-required',
    'dane-only',
    { mxSecure: false },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'dane-required', code: 'ERR_DANE_REQUIRED' },
    'RFC 7672 §2.2.1 (mandatory DANE MUST delay); Postfix "non DNSSEC destination"',
  ],
  [
    'dane-only: TLSA insecure → defer dane-required',
    'dane-only',
    { tlsa: 'insecure' },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'dane-required' },
    'RFC 7672 §6',
  ],
  [
    'dane-only: secure denial → defer dane-required',
    'dane-only',
    { tlsa: 'secure-denial' },
    TLS_OK,
    { status: 'deferred', rpt: 'dane-required' },
    'RFC 7672 §6; Postfix "no TLSA records found"',
  ],
  [
    'dane-only: address insecure → defer dane-required',
    'dane-only',
    { tlsa: 'not-looked-up' },
    TLS_OK,
    { status: 'deferred', rpt: 'dane-required' },
    'RFC 7672 §2.2.2, §6',
  ],
  [
    'dane-only: TLSA lookup failed → defer dnssec-invalid',
    'dane-only',
    { tlsa: 'lookup-failed' },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'dnssec-invalid' },
    'RFC 7672 §2.1.2 (same at dane and dane-only)',
  ],
  [
    'dane-only: every record unusable → defer tlsa-invalid',
    'dane-only',
    { records: [unusable] },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'tlsa-invalid', code: 'ERR_DANE_NO_USABLE_RECORDS' },
    'Postfix "TLSA records unusable"; requirements G.56',
  ],
  [
    'dane-only: no match → tlsa-invalid',
    'dane-only',
    { records: [eeWrong] },
    TLS_OK,
    { status: 'deferred', rpt: 'tlsa-invalid' },
    'RFC 7672 §3.2',
  ],
  ['dane-only: not offered → 4.7.4', 'dane-only', {}, NOT_OFFERED, { status: 'deferred', es: '4.7.4' }, 'RFC 7672 §2.2.3'],
  // ---- verify
  [
    'verify: trusted chain, MX host name matches → verified',
    'verify',
    {},
    TLS_OK,
    { status: 'verified', level: 'verify' },
    'Postfix TLS_README "Mandatory server certificate verification"',
  ],
  [
    'verify: untrusted chain → certificate-not-trusted',
    'verify',
    {},
    UNTRUSTED,
    { status: 'deferred', es: '4.7.5', rpt: 'certificate-not-trusted', code: 'ERR_PKIX_UNTRUSTED' },
    'Postfix smtp_proto.c "Server certificate not trusted"',
  ],
  [
    'verify: expired certificate → certificate-expired',
    'verify',
    {},
    EXPIRED,
    { status: 'deferred', es: '4.7.5', rpt: 'certificate-expired' },
    'RFC 8460 §4.3.1',
  ],
  [
    'verify: MX host name mismatch → certificate-host-mismatch',
    'verify',
    { host: 'mail.example.org' },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'certificate-host-mismatch', code: 'ERR_PKIX_NAME_MISMATCH' },
    'postconf(5) smtp_tls_verify_cert_match',
  ],
  [
    'verify: insecure MX is trusted at verify',
    'verify',
    { mxSecure: false, tlsa: 'not-looked-up' },
    TLS_OK,
    { status: 'verified' },
    'Postfix TLS_README (verify trusts MX lookups)',
  ],
  [
    'verify match=nexthop: mx.example.com certificate for example.com → mismatch',
    'verify match=nexthop',
    {},
    TLS_OK,
    { status: 'deferred', rpt: 'certificate-host-mismatch' },
    'postconf(5) smtp_tls_verify_cert_match',
  ],
  ['verify: not offered → 4.7.4', 'verify', {}, NOT_OFFERED, { status: 'deferred', es: '4.7.4' }, 'Postfix TLS_README'],
  ['verify: no certificate → 4.7.5', 'verify', {}, ANON, { status: 'deferred', es: '4.7.5' }, 'Postfix smtp_proto.c'],
  [
    'verify: no PKIX verdict given → not trusted',
    'verify',
    {},
    NO_PKIX,
    { status: 'deferred', rpt: 'certificate-not-trusted' },
    'RFC 7435 §3 (no claim without evidence)',
  ],
  [
    'verify: smtp_tls_verify_cert_match from options',
    'verify',
    { domain: 'example.com', host: 'relay.example.org' },
    TLS_OK,
    { status: 'verified' },
    'postconf(5) smtp_tls_verify_cert_match',
    { verifyMatch: ['hostname', 'dot-nexthop'] },
  ],
  // ---- secure
  [
    'secure: default nexthop:dot-nexthop matches mx.example.com → verified',
    'secure',
    {},
    TLS_OK,
    { status: 'verified', level: 'secure' },
    'postconf(5) smtp_tls_secure_cert_match',
  ],
  [
    'secure: other next hop → mismatch',
    'secure',
    { domain: 'example.org' },
    TLS_OK,
    { status: 'deferred', es: '4.7.5', rpt: 'certificate-host-mismatch' },
    'Postfix TLS_README "Secure server certificate verification"',
  ],
  [
    'secure match=hostname → verified',
    'secure match=hostname',
    { domain: 'example.org' },
    TLS_OK,
    { status: 'verified' },
    'postconf(5) smtp_tls_policy_maps match=',
  ],
  [
    'secure match=.example.com (suffix) → verified',
    'secure match=.example.com',
    { domain: 'example.org' },
    TLS_OK,
    { status: 'verified' },
    'Postfix TLS_README ".domain" match',
  ],
  [
    'secure match=.mx.example.com does not match mx.example.com itself',
    'secure match=.mx.example.com',
    {},
    TLS_OK,
    { status: 'deferred', rpt: 'certificate-host-mismatch' },
    'Postfix TLS_README (".domain" = subdomains only)',
  ],
  [
    'secure match=mx.example.com (literal) → verified',
    'secure match=mx.example.com',
    { domain: 'example.org' },
    TLS_OK,
    { status: 'verified' },
    'postconf(5) smtp_tls_policy_maps match=',
  ],
  [
    'secure: untrusted chain → 4.7.5',
    'secure',
    {},
    UNTRUSTED,
    { status: 'deferred', es: '4.7.5', rpt: 'certificate-not-trusted' },
    'Postfix TLS_README',
  ],
  ['secure: handshake failure → no retry', 'secure', {}, HS_FAIL, { status: 'deferred', retry: false }, 'Postfix (retry only at may)'],
  [
    'secure: STARTTLS refused → 4.7.5',
    'secure',
    {},
    REFUSED,
    { status: 'deferred', es: '4.7.5', rpt: 'starttls-not-supported' },
    'RFC 3207 §4',
  ],
  // ---- defective table entry
  [
    'defective entry (lenient table) → defer 4.7.5, never the default',
    'may bogus=1',
    {},
    NOT_OFFERED,
    { status: 'deferred', es: '4.7.5', code: 'ERR_POLICY_SYNTAX' },
    'Postfix MARK_INVALID "client TLS configuration problem"',
  ],
  // ---- TLS-Required: No (RFC 8689 §4.2.2)
  [
    'TLS-Required: No: table secure ignored, may',
    'secure',
    {},
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'RFC 8689 §4.2.2; Postfix policy_create (tlsreqno)',
    {},
    { tlsRequiredNo: true },
  ],
  [
    'TLS-Required: No: DANE ignored even when TLSA lookup fails',
    'dane-only',
    { tlsa: 'lookup-failed' },
    NOT_OFFERED,
    { status: 'plaintext', level: 'may' },
    'RFC 8689 §4.2.2',
    {},
    { tlsRequiredNo: true },
  ],
  [
    'TLS-Required: No with default none stays none',
    undefined,
    {},
    TLS_OK,
    { status: 'plaintext', level: 'none' },
    'Postfix policy_create (cap, not raise)',
    { defaultLevel: 'none' },
    { tlsRequiredNo: true },
  ],
  [
    'TLS-Required: No: handshake failure may retry in plaintext',
    'verify',
    {},
    HS_FAIL,
    { status: 'deferred', level: 'may', retry: true },
    'RFC 8689 §4.2.2; Postfix PLAINTEXT_FALLBACK_OK',
    { defaultLevel: 'encrypt' },
    { tlsRequiredNo: true },
  ],
  // ---- REQUIRETLS (RFC 8689)
  ['REQUIRETLS: DANE verified and REQUIRETLS advertised → verified', 'dane', {}, ADVERTISED, { status: 'verified' }, 'RFC 8689 §4.2.1'],
  [
    'REQUIRETLS: not advertised after STARTTLS → 5.7.30',
    'dane',
    {},
    TLS_OK,
    { status: 'deferred', es: '5.7.30', code: 'ERR_REQUIRETLS', permanent: true },
    'RFC 8689 §4.2.1; Postfix smtp_proto.c',
  ],
  [
    'REQUIRETLS: no DANE, no MTA-STS → 5.7.30 before connecting',
    'may',
    {},
    ADVERTISED,
    { status: 'deferred', es: '5.7.30', permanent: true },
    'RFC 8689 §4.2.1; mox 5.7.30',
  ],
  [
    'REQUIRETLS: half-dane is not enough → 5.7.30',
    'dane',
    { mxSecure: false },
    ADVERTISED,
    { status: 'deferred', es: '5.7.30', permanent: true },
    'RFC 8689 §4.2.1 (MX via DNSSEC)',
  ],
  [
    'REQUIRETLS overrides TLS-Required: No',
    'dane',
    {},
    ADVERTISED,
    { status: 'verified', level: 'dane' },
    'RFC 8689 §4.2.2',
    {},
    { requireTls: true, tlsRequiredNo: true },
  ],
  [
    'REQUIRETLS with enforced MTA-STS: PKIX + MX name → verified',
    'may',
    {},
    ADVERTISED,
    { status: 'verified', level: 'verify' },
    'RFC 8689 §4.2.1; RFC 8461 §4.2',
    { mtaStsEnforced: true },
  ],
  [
    'REQUIRETLS with MTA-STS, untrusted chain → 5.7.30',
    'may',
    {},
    { ...UNTRUSTED, requireTlsAdvertised: true },
    { status: 'deferred', es: '5.7.30', rpt: 'certificate-not-trusted', permanent: true },
    'RFC 8689 §4.2.1',
    { mtaStsEnforced: true },
  ],
  [
    'REQUIRETLS: TLSA lookup failure stays temporary',
    'dane',
    { tlsa: 'lookup-failed' },
    ADVERTISED,
    { status: 'deferred', es: '4.7.5', rpt: 'dnssec-invalid' },
    'RFC 7672 §2.1.2 (DNS may recover)',
  ],
  [
    'REQUIRETLS: STARTTLS not offered → 5.7.30',
    'dane',
    {},
    NOT_OFFERED,
    { status: 'deferred', es: '5.7.30', rpt: 'starttls-not-supported', permanent: true },
    'RFC 8689 §4.2.1; Postfix 5.7.30 when not offered',
  ],
  [
    'REQUIRETLS: handshake failure → 5.7.30, never plaintext',
    'dane',
    {},
    HS_FAIL,
    { status: 'deferred', es: '5.7.30', retry: false, permanent: true },
    'RFC 8689 §4.2.1',
  ],
]

describe('policy scenarios (level × DNS × connection → verdict)', () => {
  // Not a row count (that says nothing about the engine): the verdicts the engine gives for these rows span
  // every outcome word, and every level both delivers and defers (none only delivers), so no level's
  // failure path or success path is left untested.
  it('the rows reach every outcome, and a delivery and a deferral at every level', () => {
    const seen = new Set<string>()
    const byLevel = new Map<string, Set<boolean>>()
    for (const [name, policy, dns, conn, , , opts, msg0] of rows) {
      const { eff, v } = run(policy, dns, conn, opts, msg0 ?? (name.startsWith('REQUIRETLS') ? { requireTls: true } : {}))
      seen.add(v.status)
      const set = byLevel.get(eff.configuredLevel) ?? new Set<boolean>()
      set.add(v.deliver)
      byLevel.set(eff.configuredLevel, set)
    }
    assert.deepEqual([...seen].sort(), ['anonymous', 'deferred', 'plaintext', 'trusted', 'untrusted', 'verified'])
    for (const level of ['may', 'encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure']) {
      assert.deepEqual([...(byLevel.get(level) ?? [])].sort(), [false, true], level)
    }
    assert.ok(byLevel.get('none')?.has(true), 'none')
  })
  for (const [name, policy, dns, conn, x, cite, opts, msg0] of rows) {
    // REQUIRETLS rows carry it in their name unless the message options say otherwise.
    const msg = msg0 ?? (name.startsWith('REQUIRETLS') ? { requireTls: true } : {})
    it(`${name}  [${cite}]`, () => {
      const { eff, v } = run(policy, dns, conn, opts, msg)
      const ctx = `${v.status} ${v.reason ?? ''} | ${formatTrace(v.trace)}`
      assert.equal(v.status, x.status, ctx)
      assert.equal(v.deliver, x.status !== 'deferred')
      if (x.level !== undefined) assert.equal(v.level, x.level, ctx)
      if (x.status === 'deferred') {
        assert.ok(v.error, 'a deferral carries an error')
        assert.equal(v.error.temporary, x.permanent !== true, 'only REQUIRETLS is permanent')
        assert.equal(v.reason, v.error.message)
        assert.ok(v.reason.length > 10, 'a reason an operator can act on')
      } else {
        assert.equal(v.error, undefined)
      }
      if (x.es !== undefined) assert.equal(v.enhancedStatus, x.es, ctx)
      if (x.rpt !== undefined) assert.equal(v.tlsrpt, x.rpt, ctx)
      if (x.code !== undefined) assert.equal(v.error?.code, x.code, ctx)
      assert.equal(v.plaintextRetry, x.retry ?? false, ctx)
      assert.ok(v.trace.length >= eff.trace.length && v.trace.length >= 2, 'every verdict explains itself')
    })
  }
})

describe('decision traces', () => {
  it('names the table entry, the half-dane downgrade and the matching record', () => {
    const { v } = run('dane', { mxSecure: false }, TLS_OK)
    const t = formatTrace(v.trace)
    assert.match(t, /table match example\.com \(line 1\) → dane/)
    assert.match(t, /MX insecure → half-dane/)
    assert.match(t, /TLSA 3 1 1 matched at depth 0/)
  })
  it('names the DANE-TA depth and reference name', () => {
    const { v } = run('dane', { records: [ta] }, TLS_OK)
    assert.match(v.matched ?? '', /^TLSA 2 0 1 matched at depth 1, name mx\.example\.com$/)
  })
  it('names the PKIX match strategy and the name that matched', () => {
    const { v } = run('secure', {}, TLS_OK)
    assert.match(formatTrace(v.trace), /match nexthop:dot-nexthop → example\.com, \.example\.com/)
    assert.equal(v.matched, 'name .example.com')
  })
  it('names the degradation of dane to may', () => {
    const { v } = run('dane', { tlsa: 'insecure' }, NOT_OFFERED)
    assert.match(formatTrace(v.trace), /TLSA records insecure \(no TLSA records found\) → may \[RFC 7672 §2\.2\]/)
  })
})

describe('effective policy details', () => {
  it('DANE sends SNI = TLSA base domain, even with servername=', () => {
    const { eff } = run('dane servername=other.example', {}, TLS_OK)
    assert.equal(eff.servername, 'mx.example.com')
  })
  it('servername=hostname uses the MX host name at other levels', () => {
    assert.equal(run('verify servername=hostname', {}, TLS_OK).eff.servername, 'mx.example.com')
    assert.equal(run('may', {}, TLS_OK).eff.servername, undefined)
  })
  it('DANE-TA reference names: base domain, then the next hop when the MX RRset is secure (RFC 7672 §3.2.2)', () => {
    assert.deepEqual(run('dane', {}, TLS_OK).eff.matchNames, ['mx.example.com', 'example.com'])
    assert.deepEqual(run('dane', { mxSecure: false }, TLS_OK).eff.matchNames, ['mx.example.com'])
  })
  it('the leaf fixture is what the rows assume', () => {
    assert.equal(leaf.der[0], 0x30)
    assert.equal(ee.usage, 3)
  })
})
