// The issue 7 lab: for every scenario, our probe() verdict must equal posttls-finger's on the same
// Postfix smtpd, resolving through the same NSD + Unbound (DNSSEC) lab. Postfix TLS_README is the
// reference; each row says what it encodes.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { certificateFingerprint, createTlsaRecord, formatTlsaRecord, type SecurityLevel } from '../../src/index.js'
import { createResolver, probe, type ConnectOptions } from '../../src/node/index.js'
import { cliFromSource } from '../helpers/cli.js'
import { makeCert, tempDir, type Issued } from '../helpers/openssl.js'
import { startDnsLab, type DnsLab, type LabZone } from './dns/lab.js'
import { posttlsFinger, startPostfixLab, type FingerResult, type PostfixLab } from './postfix.js'

const ca = makeCert({ key: 'rsa2048', subject: '/CN=Probe Lab Root', ca: true })
const inter = makeCert({ key: 'ec256', subject: '/CN=Probe Lab Intermediate', ca: true, issuer: ca })
const leafFor = (host: string, issuer?: Issued) =>
  makeCert({ key: 'ec256', subject: `/CN=${host}`, dns: [host], ...(issuer ? { issuer } : {}) })
const stranger = makeCert({ key: 'ec256', subject: '/CN=stranger.test' })
const tlsa = (c: Issued, u: number, s: number, m: number) =>
  formatTlsaRecord(createTlsaRecord(c.der, { usage: u, selector: s, matchingType: m }))

/** The outcome words of DESIGN.md §2, Postfix's where Postfix has one. */
type Verdict = 'verified' | 'trusted' | 'untrusted' | 'anonymous' | 'plaintext' | 'deferred'

interface Scenario {
  why: string
  /** zone name; the MX host is mx.<zone> on `address` */
  zone: string
  address: string
  level: SecurityLevel
  dnssec?: LabZone['dnssec']
  chain?: Issued[]
  starttls?: boolean
  /** TLSA records at _25._tcp.mx.<zone> */
  tlsa?: (leaf: Issued) => string[]
  /** the MX target when it is not mx.<zone> (its zone is then signed, with the A and TLSA records) */
  mxTarget?: string
  /** extra zone lines */
  extra?: string[]
  /** posttls-finger arguments and our options beyond the level */
  finger?: string[]
  match?: (leaf: Issued) => string[]
  ours?: (leaf: Issued) => Partial<ConnectOptions>
  expect: Verdict
}

