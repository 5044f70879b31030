/**
 * The answer of a Postfix TLS policy map served over the socketmap protocol (socketmap_table(5)):
 * from a map name (the profile), a lookup key and the DNS and MTA-STS facts to `OK <policy>`,
 * `NOTFOUND `, `TEMP <reason>` or `PERM <reason>`. Pure: the facts come in as input.
 */
import { coded, describeValue, invalidArgument } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { DestinationFacts } from '../dns/types.js'
import type { MtaStsPolicy } from '../mta-sts/policy.js'
import type { TraceStep } from '../policy/trace.js'
import { checkTlsaUsability } from '../tlsa/usability.js'
import { SOCKETMAP_MAX_REPLY } from './netstring.js'
import { normalizeDnsName } from '../x509/names.js'

/** What a map name asks for. @public */
export interface SocketmapProfile {
  /** Answer `dane-only` / `dane` from DNSSEC-validated TLSA records (RFC 7672). */
  dane: boolean
  /** Answer `secure match=…` from an MTA-STS `enforce` policy (RFC 8461). */
  sts: boolean
  /** The answer for an MTA-STS `testing` policy: `NOTFOUND` (default) or `may` (RFC 8461 §5: deliver, report only). */
  testing?: 'notfound' | 'may'
  /**
   * Append the attributes Postfix ≥ 3.10 reads for TLS-RPT (RFC 8460) to MTA-STS answers:
   * `policy_type=sts policy_domain=<domain> { policy_string = … }… mx_host_pattern=<pattern>…`
   * (Postfix's TLSRPT_README). Off by default: Postfix before 3.10 rejects the whole entry ("invalid
   * attribute name") and defers the mail. DANE answers get none: Postfix reports the TLSA records it
   * looked up itself, and its `policy_type` takes only `sts` or `no-policy-found`.
   */
  tlsrpt?: boolean
}

/** The default profiles: `dane`, `sts` and `dane+sts` (DANE first, RFC 8461 §2). @public */
export const SOCKETMAP_PROFILES: Readonly<Record<string, Readonly<SocketmapProfile>>> = Object.freeze({
  dane: Object.freeze({ dane: true, sts: false }),
  sts: Object.freeze({ dane: false, sts: true }),
  'dane+sts': Object.freeze({ dane: true, sts: true }),
})

/** A parsed lookup key. @public */
export interface SocketmapKey {
  /** The destination for `discoverDestination`: `example.com` or `[mx.example.com]`. */
  destination: string
  /** The domain without brackets, lower case, internationalised labels as A-labels. */
  domain: string
  /** `false` for a `[host]` nexthop (no MX lookup, no MTA-STS). */
  mxLookup: boolean
  port: number
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/
const NON_ASCII = /[^\x00-\x7f]/

/**
 * Parse a key as Postfix's smtp(8) sends it to `smtp_tls_policy_maps`: a domain, `[host]`, or either
 * with `:port`. A UTF-8 name (Postfix with `smtputf8_enable`) becomes its A-labels (RFC 5891 §4).
 * `undefined` for keys this server does not answer (a leading dot, an IP literal, not a DNS name, not
 * a genuine U-label): they get `NOTFOUND`.
 * @public
 */
export function parseSocketmapKey(key: string): SocketmapKey | undefined {
  try {
    if (typeof key !== 'string') throw invalidArgument(`parseSocketmapKey: key must be a string, got ${describeValue(key)}`)
    return parseKey(key)
  } catch (e) {
    throw coded(e, 'parseSocketmapKey')
  }
}

function parseKey(key: string): SocketmapKey | undefined {
  let rest = key
  let port = 25
  const m = /^(.*?)(?::([0-9]{1,5}))?$/.exec(rest)
  if (m === null) return undefined
  if (m[2] !== undefined) {
    port = Number(m[2])
    if (port < 1 || port > 65535) return undefined
    rest = m[1] as string
  }
  let mxLookup = true
  const b = /^\[([^\]]*)\]$/.exec(rest)
  if (b) {
    mxLookup = false
    rest = b[1] as string
  } else if (m[2] !== undefined) return undefined // Postfix writes a port only after [host]
  if (rest.endsWith('.')) rest = rest.slice(0, -1)
  if (NON_ASCII.test(rest)) {
    // Postfix with smtputf8_enable looks up an internationalised next hop in UTF-8; DNS, DANE (TLSA at
    // the A-label name) and MTA-STS know it by its A-labels (RFC 5891 §4, RFC 7672 §3.2.3), as Postfix's
    // own DNS lookups and TLSRPT summaries do (midna_domain_to_ascii). Not a genuine U-label: NOTFOUND.
    const a = normalizeDnsName(rest)
    if (a === undefined) return undefined
    rest = a
  } else rest = rest.toLowerCase()
  if (rest.length === 0 || rest.length > 253) return undefined
  // An IP literal ([192.0.2.1], [ipv6:…]): an IPv4 address is all digits and dots (no TLD is numeric); IPv6 fails the label check.
  if (/^[0-9.]+$/.test(rest)) return undefined
  if (rest.startsWith('.')) return undefined
  if (!rest.split('.').every((l) => LABEL.test(l))) return undefined
  return { destination: mxLookup ? rest : `[${rest}]`, domain: rest, mxLookup, port }
}

