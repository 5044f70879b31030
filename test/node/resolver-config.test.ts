// Resolver configuration: server strings, resolv.conf(5), and which servers are trusted for AD.
// No query is sent here (config() only reads the configuration).
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createResolver, isLoopbackAddress, parseDnsServer, parseResolvConf, SmtpTlsError } from '../../src/node/index.js'

describe('parseDnsServer', () => {
  const good: Array<[string, [string, number, number]]> = [
    ['127.0.0.1', ['127.0.0.1', 53, 4]],
    ['127.0.0.1:5353', ['127.0.0.1', 5353, 4]],
    ['::1', ['::1', 53, 6]],
    ['[::1]:53', ['::1', 53, 6]],
    ['[::1]', ['::1', 53, 6]],
    [' 127.0.0.2 ', ['127.0.0.2', 53, 4]],
  ]
  for (const [text, want] of good) {
    it(`parses ${JSON.stringify(text)}`, () => {
      const s = parseDnsServer(text)
      assert.deepEqual([s.address, s.port, s.family], want)
    })
  }
  const bad: Array<[string, string]> = [
    ['a host name (no DNS to find the DNS)', 'localhost'],
    ['port out of range', '127.0.0.1:65536'],
    ['port 0', '[::1]:0'],
    ['IPv6 with a port but no brackets is ambiguous', '::1:53:x'],
    ['empty', ''],
    ['brackets around IPv4 garbage', '[127.0.0.1.1]:53'],
  ]
  for (const [why, text] of bad) {
    it(`refuses ${why}`, () =>
      assert.throws(
        () => parseDnsServer(text),
        (e: unknown) => e instanceof SmtpTlsError && e.code === 'ERR_DNS_CONFIG',
      ))
  }
})

describe('isLoopbackAddress (default AD trust, RFC 4035 §4.9.3)', () => {
  const rows: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.3.4', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['192.168.1.1', false],
    ['::2', false],
    ['fe80::1', false],
    ['::ffff:10.0.0.1', false],
    ['1.2.3.127', false],
  ]
  for (const [a, want] of rows) it(`${a} → ${want}`, () => assert.equal(isLoopbackAddress(a), want))
})

describe('parseResolvConf', () => {
  it('reads nameservers in order, at most three (glibc MAXNS)', () => {
    const c = parseResolvConf('nameserver 127.0.0.1\nnameserver ::1\nnameserver 127.0.0.2\nnameserver 127.0.0.3\n')
    assert.deepEqual(
      c.servers.map((s) => s.address),
      ['127.0.0.1', '::1', '127.0.0.2'],
    )
  })
  it('reads options timeout: and attempts:, capped like glibc', () => {
    assert.deepEqual(
      [parseResolvConf('options timeout:2 attempts:3 rotate').timeoutMs, parseResolvConf('options timeout:2 attempts:3').attempts],
      [2000, 3],
    )
    assert.deepEqual([parseResolvConf('options timeout:99').timeoutMs, parseResolvConf('options attempts:9').attempts], [30000, 5])
  })
  it('defaults: 127.0.0.1, 5 s, 2 attempts', () => {
    const c = parseResolvConf('# nothing\nsearch example.com\n')
    assert.deepEqual([c.servers.map((s) => s.address), c.timeoutMs, c.attempts], [['127.0.0.1'], 5000, 2])
  })
  it('ignores comments, bad addresses and drops IPv6 zone indexes', () => {
    const c = parseResolvConf('; comment\nnameserver not-an-ip\nnameserver fe80::1%eth0 # x\n')
    assert.deepEqual(
      c.servers.map((s) => [s.address, s.family]),
      [['fe80::1', 6]],
    )
  })
})

describe('createResolver with resolv.conf', () => {
  it('reads the file on first use; trusts only its loopback servers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stp-resolvconf-'))
    try {
      const path = join(dir, 'resolv.conf')
      writeFileSync(path, 'nameserver 127.0.0.53\nnameserver 192.0.2.53\noptions timeout:1 attempts:4\n')
      const c = await createResolver({ resolvConf: path }).config()
      assert.deepEqual([c.timeoutMs, c.attempts], [1000, 4])
      assert.deepEqual(c.trusted, { '127.0.0.53:53': true, '192.0.2.53:53': false })
      const forced = await createResolver({ resolvConf: path, trustAd: true, timeoutMs: 50 }).config()
      assert.deepEqual([forced.timeoutMs, forced.trusted['192.0.2.53:53']], [50, true])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  it('a missing resolv.conf means 127.0.0.1, as in glibc', async () => {
    const c = await createResolver({ resolvConf: '/nonexistent/resolv.conf' }).config()
    assert.deepEqual(
      c.servers.map((s) => `${s.address}:${s.port}`),
      ['127.0.0.1:53'],
    )
  })
})
