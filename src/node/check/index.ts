/**
 * `check(domain)`: the operator's validator (issue 16). DNS facts from discoverDestination, one STARTTLS
 * session per MX address (all at once, within a bound), the chain judged with verifyDane and the TLSA
 * RRset with checkTlsaUsability, plus MTA-STS and TLS-RPT. Every finding names its rule and a remedy.
 */
import { X509Certificate, createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { coded, describeValue, invalidArgument, readOptions } from '../../args.js'
import { SmtpTlsError } from '../../errors.js'
import type { DestinationFacts, MxHostFacts } from '../../dns/types.js'
import { verifyDane } from '../../dane/verify.js'
import { checkTlsaUsability } from '../../tlsa/usability.js'
import { formatTlsaRecord } from '../../tlsa/format.js'
import { spkiOf } from '../../x509/der.js'
import type { TlsaRecord } from '../../tlsa/types.js'
import { mtaStsMatchesMx } from '../../mta-sts/match.js'
import type { MtaStsPolicy } from '../../mta-sts/policy.js'
import { checkServerIdentity, rootCertificates } from 'node:tls'
import { discoverDestination } from '../discovery.js'
import { getMtaStsPolicy, getTlsRptRecord } from '../mta-sts.js'
import { createResolver, type Resolver } from '../resolver/resolver.js'
import { StartTlsClient } from '../../smtp/starttls.js'
import { runSession, type SessionResult } from './session.js'
import type {
  CheckAddressReport,
  CheckCertificate,
  CheckFinding,
  CheckHostReport,
  CheckOptions,
  CheckReport,
  CheckSeverity,
} from './types.js'

export type {
  CheckAddressReport,
  CheckCertificate,
  CheckFinding,
  CheckHostReport,
  CheckOptions,
  CheckReport,
  CheckSeverity,
} from './types.js'

const DAY = 86_400_000
/** Certificates closer than this to expiry are a warning. */
const EXPIRY_WARNING_DAYS = 14
/** RFC 8461 §3.2: max_age "weeks or greater" is recommended for enforce. */
const STS_MIN_ENFORCE_MAX_AGE = 7 * 86_400
const TLSA_REMEDY = 'publish a TLSA record for the key the server sends: `smtp-tls-policy tlsa cert.pem --host MX`'

interface Settings {
  resolver: Resolver
  port: number
  timeoutMs: number
  ehloName: string
  families: readonly (4 | 6)[]
  concurrency: number
  now: Date
  signal: AbortSignal | undefined
  mtaSts: false | Record<string, unknown>
  tlsRpt: boolean
}

function readSettings(opts: unknown): Settings {
  const o = readOptions(opts, 'check options', [
    'resolver',
    'port',
    'timeoutMs',
    'ehloName',
    'families',
    'concurrency',
    'now',
    'signal',
    'mtaSts',
    'tlsRpt',
  ])
  const int = (v: unknown, name: string, def: number, min: number, max: number): number => {
    if (v === undefined) return def
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw invalidArgument(`check options.${name} must be an integer from ${min} to ${max}, got ${describeValue(v)}`)
    return v
  }
  const r = o.resolver
  if (r !== undefined && (typeof r !== 'object' || r === null || typeof (r as Resolver).lookup !== 'function'))
    throw invalidArgument('check options.resolver must be a Resolver')
  const families = o.families ?? [4, 6]
  if (!Array.isArray(families) || families.length === 0 || families.some((f) => f !== 4 && f !== 6))
    throw invalidArgument('check options.families must be 4 and/or 6')
  const now = o.now ?? new Date()
  if (!(now instanceof Date) || !Number.isFinite(now.getTime())) throw invalidArgument('check options.now must be a valid Date')
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArgument('check options.signal must be an AbortSignal')
  if (o.mtaSts !== undefined && o.mtaSts !== false && (typeof o.mtaSts !== 'object' || o.mtaSts === null))
    throw invalidArgument('check options.mtaSts must be false or an object')
  if (o.tlsRpt !== undefined && typeof o.tlsRpt !== 'boolean') throw invalidArgument('check options.tlsRpt must be a boolean')
  let ehloName: string
  if (o.ehloName !== undefined) {
    if (typeof o.ehloName !== 'string') throw invalidArgument('check options.ehloName must be a string')
    new StartTlsClient({ ehloName: o.ehloName, requireTls: false, servername: '' }) // checks the name (RFC 5321 §4.1.1.1)
    ehloName = o.ehloName
  } else {
    ehloName = hostname()
    try {
      new StartTlsClient({ ehloName, requireTls: false, servername: '' })
    } catch {
      ehloName = 'localhost'
    }
  }
  return {
    resolver: (r as Resolver | undefined) ?? createResolver(),
    port: int(o.port, 'port', 25, 1, 65535),
    timeoutMs: int(o.timeoutMs, 'timeoutMs', 15_000, 1, 3_600_000),
    ehloName,
    families: families as (4 | 6)[],
    concurrency: int(o.concurrency, 'concurrency', 8, 1, 256),
    now,
    signal: o.signal as AbortSignal | undefined,
    mtaSts: o.mtaSts === false ? false : ((o.mtaSts as Record<string, unknown> | undefined) ?? {}),
    tlsRpt: o.tlsRpt !== false,
  }
}

function checkDomainName(domain: unknown): string {
  if (typeof domain !== 'string') throw invalidArgument(`check needs a domain name, got ${describeValue(domain)}`)
  const d = (domain.endsWith('.') ? domain.slice(0, -1) : domain).toLowerCase()
  if (!/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/.test(d))
    throw invalidArgument(`check needs a domain name (A-labels for IDNs), got ${JSON.stringify(domain)}`)
  return d
}

/** Run `tasks` with at most `limit` at once. */
async function bounded<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++
      out[i] = await (tasks[i] as () => Promise<T>)()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return out
}

