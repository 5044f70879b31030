/**
 * `smtp-tls-policy mta-sts <domain>`: the `_mta-sts` record, the policy fetched over HTTPS, its cache
 * lifetime and which MX hosts it admits (RFC 8461 §3, §4.1). Options first (64), then the CA file
 * (65, 66), then DNS and HTTPS (0, 65, 75).
 */
import { mtaStsMatchingPattern } from '../mta-sts/match.js'
import { formatMtaStsRecord } from '../mta-sts/record.js'
import { discoverDestination } from '../node/discovery.js'
import { getMtaStsPolicy, type MtaStsLookup } from '../node/mta-sts.js'
import { createResolver } from '../node/resolver/index.js'
import { readCaFile } from './ca-file.js'
import { clean, EX_DATAERR, EX_OK, EX_TEMPFAIL, optionValue, type CliIo, type MtaStsArgs } from './common.js'

interface MxAdmission {
  host: string
  preference: number
  /** the policy pattern that matched; absent: not admitted */
  pattern?: string
}

export async function mtaStsCommand(a: MtaStsArgs, io: CliIo): Promise<number> {
  const ro = { ...(a.resolvers && { servers: a.resolvers }), ...(a.timeoutMs && { timeoutMs: a.timeoutMs }) }
  const resolver = optionValue('--resolver', () => createResolver(ro))
  let ca: string | undefined
  if (a.caFile !== undefined) ca = readCaFile(a.caFile)
  const r = await getMtaStsPolicy(a.domain, {
    resolver,
    ...(ca !== undefined && { ca }),
    ...(a.port !== undefined && { port: a.port }),
    ...(a.timeoutMs !== undefined && { timeoutMs: a.timeoutMs }),
    allowPrivateAddresses: a.allowPrivate,
    refresh: false,
  })
  let mx: MxAdmission[] | undefined
  let mxError: string | undefined
  if (r.policy !== undefined && r.policy.mode !== 'none') {
    const policy = r.policy
    const d = await discoverDestination(a.domain, { resolver, families: [4] })
    if (d.status === 'ok') {
      mx = d.mx.map((h) => {
        const pattern = mtaStsMatchingPattern(policy, h.host)
        return { host: h.host, preference: h.preference, ...(pattern !== undefined && { pattern }) }
      })
    } else mxError = d.error?.message ?? d.status
  }
  const status = exitStatus(r)
  if (a.json) io.out(JSON.stringify(toJson(r, mx, mxError), null, 2))
  else print(r, mx, mxError, (l) => io.out(clean(l)))
  return status
}

/** 0: a policy, or no record at all; 65: the record or the policy is invalid; 75: DNS or HTTPS failed. */
function exitStatus(r: MtaStsLookup): number {
  if (r.error === undefined) return EX_OK
  if (r.error.code === 'ERR_MTA_STS_SYNTAX' || r.error.tlsrpt === 'sts-policy-invalid') return EX_DATAERR
  return EX_TEMPFAIL
}

function refreshFrom(r: MtaStsLookup): number | undefined {
  if (r.policy === undefined || r.expiresAt === undefined) return undefined
  const ahead = Math.min(86400, r.policy.maxAge / 10) // decideMtaStsCache's default window
  return r.expiresAt - 2 * ahead * 1000
}

const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString())

function toJson(r: MtaStsLookup, mx: MxAdmission[] | undefined, mxError: string | undefined): object {
  return {
    domain: r.domain,
    record: r.record === undefined ? null : formatMtaStsRecord(r.record),
    txt: r.txt.status,
    policy: r.policy ?? null,
    state: r.state,
    decision: r.decision,
    fetchedAt: iso(r.fetchedAt) ?? null,
    expiresAt: iso(r.expiresAt) ?? null,
    refreshFrom: iso(refreshFrom(r)) ?? null,
    error: r.error ? { code: r.error.code, message: r.error.message, tlsrpt: r.error.tlsrpt ?? null } : null,
    mx: mx ?? null,
    ...(mxError !== undefined && { mxError }),
  }
}

function print(r: MtaStsLookup, mx: MxAdmission[] | undefined, mxError: string | undefined, out: (line: string) => void): void {
  out(
    `_mta-sts.${r.domain}: ${r.record ? formatMtaStsRecord(r.record) : r.txt.status === 'failed' ? 'lookup failed' : 'no MTA-STS record'}`,
  )
  if (r.error) out(`error: ${r.error.message} [${r.error.code}${r.error.tlsrpt ? `, TLS-RPT ${r.error.tlsrpt}` : ''}]`)
  if (r.policy === undefined) {
    out('policy: none (deliver as if the domain had no MTA-STS, RFC 8461 §5)')
    return
  }
  out(`policy (https://mta-sts.${r.domain}/.well-known/mta-sts.txt):`)
  for (const l of r.policy.lines) out(`  ${l}`)
  out(`cache: ${r.state}; max_age ${r.policy.maxAge} s: valid until ${iso(r.expiresAt)}, refresh from ${iso(refreshFrom(r))}`)
  if (r.policy.mode === 'none') return
  if (mxError !== undefined) {
    out(`MX lookup: ${mxError}`)
    return
  }
  for (const h of mx ?? []) {
    out(
      h.pattern !== undefined
        ? `MX ${h.preference} ${h.host}: admitted (matches ${h.pattern})`
        : `MX ${h.preference} ${h.host}: NOT admitted (no mx pattern matches, RFC 8461 §4.1)${r.policy.mode === 'testing' ? '; testing: delivered and reported' : ''}`,
    )
  }
}