const S: Scenario[] = [
  {
    why: 'DANE-EE 3 1 1 match',
    zone: 'ee.test',
    address: '127.0.91.1',
    level: 'dane',
    tlsa: (l) => [tlsa(l, 3, 1, 1)],
    expect: 'verified',
  },
  {
    why: 'DANE-EE mismatch',
    zone: 'eebad.test',
    address: '127.0.91.2',
    level: 'dane',
    tlsa: () => [tlsa(stranger, 3, 1, 1)],
    expect: 'deferred',
  },
  {
    why: 'DANE-TA 2 0 1, private CA',
    zone: 'ta.test',
    address: '127.0.91.3',
    level: 'dane',
    chain: [inter],
    tlsa: () => [tlsa(inter, 2, 0, 1)],
    expect: 'verified',
  },
  {
    why: 'DANE-TA 2 1 1 on the root, sent in the chain',
    zone: 'ta2.test',
    address: '127.0.91.4',
    level: 'dane',
    chain: [inter, ca],
    tlsa: () => [tlsa(ca, 2, 1, 1)],
    expect: 'verified',
  },
  {
    why: 'DANE-TA with a leaf for another name',
    zone: 'taname.test',
    address: '127.0.91.5',
    level: 'dane',
    chain: [inter],
    tlsa: () => [tlsa(inter, 2, 0, 1)],
    expect: 'deferred',
  },
  {
    why: 'unsigned zone: dane is opportunistic (RFC 7672 §2.2)',
    zone: 'unsig.test',
    address: '127.0.91.6',
    level: 'dane',
    dnssec: 'unsigned',
    tlsa: (l) => [tlsa(l, 3, 1, 1)],
    expect: 'untrusted',
  },
  {
    why: 'bogus signatures on the MX zone: defer (RFC 7672 §2.1.2)',
    zone: 'bogus.test',
    address: '127.0.91.7',
    level: 'dane',
    dnssec: 'expired',
    tlsa: (l) => [tlsa(l, 3, 1, 1)],
    expect: 'deferred',
  },
  {
    why: 'bogus only on the TLSA (CNAME into an expired zone): defer, no plaintext',
    zone: 'tlsabogus.test',
    address: '127.0.91.8',
    level: 'dane',
    extra: ['_25._tcp.mx CNAME _25._tcp.mx.expired-tlsa.test.'],
    expect: 'deferred',
  },
  {
    why: 'TLSA present but STARTTLS not offered: defer 4.7.4',
    zone: 'nostarttls.test',
    address: '127.0.91.9',
    level: 'dane',
    starttls: false,
    tlsa: (l) => [tlsa(l, 3, 1, 1)],
    expect: 'deferred',
  },
  {
    why: 'every TLSA record unusable: dane becomes encrypt (RFC 7672 §2.2)',
    zone: 'unusable.test',
    address: '127.0.91.10',
    level: 'dane',
    tlsa: (l) => [tlsa(l, 1, 1, 1), tlsa(l, 0, 0, 1)],
    expect: 'untrusted',
  },
  {
    why: 'secure with a private CA',
    zone: 'secure.test',
    address: '127.0.91.11',
    level: 'secure',
    chain: [inter, ca],
    finger: [],
    expect: 'verified',
  },
  {
    why: 'fingerprint pin of the leaf',
    zone: 'pin.test',
    address: '127.0.91.12',
    level: 'fingerprint',
    match: (l) => [certificateFingerprint(l.der)],
    expect: 'verified',
  },
  {
    why: 'fingerprint pin of another key',
    zone: 'pinbad.test',
    address: '127.0.91.13',
    level: 'fingerprint',
    match: () => [certificateFingerprint(stranger.der)],
    expect: 'deferred',
  },
  {
    why: 'encrypt without STARTTLS: defer 4.7.4',
    zone: 'enc.test',
    address: '127.0.91.14',
    level: 'encrypt',
    starttls: false,
    expect: 'deferred',
  },
  { why: 'may: untrusted TLS', zone: 'may.test', address: '127.0.91.15', level: 'may', expect: 'untrusted' },
  {
    why: 'may without STARTTLS: plaintext on both sides, compared as plaintext (mapping M2)',
    zone: 'mayplain.test',
    address: '127.0.91.17',
    level: 'may',
    starttls: false,
    expect: 'plaintext',
  },
  {
    why: 'insecure MX, secure TLSA at the host: half-dane, authenticated but Trusted, never Verified (RFC 7672 §2.2.1)',
    zone: 'halfmx.test',
    address: '127.0.91.16',
    level: 'dane',
    dnssec: 'unsigned',
    mxTarget: 'mx.halfhost.test.',
    expect: 'trusted',
  },
]

const leaves = new Map<string, Issued>()
for (const s of S) {
  const name = s.why.includes('another name') ? 'elsewhere.test' : (s.mxTarget?.replace(/\.$/, '') ?? `mx.${s.zone}`)
  leaves.set(s.zone, leafFor(name, s.chain ? s.chain[0] : undefined))
}

let dns: DnsLab
let postfix: PostfixLab
const tmp = tempDir()
const resolvConf = join(tmp.dir, 'resolv.conf')
const cafile = join(tmp.dir, 'ca.pem')

before(async () => {
  const zones: LabZone[] = S.map((s) => ({
    name: s.zone,
    dnssec: s.dnssec ?? 'signed',
    records: s.mxTarget
      ? [`@ MX 10 ${s.mxTarget}`]
      : [
          '@ MX 10 mx',
          `mx A ${s.address}`,
          ...(s.tlsa?.(leaves.get(s.zone)!) ?? []).map((r) => `_25._tcp.mx TLSA ${r}`),
          ...(s.extra ?? []),
        ],
  }))
  // the signed zone of the half-dane scenario's MX host
  const half = S.find((s) => s.mxTarget)!
  zones.push({ name: 'halfhost.test', records: [`mx A ${half.address}`, `_25._tcp.mx TLSA ${tlsa(leaves.get(half.zone)!, 3, 1, 1)}`] })
  zones.push({
    name: 'expired-tlsa.test',
    dnssec: 'expired',
    records: [`_25._tcp.mx TLSA ${tlsa(leaves.get('tlsabogus.test')!, 3, 1, 1)}`],
  })
  dns = await startDnsLab({ port: 53, zones })
  writeFileSync(resolvConf, `nameserver ${dns.resolverIp}\noptions trust-ad\n`)
  writeFileSync(cafile, ca.pem)
  postfix = await startPostfixLab(
    S.map((s) => {
      const leaf = leaves.get(s.zone)!
      return {
        address: s.address,
        certPem: [leaf, ...(s.chain ?? [])].map((c) => c.pem).join(''),
        keyPem: leaf.keyPem,
        starttls: s.starttls ?? true,
      }
    }),
  )
})
after(async () => {
  await postfix?.stop()
  await dns?.stop()
  tmp.done()
})

