// Issue 10 §2 figure: the name check of every verify/secure/DANE-TA verdict. matchCertificateName's
// comparison (three presented names, three references) and normalizeDnsName on an ASCII and an IDN
// reference, against the WHATWG URL host parser the library used before (the baseline is that
// parser alone, `new URL('http://' + name + '/').hostname`, without any of the checks).
import { matchPresentedNames, normalizeDnsName } from '../src/x509/names.js'
import { measure, ratio, report } from './harness.js'

export function benchNames(): { asciiVsUrl: number; idnVsUrl: number } {
  const presented = ['mx1.example.com', '*.mail.example.com', 'smtp.example.net']
  const references = ['mx9.example.org', 'example.com', '.example.com']
  const url = (n: string) => new URL(`http://${n}/`).hostname
  console.log('name checks (x509/names.ts)')
  const match = measure('matchPresentedNames, 3 presented x 3 references, no match', () => matchPresentedNames(presented, references))
  const ascii = measure('normalizeDnsName, ASCII mx1.example.com', () => normalizeDnsName('mx1.example.com'))
  const asciiUrl = measure('WHATWG URL host parser, mx1.example.com', () => url('mx1.example.com'))
  const idn = measure('normalizeDnsName, IDN mx.bücher.example', () => normalizeDnsName('mx.bücher.example'))
  const idnUrl = measure('WHATWG URL host parser, mx.bücher.example', () => url('mx.bücher.example'))
  report([match, ascii, asciiUrl, idn, idnUrl])
  const a = ratio('normalizeDnsName / URL parser, ASCII', ascii, asciiUrl)
  const b = ratio('normalizeDnsName / URL parser, IDN', idn, idnUrl)
  return { asciiVsUrl: a, idnVsUrl: b }
}

if (import.meta.url === `file://${process.argv[1]}`) benchNames()
