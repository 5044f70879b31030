/**
 * Destination discovery (RFC 7672 §2.1-2.2): from a next-hop destination and port to typed DNS facts:
 * the MX RRset and its security, per host the addresses, the TLSA RRset and its status, the TLSA base
 * domain and the DANE-TA reference identifiers. The output is plain data for the policy engine.
 */
import { coded, describeValue, invalidArgument } from '../args.js'
import { isIP } from 'node:net'
import { SmtpTlsError } from '../errors.js'
import type { CnameLink, DestinationFacts, DnsAnswer, DnsFailure, HostAddress, MxHostFacts, TlsaFacts } from '../dns/types.js'
import type { TlsaRecord } from '../tlsa/types.js'
import { createResolver, type Resolver } from './resolver/resolver.js'
import { normalizeDnsName } from '../x509/names.js'
import { normaliseName } from './resolver/wire.js'

/** Options of {@link discoverDestination}. @public */
export interface DiscoverOptions {
  /** Default: `createResolver()` (the nameservers of /etc/resolv.conf). */
  resolver?: Resolver
  /** Destination TCP port for the TLSA qname `_<port>._tcp` (RFC 7672 §2.2.3). Default 25. */
  port?: number
  signal?: AbortSignal
  /** Address families to look up (default both; Postfix `inet_protocols`). */
  families?: readonly (4 | 6)[]
  /** Most MX hosts examined, best preference first (default 10). */
  maxHosts?: number
  /** Random source in [0, 1) for ordering equal-preference MX hosts (default `Math.random`). */
  random?: () => number
}

function failure(e: SmtpTlsError): DnsFailure {
  const f: DnsFailure = { code: e.code, message: e.message, temporary: e.temporary }
  if (e.enhancedStatus !== undefined) f.enhancedStatus = e.enhancedStatus
  return f
}

/** A lookup failure as defined by RFC 7672 §2.1.1: bogus, indeterminate or any error. */
function isFailure(a: DnsAnswer): boolean {
  return a.status === 'bogus' || a.status === 'error'
}

function answerFailure(a: DnsAnswer, enhancedStatus: string, what: string): DnsFailure {
  const f: DnsFailure = {
    code: a.error?.code ?? 'ERR_DNS_SERVFAIL',
    message: `${what}: ${a.error?.message ?? a.status}`,
    temporary: true,
    enhancedStatus,
  }
  if (a.error?.tlsrpt !== undefined) f.tlsrpt = a.error.tlsrpt
  return f
}

/** Fisher-Yates shuffle within runs of equal preference (RFC 5321 §5.1: equal preferences in random order). */
function sortMx<T extends { preference: number }>(hosts: T[], random: () => number): T[] {
  const sorted = [...hosts].sort((a, b) => a.preference - b.preference)
  for (let i = 0; i < sorted.length;) {
    let j = i
    while (j < sorted.length && (sorted[j] as T).preference === (sorted[i] as T).preference) j++
    for (let k = j - 1; k > i; k--) {
      const r = i + Math.floor(random() * (k - i + 1))
      const t = sorted[k] as T
      sorted[k] = sorted[r] as T
      sorted[r] = t
    }
    i = j
  }
  return sorted
}

/** Parse `example.com`, `[mx.example.com]` (no MX lookup, Postfix syntax) or `[192.0.2.1]` / `[ipv6:2001:db8::1]`. */
function parseDestination(destination: string): { domain: string; mxLookup: boolean; literal?: HostAddress } {
  if (typeof destination !== 'string') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'destination must be a string')
  const d = destination.trim()
  const bracket = /^\[([^\]]+)\]$/.exec(d)
  if (bracket) {
    const inner = (bracket[1] as string).replace(/^ipv6:/i, '')
    const fam = isIP(inner)
    if (fam !== 0) return { domain: inner.toLowerCase(), mxLookup: false, literal: { address: inner.toLowerCase(), family: fam as 4 | 6 } }
    return { domain: destinationName(inner), mxLookup: false }
  }
  return { domain: destinationName(d), mxLookup: true }
}

/**
 * A destination domain for DNS queries: an IDN's U-labels as A-labels (RFC 5891 §4, the same name check
 * as every other name, x509/names.ts), then the query-name check; anything else is ERR_INVALID_ARGUMENT.
 */
