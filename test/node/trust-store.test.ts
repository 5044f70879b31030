// loadTrustStore: CAfile bundles, OpenSSL hashed directories (openssl rehash), tafile anchors, and
// every defect as ERR_TRUST_STORE naming the file and the block.
import assert from 'node:assert/strict'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { trustAnchorTlsaRecords } from '../../src/index.js'
import { loadTrustStore } from '../../src/node/index.js'
import { SmtpTlsError } from '../../src/errors.js'
import { makeCert, openssl, tempDir } from '../helpers/openssl.js'

const a = makeCert({ subject: '/CN=CA A', ca: true })
const b = makeCert({ subject: '/CN=CA B', ca: true })
const pubB = openssl(['x509', '-pubkey', '-noout'], b.pem).toString('latin1')
const { dir, done } = tempDir()
after(done)
let n = 0
const file = (text: string) => {
  const p = join(dir, `f${n++}.pem`)
  writeFileSync(p, text)
  return p
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<SmtpTlsError> {
  try {
    await p
  } catch (e) {
    assert.ok(e instanceof SmtpTlsError, String(e))
    assert.equal(e.code, 'ERR_TRUST_STORE', e.message)
    assert.match(e.message, re)
    return e
  }
  assert.fail('expected ERR_TRUST_STORE')
}

const garbage = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' // valid base64, not a certificate

describe('loadTrustStore: CAfile', () => {
  it('a bundle with text between blocks; sources name the blocks', async () => {
    const f = file(`subject=CN = CA A\n${a.pem}\n# comment\n${b.pem}`)
    const s = await loadTrustStore({ caFile: f })
    assert.deepEqual(s.ca, [a.der, b.der])
    assert.deepEqual(s.caSources, [
      { file: f, block: 1 },
      { file: f, block: 2 },
    ])
    assert.equal(s.caPem.length, 2)
    assert.deepEqual(s.anchors, [])
  })
  it('other block types are reported, not silently dropped', async () => {
    const s = await loadTrustStore({ caFile: file(a.pem + a.keyPem) })
    assert.equal(s.ca.length, 1)
    assert.match(s.warnings.join('\n'), /block 2: "PRIVATE KEY" ignored/)
  })
  it('a missing file, a bad block, an empty file, a file over the limit', async () => {
    await rejects(loadTrustStore({ caFile: join(dir, 'nope.pem') }), /CAfile .*nope\.pem: no such file/)
    await rejects(loadTrustStore({ caFile: file(a.pem + garbage) }), /block 2: not a valid certificate/)
    await rejects(
      loadTrustStore({ caFile: file(a.pem + '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n') }),
      /PEM block 2 .*base64/,
    )
    await rejects(
      loadTrustStore({ caFile: file(a.pem.replace('-----END CERTIFICATE-----', '')) }),
      /PEM block 1 .*no "-----END CERTIFICATE-----"/,
    )
    await rejects(loadTrustStore({ caFile: file('nothing here\n') }), /no certificate found/)
    await rejects(loadTrustStore({ caFile: file(a.pem), maxFileBytes: 100 }), /limit/)
  })
  it('bad options are ERR_INVALID_ARGUMENT', async () => {
    for (const o of [null, { caFile: '' }, { taFile: [1] }, { maxFileBytes: 0 }, { followLinksOutside: 'yes' }]) {
      await assert.rejects(loadTrustStore(o as never), (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_INVALID_ARGUMENT')
    }
  })
})

describe('loadTrustStore: CApath (OpenSSL hashed directory)', () => {
  it('reads the HHHHHHHH.N links openssl rehash made; reports the other files', async () => {
    const d = join(dir, 'capath')
    mkdirSync(d)
    writeFileSync(join(d, 'a.pem'), a.pem)
    writeFileSync(join(d, 'b.pem'), b.pem)
    openssl(['rehash', d])
    const s = await loadTrustStore({ caPath: d })
    assert.deepEqual(
      s.ca.map((x) => Buffer.from(x).toString('hex')).sort(),
      [a.der, b.der].map((x) => Buffer.from(x).toString('hex')).sort(),
    )
    assert.ok(s.caSources.every((x) => /\/[0-9a-f]{8}\.0$/.test(x.file)))
    assert.match(s.warnings.join('\n'), /a\.pem ignored/)
  })
  it('a link out of the directory is refused unless followLinksOutside; a dangling link is an error', async () => {
    const d = join(dir, 'capath-out')
    mkdirSync(d)
    symlinkSync(file(a.pem), join(d, '01234567.0'))
    await rejects(loadTrustStore({ caPath: d }), /links outside the directory/)
    assert.equal((await loadTrustStore({ caPath: d, followLinksOutside: true })).ca.length, 1)
    symlinkSync(join(dir, 'missing.pem'), join(d, '89abcdef.0'))
    await rejects(loadTrustStore({ caPath: d, followLinksOutside: true }), /dangling/)
    await rejects(loadTrustStore({ caPath: join(dir, 'no-dir') }), /no such directory/)
  })
  it('a bad block in a hashed file names the file and block', async () => {
    const d = join(dir, 'capath-bad')
    mkdirSync(d)
    writeFileSync(join(d, 'fedcba98.0'), garbage)
    await rejects(loadTrustStore({ caPath: d }), /fedcba98\.0 block 1: not a valid certificate/)
  })
})

describe('loadTrustStore: tafile', () => {
  it('CERTIFICATE and PUBLIC KEY blocks become anchors, in order, from several files', async () => {
    const s = await loadTrustStore({ taFile: [file(a.pem + pubB), file(b.pem)] })
    assert.deepEqual(
      s.anchors.map((x) => x.type),
      ['certificate', 'publicKey', 'certificate'],
    )
    assert.deepEqual(s.anchors[0]!.der, a.der)
    assert.equal(trustAnchorTlsaRecords(s.anchors).length, 6)
    assert.equal(s.ca.length, 0)
  })
  it('a bad public key, an empty tafile, a missing tafile', async () => {
    await rejects(
      loadTrustStore({ taFile: file(a.pem + '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n') }),
      /block 2: not a valid SubjectPublicKeyInfo/,
    )
    await rejects(loadTrustStore({ taFile: file(a.keyPem) }), /no CERTIFICATE or PUBLIC KEY block/)
    await rejects(loadTrustStore({ taFile: join(dir, 'none.pem') }), /tafile .*none\.pem: no such file/)
  })
})
