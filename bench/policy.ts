// Issue 4 figure: policy evaluation per connection, lookupPolicy + resolvePolicy + decide, on a
// realistic input: a 2,000-entry policy table, a DNSSEC-signed destination with a 3 1 1 + 2 0 1
// TLSA RRset, and a two-certificate chain. Everything is synchronous; the DANE path includes the
// SHA-256 of the leaf's SPKI, the rest is table and rule work.
import {
  createTlsaRecord,
  decide,
  lookupPolicy,
  parsePolicyTable,
  resolvePolicy,
  type ConnectionFacts,
  type PolicyDestinationFacts,
  type PolicyHostFacts,
} from '../src/index.js'
import { makeCert } from '../test/helpers/openssl.js'
import { measure, report } from './harness.js'

export function benchPolicy(): { danePathUs: number; mayPathUs: number } {
  const root = makeCert({ key: 'ec256', subject: '/CN=Bench Root', ca: true })
  const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.bench.test', dns: ['mx.bench.test'], issuer: root })
  const lines: string[] = ['# generated bench table']
  for (let i = 0; i < 1000; i++)
    lines.push(`partner${i}.test dane-only`, `.dept${i}.example secure match=nexthop:dot-nexthop protocols=>=TLSv1.2`)
  lines.push('bench.test dane', '.test may')
  const table = parsePolicyTable(lines.join('\n'))
  const destination: PolicyDestinationFacts = { domain: 'bench.test', mxSecure: true }
  const host: PolicyHostFacts = {
    host: 'mx.bench.test',
    addressSecure: true,
    tlsa: {
      status: 'secure',
      records: [
        createTlsaRecord(leaf.der, { usage: 3, selector: 1, matchingType: 1 }),
        createTlsaRecord(root.der, { usage: 2, selector: 0, matchingType: 1 }),
      ],
      base: 'mx.bench.test',
      qname: '_25._tcp.mx.bench.test',
    },
  }
  const conn: ConnectionFacts = {
    starttls: 'offered',
    handshake: 'ok',
    chain: [leaf.der, root.der],
    pkix: { trusted: false },
    protocol: 'TLSv1.3',
  }
  const now = new Date()
  const insecure: PolicyHostFacts = { host: 'mx.other.test', addressSecure: false, tlsa: { status: 'not-looked-up', records: [] } }

  const check = decide(resolvePolicy({ policy: lookupPolicy(table, 'bench.test'), destination, host }), conn, { now })
  if (check.status !== 'verified') throw new Error(`bench input must verify, got ${check.status}: ${check.reason}`)

  console.log(`policy evaluation, table of ${table.entries.size} entries`)
  const lookup = measure('lookupPolicy (parent-domain walk, 3 keys)', () => lookupPolicy(table, 'mx1.sub.other.test'))
  const dane = measure('lookup + resolve + decide, DANE-EE verified', () =>
    decide(resolvePolicy({ policy: lookupPolicy(table, 'bench.test'), destination, host }), conn, { now }),
  )
  const may = measure('lookup + resolve + decide, may → untrusted', () =>
    decide(
      resolvePolicy({
        policy: lookupPolicy(table, 'a.other.test'),
        destination: { domain: 'a.other.test', mxSecure: false },
        host: insecure,
      }),
      conn,
    ),
  )
  const parse = measure(`parsePolicyTable (${table.entries.size} entries)`, () => parsePolicyTable(lines.join('\n')), 600)
  report([lookup, dane, may, parse])
  return { danePathUs: dane.usPerOp, mayPathUs: may.usPerOp }
}

if (import.meta.url === `file://${process.argv[1]}`) benchPolicy()
