// CApath at `secure` (issue 14): an OpenSSL hashed directory (`openssl rehash`) loaded with
// loadTrustStore({ caPath }) and given to probe() as `ca` must give the verdict posttls-finger gives
// with the same directory (`-P`), against the same lab Postfix. Addresses: 127.0.102.x.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadTrustStore, probe } from '../../src/node/index.js'
import { makeCert, tempDir } from '../helpers/openssl.js'
import { posttlsFinger, startPostfixLab, type PostfixLab } from './postfix.js'

const ADDRESS = '127.0.102.1'
const root = makeCert({ key: 'ec256', subject: '/CN=CApath Root', ca: true })
const inter = makeCert({ key: 'ec256', subject: '/CN=CApath Intermediate', ca: true, issuer: root })
const leaf = makeCert({ key: 'ec256', subject: '/CN=mx.capath.test', dns: ['mx.capath.test'], issuer: inter })
const other = makeCert({ key: 'ec256', subject: '/CN=Unrelated Root', ca: true })

// directory → the CA files in it; whether a chain leaf + intermediate then verifies
const cases: [name: string, files: string[], verified: boolean][] = [
  ['the root', [root.pem], true],
  ['the root and an unrelated root', [other.pem, root.pem], true],
  ['only an unrelated root', [other.pem], false],
  ['the intermediate alone (no root)', [inter.pem], false],
]

describe('CApath: probe() with loadTrustStore({ caPath }) and posttls-finger -P agree', () => {
  const { dir, done } = tempDir()
  let lab: PostfixLab
  before(async () => {
    chmodSync(dir, 0o755)
    cases.forEach(([, files], i) => {
      const d = join(dir, `capath${i}`)
      mkdirSync(d, { mode: 0o755 })
      files.forEach((pem, j) => writeFileSync(join(d, `ca${j}.pem`), pem, { mode: 0o644 }))
      const r = spawnSync('openssl', ['rehash', d], { encoding: 'utf8' })
      assert.equal(r.status, 0, r.stderr)
    })
    lab = await startPostfixLab([{ address: ADDRESS, certPem: leaf.pem + inter.pem, keyPem: leaf.keyPem }])
  })
  after(async () => {
    await lab?.stop()
    done()
  })
  for (const [i, [name, , verified]] of cases.entries()) {
    it(`${name}: ${verified ? 'verified' : 'not verified'}`, async () => {
      const capath = join(dir, `capath${i}`)
      const f = posttlsFinger(`[${ADDRESS}]`, {
        configDir: lab.configDir,
        level: 'secure',
        args: ['-P', capath],
        match: ['mx.capath.test'],
      })
      const theirs = f.trust === 'Verified'
      assert.equal(theirs, verified, `posttls-finger gave another verdict than the case expects:\n${f.output}`)
      const store = await loadTrustStore({ caPath: capath })
      const r = await probe(`[${ADDRESS}]`, {
        level: 'secure',
        policy: { secureMatch: ['mx.capath.test'] },
        ca: store.caPem,
        ehloName: 'client.capath.test',
        timeoutMs: 10_000,
      })
      assert.equal(r.outcome.status === 'verified', theirs, `posttls-finger: ${f.trust}\nprobe: ${JSON.stringify(r.outcome)}`)
    })
  }
})