/** The MTA-STS part of {@link SocketmapAnswerInput}: what `getMtaStsPolicy` found. @public */
export interface SocketmapStsInput {
  /** `maxAge` is used only for the TLS-RPT attributes (`policy_string = max_age: N`); without it that line is left out. */
  policy?: (Pick<MtaStsPolicy, 'mode' | 'mx'> & Partial<Pick<MtaStsPolicy, 'maxAge'>>) | undefined
  /** When the policy expires (ms since the epoch), for the cache time of the answer. */
  expiresAt?: number
}

/** Input of {@link socketmapAnswer}. @public */
export interface SocketmapAnswerInput {
  profile: SocketmapProfile
  key: SocketmapKey
  /** The destination's DNS facts; required when the profile has `dane`. */
  facts?: DestinationFacts
  /** The MTA-STS lookup; absent: no policy. */
  sts?: SocketmapStsInput
  /** The clock (ms since the epoch), for the remaining life of an MTA-STS policy. */
  now?: number
}

/** A socketmap answer. @public */
export interface SocketmapAnswer {
  status: 'OK' | 'NOTFOUND' | 'TEMP' | 'PERM'
  /** The reply payload, e.g. `OK dane-only` or `NOTFOUND ` (socketmap_table(5)). */
  reply: string
  /** What the answer came from: `dane`, `sts`, or `none`. */
  source: 'dane' | 'sts' | 'none'
  /** Seconds the answer stays true as far as the facts tell (the smallest TLSA TTL, the policy's remaining life); absent: unknown. */
  ttl?: number
  trace: TraceStep[]
}

/** socketmap_table(5) reply text: one line, printable, never longer than the reply limit. */
function reason(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 500)
}

/**
 * A reply for a request that could not be answered (bad request, unknown map): `TEMP <reason>` or `PERM <reason>`,
 * the reason made one printable line.
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for wrong types.
 * @public
 */
export function socketmapError(status: 'TEMP' | 'PERM', text: string): string {
  if (status !== 'TEMP' && status !== 'PERM')
    throw invalidArgument(`socketmapError: status must be TEMP or PERM, got ${describeValue(status)}`)
  if (typeof text !== 'string') throw invalidArgument(`socketmapError: text must be a string, got ${describeValue(text)}`)
  return `${status} ${reason(text)}`
}

// ---- TLS-RPT attributes (Postfix ≥ 3.10, TLSRPT_README "MTA-STS Support via smtp_tls_policy_maps") ----
// Postfix splits a policy entry at whitespace and commas; `{ name = value }` carries a value with spaces
// (Postfix strips the spaces after `{`, around `=` and before `}`). A value that could change how Postfix
// splits the entry (a space, a comma or a brace where it is not expected, a control character) is never
// written: the attributes are left out instead, and the policy itself stays as it is.
/** `name=value`: printable ASCII without space, `,`, `{` or `}`. */
const PLAIN_VALUE = /^[\x21-\x2b\x2d-\x7a\x7c\x7e]+$/
/** `{ name = value }`: printable ASCII without `{` or `}`, no space at either end, no double space. */
const BRACED_VALUE = /^[\x21-\x7a\x7c\x7e](?:[\x20-\x7a\x7c\x7e]*[\x21-\x7a\x7c\x7e])?$/
/** RFC 8461 §4.1 `mx` pattern: a host name, or `*.` and a domain. */
const MX_PATTERN = /^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/
/** Postfix checks `policy_domain` with valid_hostname(): LDH (and `_`) labels of at most 63 octets. */
const DOMAIN = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/
const MTA_STS_MAX_AGE = 31557600 // RFC 8461 §3.2

