// TLS-RPT (RFC 8460): the `_smtp._tls` record (§3, mox tlsrpt/parse_test.go style tables), the report
// (§4, checked against the RFC 8460 §4.7 example and a JSON Schema written from §4.4), the recorder's
// aggregation through the memory store, the file name (§5.1) and the report message (§5.3, parsed by mailparser).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { describe, it } from 'node:test'
import { Ajv } from 'ajv'
import { simpleParser } from 'mailparser'
import {
  buildTlsRptReport,
  collectTlsRptDay,
  createMemoryStore,
  isTlsRptReportMessage,
  parseMtaStsPolicy,
  parseTlsRptRecord,
  recordTlsRptSession,
  tlsRptFileName,
  type TlsRptPolicyRef,
  type TlsRptReport,
  type TlsRptSession,
} from '../../src/index.js'
import { createTlsRptMail } from '../../src/node/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

const vectors = new URL('../vectors/tlsrpt/', import.meta.url)
const example = JSON.parse(readFileSync(new URL('rfc8460-example.json', vectors), 'utf8')) as TlsRptReport
const schema = JSON.parse(readFileSync(new URL('report.schema.json', vectors), 'utf8')) as object
const validate = new Ajv({ allErrors: true }).compile(schema)
function assertValid(report: unknown): void {
  assert.ok(validate(report), JSON.stringify(validate.errors))
}

describe('parseTlsRptRecord (RFC 8460 §3)', () => {
  const good: [string, string[], [string, string][]][] = [
    ['v=TLSRPTv1;rua=mailto:reports@example.com', ['mailto:reports@example.com'], []], // RFC 8460 §3.1 example
    ['v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt', ['https://reporting.example.com/v1/tlsrpt'], []], // RFC example
    ['v=TLSRPTv1; rua=mailto:tlsrpt@mox.example;', ['mailto:tlsrpt@mox.example'], []],
    [
      'v=TLSRPTv1; rua=mailto:tlsrpt@mox.example , \t\t https://mox.example/tlsrpt  ',
      ['mailto:tlsrpt@mox.example', 'https://mox.example/tlsrpt'],
      [],
    ],
    ['v=TLSRPTv1; rua=mailto:tlsrpt@mox.example; ext=yes', ['mailto:tlsrpt@mox.example'], [['ext', 'yes']]],
    ['v=TLSRPTv1 ; rua=mailto:x@x.example; rua=mailto:y@x.example', ['mailto:x@x.example', 'mailto:y@x.example'], []], // two rua fields
    ['v=TLSRPTv1; rua=MAILTO:x%2Cy@x.example', ['MAILTO:x%2Cy@x.example'], []], // scheme case, encoded comma
  ]
  for (const [txt, rua, ext] of good) {
    it(`accepts ${JSON.stringify(txt)}`, () => {
      const r = parseTlsRptRecord(txt)
      assert.deepEqual(r.rua, rua)
      assert.deepEqual(
        r.extensions.map((e) => [e.name, e.value]),
        ext,
      )
    })
  }
  const bad: [string, string][] = [
    ['v=TLSRPTv0', 'other version'],
    ['v=TLSRPTv10', 'version followed by a digit'],
    ['v=TLSRPTv2', 'other version'],
    ['v=TLSRPTv1', 'missing rua'],
    ['v=TLSRPTv1;', 'missing rua'],
    ['v=TLSRPTv1; ext=1', 'missing rua'],
    ['v=TLSRPTv1; rua=', 'empty rua'],
    ['v=TLSRPTv1; rua=noscheme', 'no scheme'],
    ['v=TLSRPTv1; rua=http://insecure.example/', 'http is not https'],
    ['v=TLSRPTv1; rua=mailto:', 'mailto without an address'],
    ['v=TLSRPTv1; rua=mailto:nobody', 'mailto without a domain'],
    ['v=TLSRPTv1; rua=,, ,', 'empty URIs'],
    ['v=TLSRPTv1; rua=mailto:x@x.example; more=', 'empty extension value'],
    ['v=TLSRPTv1; rua=mailto:x@x.example; a12345678901234567890123456789012=1', 'extension name too long'],
    ['v=TLSRPTv1; rua=mailto:x@x.example; 1%=a', 'invalid extension name'],
    ['v=TLSRPTv1; rua=mailto:x@x.example; test==', 'invalid extension value'],
    ['v=TLSRPTv1; rua=mailto:x@x.example;;', 'additional semicolon'],
    ['v=TLSRPTv1; rua=mailto:x@x.example other', 'trailing characters'],
    ['v=TLSRPTv1; rua=https://bad/%', 'bad percent-encoding'],
    ['v=TLSRPTv1; rua=https:///nohost', 'https without a host'],
  ]
  for (const [txt, why] of bad) {
    it(`rejects ${JSON.stringify(txt)} (${why})`, () => {
      throwsCoded(() => parseTlsRptRecord(txt), 'ERR_TLSRPT_SYNTAX')
    })
  }
  it('takes the TXT RRset: one record, none, or too many', () => {
    assert.deepEqual(parseTlsRptRecord(['v=spf1 -all', 'v=TLSRPTv1; rua=mailto:a@b.example'])?.rua, ['mailto:a@b.example'])
    assert.equal(parseTlsRptRecord(['v=spf1 -all']), undefined)
    throwsCoded(() => parseTlsRptRecord(['v=TLSRPTv1; rua=mailto:a@b.example', 'v=TLSRPTv1; rua=mailto:c@b.example']), 'ERR_TLSRPT_SYNTAX')
    throwsCoded(() => parseTlsRptRecord(42 as never), 'ERR_INVALID_ARGUMENT')
  })
})

