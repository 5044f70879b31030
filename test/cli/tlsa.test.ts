// The `tlsa` command, through the bin script's source twin and through main() in-process.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { cliFromSource } from '../helpers/cli.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { makeCert, opensslDigests, tempDir } from '../helpers/openssl.js'

const root = makeCert({ key: 'ec256', subject: '/CN=CLI Root', ca: true })
const leaf = makeCert({ key: 'rsa2048', subject: '/CN=mx.cli.test', dns: ['mx.cli.test'], issuer: root })
const tmp = tempDir()
after(tmp.done)
const chainFile = join(tmp.dir, 'chain.pem')
const derFile = join(tmp.dir, 'leaf.der')
writeFileSync(chainFile, leaf.pem + root.pem)
writeFileSync(derFile, leaf.der)
const leafD = opensslDigests(leaf.pem)
const rootD = opensslDigests(root.pem)

async function run(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
  return { status, out, err }
}

describe('smtp-tls-policy tlsa', () => {
  it('prints 3 1 1 by default, for PEM and DER files', async () => {
    for (const f of [chainFile, derFile]) {
      const r = await run('tlsa', f)
      assert.equal(r.status, 0)
      assert.equal(r.out, `3 1 1 ${leafD['1 1']}\n`)
    }
  })
  it('takes --usage/--selector/--mtype and --host/--port', async () => {
    const r = await run('tlsa', chainFile, '--usage', '3', '--selector', '0', '--mtype', '2', '--host', 'MX.cli.test', '--port', '587')
    assert.equal(r.out, `_587._tcp.mx.cli.test. IN TLSA 3 0 2 ${leafD['0 2']}\n`)
  })
  it('--all prints DANE-EE for the leaf and DANE-TA for the last certificate', async () => {
    const r = await run('tlsa', chainFile, '--all')
    assert.equal(
      r.out,
      [
        `3 0 1 ${leafD['0 1']} ; DANE-EE Cert SHA2-256`,
        `3 1 1 ${leafD['1 1']} ; DANE-EE SPKI SHA2-256`,
        `3 1 2 ${leafD['1 2']} ; DANE-EE SPKI SHA2-512`,
        `2 0 1 ${rootD['0 1']} ; DANE-TA Cert SHA2-256`,
        `2 1 1 ${rootD['1 1']} ; DANE-TA SPKI SHA2-256`,
        `2 1 2 ${rootD['1 2']} ; DANE-TA SPKI SHA2-512`,
        '',
      ].join('\n'),
    )
  })
  const usage: Array<[string, string[], RegExp]> = [
    ['no file', ['tlsa'], /exactly one certificate file/],
    ['two files', ['tlsa', chainFile, derFile], /exactly one certificate file/],
    ['selector 2', ['tlsa', chainFile, '--selector', '2'], /--selector must be 0 or 1/],
    ['mtype 3', ['tlsa', chainFile, '--mtype', '3'], /--mtype must be 0, 1 or 2/],
    ['usage not a number', ['tlsa', chainFile, '--usage', 'x'], /--usage must be a number/],
    ['unknown option', ['tlsa', chainFile, '--nope'], /Unknown option/],
    ['--all with --usage', ['tlsa', chainFile, '--all', '--usage', '2'], /cannot be combined/],
    ['unknown command', ['frobnicate'], /unknown command/],
  ]
  for (const [why, argv, re] of usage) {
    it(`exit 64 on ${why}`, async () => {
      const r = await run(...argv)
      assert.equal(r.status, 64, r.err)
      assert.match(r.err, re)
      assert.equal(r.out, '')
    })
  }
  it('a missing file is 66 (EX_NOINPUT), not a usage error', async () => {
    const r = await run('tlsa', join(tmp.dir, 'absent.pem'))
    assert.equal(r.status, 66, r.err)
    assert.match(r.err, /no such file/)
  })
  it('a file that is not a certificate is a plain-language error, not a crash', async () => {
    const f = join(tmp.dir, 'junk.pem')
    writeFileSync(f, 'not a certificate\n')
    const r = await run('tlsa', f)
    assert.equal(r.status, 65, r.err)
    assert.match(r.err, /no "-----BEGIN CERTIFICATE-----" block found \[ERR_PEM_SYNTAX\]/)
  })
  it('--help', async () => {
    const r = await run('tlsa', '--help')
    assert.equal(r.status, 0)
    assert.match(r.out, /Usage: smtp-tls-policy tlsa/)
  })
  it('the bin script runs (its source twin: never a stale dist/)', () => {
    const r = spawnSync(...cliFromSource('tlsa', chainFile), { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, `3 1 1 ${leafD['1 1']}\n`)
    const u = spawnSync(...cliFromSource(), { encoding: 'utf8' })
    assert.equal(u.status, 64)
  })
})