/**
 * The TLS-RPT attributes of an MTA-STS answer, with a leading space, or why they cannot be written.
 * RFC 8460 §4.4: `policy-type` `sts`, `policy-domain`, `policy-string` (the policy's lines, here rebuilt
 * from its parsed fields: version, mode, mx…, max_age, the order of RFC 8460 §4.5) and `mx-host` (the
 * policy's patterns as written, `*.example.com`).
 */
function tlsRptAttributes(
  domain: string,
  mode: 'enforce' | 'testing',
  mx: readonly unknown[],
  maxAge: unknown,
): { attrs: string } | { why: string } {
  if (domain.length > 253 || !DOMAIN.test(domain) || domain.split('.').some((l) => l.length > 63))
    return { why: `policy_domain ${describeValue(domain.slice(0, 60))} is not a host name` }
  // Postfix's smtp_tlsrpt.c reads the mx_host_pattern list of an `sts` policy unconditionally: never send none.
  if (mx.length === 0) return { why: 'the policy has no mx pattern' }
  for (const p of mx)
    if (typeof p !== 'string' || p.length > 255 || !MX_PATTERN.test(p))
      return { why: `mx pattern ${describeValue(typeof p === 'string' ? p.slice(0, 60) : p)} is not a host name pattern` }
  if (maxAge !== undefined && !(Number.isInteger(maxAge) && (maxAge as number) >= 0 && (maxAge as number) <= MTA_STS_MAX_AGE))
    return { why: `max_age ${describeValue(maxAge)} is not an integer 0-${MTA_STS_MAX_AGE}` }
  const strings = ['version: STSv1', `mode: ${mode}`, ...(mx as string[]).map((p) => `mx: ${p}`)]
  if (maxAge !== undefined) strings.push(`max_age: ${maxAge as number}`)
  const plain = ['sts', domain, ...(mx as string[])]
  // The checks above already exclude anything that would split differently; this is the last line of defence.
  if (!plain.every((v) => PLAIN_VALUE.test(v)) || !strings.every((v) => BRACED_VALUE.test(v) && !v.includes('  ')))
    return { why: 'a value cannot be written as a Postfix attribute' }
  let attrs = ` policy_type=sts policy_domain=${domain}`
  for (const v of strings) attrs += ` { policy_string = ${v} }`
  for (const p of mx as string[]) attrs += ` mx_host_pattern=${p}`
  return { attrs }
}

/** `reply` with the TLS-RPT attributes when the profile asks for them and they fit (socketmap_max_reply_size). */
function withTlsRpt(
  profile: SocketmapProfile,
  reply: string,
  trace: TraceStep[],
  domain: string,
  policy: NonNullable<SocketmapStsInput['policy']>,
  mode: 'enforce' | 'testing',
): string {
  if (profile.tlsrpt !== true) return reply
  const mx: readonly unknown[] = Array.isArray(policy.mx) ? policy.mx : []
  const r = tlsRptAttributes(domain, mode, mx, policy.maxAge)
  if ('why' in r) {
    trace.push({ rule: `TLS-RPT attributes left out (the policy stands): ${r.why}`, ref: 'Postfix TLSRPT_README' })
    return reply
  }
  const full = reply + r.attrs
  const size = Buffer.byteLength(full)
  if (size > SOCKETMAP_MAX_REPLY) {
    trace.push({
      rule: `TLS-RPT attributes left out (the policy stands): the reply would be ${size} bytes, over ${SOCKETMAP_MAX_REPLY}`,
      ref: 'socketmap_table(5) socketmap_max_reply_size',
    })
    return reply
  }
  trace.push({
    rule: `TLS-RPT attributes for Postfix ≥ 3.10: policy_type=sts policy_domain=${domain}, ${mx.length} mx_host_pattern`,
    ref: 'RFC 8460 §4.4; Postfix TLSRPT_README',
  })
  return full
}

