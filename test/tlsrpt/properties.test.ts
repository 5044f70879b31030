// fast-check properties of TLS-RPT recording and reports: whatever sessions are recorded, the
// collected totals equal the sessions per day, domain and outcome, and every report built from them
// validates against the RFC 8460 §4.4 schema; the builder throws nothing but coded errors.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Ajv } from 'ajv'
import {
  buildTlsRptReport,
  collectTlsRptDay,
  createMemoryStore,
  recordTlsRptSession,
  type TlsRptResultType,
  type TlsRptSession,
} from '../../src/index.js'
import { onlyCoded } from '../helpers/assert-coded.js'

const schema = JSON.parse(readFileSync(new URL('../vectors/tlsrpt/report.schema.json', import.meta.url), 'utf8')) as object
const validate = new Ajv().compile(schema)
const resultTypes: TlsRptResultType[] = [
  'starttls-not-supported',
  'certificate-expired',
  'validation-failure',
  'dnssec-invalid',
  'sts-policy-invalid',
]
// peer-controlled text: any characters, '|' and '%' included; a small set too, so that details repeat
const text = fc.oneof(fc.constantFrom('mx.example', 'a|b', '%7C', '%25|'), fc.string({ minLength: 1, maxLength: 12 }))
const policies = [
  { type: 'sts' as const, domain: 'a.example', strings: ['version: STSv1', 'mode: enforce'], mxHosts: ['*.a.example'] },
  { type: 'sts' as const, domain: 'a.example', strings: ['version: STSv1', 'mode: testing'], mxHosts: ['*.a.example'] },
  { type: 'tlsa' as const, domain: 'mx.b.example', strings: ['3 1 1 abcd'], mxHosts: ['mx.b.example'] },
  { type: 'no-policy-found' as const, domain: 'c.example' },
]
const session: fc.Arbitrary<[TlsRptSession, number]> = fc
  .tuple(
    fc.integer({ min: 0, max: policies.length - 1 }),
    fc.option(
      fc.record(
        {
          resultType: fc.constantFrom(...resultTypes),
          receivingMxHelo: text,
          receivingIp: fc.constantFrom('192.0.2.1', '2001:db8::1%eth0'),
          failureReasonCode: text,
        },
        { requiredKeys: ['resultType'] },
      ),
      { nil: undefined },
    ),
    fc.integer({ min: 0, max: 2 }), // day offset
    fc.boolean(), // report mail
  )
  .map(([p, failure, day, reportMail]) => [
    { policy: policies[p]!, ...(failure ? { failure } : {}), ...(reportMail ? { reportMail } : {}) },
    day,
  ])

describe('TLS-RPT recording properties', () => {
  it('collected totals equal the recorded sessions, and every report validates', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(session, { maxLength: 60 }), async (sessions) => {
        const t0 = Date.UTC(2026, 0, 1)
        const store = createMemoryStore({ now: () => t0 })
        for (const [s, day] of sessions) recordTlsRptSession(store, s, t0 + day * 86400_000 + 1000)
        for (let day = 0; day < 3; day++) {
          const dayText = new Date(t0 + day * 86400_000).toISOString().slice(0, 10)
          const results = await collectTlsRptDay(store, dayText)
          const want = sessions.filter(([s, d]) => d === day && s.reportMail !== true)
          let ok = 0
          let failed = 0
          for (const r of results) {
            const report = buildTlsRptReport({
              organizationName: 'o',
              contactInfo: 'c',
              reportId: 'r',
              dateRange: dayText,
              policies: r.policies,
            })
            assert.ok(validate(report), JSON.stringify(validate.errors))
            for (const p of r.policies) {
              ok += p.successful
              failed += p.failed
              assert.equal(
                p.failed,
                p.failureDetails.reduce((n, d) => n + d.failedSessionCount, 0),
              )
              for (const d of p.failureDetails) {
                const same = want.filter(
                  ([s]) =>
                    s.policy.domain === r.policyDomain &&
                    s.failure?.resultType === d.resultType &&
                    s.failure.receivingMxHelo === d.receivingMxHelo &&
                    s.failure.failureReasonCode === d.failureReasonCode &&
                    s.failure.receivingIp === d.receivingIp &&
                    s.policy.strings?.join() === p.policy.strings?.join(),
                )
                assert.equal(d.failedSessionCount, same.length)
              }
            }
          }
          assert.equal(ok, want.filter(([s]) => s.failure === undefined).length)
          assert.equal(failed, want.filter(([s]) => s.failure !== undefined).length)
        }
      }),
      { numRuns: 100 },
    )
  })
  it('buildTlsRptReport throws nothing but coded errors on any input', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (a, b) => {
        onlyCoded(() => buildTlsRptReport(a as never), ['ERR_INVALID_ARGUMENT'])
        onlyCoded(
          () =>
            buildTlsRptReport({
              organizationName: 'o',
              contactInfo: 'c',
              reportId: 'r',
              dateRange: '2026-01-01',
              policies: [a, b],
            } as never),
          ['ERR_INVALID_ARGUMENT'],
        )
        onlyCoded(() => recordTlsRptSession(createMemoryStore(), a as never, 0), ['ERR_INVALID_ARGUMENT'])
      }),
    )
  })

  it('the last-failure key shortcut: the same store contents as recording with a new policy object each time', () => {
    // issue 13: a policy remembers its last failure detail and key; a new policy object each call never
    // takes that shortcut. Details repeat often (small value sets), and a failure object is reused and
    // changed in place between calls, so equal and changed details both follow each other.
    const small = fc.constantFrom('mx.example', 'a|b', '%25', undefined)
    const step = fc.record({
      p: fc.integer({ min: 0, max: policies.length - 1 }),
      resultType: fc.constantFrom('certificate-expired', 'validation-failure', 'starttls-not-supported') as fc.Arbitrary<TlsRptResultType>,
      receivingMxHostname: small,
      receivingMxHelo: small,
      receivingIp: fc.constantFrom('192.0.2.1', undefined),
      ok: fc.boolean(),
    })
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const t0 = Date.UTC(2026, 0, 1)
        const a = createMemoryStore({ now: () => t0 })
        const b = createMemoryStore({ now: () => t0 })
        const shared: Record<string, unknown> = {}
        for (const x of steps) {
          Object.assign(shared, { resultType: x.resultType, receivingMxHostname: x.receivingMxHostname })
          shared.receivingMxHelo = x.receivingMxHelo
          shared.receivingIp = x.receivingIp
          const failure = shared as unknown as NonNullable<TlsRptSession['failure']>
          recordTlsRptSession(a, x.ok ? { policy: policies[x.p]! } : { policy: policies[x.p]!, failure }, t0)
          const fresh = { ...policies[x.p]! }
          recordTlsRptSession(b, x.ok ? { policy: fresh } : { policy: fresh, failure: { ...failure } }, t0)
        }
        assert.deepEqual(a.scan('').sort(), b.scan('').sort())
      }),
      { numRuns: 300 },
    )
  })
})
