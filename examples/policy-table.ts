// The policy engine, worked example: a Postfix-style policy table, three destinations, their
// verdicts and decision traces. Runnable: npm run build && npx tsx examples/policy-table.ts
//
// DNS and TLS facts are written out by hand here (in real use the resolver and the connect
// driver of 'smtp-tls-policy/node' gather them); the certificate is examples/certs/mx.example.com.pem.
import { readFileSync } from 'node:fs'
import {
  certificateFingerprint,
  createTlsaRecord,
  decide,
  formatTrace,
  lookupPolicy,
  parsePolicyTable,
  pemToDer,
  resolvePolicy,
  type ConnectionFacts,
  type PolicyDestinationFacts,
  type PolicyHostFacts,
} from 'smtp-tls-policy'

const leaf = pemToDer(readFileSync(new URL('./certs/mx.example.com.pem', import.meta.url), 'utf8'))
const pin = certificateFingerprint(leaf) // sha256, Postfix smtp_tls_fingerprint_digest default

// /etc/postfix/tls_policy (smtp_tls_policy_maps)
const table = parsePolicyTable(`
# Mandatory DANE for our partner; a secure channel to the .example.net domains
example.com             dane-only
.example.net            secure match=nexthop:dot-nexthop protocols=>=TLSv1.2
# The submission relay is pinned
[relay.example.org]:587 fingerprint
    match=${pin}
`)

// What one connection produced: STARTTLS accepted, TLS 1.3, the server's chain.
const tls: ConnectionFacts = {
  starttls: 'offered',
  handshake: 'ok',
  chain: [leaf],
  pkix: { trusted: true }, // this example's certificate is treated as WebPKI-trusted
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_256_GCM_SHA384',
}

const destinations: Array<{ nexthop: string; destination: PolicyDestinationFacts; host: PolicyHostFacts }> = [
  {
    // 1. example.com: DNSSEC-signed MX and TLSA → DANE, verified.
    nexthop: 'example.com',
    destination: { domain: 'example.com', mxSecure: true },
    host: {
      host: 'mx.example.com',
      addressSecure: true,
      tlsa: {
        status: 'secure',
        records: [createTlsaRecord(leaf, { usage: 3, selector: 1, matchingType: 1 })],
        base: 'mx.example.com',
        qname: '_25._tcp.mx.example.com',
      },
    },
  },
  {
    // 2. mail.example.net: parent-domain entry .example.net → secure; the MX presents a
    //    certificate for mx.example.com, which matches neither mail.example.net nor *.mail.example.net.
    nexthop: 'mail.example.net',
    destination: { domain: 'mail.example.net', mxSecure: false },
    host: { host: 'mx.example.com', addressSecure: false, tlsa: { status: 'not-looked-up', records: [] } },
  },
  {
    // 3. [relay.example.org]:587: no MX lookup, the pin matches the leaf certificate.
    nexthop: '[relay.example.org]:587',
    destination: { domain: 'relay.example.org', port: 587, mxLookup: false, mxSecure: false },
    host: { host: 'relay.example.org', addressSecure: false, tlsa: { status: 'not-looked-up', records: [] } },
  },
]

for (const d of destinations) {
  const policy = lookupPolicy(table, d.nexthop)
  const effective = resolvePolicy({ policy, destination: d.destination, host: d.host })
  const v = decide(effective, tls)
  console.log(`${d.nexthop}: ${v.status}${v.enhancedStatus ? ` ${v.enhancedStatus}` : ''}${v.tlsrpt ? ` (TLS-RPT ${v.tlsrpt})` : ''}`)
  if (v.reason) console.log(`  reason: ${v.reason}`)
  for (const step of v.trace) console.log(`  - ${step.rule}  [${step.ref}]`)
  if (d === destinations[0]) console.log(`  one log line: ${formatTrace(v.trace)}`)
}
