// Differential test: chains generated now with the openssl CLI, each served by `openssl s_server`
// on 127.0.0.1, verified by `openssl s_client -dane_tlsa_domain … -dane_tlsa_rrdata …` (the
// reference client Postfix's DANE is built on) and by verifyDane on the same chain, records, names
// and time. Every verdict and match depth must agree, except the documented RFC differences.
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parseTlsaRecord, verifyDane, type DaneResult } from '../../src/index.js'
import { makeCert, tempDir, type CertOptions, type Issued } from '../helpers/openssl.js'
import { createHash } from 'node:crypto'
import { sliceCertificate } from '../../src/x509/der.js'

const DAY = 86_400_000

// ---- certificates --------------------------------------------------------------------------
const cert = (o: CertOptions) => makeCert({ days: 3650, ...o })
const root = cert({ subject: '/CN=Diff Root', ca: true })
const int = cert({ subject: '/CN=Diff Int', ca: true, issuer: root })
const leaf = cert({ subject: '/CN=mx.example.com', dns: ['mx.example.com'], issuer: int, days: 365 })
const selfSigned = cert({ subject: '/CN=ss.example.com', days: 365 })
const wild = cert({ subject: '/CN=wild', dns: ['*.example.com'], issuer: int, days: 365 })
const partial = cert({ subject: '/CN=partial', dns: ['mx*.example.com'], issuer: int, days: 365 })
const cnOnly = cert({ subject: '/CN=mx.example.com', issuer: int, days: 365 })
const shortLeaf = cert({ subject: '/CN=short', dns: ['mx.example.com'], issuer: int, days: 1 })
const shortInt = cert({ subject: '/CN=Short Int', ca: true, issuer: root, days: 2 })
const underShortInt = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: shortInt, days: 365 })
const rsaRoot = cert({ subject: '/CN=RSA Root', ca: true, key: 'rsa2048' })
const rsaInt = cert({ subject: '/CN=RSA Int', ca: true, key: 'rsa2048', issuer: rsaRoot })
const rsaLeaf = cert({ subject: '/CN=mx', dns: ['mx.example.com'], key: 'rsa2048', issuer: rsaInt, days: 365 })
const edInt = cert({ subject: '/CN=Ed Int', ca: true, key: 'ed25519', issuer: root })
const underEd = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: edInt, days: 365 })
const notCaInt = cert({ subject: '/CN=Not A CA', issuer: root })
const underNotCa = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: notCaInt, days: 365 })
const root0 = cert({ subject: '/CN=Root pathlen 0', ca: true, pathLen: 0 })
const int0 = cert({ subject: '/CN=Int A', ca: true, issuer: root0 })
const int0b = cert({ subject: '/CN=Int B', ca: true, issuer: int0 })
const leaf0 = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: int0b, days: 365 })
const clientLeaf = cert({ subject: '/CN=mx', dns: ['mx.example.com'], issuer: int, days: 365, ext: ['extendedKeyUsage=clientAuth'] })

// ---- TLSA data -----------------------------------------------------------------------------
function spki(c: Issued): Uint8Array {
  const s = sliceCertificate(c.der)
  return c.der.subarray(s.spkiStart, s.spkiEnd)
}
const hx = (b: Uint8Array) => Buffer.from(b).toString('hex')
const sha = (alg: string, b: Uint8Array) => createHash(alg).update(b).digest('hex')
/** TLSA presentation data for usage u, selector s, matching type m of a certificate. */
function rr(u: number, s: number, m: number, c: Issued): string {
  const input = s === 0 ? c.der : spki(c)
  return `${u} ${s} ${m} ${m === 0 ? hx(input) : sha(m === 1 ? 'sha256' : 'sha512', input)}`
}
const WRONG256 = 'ab'.repeat(32)
const WRONG512 = 'cd'.repeat(64)

