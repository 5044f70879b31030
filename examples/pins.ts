// Certificate pins for Postfix's "fingerprint" level, runnable: npm run build && npx tsx examples/pins.ts
import { readFileSync } from 'node:fs'
import { certificateFingerprint, matchPins, parsePins, pemToDerAll, SmtpTlsError } from 'smtp-tls-policy'

const [leaf, issuing] = pemToDerAll(readFileSync(new URL('./certs/dane/chain.pem', import.meta.url), 'utf8')) as [Uint8Array, Uint8Array]

// What to put in smtp_tls_policy_maps: "[mx.example.com]:25 fingerprint match=AB:CD:…"
const certPin = certificateFingerprint(leaf) // SHA-256 of the certificate (Postfix ≥ 3.6 default digest)
const keyPin = certificateFingerprint(leaf, { of: 'publicKey' }) // survives a renewal with the same key
console.log('certificate pin:', certPin)
console.log('public key pin: ', keyPin)

// Pins may be given with or without colons, in any case, several separated by "|" or as a list.
console.log(matchPins(leaf, `${certificateFingerprint(issuing)}|${keyPin.replace(/:/g, '').toLowerCase()}`))
console.log(matchPins(leaf, [certificateFingerprint(issuing)]))
console.log(matchPins(leaf, certificateFingerprint(leaf, { digest: 'sha512' }), { digest: 'sha512' }))

try {
  parsePins('AB:CD') // one octet is not a SHA-256 digest
} catch (e) {
  if (e instanceof SmtpTlsError) console.log(e.code, e.message)
}
