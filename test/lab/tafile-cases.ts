// The nine trust-anchor cases both tafile lab tests run (tafile-postfix: OpenSSL's DANE as Postfix
// loads a tafile; tafile-smtp: Postfix's own smtp(8) and probe()): one chain, leaf + intermediate
// under a root, and each case's tafile, match name and the verdict Postfix gives.
import { makeCert, openssl } from '../helpers/openssl.js'

export const root = makeCert({ subject: '/CN=TA Root', ca: true })
export const inter = makeCert({ subject: '/CN=TA Intermediate', ca: true, issuer: root })
export const leaf = makeCert({ subject: '/CN=mx.ta.test', dns: ['mx.ta.test'], issuer: inter })
const other = makeCert({ subject: '/CN=Other Root', ca: true })
const pub = (pem: string) => openssl(['x509', '-pubkey', '-noout'], pem).toString('latin1')

export const TAFILE_CASES: [name: string, tafile: string, match: string, verified: boolean][] = [
  ['the root (not sent) as certificate', root.pem, 'mx.ta.test', true],
  ['the root public key', pub(root.pem), 'mx.ta.test', true],
  ['the intermediate', inter.pem, 'mx.ta.test', true],
  ['the leaf itself', leaf.pem, 'mx.ta.test', true],
  ['the leaf public key', pub(leaf.pem), 'mx.ta.test', true],
  ['an unrelated root', other.pem, 'mx.ta.test', false],
  ['the intermediate, wrong name', inter.pem, 'other.ta.test', false],
  ['the leaf itself, wrong name', leaf.pem, 'other.ta.test', false],
  ['the root and an unrelated root', other.pem + root.pem, 'mx.ta.test', true],
]
