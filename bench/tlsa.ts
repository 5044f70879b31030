// Issue 2 figure: the DANE-EE 3 1 1 primitive (slice the SPKI + SHA-256) against node:crypto's
// X509Certificate + publicKey.export(), and against one SHA-256 of the whole certificate.
// Target: the primitive costs at most 2x one createHash('sha256') of the certificate.
import { createHash, X509Certificate } from 'node:crypto'
import { applyMatchingType, selectorInput } from '../src/tlsa/match.js'
import { makeCert } from '../test/helpers/openssl.js'
import { measure, ratio, report } from './harness.js'

export function benchTlsa(): { primitiveVsHash: number; x509VsPrimitive: number } {
  const root = makeCert({ key: 'rsa2048', subject: '/CN=Bench Root', ca: true })
  const leaf = makeCert({ key: 'rsa2048', subject: '/CN=mx.bench.test', dns: ['mx.bench.test', 'mail.bench.test'], issuer: root })
  const der = leaf.der
  console.log(`TLSA primitive, RSA-2048 leaf of ${der.length} bytes`)
  const primitive = measure('slice SPKI + sha256 (this library)', () => applyMatchingType(selectorInput(der, 1), 1))
  const hashOnce = measure("createHash('sha256') of the certificate", () => createHash('sha256').update(der).digest())
  const x509 = measure('X509Certificate + publicKey.export + sha256', () =>
    createHash('sha256')
      .update(new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }))
      .digest(),
  )
  report([primitive, hashOnce, x509])
  const a = ratio('primitive / one certificate hash (target ≤ 2)', primitive, hashOnce)
  const b = ratio('X509Certificate path / primitive', x509, primitive)
  return { primitiveVsHash: a, x509VsPrimitive: b }
}

if (import.meta.url === `file://${process.argv[1]}`) benchTlsa()