const stsPolicy = parseMtaStsPolicy('version: STSv1\nmode: testing\nmx: *.mail.company-y.example\nmax_age: 86400\n')
const exampleInput = {
  organizationName: 'Company-X',
  contactInfo: 'sts-reporting@company-x.example',
  reportId: '5065427c-23d3-47ca-b6e0-946ea0e8c4be',
  dateRange: '2016-04-01',
  policies: [
    {
      policy: { type: 'sts' as const, domain: 'company-y.example', strings: stsPolicy.lines, mxHosts: stsPolicy.mx },
      successful: 5326,
      failed: 303,
      failureDetails: [
        {
          resultType: 'certificate-expired' as const,
          sendingMtaIp: '2001:db8:abcd:0012::1',
          receivingMxHostname: 'mx1.mail.company-y.example',
          failedSessionCount: 100,
        },
        {
          resultType: 'starttls-not-supported' as const,
          sendingMtaIp: '2001:db8:abcd:0013::1',
          receivingMxHostname: 'mx2.mail.company-y.example',
          receivingIp: '203.0.113.56',
          failedSessionCount: 200,
          additionalInformation: 'https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported',
        },
        {
          resultType: 'validation-failure' as const,
          sendingMtaIp: '198.51.100.62',
          receivingIp: '203.0.113.58',
          receivingMxHostname: 'mx-backup.mail.company-y.example',
          failedSessionCount: 3,
          failureReasonCode: 'X509_V_ERR_PROOXY_PATH_LENGTH_EXCEEDED',
        },
      ],
    },
  ],
}

describe('buildTlsRptReport (RFC 8460 §4)', () => {
  it('the RFC 8460 §4.7 example (erratum 6241) validates against the §4.4 schema', () => assertValid(example))
  it('the schema rejects what §4.4 forbids (it has teeth)', () => {
    assert.equal(validate({ ...example, 'report-id': undefined }), false)
    const p = structuredClone(example)
    ;(p.policies[0]!.policy as Record<string, unknown>)['mx-host'] = '*.mail.company-y.example' // pre-erratum string
    assert.equal(validate(p), false)
  })
  it('rebuilds the RFC 8460 §4.7 example exactly', () => {
    const r = buildTlsRptReport(exampleInput)
    assert.deepEqual(r, example)
    assert.deepEqual(Object.keys(r.policies[0]!.policy), Object.keys(example.policies[0]!.policy)) // RFC key order
    assertValid(r)
  })
  it('accepts explicit bounds as Dates or RFC 3339 strings; omits empty failure details', () => {
    const r = buildTlsRptReport({
      ...exampleInput,
      dateRange: { start: new Date(Date.UTC(2026, 0, 1)), end: '2026-01-01T23:59:59Z' },
      policies: [{ policy: { type: 'no-policy-found', domain: 'x.example' }, successful: 1, failed: 0, failureDetails: [] }],
    })
    assert.deepEqual(r['date-range'], { 'start-datetime': '2026-01-01T00:00:00Z', 'end-datetime': '2026-01-01T23:59:59Z' })
    assert.equal('failure-details' in r.policies[0]!, false)
    assertValid(r)
  })
  it('refuses malformed input with a coded error', () => {
    const bads: unknown[] = [
      null,
      { ...exampleInput, organizationName: '' },
      { ...exampleInput, dateRange: '2016-02-30' },
      { ...exampleInput, dateRange: { start: 'yesterday', end: '2016-04-01T00:00:00Z' } },
      { ...exampleInput, policies: [{ ...exampleInput.policies[0], successful: -1 }] },
      { ...exampleInput, policies: [{ ...exampleInput.policies[0], failureDetails: [{ resultType: 'oops', failedSessionCount: 1 }] }] },
      { ...exampleInput, policies: [{ ...exampleInput.policies[0], policy: { type: 'dmarc', domain: 'a' } }] },
    ]
    for (const b of bads) throwsCoded(() => buildTlsRptReport(b as never), 'ERR_INVALID_ARGUMENT')
  })
})

