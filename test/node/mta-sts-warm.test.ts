// getMtaStsPolicy's warm path (issue 13): with our resolver's cache and a synchronous store, a lookup is
// decided at once and a fresh policy comes back as a shared frozen result. Property: for any store
// entry, TXT answer and clock, that path gives what the general path gives (a resolver without the
// synchronous cache look and an asynchronous store), on the first call and on repeated calls.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { createMemoryStore } from '../../src/store/index.js'
import { createResolver, type Resolver } from '../../src/node/resolver/index.js'
import { getMtaStsPolicy, type MtaStsLookup } from '../../src/node/mta-sts.js'
import { parseMtaStsPolicy } from '../../src/mta-sts/policy.js'
import { decideMtaStsCache, mtaStsFreshUntil } from '../../src/mta-sts/cache.js'
import type { PolicyStore } from '../../src/store/types.js'
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js'

const DOMAINS = ['w0.test', 'w1.test', 'w2.test', 'w3.test'] // w3.test has no _mta-sts record
const T0 = Date.UTC(2026, 5, 1)
let dns: TestDnsServer
let resolver: Resolver

before(async () => {
  dns = await startDnsServer((q) => {
    const i = DOMAINS.findIndex((d) => q.name === `_mta-sts.${d}`)
    if (q.type === 'TXT' && i >= 0 && i < 3) return { answers: [{ name: q.name, type: 'TXT', ttl: 3600, data: `v=STSv1; id=id${i}` }] }
    // no address for mta-sts.<domain>: a fetch fails at once, without a connection
    return { authorities: [{ name: 'test', type: 'SOA', ttl: 3600, data: soa() }] }
  })
  resolver = createResolver({ servers: [dns.server], cache: { maxTtl: 3600, negativeMaxTtl: 3600 } })
  for (const d of DOMAINS) await resolver.lookup(`_mta-sts.${d}`, 'TXT')
})
after(() => dns.close())

function soa() {
  return { mname: 'ns.test', rname: 'h.test', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: 3600 }
}

/** The general path: no synchronous cache look, and a store that answers with promises. */
function slowResolver(): Resolver {
  return { lookup: (n, t, o) => resolver.lookup(n, t, o), config: () => resolver.config(), stats: () => resolver.stats(), clearCache() {} }
}
function asyncStore(s: PolicyStore): PolicyStore {
  return {
    get: async (k) => s.get(k),
    set: async (k, v, t) => s.set(k, v, t),
    delete: async (k) => s.delete(k),
    increment: async (k, b, t) => s.increment(k, b, t),
    scan: async (p) => s.scan(p),
  }
}

/** What a caller can see of a lookup (the error by code and message, the refresh by presence). */
function view(l: MtaStsLookup): unknown {
  const { error, refreshing, ...rest } = l
  return {
    ...rest,
    error: error && { code: error.code, message: error.message, tlsrpt: error.tlsrpt },
    refreshing: refreshing !== undefined,
  }
}

describe('getMtaStsPolicy warm path (issue 13)', () => {
  it('property: the warm path (cache look, synchronous store, shared result) equals the general path', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: DOMAINS.length - 1 }),
        fc.option(
          fc.record({
            id: fc.constantFrom('id0', 'id1', 'id2', 'other'),
            maxAge: fc.constantFrom(0, 60, 3600, 86400, 604800),
            age: fc.nat(700_000),
          }),
          { nil: undefined },
        ),
        fc.array(fc.integer({ min: -1000, max: 800_000_000 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (di, entry, clocks, refresh) => {
          const domain = DOMAINS[di]!
          const fastStore = createMemoryStore({ now: () => T0 })
          const slowMem = createMemoryStore({ now: () => T0 })
          if (entry !== undefined && entry.maxAge > 0) {
            const lines = parseMtaStsPolicy(`version: STSv1\nmode: enforce\nmx: mx.${domain}\nmax_age: ${entry.maxAge}\n`).lines
            const raw = JSON.stringify({ id: entry.id, fetchedAt: T0 - entry.age * 1000, lines })
            fastStore.set(`mta-sts|${domain}`, raw, 10 * 604800)
            slowMem.set(`mta-sts|${domain}`, raw, 10 * 604800)
          }
          for (const dt of clocks) {
            const now = () => T0 + dt
            const common = { now, random: () => 0.5, refresh, retryAfterFailureSeconds: 0 }
            // the same two calls on each side, in step (a call may change the store: discard, failure)
            const slowOpts = { ...common, resolver: slowResolver(), store: asyncStore(slowMem) }
            for (let k = 0; k < 2; k++) {
              const fast = await getMtaStsPolicy(domain, { ...common, resolver, store: fastStore })
              // another spelling of the domain: its own per-domain memo
              const slow = await getMtaStsPolicy(domain.toUpperCase(), slowOpts)
              await Promise.all([fast.refreshing, slow.refreshing])
              assert.deepEqual(view(fast), view(slow))
            }
          }
        },
      ),
      { numRuns: 150 },
    )
  })

  it('a fresh cached policy is one shared frozen result, and no DNS query is sent for it', async () => {
    const store = createMemoryStore({ now: () => T0 })
    const lines = parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: mx.w1.test\nmax_age: 86400\n').lines
    store.set('mta-sts|w1.test', JSON.stringify({ id: 'id1', fetchedAt: T0 - 1000, lines }), 86400)
    const opts = { resolver, store, now: () => T0 }
    const queries = dns.queries.length
    const a = await getMtaStsPolicy('w1.test', opts)
    const b = await getMtaStsPolicy('w1.test', opts)
    assert.equal(a.state, 'cached')
    assert.equal(a, b)
    assert.ok(Object.isFrozen(a))
    assert.equal(dns.queries.length, queries)
  })

  it('options reused from the previous call still honour a new signal, and still refuse a bad one', async () => {
    const store = createMemoryStore({ now: () => T0 })
    const lines = parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: mx.w2.test\nmax_age: 86400\n').lines
    store.set('mta-sts|w2.test', JSON.stringify({ id: 'id2', fetchedAt: T0 - 1000, lines }), 86400)
    const base = { resolver, store, now: () => T0 }
    assert.equal((await getMtaStsPolicy('w2.test', base)).state, 'cached')
    assert.equal((await getMtaStsPolicy('w2.test', { ...base, signal: new AbortController().signal })).state, 'cached')
    await assert.rejects(getMtaStsPolicy('w2.test', { ...base, signal: AbortSignal.abort() }), { code: 'ERR_ABORTED' })
    await assert.rejects(getMtaStsPolicy('w2.test', { ...base, signal: 'no' as never }), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(getMtaStsPolicy('w2.test', { ...base, now: 5 as never }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.equal((await getMtaStsPolicy('w2.test', base)).state, 'cached')
  })

  it('property: before mtaStsFreshUntil, decideMtaStsCache decides fresh without refresh for any jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 31557600 }),
        fc.integer({ min: 0, max: 2 ** 42 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.nat(2 ** 40),
        (maxAge, fetchedAt, jitter, back) => {
          const policy = parseMtaStsPolicy(`version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: ${maxAge}\n`)
          const cached = { policy, id: 'a', fetchedAt }
          const until = mtaStsFreshUntil(cached)
          for (const now of [until - 1, until - 1 - back]) {
            if (!(now < until)) continue
            const d = decideMtaStsCache({ now, cached, txt: { status: 'found', id: 'a' }, jitter })
            assert.equal(d.action, 'use')
            assert.equal(d.reason, 'fresh')
            assert.equal((d as { refresh: boolean }).refresh, false)
          }
        },
      ),
      { numRuns: 300 },
    )
  })
})