function finding(severity: CheckSeverity, id: string, rule: string, message: string, remedy?: string, address?: string): CheckFinding {
  const f: CheckFinding = { severity, id, rule, message }
  if (remedy !== undefined && severity !== 'ok') f.remedy = remedy
  if (address !== undefined) f.address = address
  return f
}

/**
 * Subject, issuer, expiry and the SPKI digest of one certificate. Memoised per check (`seen`): the
 * addresses of a host, and often its hosts, send the same certificate, and X509Certificate parsing is
 * the largest CPU cost after the handshakes (bench/check.ts).
 */
function describeCert(der: Uint8Array, now: Date, seen: Map<string, CheckCertificate>): CheckCertificate {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64')
  let c = seen.get(key)
  if (c === undefined) {
    c = describeCertUncached(der, now)
    seen.set(key, c)
  }
  return { ...c }
}

function describeCertUncached(der: Uint8Array, now: Date): CheckCertificate {
  try {
    const x = new X509Certificate(der)
    const notAfter = new Date(x.validTo)
    // The SubjectPublicKeyInfo as the certificate encodes it (the `3 1 x` input), not re-encoded by export().
    const spki = spkiOf(der)
    return {
      subject: x.subject.replace(/\n/g, ', '),
      issuer: x.issuer.replace(/\n/g, ', '),
      notAfter: Number.isFinite(notAfter.getTime()) ? notAfter.toISOString() : x.validTo,
      daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY),
      spkiSha256: createHash('sha256').update(spki).digest('hex'),
    }
  } catch (e) {
    return { subject: `(unparsable: ${e instanceof Error ? e.message : 'error'})`, issuer: '', notAfter: '', daysLeft: NaN, spkiSha256: '' }
  }
}

/** `3 1 1 f96bcfceeda1838f…`: a record in a one-line message. */
function brief(r: TlsaRecord): string {
  const t = formatTlsaRecord(r)
  return t.length > 24 ? t.slice(0, 23) + '…' : t
}

/** Does `record` alone authenticate `chain`? */
function matches(record: TlsaRecord, chain: readonly Uint8Array[], names: readonly string[], now: Date): boolean {
  if (chain.length === 0) return false
  try {
    return verifyDane({ records: [record], chain, names, now }).ok
  } catch {
    return false
  }
}

/**
 * Check a domain as an operator would before (and after) turning on DANE or MTA-STS: DNSSEC of the MX,
 * address and TLSA RRsets, every MX address over STARTTLS (all at once, at most `concurrency` sessions),
 * the chain each one sends judged against the TLSA RRset, rollover readiness (RFC 7671 §8), certificate
 * expiry, MTA-STS and TLS-RPT. Each finding has a severity, its rule and a remedy.
 *
 * Rejects only when the check itself cannot run: `ERR_INVALID_ARGUMENT`, `ERR_ABORTED`, or a DNS failure
 * that is no answer at all (timeout, network, refused: temporary). Everything else is in the report.
 *
 * @example
 * ```ts
 * const report = await check('example.com', { resolver: createResolver({ servers: ['127.0.0.1'] }) })
 * for (const h of report.hosts) for (const f of h.findings) console.log(h.host, f.severity, f.message)
 * console.log(report.summary) // { errors: 0, warnings: 1, ok: 14 }
 * ```
 * @public
 */