// ---- servers ----------------------------------------------------------------------------------
const SERVERS = {
  selfSigned: [selfSigned],
  full: [leaf, int, root],
  noRoot: [leaf, int],
  leafOnly: [leaf],
  wild: [wild, int, root],
  partial: [partial, int],
  cnOnly: [cnOnly, int],
  shortLeaf: [shortLeaf, int, root],
  shortInt: [underShortInt, shortInt, root],
  rsa: [rsaLeaf, rsaInt, rsaRoot],
  ed25519: [underEd, edInt, root],
  notCa: [underNotCa, notCaInt, root],
  pathLen: [leaf0, int0b, int0, root0],
  clientEku: [clientLeaf, int],
  outOfOrder: [leaf, root, int],
} satisfies Record<string, Issued[]>
type ServerName = keyof typeof SERVERS

interface Case {
  server: ServerName
  records: string[]
  domain: string
  /** days after now at which both sides verify (s_client -attime) */
  plusDays?: number
  why: string
}

const CASES: Case[] = [
  { server: 'selfSigned', records: [rr(3, 1, 1, selfSigned)], domain: 'other.example', why: 'self-signed EE, 3 1 1, no name checks' },
  { server: 'selfSigned', records: [rr(3, 0, 1, selfSigned)], domain: 'other.example', why: 'self-signed EE, 3 0 1' },
  { server: 'selfSigned', records: [rr(3, 1, 2, selfSigned)], domain: 'other.example', why: 'self-signed EE, 3 1 2' },
  { server: 'selfSigned', records: [rr(3, 0, 0, selfSigned)], domain: 'other.example', why: 'self-signed EE, 3 0 0 full certificate' },
  {
    server: 'selfSigned',
    records: [rr(2, 0, 1, selfSigned)],
    domain: 'ss.example.com',
    why: 'TA record matching only the leaf does not authenticate',
  },
  { server: 'selfSigned', records: [`3 1 1 ${WRONG256}`], domain: 'ss.example.com', why: 'wrong DANE-EE digest' },
  {
    server: 'selfSigned',
    records: [rr(2, 1, 0, selfSigned)],
    domain: 'ss.example.com',
    why: '2 1 0 key of a self-signed leaf signs it (depth 0)',
  },
  { server: 'selfSigned', records: [rr(2, 1, 0, selfSigned)], domain: 'other.example', why: '2 1 0 self-signed case still checks names' },
  { server: 'selfSigned', records: [rr(3, 1, 1, selfSigned)], domain: 'other.example', plusDays: 400, why: 'DANE-EE ignores expiry' },
  { server: 'full', records: [rr(3, 1, 1, leaf)], domain: 'mx.example.com', why: 'DANE-EE in a full chain' },
  { server: 'full', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', why: 'DANE-TA intermediate, 2 0 1' },
  { server: 'full', records: [rr(2, 1, 1, int)], domain: 'mx.example.com', why: 'DANE-TA intermediate, 2 1 1' },
  { server: 'full', records: [rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'DANE-TA root, 2 0 1 (depth 2)' },
  { server: 'full', records: [rr(2, 1, 2, root)], domain: 'mx.example.com', why: 'DANE-TA root, 2 1 2' },
  { server: 'full', records: [rr(2, 0, 1, leaf)], domain: 'mx.example.com', why: 'DANE-TA record of the leaf' },
  { server: 'full', records: [rr(2, 0, 1, int)], domain: 'other.example.com', why: 'DANE-TA with a wrong name' },
  { server: 'full', records: [rr(2, 0, 1, int)], domain: 'example.com', why: 'parent domain is not a match' },
  { server: 'full', records: [rr(3, 1, 1, leaf)], domain: 'other.example.com', why: 'DANE-EE with a wrong name still matches' },
  {
    server: 'full',
    records: [rr(3, 1, 1, leaf), `3 1 2 ${WRONG512}`],
    domain: 'mx.example.com',
    why: 'digest agility: SHA2-512 present, SHA2-256 ignored',
  },
  { server: 'full', records: [rr(3, 1, 2, leaf), `3 1 1 ${WRONG256}`], domain: 'mx.example.com', why: 'digest agility: matching SHA2-512' },
  { server: 'full', records: [`2 0 1 ${WRONG256}`, rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'any usable record may match' },
  { server: 'full', records: [rr(2, 0, 1, int), rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'lowest depth wins' },
  { server: 'noRoot', records: [rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'digest of an anchor that was not sent' },
  { server: 'noRoot', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', why: 'intermediate anchor, root not sent' },
  { server: 'noRoot', records: [rr(2, 0, 0, root)], domain: 'mx.example.com', why: '2 0 0 root from DNS (depth above the chain)' },
  { server: 'noRoot', records: [rr(2, 1, 0, root)], domain: 'mx.example.com', why: '2 1 0 root key from DNS' },
  { server: 'leafOnly', records: [rr(2, 0, 0, int)], domain: 'mx.example.com', why: '2 0 0 intermediate from DNS' },
  { server: 'leafOnly', records: [rr(2, 1, 0, int)], domain: 'mx.example.com', why: 'TA key only: 2 1 0 intermediate key' },
  { server: 'leafOnly', records: [rr(2, 1, 0, int)], domain: 'other.example.com', why: 'TA key only, wrong name' },
  { server: 'leafOnly', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', why: 'digest of an intermediate not sent' },
  { server: 'leafOnly', records: [rr(2, 1, 0, root)], domain: 'mx.example.com', why: 'a key that did not sign the leaf' },
  { server: 'wild', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', why: 'wildcard covers one label' },
  { server: 'wild', records: [rr(2, 0, 1, int)], domain: 'a.b.example.com', why: 'wildcard does not cover two labels' },
  { server: 'wild', records: [rr(2, 0, 1, int)], domain: 'example.com', why: 'wildcard does not cover the parent' },
  { server: 'partial', records: [rr(2, 0, 1, int)], domain: 'mx1.example.com', why: 'partial-label wildcard never matches' },
  { server: 'partial', records: [rr(3, 1, 1, partial)], domain: 'mx1.example.com', why: 'DANE-EE ignores the bad name' },
  { server: 'cnOnly', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', why: 'CN used when there is no DNS SAN' },
  { server: 'cnOnly', records: [rr(2, 0, 1, int)], domain: 'MX.Example.COM', why: 'names compare case-insensitively' },
  { server: 'cnOnly', records: [rr(2, 0, 1, int)], domain: 'mx.example.com.', why: 'a trailing dot on the reference name is ignored' },
  { server: 'wild', records: [rr(2, 0, 1, int)], domain: 'MX.EXAMPLE.COM', why: 'wildcard match is case-insensitive' },
  { server: 'cnOnly', records: [rr(2, 0, 1, int)], domain: 'other.example.com', why: 'CN that does not match' },
  { server: 'shortLeaf', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', plusDays: 3, why: 'expired leaf under DANE-TA' },
  { server: 'shortLeaf', records: [rr(3, 1, 1, shortLeaf)], domain: 'mx.example.com', plusDays: 3, why: 'expired leaf under DANE-EE' },
  { server: 'shortInt', records: [rr(2, 0, 1, root)], domain: 'mx.example.com', plusDays: 5, why: 'expired intermediate below the anchor' },
  {
    server: 'shortInt',
    records: [rr(2, 0, 1, shortInt)],
    domain: 'mx.example.com',
    plusDays: 5,
    why: 'expired anchor: its dates are not checked',
  },
  { server: 'shortInt', records: [rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'same chain before expiry' },
  { server: 'rsa', records: [rr(3, 1, 1, rsaLeaf)], domain: 'mx.example.com', why: 'RSA chain, DANE-EE' },
  { server: 'rsa', records: [rr(2, 0, 1, rsaInt)], domain: 'mx.example.com', why: 'RSA chain, DANE-TA depth 1' },
  { server: 'rsa', records: [rr(2, 1, 1, rsaRoot)], domain: 'mx.example.com', why: 'RSA chain, DANE-TA depth 2' },
  { server: 'ed25519', records: [rr(2, 0, 1, edInt)], domain: 'mx.example.com', why: 'leaf signed with Ed25519' },
  { server: 'ed25519', records: [rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'Ed25519 intermediate under an ECDSA root' },
  { server: 'notCa', records: [rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'intermediate without CA:TRUE' },
  { server: 'notCa', records: [rr(2, 0, 1, notCaInt)], domain: 'mx.example.com', why: 'anchor without CA:TRUE' },
  { server: 'pathLen', records: [rr(2, 0, 1, root0)], domain: 'mx.example.com', why: 'anchor pathlen 0 with two intermediates below' },
  { server: 'pathLen', records: [rr(2, 0, 1, int0)], domain: 'mx.example.com', why: 'anchor below the pathlen root' },
  { server: 'clientEku', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', why: 'leaf EKU without serverAuth under DANE-TA' },
  { server: 'clientEku', records: [rr(3, 1, 1, clientLeaf)], domain: 'mx.example.com', why: 'leaf EKU is irrelevant to DANE-EE' },
  { server: 'outOfOrder', records: [rr(2, 0, 1, root)], domain: 'mx.example.com', why: 'chain sent out of order, root anchor' },
  { server: 'outOfOrder', records: [rr(2, 0, 1, int)], domain: 'mx.example.com', why: 'chain sent out of order, intermediate anchor' },
]

/** OpenSSL X509_V_* codes → our failure codes. */
const CODE: Record<number, string> = {
  65: 'ERR_DANE_NO_MATCH', // DANE_NO_MATCH
  62: 'ERR_DANE_NAME_MISMATCH', // HOSTNAME_MISMATCH
  9: 'ERR_DANE_EXPIRED', // CERT_NOT_YET_VALID
  10: 'ERR_DANE_EXPIRED', // CERT_HAS_EXPIRED
  7: 'ERR_DANE_CHAIN_INVALID', // CERT_SIGNATURE_FAILURE
  24: 'ERR_DANE_CHAIN_INVALID', // INVALID_CA
  25: 'ERR_DANE_CHAIN_INVALID', // PATH_LENGTH_EXCEEDED
  26: 'ERR_DANE_CHAIN_INVALID', // INVALID_PURPOSE
  79: 'ERR_DANE_CHAIN_INVALID', // INVALID_CA (3.0 "invalid CA certificate")
}

/**
 * Cases where the RFC and OpenSSL differ, with our expected verdict. Each must really differ (the
 * test fails if OpenSSL starts agreeing, so the list stays true).
 */
const DIFFERENCES: Record<string, { ours: string; reason: string }> = {
  'partial-label wildcard never matches': {
    ours: 'ERR_DANE_NAME_MISMATCH',
    reason:
      's_client does not set X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, so OpenSSL accepts mx*.example.com; RFC 7672 §3.2.3 forbids partial-label wildcards and Postfix sets that flag',
  },
  'a trailing dot on the reference name is ignored': {
    ours: 'ok',
    reason:
      'X509_check_host compares "mx.example.com." literally; the absolute form names the same host and Postfix strips the dot before its name checks',
  },
}

interface Verdict {
  ok: boolean
  code: string
  depth: number
}

function ours(c: Case, now: Date): Verdict {
  const res: DaneResult = verifyDane({
    records: c.records.map(parseTlsaRecord),
    chain: SERVERS[c.server].map((x) => x.der),
    names: [c.domain],
    now,
  })
  return res.ok ? { ok: true, code: 'ok', depth: res.depth } : { ok: false, code: res.code, depth: -1 }
}

function openssl(port: number, c: Case, at: Date): Verdict {
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${port}`,
    '-dane_tlsa_domain',
    c.domain,
    '-dane_ee_no_namechecks',
    '-verify_return_error',
  ]
  for (const r of c.records) args.push('-dane_tlsa_rrdata', r)
  args.push('-attime', String(Math.floor(at.getTime() / 1000)))
  const r = spawnSync('openssl', args, { input: 'Q\n', timeout: 10_000, encoding: 'utf8' })
  const out = `${r.stdout}\n${r.stderr}`
  const err = /verify error:num=(\d+)/.exec(out)
  if (err) {
    const n = Number(err[1])
    return { ok: false, code: CODE[n] ?? `openssl ${n}`, depth: -1 }
  }
  const m = /DANE TLSA \d \d \d .* at depth (\d+)/.exec(out)
  if (/Verification: OK/.test(out) && m) return { ok: true, code: 'ok', depth: Number(m[1]) }
  throw new Error(`s_client gave no verdict (status ${r.status}, signal ${r.signal}):\n${out.slice(0, 2000)}`)
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

/** Start `openssl s_server` on 127.0.0.1 and resolve once it accepts (bounded wait). */
function startServer(dir: string, name: string, chain: Issued[]): Promise<{ port: number; proc: ChildProcess }> {
  const certFile = join(dir, `${name}.pem`)
  const keyFile = join(dir, `${name}.key`)
  const chainFile = join(dir, `${name}.chain.pem`)
  writeFileSync(certFile, chain[0]!.pem)
  writeFileSync(keyFile, chain[0]!.keyPem)
  writeFileSync(
    chainFile,
    chain
      .slice(1)
      .map((c) => c.pem)
      .join(''),
  )
  const attempt = async (tries: number): Promise<{ port: number; proc: ChildProcess }> => {
    const port = await freePort()
    const args = ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', certFile, '-key', keyFile, '-naccept', '200']
    if (chain.length > 1) args.push('-cert_chain', chainFile)
    // stdin stays open (s_server quits on EOF); its output is drained so it never blocks.
    const proc = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] })
    proc.stderr!.resume()
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000)
      proc.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ACCEPT')) {
          clearTimeout(timer)
          resolve(true)
        }
      })
      proc.once('exit', () => {
        clearTimeout(timer)
        resolve(false)
      })
    })
    if (ready) return { port, proc }
    proc.kill()
    if (tries <= 1) throw new Error(`openssl s_server for ${name} did not start`)
    return attempt(tries - 1)
  }
  return attempt(3)
}

describe('differential: verifyDane vs openssl s_client on s_server (127.0.0.1)', () => {
  const servers = new Map<ServerName, { port: number; proc: ChildProcess }>()
  const tmp = tempDir()
  const now = new Date()
  let agreeing = 0

  before(async () => {
    for (const [name, chain] of Object.entries(SERVERS) as [ServerName, Issued[]][])
      servers.set(name, await startServer(tmp.dir, name, chain))
  })
  after(() => {
    for (const { proc } of servers.values()) proc.kill()
    tmp.done()
    // Printed for the issue report: cases run / agreeing / documented differences.
    console.log(`differential: ${CASES.length} cases, ${agreeing} agreeing, ${Object.keys(DIFFERENCES).length} documented differences`)
  })

  // Not a case count: the comparison is evidence only if our verdicts over these cases include a match at
  // each depth a chain here can have and every failure code verifyDane can give for a presented chain.
  it('the cases reach a match at depths 0, 1 and 2 and every failure code', () => {
    const outcomes = new Set(
      CASES.map((c) => ours(c, new Date(now.getTime() + (c.plusDays ?? 0) * DAY))).map((v) => (v.ok ? `ok@${v.depth}` : v.code)),
    )
    for (const want of [
      'ok@0',
      'ok@1',
      'ok@2',
      'ERR_DANE_NO_MATCH',
      'ERR_DANE_NAME_MISMATCH',
      'ERR_DANE_EXPIRED',
      'ERR_DANE_CHAIN_INVALID',
    ]) {
      assert.ok(outcomes.has(want), `${want} not reached; reached: ${[...outcomes].join(', ')}`)
    }
  })

  for (const c of CASES) {
    it(`${c.server}: ${c.why} [${c.records.map((r) => r.slice(0, 6)).join(', ')} @ ${c.domain}${c.plusDays ? ` +${c.plusDays}d` : ''}]`, () => {
      const at = new Date(now.getTime() + (c.plusDays ?? 0) * DAY)
      const theirs = openssl(servers.get(c.server)!.port, c, at)
      const mine = ours(c, at)
      const diff = DIFFERENCES[c.why]
      if (diff) {
        assert.notDeepEqual(mine, theirs, `documented difference no longer differs: ${diff.reason}`)
        assert.equal(mine.ok ? 'ok' : mine.code, diff.ours)
      } else {
        assert.deepEqual(mine, theirs, `openssl says ${JSON.stringify(theirs)}`)
        agreeing++
      }
    })
  }
})
