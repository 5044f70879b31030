// readCertificateFile: bounded (issue 10 §4: a 600 MB file died with "Cannot create a string longer
// than …"), coded errors for every bad file.
import assert from 'node:assert/strict'
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { readCertificateFile } from '../../src/node/files.js'
import { SmtpTlsError, type ErrorCode } from '../../src/errors.js'
import { makeCert, tempDir } from '../helpers/openssl.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=files.test' })
const tmp = tempDir()
after(tmp.done)

async function assertCoded(fn: () => Promise<unknown>, code: ErrorCode, re?: RegExp): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof SmtpTlsError, `expected SmtpTlsError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (re) assert.match(e.message, re)
    return true
  })
}

describe('readCertificateFile', () => {
  it('reads PEM chains and DER', async () => {
    const pem = join(tmp.dir, 'chain.pem')
    const der = join(tmp.dir, 'leaf.der')
    writeFileSync(pem, cert.pem + cert.pem)
    writeFileSync(der, cert.der)
    assert.equal((await readCertificateFile(pem)).length, 2)
    assert.deepEqual(await readCertificateFile(der), [new Uint8Array(cert.der)])
  })
  it('refuses a 600 MB (sparse) file by its size: ERR_INVALID_ARGUMENT', async () => {
    const huge = join(tmp.dir, 'huge.pem')
    writeFileSync(huge, '')
    truncateSync(huge, 600 * 1024 * 1024)
    await assertCoded(() => readCertificateFile(huge), 'ERR_INVALID_ARGUMENT', /larger than 1048576 bytes/)
  })
  it('cuts an endless device at the limit', async () => {
    await assertCoded(() => readCertificateFile('/dev/zero'), 'ERR_INVALID_ARGUMENT', /larger than/)
  })
  it('a missing file, a directory, a non-string path: ERR_INVALID_ARGUMENT', async () => {
    await assertCoded(() => readCertificateFile(join(tmp.dir, 'absent')), 'ERR_INVALID_ARGUMENT', /no such file/)
    const d = join(tmp.dir, 'dir')
    mkdirSync(d)
    await assertCoded(() => readCertificateFile(d), 'ERR_INVALID_ARGUMENT', /is a directory/)
    await assertCoded(() => readCertificateFile(42 as unknown as string), 'ERR_INVALID_ARGUMENT')
  })
  it('/dev/null and text: ERR_PEM_SYNTAX', async () => {
    await assertCoded(() => readCertificateFile('/dev/null'), 'ERR_PEM_SYNTAX')
  })
})