export async function check(domain: string, options?: CheckOptions): Promise<CheckReport> {
  let d: string
  let s: Settings
  try {
    d = checkDomainName(domain)
    s = readSettings(options)
  } catch (e) {
    throw coded(e, 'check')
  }
  return runCheck(d, s)
}

async function runCheck(domain: string, s: Settings): Promise<CheckReport> {
  const signalOpt = s.signal ? { signal: s.signal } : {}
  const facts = await discoverDestination(domain, { resolver: s.resolver, port: s.port, families: s.families, ...signalOpt })
  if (facts.status === 'deferred' && facts.error && /TIMEOUT|NETWORK|REFUSED|CONFIG/.test(facts.error.code)) {
    throw new SmtpTlsError(facts.error.code, `check ${domain}: the DNS lookup could not be made: ${facts.error.message}`)
  }
  // Sessions, MTA-STS and TLS-RPT all at once.
  const hostsSorted = [...facts.mx].sort((a, b) => a.preference - b.preference || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))
  const tasks: (() => Promise<SessionResult>)[] = []
  const index: [number, number][] = []
  hostsSorted.forEach((h, hi) => {
    const servername = h.tlsa.status === 'secure' ? h.tlsa.base : h.canonicalHost
    const addrs = [...h.addresses].sort((a, b) => a.family - b.family || (a.address < b.address ? -1 : 1))
    addrs.forEach((a, ai) => {
      index.push([hi, ai])
      tasks.push(() => runSession(a.address, s.port, servername, s.ehloName, s.timeoutMs, s.signal))
    })
  })
  const sts: StsState = {}
  const [sessions, domainFindings] = await Promise.all([bounded(tasks, s.concurrency), domainChecks(domain, facts, hostsSorted, s, sts)])
  if (s.signal?.aborted) throw new SmtpTlsError('ERR_ABORTED', 'check aborted')
  const perHost: SessionResult[][] = hostsSorted.map(() => [])
  index.forEach(([hi, ai], k) => ((perHost[hi] as SessionResult[])[ai] = sessions[k] as SessionResult))
  const certs = new Map<string, CheckCertificate>()
  const hosts = hostsSorted.map((h, hi) => hostReport(h, perHost[hi] as SessionResult[], facts, s, sts.policy, certs))
  const summary = { errors: 0, warnings: 0, ok: 0 }
  for (const f of [...domainFindings, ...hosts.flatMap((h) => h.findings)]) {
    if (f.severity === 'error') summary.errors++
    else if (f.severity === 'warning') summary.warnings++
    else summary.ok++
  }
  return {
    domain,
    port: s.port,
    checkedAt: s.now.toISOString(),
    status: facts.status,
    mxSecure: facts.mxSecure,
    nullMx: facts.nullMx,
    implicitMx: facts.implicitMx,
    findings: domainFindings,
    hosts,
    summary,
  }
}

/** The MTA-STS policy in force, for the per-address certificate check (RFC 8461 §4.2). */
interface StsState {
  policy?: MtaStsPolicy
}

async function domainChecks(
  domain: string,
  facts: DestinationFacts,
  hosts: MxHostFacts[],
  s: Settings,
  sts: StsState,
): Promise<CheckFinding[]> {
  const out: CheckFinding[] = []
  if (facts.status === 'null-mx') {
    out.push(finding('ok', 'null-mx', 'RFC 7505 §3', 'null MX: the domain accepts no mail, and says so (senders bounce at once)'))
  } else if (facts.status === 'no-such-domain') {
    out.push(
      finding(
        'error',
        'no-such-domain',
        'RFC 5321 §5.1',
        'the domain does not exist (NXDOMAIN)',
        'create the zone, or stop using this domain in addresses',
      ),
    )
  } else if (facts.status === 'deferred') {
    out.push(
      finding(
        'error',
        'mx-lookup',
        'RFC 7672 §2.1.2',
        `the MX lookup failed (${facts.error?.message ?? 'unknown error'}): senders defer all mail`,
        'fix the zone signatures (check with `delv` or dnsviz.net)',
      ),
    )
  }
  if (facts.status === 'ok' || facts.status === 'null-mx') {
    if (facts.mxSecure) out.push(finding('ok', 'mx-dnssec', 'RFC 7672 §2.2.1', 'MX RRset signed (DNSSEC secure)'))
    else
      out.push(
        finding(
          'warning',
          'mx-dnssec',
          'RFC 7672 §2.2.1',
          'MX RRset not signed: DANE cannot apply to this domain',
          'sign the zone (DNSSEC), then publish TLSA records at _25._tcp.<mx host>',
        ),
      )
    if (facts.implicitMx)
      out.push(
        finding(
          'warning',
          'implicit-mx',
          'RFC 5321 §5.1',
          'no MX records: mail goes to the domain address (implicit MX)',
          'publish an MX record',
        ),
      )
  }
  const jobs: Promise<void>[] = []
  if (s.mtaSts !== false && facts.status !== 'no-such-domain') jobs.push(mtaStsChecks(domain, hosts, facts, s, out, sts))
  if (s.tlsRpt && facts.status !== 'no-such-domain' && facts.status !== 'null-mx') jobs.push(tlsRptChecks(domain, s, out))
  await Promise.all(jobs)
  return out
}

