// The MTA-STS fetcher and cache (RFC 8461 §3.3) against an in-process HTTPS server with a private CA
// and an in-process validating DNS server; hostile servers and the "no request while fresh" rule.
import assert from 'node:assert/strict'
import diagnostics_channel from 'node:diagnostics_channel'
import { after, before, describe, it } from 'node:test'
import { createMemoryStore } from '../../src/store/index.js'
import { createResolver } from '../../src/node/resolver/index.js'
import { fetchMtaStsPolicy, getMtaStsPolicy, getTlsRptRecord, MTA_STS_MAX_POLICY_BYTES } from '../../src/node/mta-sts.js'
import { isPrivateAddress } from '../../src/node/public-address.js'
import { SmtpTlsError } from '../../src/errors.js'
import type { PolicyStore } from '../../src/store/types.js'
import { startDnsServer, validatingZone, type ZoneRecord, type TestDnsServer } from '../helpers/dns-server.js'
import { makeCert, type Issued } from '../helpers/openssl.js'
import { expiredLeaf, startHttpsServer, type TestHttpsServer } from '../helpers/https-server.js'

const POLICY = 'version: STSv1\nmode: enforce\nmx: *.good.test\nmax_age: 86400\n'
const DOMAINS = ['good', 'redirect', 'big', 'exact', 'trickle', 'type', 'maxage', 'two', 'fail', 'private', 'refresh', 'abort']

let ca: Issued
let dns: TestDnsServer
let main: TestHttpsServer
let otherName: TestHttpsServer
let expired: TestHttpsServer
let records: ZoneRecord[]

function zone(): ZoneRecord[] {
  const r: ZoneRecord[] = []
  for (const d of DOMAINS) {
    r.push([`_mta-sts.${d}.test`, 'TXT', `v=STSv1; id=1`])
    r.push([`mta-sts.${d}.test`, 'A', '127.0.0.1'])
  }
  r.push(['_mta-sts.two.test', 'TXT', 'v=STSv1; id=2'])
  r.push(['_smtp._tls.good.test', 'TXT', 'v=TLSRPTv1; rua=mailto:tlsrpt@good.test'])
  r.push(['_smtp._tls.good.test', 'TXT', 'v=spf1 -all'])
  return r
}

function setId(domain: string, id: string): void {
  records = records.map((r) => (r[0] === `_mta-sts.${domain}` && r[1] === 'TXT' ? [r[0], 'TXT', `v=STSv1; id=${id}`] : r))
}

const resolver = (): ReturnType<typeof createResolver> =>
  createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, cache: false })
const opts = (extra: object = {}) => ({
  resolver: resolver(),
  ca: ca.pem,
  port: main.port,
  allowPrivateAddresses: true,
  timeoutMs: 2000,
  ...extra,
})

async function fetchFails(domain: string, tlsrpt: string, extra: object = {}): Promise<SmtpTlsError> {
  const e = await fetchMtaStsPolicy(domain, opts(extra)).then(
    () => assert.fail(`${domain}: the fetch succeeded`),
    (err: unknown) => err as SmtpTlsError,
  )
  assert.ok(e instanceof SmtpTlsError, String(e))
  assert.equal(e.code, 'ERR_MTA_STS_FETCH', e.message)
  assert.equal(e.tlsrpt, tlsrpt, e.message)
  assert.equal(e.temporary, true)
  return e
}