function destinationName(name: string): string {
  if (/[^\x00-\x7f]/.test(name)) {
    const a = normalizeDnsName(name)
    if (a === undefined) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `invalid destination ${JSON.stringify(name)}: not a DNS name`)
    return normaliseName(a)
  }
  return normaliseName(name)
}

interface HostContext {
  resolver: Resolver
  port: number
  signal: AbortSignal | undefined
  families: readonly (4 | 6)[]
  /** Reference identifiers contributed by the destination (RFC 7672 §3.2.2). */
  extraNames: (base: string, host: string) => string[]
}

function uniq(names: string[]): string[] {
  return [...new Set(names)]
}

/**
 * One host: addresses first, then TLSA only when the address answer was secure (RFC 7672 §2.2.2), at the
 * CNAME-expanded name first and the original name second (§2.2.2 "Secure CNAME"); with an insecure expansion,
 * at the original name only and only when its own CNAME record is secure (§2.2.2 "Insecure CNAME").
 */
async function examineHost(host: string, preference: number, ctx: HostContext): Promise<MxHostFacts> {
  const lo = ctx.signal === undefined ? {} : { signal: ctx.signal }
  const qname = (base: string) => `_${ctx.port}._tcp.${base}`
  const tlsa: TlsaFacts = { status: 'not-looked-up', records: [], qname: qname(host), base: host, candidates: [], cnames: [], ttl: 0 }
  const facts: MxHostFacts = {
    host,
    preference,
    canonicalHost: host,
    cnames: [],
    addresses: [],
    addressSecure: false,
    tlsa,
    referenceNames: [],
    usable: false,
  }
  const finish = (): MxHostFacts => {
    facts.referenceNames = uniq([tlsa.base, ...ctx.extraNames(tlsa.base, host)])
    return facts
  }

  // RFC 7672 §2.2.2: "MUST perform any A and/or AAAA queries for the destination before attempting to locate the associated TLSA records"
  const answers = await Promise.all(ctx.families.map((f) => ctx.resolver.lookup(host, f === 4 ? 'A' : 'AAAA', lo)))
  const failed = answers.find(isFailure)
  if (failed) {
    // RFC 7672 §2.1.2: delivery may proceed via the remaining MX hosts
    facts.error = answerFailure(failed, '4.4.3', `address lookup failed for ${host}`)
    facts.unusableReason = facts.error.message
    return finish()
  }
  for (const a of answers) {
    for (const r of a.records) facts.addresses.push({ address: r as string, family: a.type === 'A' ? 4 : 6 })
  }
  const withData = answers.find((a) => a.records.length > 0) ?? answers[0]
  if (withData) {
    facts.canonicalHost = withData.canonicalName
    facts.cnames = withData.cnames
  }
  facts.addressSecure = answers.length > 0 && answers.every((a) => a.secure)
  if (facts.addresses.length === 0) {
    // RFC 7672 §2.2.2 "Not found": the destination is unreachable
    facts.unusableReason = `no address records for ${host}`
    facts.error = { code: 'ERR_DNS_NO_ADDRESS', message: facts.unusableReason, temporary: true, enhancedStatus: '4.4.4' }
    return finish()
  }

  let candidates: string[] = []
  if (facts.addressSecure) {
    candidates = facts.canonicalHost !== host ? [facts.canonicalHost, host] : [host]
  } else if (facts.cnames.length > 0) {
    // RFC 7672 §2.1.3 / §2.2.2: is the zone holding the host's own CNAME signed? Ask for the CNAME alone.
    const c = await ctx.resolver.lookup(host, 'CNAME', lo)
    if (isFailure(c)) {
      tlsa.status = 'lookup-failed'
      tlsa.error = answerFailure(c, '4.7.5', `TLSA lookup error for ${host}:${ctx.port} (CNAME of the host)`)
      facts.error = tlsa.error
      facts.unusableReason = tlsa.error.message
      return finish()
    }
    facts.cnameSecure = c.secure
    if (c.secure) candidates = [host]
  }
  if (candidates.length === 0) {
    facts.usable = true // RFC 7672 §2.2.2: insecure addresses, TLSA not looked up; pre-DANE opportunistic TLS
    return finish()
  }

  tlsa.candidates = candidates
  const tried: { base: string; answer: DnsAnswer<'TLSA'> }[] = []
  for (const base of candidates) {
    const q = qname(base)
    const a = await ctx.resolver.lookup(q, 'TLSA', lo)
    if (isFailure(a)) {
      // RFC 7672 §2.1.2: any failure locating TLSA records: the server MUST be treated as unreachable.
      // Postfix: "TLSA lookup error for host:port", 4.7.5; an error at the expanded name does not fall back.
      tlsa.status = 'lookup-failed'
      tlsa.base = base
      tlsa.qname = q
      tlsa.cnames = a.cnames
      tlsa.error = answerFailure(a, '4.7.5', `TLSA lookup error for ${host}:${ctx.port}`)
      facts.error = tlsa.error
      facts.unusableReason = tlsa.error.message
      return finish()
    }
    tried.push({ base, answer: a })
    if (a.status === 'secure') break
    // RFC 7672 §2.2.3: insecure or no TLSA records at this candidate: try the next one
  }
  // the secure RRset if any, else insecure records if any, else the preferred candidate's denial
  const shown =
    tried.find((t) => t.answer.status === 'secure') ?? tried.find((t) => t.answer.status === 'insecure') ?? (tried[0] as (typeof tried)[0])
  tlsa.base = shown.base
  tlsa.qname = shown.answer.name
  tlsa.cnames = shown.answer.cnames
  tlsa.ttl = shown.answer.ttl
  tlsa.records = shown.answer.records as TlsaRecord[]
  if (shown.answer.undecodable !== undefined) tlsa.undecodable = shown.answer.undecodable // RFC 6698 §2.1: unusable, the rest is used
  if (shown.answer.status === 'secure' || shown.answer.status === 'insecure') tlsa.status = shown.answer.status
  else tlsa.status = tried.every((t) => t.answer.secure) ? 'secure-denial' : 'insecure'
  facts.usable = true
  return finish()
}