async function mtaStsChecks(
  domain: string,
  hosts: MxHostFacts[],
  facts: DestinationFacts,
  s: Settings,
  out: CheckFinding[],
  sts: StsState,
): Promise<void> {
  const rule = 'RFC 8461 §3'
  try {
    const r = await getMtaStsPolicy(domain, {
      ...(s.mtaSts as object),
      resolver: s.resolver,
      refresh: false,
      ...(s.signal ? { signal: s.signal } : {}),
    })
    if (r.txt.status === 'absent' && !r.error) {
      out.push(finding('ok', 'mta-sts', rule, 'no MTA-STS record (_mta-sts TXT): MTA-STS not in use'))
      return
    }
    if (r.error) {
      out.push(
        finding(
          'error',
          'mta-sts',
          rule,
          `MTA-STS: ${r.error.message}`,
          'fix the _mta-sts TXT record and https://mta-sts.<domain>/.well-known/mta-sts.txt',
        ),
      )
      return
    }
    const p = r.policy
    if (!p) return
    sts.policy = p
    out.push(
      finding('ok', 'mta-sts', rule, `MTA-STS record id=${r.record?.id ?? '?'} and policy valid (mode ${p.mode}, max_age ${p.maxAge})`),
    )
    if (p.mode === 'none')
      out.push(
        finding('warning', 'mta-sts-mode', 'RFC 8461 §5', 'MTA-STS mode none: the policy is withdrawn', 'use mode testing, then enforce'),
      )
    else if (p.mode === 'testing')
      out.push(
        finding(
          'warning',
          'mta-sts-mode',
          'RFC 8461 §5',
          'MTA-STS mode testing: senders report but do not enforce',
          'switch to mode enforce once TLS-RPT reports are clean',
        ),
      )
    if (p.mode === 'enforce' && p.maxAge < STS_MIN_ENFORCE_MAX_AGE)
      out.push(
        finding(
          'warning',
          'mta-sts-max-age',
          'RFC 8461 §3.2',
          `max_age ${p.maxAge} s is short for enforce: an attacker who blocks the fetch soon wins`,
          'use max_age 604800 (a week) or more, e.g. 31557600',
        ),
      )
    if (facts.status === 'ok' && !facts.implicitMx) {
      for (const h of hosts) {
        if (!mtaStsMatchesMx(p, h.host))
          out.push(
            finding(
              p.mode === 'enforce' ? 'error' : 'warning',
              'mta-sts-mx',
              'RFC 8461 §4.1',
              `MX ${h.host} matches no mx: pattern of the MTA-STS policy (${p.mx.join(', ')})`,
              `add "mx: ${h.host}" to the policy and change the record id`,
            ),
          )
      }
    }
  } catch (e) {
    if (e instanceof SmtpTlsError && e.code === 'ERR_ABORTED') throw e
    out.push(finding('warning', 'mta-sts', rule, `MTA-STS could not be checked: ${e instanceof Error ? e.message : String(e)}`))
  }
}