before(async () => {
  ca = makeCert({ ca: true, subject: '/CN=Test MTA-STS CA' })
  const leaf = makeCert({ issuer: ca, subject: '/CN=mta-sts.good.test', dns: DOMAINS.map((d) => `mta-sts.${d}.test`) })
  records = zone()
  dns = await startDnsServer((q) => validatingZone({ records })(q))
  main = await startHttpsServer(leaf)
  otherName = await startHttpsServer(makeCert({ issuer: ca, subject: '/CN=mta-sts.other.test', dns: ['mta-sts.other.test'] }))
  expired = await startHttpsServer(await expiredLeaf(ca, ['mta-sts.good.test']))
  for (const s of [main, otherName, expired]) {
    s.routes.set('mta-sts.good.test', (_q, res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(POLICY))
  }
  main.routes.set('mta-sts.redirect.test', (_q, res) =>
    res.writeHead(301, { location: `https://mta-sts.good.test:${main.port}/.well-known/mta-sts.txt` }).end(),
  )
  main.routes.set('mta-sts.big.test', (_q, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }) // chunked: no content-length to refuse up front
    res.end(POLICY + 'x'.repeat(MTA_STS_MAX_POLICY_BYTES + 1 - POLICY.length))
  })
  main.routes.set('mta-sts.exact.test', (_q, res) => {
    const head = 'version: STSv1\nmode: testing\nmx: mx.exact.test\nmax_age: 3600\npad: '
    res.writeHead(200, { 'content-type': 'text/plain' }).end(head + 'x'.repeat(MTA_STS_MAX_POLICY_BYTES - head.length - 1) + '\n')
  })
  main.routes.set('mta-sts.trickle.test', (_q, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('version: STSv1\n')
    const t = setInterval(() => res.write('#'), 20)
    res.on('close', () => clearInterval(t))
  })
  main.routes.set('mta-sts.type.test', (_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(POLICY))
  main.routes.set('mta-sts.maxage.test', (_q, res) =>
    res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: enforce\nmx: mx.maxage.test\nmax_age: 31557601\n'),
  )
  main.routes.set('mta-sts.fail.test', (_q, res) => res.writeHead(500).end())
  main.routes.set('mta-sts.two.test', (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(POLICY))
  main.routes.set('mta-sts.abort.test', () => {
    /* never answers */
  })
})

after(async () => {
  await Promise.all([dns?.close(), main?.close(), otherName?.close(), expired?.close()])
})

describe('fetchMtaStsPolicy: RFC 8461 §3.3', () => {
  it('fetches and parses a policy over strict PKIX with SNI mta-sts.<domain>', async () => {
    const r = await fetchMtaStsPolicy('good.test', opts())
    assert.equal(r.policy.mode, 'enforce')
    assert.deepEqual(r.policy.mx, ['*.good.test'])
    assert.equal(r.address, '127.0.0.1')
  })
  it('a redirect is not followed: sts-policy-fetch-error', async () => {
    const before = main.requests.get('mta-sts.good.test') ?? 0
    const e = await fetchFails('redirect.test', 'sts-policy-fetch-error')
    assert.match(e.message, /301.*redirects are not followed/)
    assert.equal(main.requests.get('mta-sts.good.test') ?? 0, before)
  })
  it('a body of 64 KiB + 1 is refused, 64 KiB exactly is read', async () => {
    const e = await fetchFails('big.test', 'sts-policy-invalid')
    assert.match(e.message, /over 64 KiB/)
    const r = await fetchMtaStsPolicy('exact.test', opts())
    assert.equal(r.policy.mode, 'testing')
  })
  it('a body that trickles past the time limit is abandoned', async () => {
    const e = await fetchFails('trickle.test', 'sts-policy-fetch-error', { timeoutMs: 300 })
    assert.match(e.message, /within 300 ms/)
  })
  it('a media type other than text/plain is refused', async () => {
    const e = await fetchFails('type.test', 'sts-policy-invalid')
    assert.match(e.message, /text\/html/)
  })
  it('a max_age over the RFC 8461 §3.2 cap is an invalid policy', async () => {
    await fetchFails('maxage.test', 'sts-policy-invalid')
  })
  it('HTTP 500: sts-policy-fetch-error', async () => {
    await fetchFails('fail.test', 'sts-policy-fetch-error')
  })
  it('a certificate for another name: sts-webpki-invalid', async () => {
    const e = await fetchFails('good.test', 'sts-webpki-invalid', { port: otherName.port })
    assert.match(e.message, /certificate not valid/)
  })
  it('an expired certificate: sts-webpki-invalid', async () => {
    const e = await fetchFails('good.test', 'sts-webpki-invalid', { port: expired.port })
    assert.match(e.message, /expired/i)
  })
  it('a CA that is not trusted (no ca option: Node root store): sts-webpki-invalid', async () => {
    await fetchFails('good.test', 'sts-webpki-invalid', { ca: undefined })
  })
  it('a loopback address is refused without allowPrivateAddresses, before any connection', async () => {
    const n = main.total()
    const e = await fetchFails('private.test', 'sts-policy-fetch-error', { allowPrivateAddresses: false })
    assert.match(e.message, /127\.0\.0\.1.*refused/)
    assert.equal(main.total(), n)
  })
  it('an abort rejects with ERR_ABORTED', async () => {
    const ac = new AbortController()
    const p = fetchMtaStsPolicy('abort.test', opts({ signal: ac.signal }))
    setTimeout(() => ac.abort(), 50)
    await assert.rejects(p, (e: SmtpTlsError) => e.code === 'ERR_ABORTED')
  })
})

describe('isPrivateAddress: what a policy host may not resolve to by default', () => {
  for (const [address, refused] of [
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.0.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['8.8.8.8', false],
    ['::1', true],
    ['::', true],
    ['fe80::1', true],
    ['fd00::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::ffff:808:808', false],
    ['0:0:0:0:0:ffff:808:808', true],
    ['::ffff:8.8.8.8', false],
    ['2001:db8::1', false],
    ['not an address', true],
  ] as const) {
    it(`${address}: ${refused ? 'refused' : 'allowed'}`, () => assert.equal(isPrivateAddress(address), refused))
  }
})

describe('getMtaStsPolicy: the cache (RFC 8461 §3.3, §10.2)', () => {
  it('zero HTTPS requests while fresh; id change refetches; refresh failure keeps the cached policy', async () => {
    let clock = 1_000_000_000_000
    const store = createMemoryStore({ now: () => clock })
    const o = opts({ store, now: () => clock, random: () => 0.5 })
    const count = (): number => main.requests.get('mta-sts.good.test') ?? 0
    const n0 = count()
    const a = await getMtaStsPolicy('good.test', o)
    assert.equal(a.state, 'fetched')
    assert.equal(a.policy?.mode, 'enforce')
    assert.equal(count(), n0 + 1)
    for (let i = 0; i < 5; i++) {
      clock += 3600_000
      const b = await getMtaStsPolicy('good.test', o)
      assert.equal(b.state, 'cached')
      assert.equal(b.refreshing, undefined)
    }
    assert.equal(count(), n0 + 1, 'no request while the cached policy is fresh')
    setId('good.test', '2')
    const c = await getMtaStsPolicy('good.test', o)
    assert.equal(c.state, 'fetched')
    assert.equal(c.decision, 'id-changed')
    assert.equal(count(), n0 + 2)
    // the server now fails; the TXT id changes again: the unexpired cached policy stays in force
    main.routes.set('mta-sts.good.test', (_q, res) => res.writeHead(503).end())
    setId('good.test', '3')
    const d = await getMtaStsPolicy('good.test', o)
    assert.equal(d.state, 'cached-after-failure')
    assert.equal(d.policy?.mode, 'enforce')
    assert.equal(d.error?.tlsrpt, 'sts-policy-fetch-error')
    // the TXT record disappears: the cached policy still applies (§3.3, §10.2)
    records = records.filter((r) => r[0] !== '_mta-sts.good.test')
    const e = await getMtaStsPolicy('good.test', o)
    assert.equal(e.state, 'cached-after-failure')
    assert.equal(e.policy?.mode, 'enforce')
    // expired and the fetch fails: no policy
    clock += 86400_000
    records.push(['_mta-sts.good.test', 'TXT', 'v=STSv1; id=4'])
    const f = await getMtaStsPolicy('good.test', o)
    assert.equal(f.state, 'none')
    assert.equal(f.policy, undefined)
    main.routes.set('mta-sts.good.test', (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(POLICY))
  })
  it('refreshes in the background inside the refresh window, once, and the policy stays in force meanwhile', async () => {
    let clock = 2_000_000_000_000
    const store = createMemoryStore({ now: () => clock })
    const o = opts({ store, now: () => clock, random: () => 0 })
    const count = (): number => main.requests.get('mta-sts.refresh.test') ?? 0
    main.routes.set('mta-sts.refresh.test', (_q, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: testing\nmx: mx.refresh.test\nmax_age: 1000\n'),
    )
    await getMtaStsPolicy('refresh.test', o)
    const n = count()
    clock += 850_000 // inside [expiry - 2·100 s, expiry - 100 s] with jitter 0: at expiry - 100 s or later
    const early = await getMtaStsPolicy('refresh.test', o)
    assert.equal(early.refreshing, undefined)
    clock += 60_000
    const [a, b] = await Promise.all([getMtaStsPolicy('refresh.test', o), getMtaStsPolicy('refresh.test', o)])
    assert.equal(a.state, 'cached')
    assert.ok(a.refreshing && b.refreshing)
    await a.refreshing
    assert.equal(count(), n + 1, 'one refresh for concurrent lookups')
    const c = await getMtaStsPolicy('refresh.test', o)
    assert.equal(c.fetchedAt, clock, 'the refreshed policy replaced the cached one')
    assert.equal(c.refreshing, undefined)
  })
  it('after a failed fetch the same id is not fetched again for retryAfterFailureSeconds (RFC 8461 §3.3)', async () => {
    let clock = 3_000_000_000_000
    const store = createMemoryStore({ now: () => clock })
    const o = opts({ store, now: () => clock })
    const count = (): number => main.requests.get('mta-sts.type.test') ?? 0
    const n = count()
    const a = await getMtaStsPolicy('type.test', o)
    assert.equal(a.state, 'none')
    assert.equal(a.error?.tlsrpt, 'sts-policy-invalid')
    clock += 299_000
    const b = await getMtaStsPolicy('type.test', o)
    assert.equal(b.state, 'none')
    assert.equal(b.error?.tlsrpt, 'sts-policy-invalid', 'the remembered failure keeps its TLS-RPT result type')
    assert.match(b.error?.message ?? '', /not fetched again yet/)
    assert.equal(count(), n + 1, 'no request within the back-off')
    clock += 2_000
    await getMtaStsPolicy('type.test', o)
    assert.equal(count(), n + 2, 'fetched again after the back-off')
    await getMtaStsPolicy('type.test', { ...o, retryAfterFailureSeconds: 0 })
    assert.equal(count(), n + 3, '0 disables the back-off')
  })
  it('concurrent lookups of an uncached domain share one HTTPS request', async () => {
    const store = createMemoryStore()
    main.routes.set('mta-sts.exact.test', (_q, res) =>
      setTimeout(
        () => res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: testing\nmx: mx.exact.test\nmax_age: 3600\n'),
        50,
      ),
    )
    const n = main.requests.get('mta-sts.exact.test') ?? 0
    const all = await Promise.all(Array.from({ length: 5 }, () => getMtaStsPolicy('exact.test', opts({ store }))))
    assert.deepEqual(
      all.map((r) => r.state),
      ['fetched', 'fetched', 'fetched', 'fetched', 'fetched'],
    )
    assert.equal(main.requests.get('mta-sts.exact.test'), n + 1)
  })
  it('two v=STSv1 records: no policy, no HTTPS request (RFC 8461 §3.1)', async () => {
    const n = main.requests.get('mta-sts.two.test') ?? 0
    const r = await getMtaStsPolicy('two.test', opts({ store: createMemoryStore() }))
    assert.equal(r.state, 'none')
    assert.equal(r.decision, 'no-record')
    assert.equal(r.error?.code, 'ERR_MTA_STS_SYNTAX')
    assert.equal(main.requests.get('mta-sts.two.test') ?? 0, n)
  })
  it('a store that fails costs a fetch, never the policy, and the failure is published', async () => {
    const failing: PolicyStore = {
      get: () => Promise.reject(new Error('down')),
      set: () => Promise.reject(new Error('down')),
      increment: () => Promise.reject(new Error('down')),
      scan: () => Promise.reject(new Error('down')),
      delete: () => Promise.reject(new Error('down')),
    }
    const seen: Array<{ operation: string }> = []
    const onMsg = (m: unknown): void => void seen.push(m as { operation: string })
    diagnostics_channel.subscribe('smtp-tls-policy:store-error', onMsg)
    try {
      const r = await getMtaStsPolicy('good.test', opts({ store: failing }))
      assert.equal(r.state, 'fetched')
      assert.equal(r.policy?.mode, 'enforce')
      assert.deepEqual(
        seen.map((m) => m.operation),
        ['get', 'set'],
      )
    } finally {
      diagnostics_channel.unsubscribe('smtp-tls-policy:store-error', onMsg)
    }
  })
  it('a damaged store entry is refetched, not trusted', async () => {
    const store = createMemoryStore()
    store.set('mta-sts|good.test', JSON.stringify({ id: '4', fetchedAt: Date.now(), lines: ['version: STSv1', 'mode: none'] }))
    setId('good.test', '4')
    const r = await getMtaStsPolicy('good.test', opts({ store }))
    // "mode: none" without max_age does not parse: the entry is ignored and the real policy fetched
    assert.equal(r.state, 'fetched')
    assert.equal(r.policy?.mode, 'enforce')
  })
})

describe('getTlsRptRecord: RFC 8460 §3', () => {
  it('finds the v=TLSRPTv1 record among other TXT strings; undefined without one', async () => {
    const r = await getTlsRptRecord('good.test', { resolver: resolver() })
    assert.deepEqual(r?.rua, ['mailto:tlsrpt@good.test'])
    assert.equal(await getTlsRptRecord('fail.test', { resolver: resolver() }), undefined)
  })
})
