// The CLI on bad input (issue 10 §3, §4): every bad file, option or value gives one line on stderr
// and the sysexits.h status that names it; options are all checked before any file or network I/O.
import assert from 'node:assert/strict'
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { exitStatusOf, main } from '../../src/cli/main.js'
import { SmtpTlsError } from '../../src/errors.js'
import { makeCert, tempDir } from '../helpers/openssl.js'

const cert = makeCert({ key: 'ec256', subject: '/CN=mx.bad.test', dns: ['mx.bad.test'] })
const tmp = tempDir()
after(tmp.done)
const file = (name: string, data: string | Uint8Array): string => {
  const p = join(tmp.dir, name)
  writeFileSync(p, data)
  return p
}
const goodPem = file('good.pem', cert.pem)
const goodDer = file('good.der', cert.der)

interface Run {
  status: number
  out: string
  err: string
}

/** main() in-process; a rejection (the old behaviour: stack trace, exit 70) is reported as status -1. */
async function run(...argv: string[]): Promise<Run> {
  let out = ''
  let err = ''
  try {
    const status = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') })
    return { status, out, err }
  } catch (e) {
    return { status: -1, out, err: err + `main() rejected: ${String(e)}\n` }
  }
}

/** One line on stderr, no stack trace (the usage hint is a second line for status 64 only). */
function assertOneLine(r: Run, status: number, re: RegExp): void {
  assert.equal(r.status, status, r.err)
  assert.match(r.err, re)
  assert.doesNotMatch(r.err, /^\s+at /m, 'no stack trace')
  const lines = r.err.trimEnd().split('\n')
  if (status === 64) {
    assert.equal(lines.length, 2, r.err)
    assert.match(lines[1]!, /--help/)
  } else assert.equal(lines.length, 1, r.err)
  assert.equal(r.out, '', 'nothing on stdout')
}