async function tlsRptChecks(domain: string, s: Settings, out: CheckFinding[]): Promise<void> {
  const rule = 'RFC 8460 §3'
  try {
    const r = await getTlsRptRecord(domain, { resolver: s.resolver, ...(s.signal ? { signal: s.signal } : {}) })
    if (r === undefined)
      out.push(
        finding(
          'warning',
          'tlsrpt',
          rule,
          'no TLS-RPT record: nobody tells you when senders fail to reach you securely',
          `publish _smtp._tls.${domain} TXT "v=TLSRPTv1; rua=mailto:tlsrpt@${domain}"`,
        ),
      )
    else out.push(finding('ok', 'tlsrpt', rule, `TLS-RPT record valid: rua=${r.rua.join(',')}`))
  } catch (e) {
    if (e instanceof SmtpTlsError && e.code === 'ERR_ABORTED') throw e
    const syntax = e instanceof SmtpTlsError && e.code === 'ERR_TLSRPT_SYNTAX'
    out.push(
      finding(
        syntax ? 'error' : 'warning',
        'tlsrpt',
        rule,
        `TLS-RPT: ${e instanceof Error ? e.message : String(e)}`,
        syntax ? `publish exactly one "v=TLSRPTv1; rua=mailto:…" at _smtp._tls.${domain}` : 'check the DNS of _smtp._tls',
      ),
    )
  }
}

function hostReport(
  h: MxHostFacts,
  sessions: SessionResult[],
  facts: DestinationFacts,
  s: Settings,
  sts: MtaStsPolicy | undefined,
  certs: Map<string, CheckCertificate>,
): CheckHostReport {
  const f: CheckFinding[] = []
  const addrs = [...h.addresses].sort((a, b) => a.family - b.family || (a.address < b.address ? -1 : 1))
  const records = h.tlsa.records
  const dane = facts.mxSecure && h.addressSecure && h.tlsa.status === 'secure'
  // DNS
  if (h.error || (!h.usable && h.addresses.length === 0)) {
    f.push(
      finding(
        'error',
        'host-dns',
        'RFC 7672 §2.1.2',
        h.unusableReason ?? h.error?.message ?? 'no addresses',
        'publish A/AAAA records for the MX host (and fix their signatures)',
      ),
    )
  } else if (h.addressSecure)
    f.push(
      finding(
        'ok',
        'address-dnssec',
        'RFC 7672 §2.2.2',
        `address records signed${h.cnames.length ? ` (via CNAME to ${h.canonicalHost})` : ''}`,
      ),
    )
  else if (facts.mxSecure)
    f.push(
      finding(
        'warning',
        'address-dnssec',
        'RFC 7672 §2.2.2',
        'address records not signed: DANE does not apply to this host',
        'sign the zone of the MX host',
      ),
    )
  switch (h.tlsa.status) {
    case 'secure':
      f.push(finding('ok', 'tlsa-dnssec', 'RFC 7672 §2.2', `TLSA RRset signed at ${h.tlsa.qname} (base domain ${h.tlsa.base})`))
      break
    case 'secure-denial':
      f.push(
        finding(
          'warning',
          'tlsa-absent',
          'RFC 7672 §2.2',
          `no TLSA records at ${h.tlsa.qname}: the host is not protected by DANE`,
          TLSA_REMEDY,
        ),
      )
      break
    case 'insecure':
      if (facts.mxSecure && h.addressSecure)
        f.push(
          finding(
            'warning',
            'tlsa-dnssec',
            'RFC 7672 §2.2.3',
            `TLSA at ${h.tlsa.qname} not signed: senders ignore it`,
            'sign the zone that holds the TLSA records',
          ),
        )
      break
    case 'lookup-failed':
      f.push(
        finding(
          'error',
          'tlsa-lookup',
          'RFC 7672 §2.1.2',
          `TLSA lookup failed at ${h.tlsa.qname}: DANE senders defer mail to this host`,
          'fix the signatures or the servers of the TLSA zone',
        ),
      )
      break
    case 'not-looked-up':
      break
  }
  const usability = checkTlsaUsability(records)
  for (const u of usability.unusable) {
    const pkix = u.record.usage === 0 || u.record.usage === 1
    f.push(
      finding(
        'warning',
        pkix ? 'tlsa-pkix' : 'tlsa-unusable',
        pkix ? 'RFC 7672 §3.1.3' : /digest|stronger|SHA2/i.test(u.reason) ? 'RFC 7671 §9' : 'RFC 6698 §4.1',
        `unusable TLSA ${brief(u.record)}: ${u.reason}`,
        pkix
          ? 'use 3 1 1 (DANE-EE) or 2 1 1 (DANE-TA): SMTP clients ignore PKIX usages'
          : 'remove it, or publish it in a usable form (e.g. 3 1 1)',
      ),
    )
  }
  for (const u of h.tlsa.undecodable ?? []) f.push(finding('warning', 'tlsa-unusable', 'RFC 6698 §2.1', u.reason, 'remove the record'))
  if (records.length > 0 && usability.usable.length === 0)
    f.push(
      finding(
        'error',
        'tlsa-none-usable',
        'RFC 7672 §2.2',
        'every TLSA record is unusable: senders use TLS without authentication',
        'publish a 3 1 1 record',
      ),
    )
  // RFC 7671 §9: records set aside because a stronger digest exists for the same usage and selector.
  const superseded = usability.unusable.filter((u) => /superseded/.test(u.reason)).map((u) => u.record)
  // Sessions
  const names = h.referenceNames
  const reports: CheckAddressReport[] = []
  const matchedAt = new Map<string, boolean>()
  addrs.forEach((a, i) => {
    const r = sessions[i] ?? { connected: false, chain: [], error: 'not tried' }
    const rep: CheckAddressReport = {
      address: a.address,
      family: a.family,
      connected: r.connected,
      chain: r.chain.map((c) => describeCert(c, s.now, certs)),
      matchingRecords: [],
    }
    if (r.starttls !== undefined) rep.starttls = r.starttls
    if (r.protocol) rep.protocol = r.protocol
    if (r.cipher) rep.cipher = r.cipher
    if (r.error) rep.error = r.error
    reports.push(rep)
    for (const rec of usability.usable) if (matches(rec, r.chain, names, s.now)) rep.matchingRecords.push(formatTlsaRecord(rec))
    addressFindings(f, rep, r, usability.usable, superseded, dane, names, s)
    if (dane && r.chain.length > 0) matchedAt.set(a.address, rep.matchingRecords.length > 0)
    if (sts && sts.mode !== 'none' && r.chain.length > 0) stsCertificate(f, h.host, r, sts, a.address, s)
  })
  // RFC 7672 §2.2: every address is tried in turn; one that fails DANE defers the mail that reaches it.
  const vals = [...matchedAt.values()]
  if (vals.includes(true) && vals.includes(false)) {
    const bad = [...matchedAt].filter(([, ok]) => !ok).map(([a]) => a)
    f.push(
      finding(
        'error',
        'addresses-disagree',
        'RFC 7672 §2.2',
        `addresses disagree: ${bad.join(', ')} fail DANE while others pass`,
        'serve the same key on every address of the host (check the IPv6 listener)',
      ),
    )
  }
  if (dane && usability.usable.length > 0) rollover(f, usability.usable, sessions)
  return {
    host: h.host,
    preference: h.preference,
    canonicalHost: h.canonicalHost,
    cnames: h.cnames,
    addressSecure: h.addressSecure,
    tlsa: { status: h.tlsa.status, qname: h.tlsa.qname, base: h.tlsa.base, records: records.map(formatTlsaRecord) },
    addresses: reports,
    findings: f,
  }
}

