// The README quick start, runnable: npx tsx examples/tlsa-quickstart.ts
import { readFileSync } from 'node:fs'
import {
  checkTlsaUsability,
  createTlsaRecord,
  formatTlsaRecord,
  formatTlsaRecordMnemonic,
  parseTlsaRecord,
  SmtpTlsError,
} from 'smtp-tls-policy'

const pem = readFileSync(new URL('./certs/mx.example.com.pem', import.meta.url), 'utf8')
const mine = createTlsaRecord(pem, { usage: 3, selector: 1, matchingType: 1 })
console.log(`_25._tcp.mx.example.com. IN TLSA ${formatTlsaRecord(mine)}`)

const rrset = [
  parseTlsaRecord('_25._tcp.mx.example.com. 300 IN TLSA 3 1 1 ' + formatTlsaRecord(mine).slice(6)),
  parseTlsaRecord('PKIX-EE SPKI SHA2-256 ' + '00'.repeat(32)),
]
const { usable, unusable } = checkTlsaUsability(rrset)
console.log(`${usable.length} usable`)
for (const u of unusable) console.log(formatTlsaRecordMnemonic(u.record), '→', u.reason)

try {
  parseTlsaRecord('3 1 1 abc')
} catch (e) {
  if (e instanceof SmtpTlsError) console.log(e.code, e.message)
}