/**
 * The socketmap reply for one lookup.
 *
 * - DANE (profile `dane`): a DNSSEC or TLSA lookup failure → `TEMP` (RFC 7672 §2.1.2: never a weaker
 *   answer); validated MX and a usable, validated TLSA RRset at every MX host → `OK dane-only`; a usable
 *   TLSA RRset at some → `OK dane` (Postfix then applies DANE per host, RFC 7672 §2.2).
 * - MTA-STS (profile `sts`, domains only): `enforce` → `OK secure match=<patterns> servername=hostname`
 *   (RFC 8461 §4.1: `*.example.com` written `.example.com` as Postfix matches it); `testing` → `NOTFOUND`
 *   or `OK may` as configured; none → `NOTFOUND`.
 * - TLS-RPT (profile `tlsrpt`, Postfix ≥ 3.10): the MTA-STS `OK` answers get `policy_type=sts
 *   policy_domain=<domain> { policy_string = version: STSv1 } { policy_string = mode: … } { policy_string =
 *   mx: … }… { policy_string = max_age: … } mx_host_pattern=…`. They are left out (traced), never the
 *   policy, when a value cannot be written safely or the reply would exceed 100,000 bytes. DANE answers get
 *   none (Postfix reports DANE from its own TLSA lookups).
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for malformed input.
 * @public
 */
export function socketmapAnswer(input: SocketmapAnswerInput): SocketmapAnswer {
  try {
    return answerChecked(input)
  } catch (e) {
    throw coded(e, 'socketmapAnswer')
  }
}