function addressFindings(
  f: CheckFinding[],
  rep: CheckAddressReport,
  r: SessionResult,
  usable: TlsaRecord[],
  superseded: TlsaRecord[],
  dane: boolean,
  names: readonly string[],
  s: Settings,
): void {
  const at = rep.address
  if (!r.connected || r.starttls === undefined) {
    f.push(
      finding(
        'error',
        'connect',
        'RFC 5321 §5.1',
        `no SMTP session: ${r.error ?? 'failed'}`,
        'check the listener and the firewall for this address',
        at,
      ),
    )
    return
  }
  if (!r.starttls) {
    f.push(
      finding(
        dane ? 'error' : 'warning',
        'starttls',
        dane ? 'RFC 7672 §2.2' : 'RFC 3207',
        'STARTTLS not offered',
        'enable STARTTLS (Postfix: smtpd_tls_security_level = may)',
        at,
      ),
    )
    return
  }
  if (r.chain.length === 0) {
    f.push(
      finding(
        'error',
        'tls',
        'RFC 3207 §4',
        `STARTTLS offered but no TLS session: ${r.error ?? 'no certificate'}`,
        'check the server key and certificate files',
        at,
      ),
    )
    return
  }
  const old = r.protocol === 'TLSv1' || r.protocol === 'TLSv1.1'
  f.push(
    finding(
      old ? 'warning' : 'ok',
      'tls',
      'RFC 8996',
      `STARTTLS: ${r.protocol ?? '?'} with cipher ${r.cipher ?? '?'}`,
      'enable TLS 1.2 and 1.3 (Postfix: smtpd_tls_protocols = >=TLSv1.2)',
      at,
    ),
  )
  let eeMatch = false
  if (dane) {
    const res = verifyDane({ records: usable, chain: r.chain, names, now: s.now })
    if (res.ok) {
      eeMatch = res.usage === 'DANE-EE'
      f.push(
        finding(
          'ok',
          'dane-match',
          'RFC 7672 §3',
          `TLSA ${brief(res.record)} matched at depth ${res.depth}${res.name ? ` (name ${res.name})` : ''}`,
          undefined,
          at,
        ),
      )
    } else {
      const ta = usable.filter((x) => x.usage === 2)
      const incomplete = ta.length > 0 && r.chain.length === 1 && !usable.some((x) => x.usage === 3 && matches(x, r.chain, names, s.now))
      f.push(
        finding(
          'error',
          'dane-match',
          res.code === 'ERR_DANE_NAME_MISMATCH' ? 'RFC 7672 §3.2.3' : 'RFC 7672 §3',
          `DANE fails: ${res.detail} [${res.code}]`,
          res.code === 'ERR_DANE_NAME_MISMATCH' ? `put ${names[0] ?? 'the MX host name'} in the certificate's subjectAltName` : TLSA_REMEDY,
          at,
        ),
      )
      const weaker = superseded.find((x) => matches(x, r.chain, names, s.now))
      if (weaker)
        f.push(
          finding(
            'error',
            'digest-agility',
            'RFC 7671 §9',
            `${brief(weaker)} matches, but senders ignore it: stronger-digest records for the same usage and selector exist and do not match`,
            'fix or remove the stronger-digest (e.g. 3 1 2) records, or publish one for this key',
            at,
          ),
        )
      if (incomplete)
        f.push(
          finding(
            'error',
            'chain-incomplete',
            'RFC 7671 §5.2.2',
            'the server sends only its leaf: a DANE-TA (2 x x) record needs the issuer in the chain',
            'configure the full chain (Postfix: smtpd_tls_chain_files = key, leaf, intermediates)',
            at,
          ),
        )
    }
  }
  // Certificates: days to expiry.
  const certs = rep.chain
  const leaf = certs[0]
  if (leaf && Number.isFinite(leaf.daysLeft)) {
    if (leaf.daysLeft < 0)
      f.push(
        finding(
          eeMatch ? 'warning' : 'error',
          'cert-expiry',
          eeMatch ? 'RFC 7672 §3.1.1' : 'RFC 5280 §4.1.2.5',
          `leaf certificate expired ${-leaf.daysLeft} days ago (${leaf.notAfter})${eeMatch ? ': DANE-EE ignores it, MTA-STS and PKIX senders do not' : ''}`,
          'renew the certificate (keep the key, and the 3 1 1 record still matches)',
          at,
        ),
      )
    else if (leaf.daysLeft < EXPIRY_WARNING_DAYS)
      f.push(
        finding(
          'warning',
          'cert-expiry',
          'RFC 5280 §4.1.2.5',
          `leaf certificate expires in ${leaf.daysLeft} days (${leaf.notAfter})`,
          'renew the certificate now',
          at,
        ),
      )
    else f.push(finding('ok', 'cert-expiry', 'RFC 5280 §4.1.2.5', `leaf certificate valid for ${leaf.daysLeft} more days`, undefined, at))
  }
  const chainExpired = certs.slice(1).filter((c) => c.daysLeft < 0)
  if (chainExpired.length > 0)
    f.push(
      finding(
        'error',
        'chain-expiry',
        'RFC 5280 §6.1.3',
        `chain certificate expired: ${chainExpired.map((c) => c.subject).join('; ')}`,
        'install the current intermediate certificates',
        at,
      ),
    )
}