describe('tlsa: certificate files (EX_DATAERR 65, EX_NOINPUT 66)', () => {
  it('a 600 MB (sparse) file is refused by size, not read: 65', async () => {
    const huge = join(tmp.dir, 'huge.pem')
    writeFileSync(huge, '')
    truncateSync(huge, 600 * 1024 * 1024)
    assertOneLine(await run('tlsa', huge), 65, /huge\.pem is larger than 1 MiB/)
  })
  it('a stream that never ends (/dev/zero) is cut at the limit: 65', async () => {
    assertOneLine(await run('tlsa', '/dev/zero'), 65, /larger than 1 MiB/)
  })
  const bad: Array<[string, string | Uint8Array, RegExp]> = [
    ['text without a PEM block', 'not a certificate\n', /no "-----BEGIN CERTIFICATE-----" block found \[ERR_PEM_SYNTAX\]/],
    ['a PEM block with bad base64', '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n', /ERR_PEM_SYNTAX/],
    ['a PEM block that is not a certificate', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', /ERR_CERT_PARSE/],
    ['binary bytes', Uint8Array.from({ length: 512 }, (_, i) => (i * 37 + 11) & 0xff), /ERR_PEM_SYNTAX/],
    ['binary bytes that start like DER', Uint8Array.from([0x30, 0x82, 0xff, 0xff, 1, 2, 3]), /ERR_CERT_PARSE/],
    ['a truncated DER certificate', cert.der.subarray(0, cert.der.length - 10), /ERR_CERT_PARSE/],
    ['an empty file', '', /ERR_PEM_SYNTAX/],
  ]
  for (const [why, data, re] of bad) {
    it(`${why}: 65`, async () => {
      assertOneLine(await run('tlsa', file(why.replace(/\W+/g, '-') + '.pem', data)), 65, re)
    })
  }
  it('--selector 0 --mtype 0 still parses the certificate: 65', async () => {
    const f = file('junk-der', Uint8Array.from([0x30, 0x03, 1, 2, 3]))
    assertOneLine(await run('tlsa', f, '--selector', '0', '--mtype', '0'), 65, /ERR_CERT_PARSE/)
  })
  it('every certificate in the file is parsed, also those not printed: 65', async () => {
    const junk = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'
    const chain = file('chain-junk.pem', cert.pem + junk + cert.pem)
    assertOneLine(await run('tlsa', chain), 65, /ERR_CERT_PARSE/)
    assertOneLine(await run('tlsa', chain, '--all'), 65, /ERR_CERT_PARSE/)
  })
  it('/dev/null: 65', async () => {
    assertOneLine(await run('tlsa', '/dev/null'), 65, /\/dev\/null: no "-----BEGIN CERTIFICATE-----" block found/)
  })
  it('a missing file: 66 (EX_NOINPUT)', async () => {
    assertOneLine(await run('tlsa', join(tmp.dir, 'absent.pem')), 66, /cannot open certificate file .*absent\.pem: no such file/)
  })
  it('a directory: 66', async () => {
    const d = join(tmp.dir, 'a-directory')
    mkdirSync(d)
    assertOneLine(await run('tlsa', d), 66, /a-directory: is a directory/)
  })
  it('the good files still work', async () => {
    for (const f of [goodPem, goodDer]) assert.match((await run('tlsa', f)).out, /^3 1 1 [0-9a-f]{64}\n$/)
  })
})

describe('tlsa --host: a DNS name, nothing else (EX_USAGE 64)', () => {
  const hosts: Array<[string, string]> = [
    ['a newline and a second record', 'mx.example.com\nevil IN A 192.0.2.1'],
    ['a carriage return', 'mx.example.com\r'],
    ['a space', 'mx example.com'],
    ['a tab', 'mx.example.com\t'],
    ['an empty name', ''],
    ['an empty label', 'mx..example.com'],
    ['a 64-octet label', 'a'.repeat(64) + '.example'],
    ['a 254-octet name', ('a'.repeat(62) + '.').repeat(4) + 'ab'],
    ['a non-ASCII name (give the A-label)', 'bücher.example'],
    ['a label ending in a hyphen', 'mx-.example.com'],
    ['a zone-file metacharacter', 'mx.example.com;x'],
  ]
  for (const [why, host] of hosts) {
    it(why, async () => {
      assertOneLine(await run('tlsa', goodPem, '--host', host), 64, /--host must be a DNS name/)
    })
  }
  it('good names still work, with or without the root dot, any case', async () => {
    for (const h of ['MX.example.com', 'mx.example.com.', '_srv-1.example', ('a'.repeat(62) + '.').repeat(4).slice(0, 252) + 'a']) {
      const r = await run('tlsa', goodPem, '--host', h)
      assert.equal(r.status, 0, r.err)
      assert.match(r.out, /^_25\._tcp\.[a-z0-9_.-]+\. IN TLSA 3 1 1 [0-9a-f]{64}\n$/)
    }
  })
})

describe('probe: options are checked before any I/O (EX_USAGE 64)', () => {
  // A TCP listener that counts connections: a usage error must leave it untouched.
  let server: Server
  let port = 0
  let connections = 0
  before(async () => {
    server = createServer((s: Socket) => {
      connections++
      s.on('error', () => {})
      s.destroy()
    })
    server.on('error', () => {})
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as { port: number }).port
  })
  after(() => new Promise<void>((r) => server.close(() => r())))
  const dest = () => `[127.0.0.1]:${port}`
  const base = () => ['probe', dest(), '--timeout', '2', '--resolver', '127.0.0.1:9']

  const cases: Array<[string, () => string[], RegExp]> = [
    [
      'a pin that is not hex',
      () => [...base(), '--level', 'fingerprint', '--match', 'zz'],
      /--match: pin 1 is not hexadecimal octets.*\[ERR_PIN_SYNTAX\]/,
    ],
    ['a pin of the wrong length', () => [...base(), '--level', 'fingerprint', '--match', 'AB:CD'], /--match: pin 1 has 2 octets/],
    ['an EHLO name with a space', () => [...base(), '--ehlo', 'bad name'], /--ehlo: ehloName contains a character not allowed/],
    ['an EHLO name with a newline', () => [...base(), '--ehlo', 'a\r\nRCPT TO:<x>'], /--ehlo: /],
    ['a verify match name with a newline', () => [...base(), '--level', 'verify', '--match', 'mx.example\nx'], /--match must be/],
    ['a destination with a space', () => ['probe', 'bad destination', '--resolver', '127.0.0.1:9'], /invalid destination/],
    [
      'a bad --ehlo before an unreadable --policy-table',
      () => [...base(), '--ehlo', 'bad name', '--policy-table', '/nonexistent'],
      /--ehlo/,
    ],
    [
      'a bad pin before an unreadable --ca-file',
      () => [...base(), '--level', 'fingerprint', '--match', 'zz', '--ca-file', '/nonexistent'],
      /--match/,
    ],
  ]
  for (const [why, argv, re] of cases) {
    it(why, async () => {
      const before = connections
      assertOneLine(await run(...argv()), 64, re)
      assert.equal(connections, before, 'no connection was made')
    })
  }
  it('an EHLO name is refused even when DNS would fail first', async () => {
    // The resolver is a closed port: the old code reported the DNS failure (75) and never the name.
    assertOneLine(await run('probe', 'example.invalid', '--resolver', '127.0.0.1:9', '--ehlo', 'bad name'), 64, /--ehlo/)
  })
  it('--timeout bounds each DNS query too', async () => {
    const r = await run('probe', 'example.invalid', '--resolver', '127.0.0.1:9', '--timeout', '1')
    assert.equal(r.status, 75, r.out + r.err)
    assert.match(r.out, /within 1000 ms/)
  })
  it('good options still reach the network (the listener sees the connection)', async () => {
    const before = connections
    const r = await run(...base(), '--level', 'may', '--ehlo', 'client.bad.test')
    assert.equal(r.status, 75, r.out + r.err)
    assert.ok(connections > before)
  })
})