/**
 * Discover the DNS facts for delivering to `destination` on `port` (RFC 7672 §2.1-2.2).
 *
 * - `example.com`: MX lookup; a null MX (RFC 7505) gives `null-mx`; no MX records give an implicit MX on the
 *   domain (RFC 5321 §5.1); an MX or CNAME lookup failure (bogus, SERVFAIL, timeout, malformed) gives
 *   `deferred` (RFC 7672 §2.1.2).
 * - `[host.example.com]`: no MX lookup (Postfix syntax); `[192.0.2.1]`: an address literal, where DANE does
 *   not apply (RFC 7672 §2.2).
 *
 * Never rejects for DNS outcomes; rejects with `ERR_INVALID_ARGUMENT` for a malformed destination or port and
 * with `ERR_ABORTED` when `signal` fires.
 *
 * @example
 * ```ts
 * const facts = await discoverDestination('example.com', { resolver: createResolver({ servers: ['127.0.0.1'] }) })
 * for (const h of facts.mx) console.log(h.host, h.addressSecure, h.tlsa.status, h.referenceNames)
 * ```
 * @public
 */
export async function discoverDestination(destination: string, opts: DiscoverOptions = {}): Promise<DestinationFacts> {
  // Checked before any I/O; anything thrown while reading the caller's options is coded.
  try {
    return await discoverDestinationChecked(destination, opts)
  } catch (e) {
    throw coded(e, 'discoverDestination')
  }
}