/** RFC 7671 §8: a key or certificate change needs a record for the next one published in advance. */
function rollover(f: CheckFinding[], usable: TlsaRecord[], sessions: SessionResult[]): void {
  const chains = sessions.filter((x) => x.chain.length > 0).map((x) => x.chain)
  const hasTa = usable.some((r) => r.usage === 2)
  const current = usable.filter((r) => r.usage === 3 && chains.some((c) => matchesEe(r, c)))
  // Nothing matches the keys in use: no rollover to speak of (the dane-match finding says what is wrong).
  if (!hasTa && current.length === 0) return
  // A DANE-EE record that matches no chain served now is a key published ahead (or a stale one).
  const ahead = usable.filter((r) => r.usage === 3 && !current.includes(r))
  if (hasTa || ahead.length > 0) {
    f.push(
      finding(
        'ok',
        'tlsa-rollover',
        'RFC 7671 §8',
        hasTa
          ? 'a DANE-TA record covers a change of the server key'
          : `${ahead.length} record(s) for a key not in use yet: ready for a rollover`,
      ),
    )
  } else {
    const one =
      usable.length === 1
        ? `a single ${formatTlsaRecord(usable[0] as TlsaRecord)
            .split(' ')
            .slice(0, 3)
            .join(' ')}`
        : 'every record matches the current key'
    f.push(
      finding(
        'warning',
        'tlsa-rollover',
        'RFC 7671 §8',
        `${one}: a key change breaks DANE delivery until DNS catches up`,
        'publish a second 3 1 1 for the next key (`smtp-tls-policy tlsa next.pem`) before you switch, or a 2 1 1 for the issuer',
      ),
    )
  }
}