/**
 * posttls-finger's verdict. Where Postfix has a word of its own, it is compared as it is: its "Verified",
 * "Trusted", "Untrusted" and "Anonymous TLS connection established" are our `verified`, `trusted`,
 * `untrusted` and `anonymous`. Postfix has no word for the two outcomes below, so each is mapped, and only these:
 *
 * - M1, TLS session + "server certificate verification failed" → `deferred`. posttls-finger completes the
 *   handshake to report on it, then says the level's authentication failed ("server …" only at levels that
 *   require it; at opportunistic levels the same fact reads "certificate verification failed"). smtp(8) at
 *   that level defers instead (TLS_README "Mandatory server certificate verification").
 * - M2, no TLS session at all (STARTTLS not offered, a DNS or TLSA lookup failure) → `plaintext` at the
 *   opportunistic levels `may` and `none`, where smtp(8) goes on without TLS, and `deferred` at every other
 *   level used here, where smtp(8) does not deliver without TLS (TLS_README; RFC 7672 §2.1.2, §2.2). No row
 *   here is `dane` without usable TLSA and without STARTTLS (smtp(8) would send in plaintext there, and
 *   posttls-finger's default output does not say which case it met): such a row would need its own rule.
 *
 * Our `plaintext` is never turned into `deferred`: a plaintext delivery where Postfix would defer is a failure.
 */
function fingerVerdict(f: FingerResult, level: SecurityLevel): Verdict {
  if (f.trust !== undefined) {
    if (/server certificate verification failed/.test(f.output)) return 'deferred' // M1
    return f.trust.toLowerCase() as Verdict // Postfix's own word
  }
  return level === 'may' || level === 'none' ? 'plaintext' : 'deferred' // M2
}

describe('probe() agrees with posttls-finger (Postfix 3.7) on real servers', () => {
  for (const s of S) {
    it(s.why, async (t) => {
      const leaf = leaves.get(s.zone)!
      const match = s.match?.(leaf) ?? []
      const args = s.level === 'secure' ? ['-F', cafile] : []
      const f = posttlsFinger(s.zone, { configDir: postfix.configDir, level: s.level, resolvConf, args, match })
      const opts: ConnectOptions = {
        level: s.level,
        resolver: createResolver({ servers: [dns.resolverAddress], timeoutMs: 3000, attempts: 1 }),
        ehloName: 'probe.lab.test',
        timeoutMs: 10_000,
        ...(s.level === 'secure' ? { ca: ca.pem } : {}),
        ...(match.length > 0 ? { policy: { fingerprintMatch: match } } : {}),
      }
      const r = await probe(s.zone, opts)
      t.diagnostic(
        `posttls-finger: ${f.trust ?? 'no TLS'} → ${fingerVerdict(f, s.level)}; ours: ${r.outcome.status} ${r.outcome.enhancedStatus ?? ''}`,
      )
      const detail = `\nposttls-finger:\n${f.output}\nours:\n${JSON.stringify(r.outcome, null, 1)}`
      assert.equal(r.outcome.status, fingerVerdict(f, s.level), `ours and posttls-finger disagree${detail}`)
      assert.equal(r.outcome.status, s.expect, `unexpected verdict${detail}`)
    })
  }
  it('the CLI prints the same verdict as JSON and exits 0 / 75', () => {
    for (const [zone, status, exit] of [
      ['ee.test', 'verified', 0],
      ['eebad.test', 'deferred', 75],
      ['nostarttls.test', 'deferred', 75],
    ] as const) {
      // from the sources, not dist/ (which `npm test -- <file>` does not rebuild)
      const [cmd, args] = cliFromSource('probe', zone, '--level', 'dane', '--resolver', dns.resolverAddress, '--json', '--timeout', '10')
      const p = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 })
      assert.equal(p.status, exit, p.stdout + p.stderr)
      assert.equal(JSON.parse(p.stdout).outcome.status, status)
    }
  })
})
