// DANE verification of a peer chain, runnable: npm run build && npx tsx examples/verify-dane.ts
// The chain (examples/certs/dane/chain.pem: mx.example.com ← Example Issuing CA ← Example Root CA)
// stands in for what tls.TLSSocket#getPeerCertificate(true) hands over, leaf first.
import { readFileSync } from 'node:fs'
import { createTlsaRecord, formatTlsaRecord, parseTlsaRecord, pemToDerAll, verifyDane, type DaneResult } from 'smtp-tls-policy'

const chain = pemToDerAll(readFileSync(new URL('./certs/dane/chain.pem', import.meta.url), 'utf8'))
const [leaf, issuing, root] = chain as [Uint8Array, Uint8Array, Uint8Array]

// What the zone publishes at _25._tcp.mx.example.com (RFC 7671 §8.1 recommends "3 1 1" + "2 1 1").
const dane_ee = createTlsaRecord(leaf, { usage: 3, selector: 1, matchingType: 1 })
const dane_ta = createTlsaRecord(issuing, { usage: 2, selector: 1, matchingType: 1 })
console.log('TLSA records:', formatTlsaRecord(dane_ee), '|', formatTlsaRecord(dane_ta))

// Reference names for DANE-TA (RFC 7672 §3.2.2): the TLSA base domain, plus the next-hop domain
// when the MX lookup was secure.
const names = ['mx.example.com', 'example.com']
const show = (label: string, r: DaneResult) =>
  console.log(label.padEnd(44), r.ok ? `ok: ${r.usage} at depth ${r.depth}${r.name ? `, name ${r.name}` : ''}` : `${r.code}: ${r.detail}`)

show('DANE-EE 3 1 1', verifyDane({ records: [dane_ee], chain, names }))
show('DANE-TA 2 1 1 (issuing CA)', verifyDane({ records: [dane_ta], chain, names }))
show(
  'DANE-TA, server left the root out, 2 0 0 root',
  verifyDane({
    records: [createTlsaRecord(root, { usage: 2, selector: 0, matchingType: 0 })],
    chain: [leaf, issuing],
    names,
  }),
)
show('DANE-TA with the wrong name', verifyDane({ records: [dane_ta], chain, names: ['mx.example.net'] }))
show('DANE-EE with the wrong name (no name checks)', verifyDane({ records: [dane_ee], chain, names: ['mx.example.net'] }))
show('DANE-TA in the year 2200', verifyDane({ records: [dane_ta], chain, names, now: new Date('2200-01-01T00:00:00Z') }))
show('a record for another key', verifyDane({ records: [parseTlsaRecord(`3 1 1 ${'00'.repeat(32)}`)], chain, names }))
// No usable record: RFC 7672 §2.2 says fall back to unauthenticated TLS (Postfix "encrypt").
show(
  'only PKIX-EE (unusable for SMTP)',
  verifyDane({ records: [createTlsaRecord(leaf, { usage: 1, selector: 1, matchingType: 1 })], chain, names }),
)