function matchesEe(r: TlsaRecord, chain: readonly Uint8Array[]): boolean {
  if (r.usage !== 3) return false
  try {
    return verifyDane({ records: [r], chain: chain.slice(0, 1), names: [] }).ok
  } catch {
    return false
  }
}

/**
 * RFC 8461 §4.2: under an MTA-STS policy the MX host's certificate must chain to a trusted root and name the
 * MX host (RFC 6125 rules). DANE hosts are judged by DANE instead (RFC 8461 §2), but a sender without DANE
 * applies MTA-STS to them too, so it is checked for every host.
 */
function stsCertificate(f: CheckFinding[], host: string, r: SessionResult, p: MtaStsPolicy, at: string, s: Settings): void {
  const bad = p.mode === 'enforce' ? 'error' : 'warning'
  let nameError: string | undefined
  let trustError: string | undefined
  try {
    const x = new X509Certificate(r.chain[0] as Uint8Array)
    const fake = { subject: {}, subjectaltname: x.subjectAltName ?? '' } as unknown as Parameters<typeof checkServerIdentity>[1]
    nameError = checkServerIdentity(host, fake)?.message
    trustError = pkixError(r.chain, s)
  } catch (e) {
    nameError = e instanceof Error ? e.message : 'unparsable certificate'
  }
  if (trustError !== undefined)
    f.push(
      finding(
        bad,
        'mta-sts-cert',
        'RFC 8461 §4.2',
        `MTA-STS: the certificate is not trusted (${trustError})`,
        'use a certificate from a public CA, and send the intermediates',
        at,
      ),
    )
  else if (nameError !== undefined)
    f.push(
      finding(
        bad,
        'mta-sts-cert',
        'RFC 8461 §4.2',
        `MTA-STS: the certificate does not name ${host}: ${nameError}`,
        `add ${host} to the certificate's subjectAltName`,
        at,
      ),
    )
  else f.push(finding('ok', 'mta-sts-cert', 'RFC 8461 §4.2', `MTA-STS: certificate trusted and valid for ${host}`, undefined, at))
}

const rootCache = new WeakMap<Settings, X509Certificate[]>()

/** The trust anchors for MTA-STS: `mtaSts.ca` when given (as the policy fetch), else Node's root store. */
function roots(s: Settings): X509Certificate[] {
  let r = rootCache.get(s)
  if (r) return r
  const ca = s.mtaSts === false ? undefined : s.mtaSts['ca']
  const pems: string[] = ca === undefined ? [...rootCertificates] : (Array.isArray(ca) ? ca : [ca]).map(String)
  r = []
  for (const pem of pems)
    for (const m of pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
      try {
        r.push(new X509Certificate(m))
      } catch {
        // not a certificate: not an anchor
      }
  rootCache.set(s, r)
  return r
}

/** RFC 5280 §6.1, as far as an operator's check needs: the sent chain up to a trusted root, each signature and date. */
function pkixError(chain: readonly Uint8Array[], s: Settings): string | undefined {
  const certs = chain.map((d) => new X509Certificate(d))
  const path: X509Certificate[] = [certs[0] as X509Certificate]
  for (let i = 1; i < certs.length; i++) {
    const child = path[path.length - 1] as X509Certificate
    const c = certs[i] as X509Certificate
    if (!child.checkIssued(c) || !child.verify(c.publicKey)) break
    path.push(c)
  }
  const now = s.now.getTime()
  for (const c of path) {
    if (Date.parse(c.validTo) < now) return `${c.subject.replace(/\n/g, ', ')} expired ${c.validTo}`
    if (Date.parse(c.validFrom) > now) return `${c.subject.replace(/\n/g, ', ')} not valid before ${c.validFrom}`
  }
  const top = path[path.length - 1] as X509Certificate
  const anchored = roots(s).some((a) => a.raw.equals(top.raw) || (top.checkIssued(a) && top.verify(a.publicKey)))
  return anchored ? undefined : 'no trusted root: unknown issuer, or an intermediate not sent'
}