async function discoverDestinationChecked(destination: string, opts: DiscoverOptions = {}): Promise<DestinationFacts> {
  if (typeof opts !== 'object' || opts === null)
    throw invalidArgument(`discoverDestination options must be an object, got ${describeValue(opts)}`)
  const port = opts.port ?? 25
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `invalid port ${String(port)}`)
  const families = opts.families ?? [4, 6]
  if (families.length === 0 || families.some((f) => f !== 4 && f !== 6))
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'families must be 4 and/or 6')
  const maxHosts = opts.maxHosts ?? 10
  const random = opts.random ?? Math.random
  const resolver = opts.resolver ?? createResolver()
  const { domain, mxLookup, literal } = parseDestination(destination)
  const facts: DestinationFacts = {
    domain,
    port,
    mxLookup,
    status: 'ok',
    mxSecure: false,
    nullMx: false,
    implicitMx: false,
    canonicalDomain: domain,
    cnames: [],
    mx: [],
  }
  if (literal) {
    // RFC 7672 §2.2: DANE does not apply to an address literal
    facts.mx.push({
      host: domain,
      preference: 0,
      canonicalHost: domain,
      cnames: [],
      addresses: [literal],
      addressSecure: false,
      tlsa: { status: 'not-looked-up', records: [], qname: '', base: '', candidates: [], cnames: [], ttl: 0 },
      referenceNames: [],
      usable: true,
    })
    return facts
  }

  let hosts: { host: string; preference: number }[]
  if (mxLookup) {
    const mx = await resolver.lookup(domain, 'MX', opts.signal === undefined ? {} : { signal: opts.signal })
    facts.canonicalDomain = mx.canonicalName
    facts.cnames = mx.cnames as CnameLink[]
    if (isFailure(mx)) {
      // RFC 7672 §2.1.2: a failure that prevents choosing servers: delivery MUST be delayed
      facts.status = 'deferred'
      facts.error = answerFailure(mx, '4.4.3', `MX lookup failed for ${domain}`)
      return facts
    }
    facts.mxSecure = mx.secure
    if (mx.status === 'nxdomain') {
      facts.status = 'no-such-domain'
      facts.error = failure(
        new SmtpTlsError('ERR_DNS_NXDOMAIN', `${domain}: no such domain (NXDOMAIN)`, { temporary: false, enhancedStatus: '5.1.2' }),
      )
      return facts
    }
    const published = mx.records
    const real = published.filter((r) => r.exchange !== '.' && r.exchange !== '')
    if (published.length > 0 && real.length === 0) {
      // RFC 7505 §3: a null MX ("0 .") says the domain accepts no mail; a permanent failure (§4.2: 556 5.1.10)
      facts.nullMx = true
      facts.status = 'null-mx'
      facts.error = failure(
        new SmtpTlsError('ERR_DNS_NULL_MX', `${domain} accepts no mail (null MX, RFC 7505)`, {
          temporary: false,
          enhancedStatus: '5.1.10',
        }),
      )
      return facts
    }
    if (real.length === 0) {
      // RFC 5321 §5.1: no MX records: the domain itself is the host, with preference 0 (RFC 7672 §2.2.2 non-MX destination)
      facts.implicitMx = true
      hosts = [{ host: domain, preference: 0 }]
    } else {
      const best = new Map<string, number>()
      for (const r of real) best.set(r.exchange, Math.min(best.get(r.exchange) ?? 65536, r.preference))
      // RFC 7672 §2.2.1: MX records MUST be sorted by preference; TLSA never reorders them
      hosts = sortMx(
        [...best].map(([host, preference]) => ({ host, preference })),
        random,
      ).slice(0, maxHosts)
    }
  } else {
    hosts = [{ host: domain, preference: 0 }]
  }

  const viaMx = mxLookup && !facts.implicitMx
  const ctx: HostContext = {
    resolver,
    port,
    signal: opts.signal,
    families,
    // RFC 7672 §3.2.2 reference identifiers beside the TLSA base domain
    extraNames: (base, host) => {
      if (viaMx) return facts.mxSecure ? [domain, facts.canonicalDomain] : []
      // non-MX: the original next-hop domain when the base is its CNAME expansion
      return base !== host ? [host] : []
    },
  }
  const examined = await Promise.all(
    hosts.map((h): Promise<MxHostFacts> | MxHostFacts => {
      try {
        normaliseName(h.host)
      } catch (e) {
        return {
          host: h.host,
          preference: h.preference,
          canonicalHost: h.host,
          cnames: [],
          addresses: [],
          addressSecure: false,
          tlsa: { status: 'not-looked-up', records: [], qname: '', base: h.host, candidates: [], cnames: [], ttl: 0 },
          referenceNames: [],
          usable: false,
          unusableReason: `invalid MX host name: ${(e as Error).message}`,
        }
      }
      return examineHost(h.host, h.preference, ctx)
    }),
  )
  facts.mx = examined
  if (!examined.some((h) => h.usable)) {
    // RFC 7672 §2.1.2: if no servers are reachable, delivery is delayed
    facts.status = 'deferred'
    const first = examined.find((h) => h.error)?.error
    facts.error = first ?? { code: 'ERR_DNS_NO_ADDRESS', message: `no usable host for ${domain}`, temporary: true, enhancedStatus: '4.4.4' }
  }
  return facts
}