function answerChecked(input: SocketmapAnswerInput): SocketmapAnswer {
  if (typeof input !== 'object' || input === null)
    throw invalidArgument(`socketmapAnswer input must be an object, got ${describeValue(input)}`)
  const { profile, key, facts, sts } = input
  if (typeof profile !== 'object' || profile === null) throw invalidArgument('socketmapAnswer: profile is required')
  if (typeof key !== 'object' || key === null || typeof key.domain !== 'string') throw invalidArgument('socketmapAnswer: key is required')
  if (profile.tlsrpt !== undefined && typeof profile.tlsrpt !== 'boolean')
    throw invalidArgument(`socketmapAnswer: profile.tlsrpt must be a boolean, got ${describeValue(profile.tlsrpt)}`)
  const trace: TraceStep[] = []
  const notFound = (ttl?: number): SocketmapAnswer => {
    const a: SocketmapAnswer = { status: 'NOTFOUND', reply: 'NOTFOUND ', source: 'none', trace }
    if (ttl !== undefined) a.ttl = ttl
    return a
  }
  const temp = (why: string, ref: string): SocketmapAnswer => {
    trace.push({ rule: `${why} → TEMP`, ref })
    return { status: 'TEMP', reply: socketmapError('TEMP', why), source: 'dane', trace }
  }

  if (profile.dane === true) {
    if (typeof facts !== 'object' || facts === null || !Array.isArray(facts.mx))
      throw invalidArgument('socketmapAnswer: facts are required for a DANE profile')
    if (facts.status === 'deferred') return temp(facts.error?.message ?? 'DNS lookup failed', 'RFC 7672 §2.1.2')
    if (facts.status === 'null-mx' || facts.status === 'no-such-domain') {
      trace.push({ rule: `${facts.status}: no TLS policy`, ref: facts.status === 'null-mx' ? 'RFC 7505 §3' : 'RFC 5321 §5.1' })
      return notFound()
    }
    if (facts.mxLookup && !facts.mxSecure) {
      trace.push({ rule: 'MX RRset not validated → no DANE', ref: 'RFC 7672 §2.2.1' })
    } else {
      let withTlsa = 0
      let ttl = Infinity
      for (const h of facts.mx) {
        // RFC 7672 §2.1.1: a bogus or failed lookup is not "no records"; never a weaker answer.
        if (h.tlsa.status === 'lookup-failed') return temp(h.tlsa.error?.message ?? `TLSA lookup failed for ${h.host}`, 'RFC 7672 §2.1.2')
        if (h.error?.code === 'ERR_DNS_BOGUS') return temp(h.error.message, 'RFC 7672 §2.1.1')
        if (h.tlsa.status === 'secure' && checkTlsaUsability(h.tlsa.records).usable.length > 0) {
          withTlsa++
          if (h.tlsa.ttl > 0) ttl = Math.min(ttl, h.tlsa.ttl)
        }
      }
      if (withTlsa > 0) {
        const all = withTlsa === facts.mx.length
        trace.push({
          rule: all
            ? `usable validated TLSA at every MX host (${withTlsa}) → dane-only`
            : `usable validated TLSA at ${withTlsa} of ${facts.mx.length} MX hosts → dane`,
          ref: 'RFC 7672 §2.2; RFC 8461 §2',
        })
        if (profile.tlsrpt === true)
          trace.push({
            rule: 'TLS-RPT: no attributes for DANE (Postfix ≥ 3.10 reports the TLSA records it looks up itself; policy_type takes sts or no-policy-found only)',
            ref: 'Postfix TLSRPT_README; RFC 8460 §4.4',
          })
        const a: SocketmapAnswer = { status: 'OK', reply: all ? 'OK dane-only' : 'OK dane', source: 'dane', trace }
        if (ttl !== Infinity) a.ttl = ttl
        return a
      }
      trace.push({ rule: 'no usable validated TLSA RRset at any MX host → no DANE', ref: 'RFC 7672 §2.2' })
    }
  }

  if (profile.sts === true) {
    if (!key.mxLookup) {
      trace.push({ rule: '[host] nexthop: no MTA-STS (it applies to recipient domains)', ref: 'RFC 8461 §4' })
      return notFound()
    }
    const policy = sts?.policy
    const now = typeof input.now === 'number' ? input.now : undefined
    const life = sts?.expiresAt !== undefined && now !== undefined ? Math.max(0, Math.floor((sts.expiresAt - now) / 1000)) : undefined
    if (policy === undefined || policy.mode === 'none') {
      trace.push({ rule: policy === undefined ? 'no MTA-STS policy' : 'MTA-STS mode none', ref: 'RFC 8461 §5' })
      return notFound(policy === undefined ? undefined : life)
    }
    if (policy.mode === 'testing') {
      if (profile.testing === 'may') {
        trace.push({ rule: 'MTA-STS testing → may (configured)', ref: 'RFC 8461 §5' })
        const reply = withTlsRpt(profile, 'OK may', trace, key.domain, policy, 'testing')
        const a: SocketmapAnswer = { status: 'OK', reply, source: 'sts', trace }
        if (life !== undefined) a.ttl = life
        return a
      }
      trace.push({ rule: 'MTA-STS testing → NOTFOUND', ref: 'RFC 8461 §5' })
      return notFound(life)
    }
    if (policy.mode !== 'enforce') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'sts.policy.mode must be enforce, testing or none')
    if (!Array.isArray(policy.mx) || policy.mx.length === 0 || policy.mx.some((p) => typeof p !== 'string' || !/^[*a-z0-9._-]+$/.test(p)))
      throw invalidArgument('socketmapAnswer: sts.policy.mx must be a non-empty list of patterns')
    // RFC 8461 §4.1: "*.example.com" matches one label left of example.com; Postfix writes that ".example.com".
    const patterns = policy.mx.map((p) => (p.startsWith('*.') ? p.slice(1) : p))
    const reply = `OK secure match=${patterns.join(':')} servername=hostname`
    if (Buffer.byteLength(reply) > SOCKETMAP_MAX_REPLY) return temp('MTA-STS policy too long for a socketmap reply', 'socketmap_table(5)')
    trace.push({ rule: 'MTA-STS enforce → secure, MX names from the policy', ref: 'RFC 8461 §4.1, §5' })
    const a: SocketmapAnswer = {
      status: 'OK',
      reply: withTlsRpt(profile, reply, trace, key.domain, policy, 'enforce'),
      source: 'sts',
      trace,
    }
    if (life !== undefined) a.ttl = life
    return a
  }
  return notFound()
}