describe('probe: input files (65, 66) and a hostile policy table', () => {
  const base = ['probe', '[127.0.0.1]:9', '--timeout', '2', '--resolver', '127.0.0.1:9']
  it('a missing --policy-table or --ca-file: 66', async () => {
    assertOneLine(await run(...base, '--policy-table', join(tmp.dir, 'absent')), 66, /cannot open policy table .*absent: no such file/)
    assertOneLine(await run(...base, '--ca-file', join(tmp.dir, 'absent')), 66, /cannot open CA file/)
  })
  it('a policy table with a syntax error: 65 with the line', async () => {
    const t = file('bad.table', 'example.com verify\nexample.net nonsense\n')
    assertOneLine(await run(...base, '--policy-table', t), 65, /bad\.table.*\[ERR_POLICY_SYNTAX\]/)
  })
  it('a CA file without certificates, or with a block that is not one: 65', async () => {
    assertOneLine(await run(...base, '--ca-file', file('ca.txt', 'hello\n')), 65, /CA file .*ca\.txt.*ERR_PEM_SYNTAX/)
    const notCert = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'
    assertOneLine(await run(...base, '--ca-file', file('ca2.pem', cert.pem + notCert)), 65, /CA file .*ca2\.pem.*ERR_CERT_PARSE/)
  })
  it('a huge policy table is refused by size: 65', async () => {
    const huge = join(tmp.dir, 'huge.table')
    writeFileSync(huge, '')
    truncateSync(huge, 600 * 1024 * 1024)
    assertOneLine(await run(...base, '--policy-table', huge), 65, /huge\.table is larger than 16 MiB/)
  })
  it('a hostile table (a verify match= + "a:" x 200000): one line, no stack trace, never 70', async () => {
    const t = file('hostile.table', 'a verify match=' + 'a:'.repeat(2e5) + '\n')
    const r = await run(...base, '--policy-table', t)
    // 65 while the parser throws on it; 75 (the closed port) once the parser accepts or rejects it cleanly.
    assert.ok(r.status === 65 || r.status === 75, `status ${r.status}: ${r.err}`)
    assert.doesNotMatch(r.err, /^\s+at /m)
    assert.equal(r.err.trimEnd().split('\n').length, 1, r.err)
    if (r.status === 65) assert.match(r.err, /hostile\.table/)
  })
})

describe('exit statuses (sysexits.h)', () => {
  const multi = new Error('first line\n    at fake (stack.js:1:1)')
  const cases: Array<[string, unknown, number]> = [
    ['a temporary coded error', new SmtpTlsError('ERR_DNS_TIMEOUT', 'no answer'), 75],
    ['a permanent coded error', new SmtpTlsError('ERR_DNS_NULL_MX', 'null MX', { temporary: false }), 69],
    ['an argument parser error', Object.assign(new TypeError('Unknown option'), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }), 64],
    ['a TypeError (a bug)', new TypeError('x is not a function'), 70],
    ['a RangeError (a bug)', new RangeError('Maximum call stack size exceeded'), 70],
    ['a thrown string', 'oops', 70],
    ['a thrown null', null, 70],
    ['a multi-line message', multi, 70],
  ]
  for (const [why, e, status] of cases) {
    it(`${why}: ${status}, one line`, () => {
      const lines: string[] = []
      assert.equal(
        exitStatusOf(e, (l) => lines.push(l)),
        status,
      )
      assert.equal(lines.length, status === 64 ? 2 : 1, lines.join('\n'))
      assert.doesNotMatch(lines[0]!, /\n/)
      assert.match(lines[0]!, /^smtp-tls-policy: /)
    })
  }
})