describe('tlsRptFileName (RFC 8460 §5.1)', () => {
  it('names the file as the RFC example does', () => {
    assert.equal(
      tlsRptFileName({ submitter: 'mail.sender.example', policyDomain: 'example.com', begin: 1013662812, end: 1013749130 }),
      'mail.sender.example!example.com!1013662812!1013749130.json.gz',
    )
    assert.equal(
      tlsRptFileName({
        submitter: 's.example',
        policyDomain: 'd.example',
        begin: new Date(1000),
        end: new Date(2000),
        uniqueId: 'abc1',
        gzip: false,
      }),
      's.example!d.example!1!2!abc1.json',
    )
  })
  it('refuses names that cannot be in a file name', () => {
    throwsCoded(() => tlsRptFileName({ submitter: 'a/../b', policyDomain: 'd', begin: 1, end: 2 }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => tlsRptFileName({ submitter: 'a', policyDomain: 'd', begin: 1, end: 2, uniqueId: 'x!y' }), 'ERR_INVALID_ARGUMENT')
  })
})

describe('recordTlsRptSession + collectTlsRptDay', () => {
  const day = Date.UTC(2016, 3, 1, 12)
  const policy: TlsRptPolicyRef = { type: 'sts', domain: 'company-y.example', strings: stsPolicy.lines, mxHosts: stsPolicy.mx }

  it('aggregates sessions into the RFC example report', async () => {
    const store = createMemoryStore({ now: () => day })
    const fd = exampleInput.policies[0]!.failureDetails
    const record = (s: TlsRptSession, n: number) => {
      for (let i = 0; i < n; i++) assert.equal(recordTlsRptSession(store, s, day + i), true)
    }
    record({ policy }, 5326)
    for (const f of fd) {
      const { failedSessionCount, additionalInformation: _, ...failure } = f as typeof f & { additionalInformation?: string }
      record({ policy: { ...policy }, failure }, failedSessionCount) // an equal policy object counts as the same policy
    }
    // another day and another domain stay apart
    recordTlsRptSession(store, { policy }, day + 86400_000)
    recordTlsRptSession(store, { policy: { type: 'no-policy-found', domain: 'other.example' } }, day)
    const results = await collectTlsRptDay(store, '2016-04-01')
    assert.deepEqual(
      results.map((r) => r.policyDomain),
      ['company-y.example', 'other.example'],
    )
    const r = buildTlsRptReport({ ...exampleInput, policies: results[0]!.policies })
    const want = structuredClone(example)
    // the recorder has no additional-information; details come sorted by count
    delete (want.policies[0]!['failure-details']![1] as Record<string, unknown>)['additional-information']
    want.policies[0]!['failure-details']!.sort((a, b) => b['failed-session-count'] - a['failed-session-count'])
    assert.deepEqual(r, want)
    assertValid(r)
  })
  it('never records report mail (no report loops)', () => {
    const store = createMemoryStore({ now: () => day })
    assert.equal(recordTlsRptSession(store, { policy, reportMail: true, failure: { resultType: 'starttls-not-supported' } }, day), false)
    assert.equal(store.size, 0)
  })
  it('escapes the separator in peer-controlled fields (HELO) and bounds them', async () => {
    const store = createMemoryStore({ now: () => day })
    const helo = 'evil|helo%7C|' + 'x'.repeat(400)
    recordTlsRptSession(
      store,
      { policy, failure: { resultType: 'validation-failure', receivingMxHelo: helo, receivingIp: '192.0.2.1' } },
      day,
    )
    const [res] = await collectTlsRptDay(store, '2016-04-01')
    const d = res!.policies[0]!.failureDetails[0]!
    assert.equal(d.receivingMxHelo, helo.slice(0, 255))
    assert.equal(d.receivingIp, '192.0.2.1')
    assert.equal(d.failedSessionCount, 1)
  })
  it('one store increment per session; works with an asynchronous store', async () => {
    const mem = createMemoryStore({ now: () => day })
    const calls: string[] = []
    const asyncStore = {
      get: async (k: string) => mem.get(k),
      set: async (k: string, v: string, t?: number) => (calls.push('set'), mem.set(k, v, t)),
      increment: async (k: string, by?: number, t?: number) => (calls.push('increment'), mem.increment(k, by, t)),
      scan: async (p: string) => mem.scan(p),
      delete: async (k: string) => mem.delete(k),
    }
    assert.equal(await recordTlsRptSession(asyncStore, { policy }, day), true)
    assert.equal(await recordTlsRptSession(asyncStore, { policy }, day), true)
    assert.deepEqual(calls, ['increment', 'set', 'increment']) // the description is written once
    const [res] = await collectTlsRptDay(asyncStore, '2016-04-01')
    assert.equal(res!.policies[0]!.successful, 2)
    assert.deepEqual(res!.policies[0]!.policy.mxHosts, ['*.mail.company-y.example'])
  })
  it('counters expire with the store TTL', async () => {
    let now = day
    const store = createMemoryStore({ now: () => now })
    recordTlsRptSession(store, { policy }, day, { ttlSeconds: 60 })
    now += 61_000
    assert.deepEqual(await collectTlsRptDay(store, '2016-04-01'), [])
  })
  it('refuses malformed sessions with a coded error', () => {
    const store = createMemoryStore()
    const bads: unknown[] = [
      null,
      { policy: { type: 'x', domain: 'a' } },
      { policy: { type: 'sts', domain: '' } },
      { policy, failure: { resultType: 'nope' } },
      { policy, failure: { resultType: 'certificate-expired', receivingIp: 7 } },
    ]
    for (const b of bads) throwsCoded(() => recordTlsRptSession(store, b as never, day), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => recordTlsRptSession(store, { policy }, NaN), 'ERR_INVALID_ARGUMENT')
    throwsCoded(() => collectTlsRptDay(store, 'today'), 'ERR_INVALID_ARGUMENT')
  })
})

describe('report message (RFC 8460 §5.3)', () => {
  it('parses with mailparser into the expected parts and headers', async () => {
    const mail = createTlsRptMail({
      report: example,
      from: 'tlsrpt@mail.sender.example',
      to: ['mailto:tlsrpt@company-y.example'],
      submitter: 'mail.sender.example',
      policyDomain: 'company-y.example',
      date: new Date(Date.UTC(2016, 3, 2, 0, 5)),
    })
    assert.equal(mail.fileName, 'mail.sender.example!company-y.example!1459468800!1459555199.json.gz')
    assert.ok(mail.message.split('\r\n').every((l) => l.length <= 998))
    assert.equal(isTlsRptReportMessage(mail.message), true)
    const parsed = await simpleParser(mail.message)
    assert.equal(parsed.headers.get('tls-report-domain'), 'company-y.example')
    assert.equal(parsed.headers.get('tls-report-submitter'), 'mail.sender.example')
    assert.equal(parsed.headers.get('tls-required'), 'No')
    const ct = parsed.headers.get('content-type') as { value: string; params: Record<string, string> }
    assert.equal(ct.value, 'multipart/report')
    assert.equal(ct.params['report-type'], 'tlsrpt')
    assert.equal(parsed.to && !Array.isArray(parsed.to) && parsed.to.value[0]?.address, 'tlsrpt@company-y.example')
    assert.match(parsed.text ?? '', /aggregate TLS report from mail\.sender\.example/)
    assert.equal(parsed.attachments.length, 1)
    const att = parsed.attachments[0]!
    assert.equal(att.contentType, 'application/tlsrpt+gzip')
    assert.equal(att.filename, mail.fileName)
    assert.deepEqual(JSON.parse(gunzipSync(att.content).toString('utf8')), example)
  })
  it('an uncompressed report is application/tlsrpt+json', async () => {
    const mail = createTlsRptMail({
      report: example,
      from: 'a@s.example',
      to: ['b@d.example'],
      submitter: 's.example',
      policyDomain: 'd.example',
      date: new Date(0),
      gzip: false,
    })
    const att = (await simpleParser(mail.message)).attachments[0]!
    assert.equal(att.contentType, 'application/tlsrpt+json')
    assert.deepEqual(JSON.parse(att.content.toString('utf8')), example)
  })
  it('refuses header injection', () => {
    throwsCoded(
      () =>
        createTlsRptMail({
          report: example,
          from: 'a@s.example\r\nBcc: x@y',
          to: ['b@d.example'],
          submitter: 's.example',
          policyDomain: 'd.example',
          date: new Date(0),
        }),
      'ERR_INVALID_ARGUMENT',
    )
    throwsCoded(
      () =>
        createTlsRptMail({
          report: example,
          from: 'a@s.example',
          to: ['mailto:b@d.example%0D%0ABcc:x@y'],
          submitter: 's.example',
          policyDomain: 'd.example',
          date: new Date(0),
        }),
      'ERR_INVALID_ARGUMENT',
    )
  })
  it('recognises report mail by its headers only', () => {
    assert.equal(isTlsRptReportMessage('From: a\r\nTLS-Report-Domain: x\r\n\r\nbody'), true)
    assert.equal(isTlsRptReportMessage('Content-Type: multipart/report;\r\n report-type="tlsrpt"\r\n\r\n'), true)
    assert.equal(isTlsRptReportMessage('Subject: hi\r\n\r\nTLS-Report-Domain: in the body'), false)
    assert.equal(isTlsRptReportMessage(null as never), false)
  })
})
