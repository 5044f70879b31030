// validateTlsRptReport (RFC 8460 §4.4) agrees with Ajv over the JSON Schema of test/vectors/tlsrpt on
// the RFC example, on every single-field mutation of it, and on random values; it never throws.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Ajv } from 'ajv'
import { validateTlsRptReport } from '../../src/index.js'

const vectors = new URL('../vectors/tlsrpt/', import.meta.url)
const schema = JSON.parse(readFileSync(new URL('report.schema.json', vectors), 'utf8')) as object
const ajv = new Ajv({ allErrors: true }).compile(schema)
const example = JSON.parse(readFileSync(new URL('rfc8460-example.json', vectors), 'utf8')) as Record<string, unknown>

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T
/** Every path to a value in a JSON document. */
function paths(v: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  const out = [at]
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])))
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]))
  return out
}
function setAt(doc: unknown, path: Array<string | number>, value: unknown, remove = false): unknown {
  if (path.length === 0) return value
  const d = clone(doc) as Record<string | number, unknown>
  let o = d
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (remove) {
    if (Array.isArray(o)) o.splice(last as number, 1)
    else delete o[last]
  } else o[last] = value
  return d
}

const REPLACEMENTS: unknown[] = [null, 0, -1, 1.5, '', 'x', true, [], {}, ['x'], 'tlsa', 'certificate-expired', '2016-04-01T00:00:00Z', 7]

describe('validateTlsRptReport: the same verdicts as the RFC 8460 §4.4 JSON Schema', () => {
  it('the RFC 8460 §4.7 example is valid', () => {
    assert.deepEqual(validateTlsRptReport(example), { valid: true, errors: [] })
  })
  it('every field of the example removed or replaced by a value of another type: same verdict as Ajv', () => {
    let invalid = 0
    for (const p of paths(example)) {
      const variants = [...(p.length > 0 ? [setAt(example, p, undefined, true)] : []), ...REPLACEMENTS.map((r) => setAt(example, p, r))]
      let target: unknown = example
      for (const k of p) target = (target as Record<string | number, unknown>)[k]
      if (typeof target === 'object' && target !== null && !Array.isArray(target)) variants.push(setAt(example, [...p, 'extra'], 1))
      for (const v of variants) {
        const ours = validateTlsRptReport(v)
        assert.equal(ours.valid, ajv(v), `${JSON.stringify(p)} → ${JSON.stringify(v).slice(0, 200)}: ${JSON.stringify(ours.errors)}`)
        if (!ours.valid) {
          invalid++
          assert.ok(ours.errors.length > 0)
        }
      }
    }
    assert.ok(invalid > 100)
  })
  it('random JSON values: same verdict, never a throw', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        assert.equal(validateTlsRptReport(v).valid, ajv(v))
      }),
      { numRuns: 500 },
    )
    const trap = new Proxy(
      {},
      {
        ownKeys: () => {
          throw new Error('trap')
        },
      },
    )
    assert.equal(validateTlsRptReport(trap).valid, false)
  })
  it('names where the defect is', () => {
    const bad = setAt(example, ['policies', 0, 'failure-details', 0, 'result-type'], 'made-up')
    assert.deepEqual(validateTlsRptReport(bad).errors, [
      { path: '/policies/0/failure-details/0/result-type', message: 'must be an RFC 8460 §4.3 result type' },
    ])
  })
})
