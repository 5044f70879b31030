// Issue 10 §3 figure: every parser's time per input byte from 1 KB to 1 MB (or the largest input the
// format allows). A parser is linear when its time per byte stays flat; the target is at most 3x between
// the largest and the smallest per-byte time of one parser. Run: npx tsx bench/scaling.ts [name-part]
import { generateKeyPairSync } from 'node:crypto'
import dnsPacket from 'dns-packet'
import {
  certificateDnsNames,
  certificateFingerprint,
  createTlsaRecord,
  decodeTlsaRdata,
  derToPem,
  parseEhloCapabilities,
  parsePins,
  parsePolicyTable,
  parseReply,
  parseTlsaRecord,
  pemToDerAll,
  ReplyParser,
  StartTlsClient,
} from '../src/index.js'
import { parseResolvConf } from '../src/node/index.js'
import { parseResponse } from '../src/node/resolver/wire.js'
import { readExtensions } from '../src/x509/extensions.js'
import { sliceCertificate } from '../src/x509/der.js'

const KB = 1024
const SIZES = (process.env.SCALING_SIZES ?? '1,4,16,64,256,1024').split(',').map((k) => Number(k) * KB)

interface Case<T> {
  name: string
  /** An input of about `bytes` bytes, and its exact size. */
  make: (bytes: number) => { input: T; bytes: number }
  run: (input: T) => unknown
  /** The format's own bound on the input size (DNS messages, TLSA RDATA). */
  maxBytes?: number
}

/**
 * Time one call, in ns: the fastest of several rounds (each at least ms/5 and 2 calls), after a warm-up.
 * The minimum is what the code costs; the other rounds also carry other processes' load on this machine.
 */
function timePerCall(fn: () => unknown, ms: number): number {
  let sink: unknown
  const since = (t: bigint): number => Number(process.hrtime.bigint() - t)
  const w = process.hrtime.bigint()
  for (let n = 0; n < 2 || since(w) < (ms / 4) * 1e6; n++) sink = fn()
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    let n = 0
    const t0 = process.hrtime.bigint()
    let dt = 0
    while (n < 2 || dt < (ms / 5) * 1e6) {
      sink = fn()
      n++
      dt = since(t0)
    }
    best = Math.min(best, dt / n)
  }
  if (sink === Symbol.for('never')) console.log(sink)
  return best
}

const te = new TextEncoder()
const repeatTo = (unit: (i: number) => string, bytes: number, head = '', tail = ''): string => {
  const parts: string[] = [head]
  let n = head.length + tail.length
  for (let i = 0; n < bytes; i++) {
    const u = unit(i)
    parts.push(u)
    n += u.length
  }
  parts.push(tail)
  return parts.join('')
}
const sized = (s: string): { input: string; bytes: number } => ({ input: s, bytes: s.length })
const hexOf = (n: number): string => Buffer.alloc(n, 0xa5).toString('hex')

// DER by hand: a certificate with one large subjectAltName, so that slicing and extension parsing
// see a big input (no signature check is involved).
function tlv(tag: number, body: Uint8Array): Uint8Array {
  const n = body.length
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]
  return Buffer.concat([Uint8Array.of(tag, ...len), body])
}
const seq = (...parts: Uint8Array[]): Uint8Array => tlv(0x30, Buffer.concat(parts))
const oid = (hex: string): Uint8Array => tlv(0x06, Buffer.from(hex, 'hex'))
const spki = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }))
const name = (cn: string): Uint8Array => seq(tlv(0x31, seq(oid('550403'), tlv(0x0c, te.encode(cn)))))
const ecdsaSha256 = seq(oid('2a8648ce3d040302'))
function bigCertificate(bytes: number): Uint8Array {
  const names: Uint8Array[] = []
  let n = 0
  for (let i = 0; n < bytes - 300; i++) {
    const gn = tlv(0x82, te.encode(`host${i}.mx.scaling.example`))
    names.push(gn)
    n += gn.length
  }
  const san = seq(oid('551d11'), tlv(0x04, tlv(0x30, Buffer.concat(names))))
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Uint8Array.of(2))),
    tlv(0x02, Uint8Array.of(1)),
    ecdsaSha256,
    name('Scaling CA'),
    seq(tlv(0x17, te.encode('250101000000Z')), tlv(0x17, te.encode('350101000000Z'))),
    name('mx.scaling.example'),
    spki,
    tlv(0xa3, seq(san)),
  )
  return seq(tbs, ecdsaSha256, tlv(0x03, Uint8Array.of(0, ...Buffer.alloc(64, 1))))
}
const certBytes = (bytes: number): { input: Uint8Array; bytes: number } => {
  const der = bigCertificate(bytes)
  return { input: der, bytes: der.length }
}

const ehloLines = (bytes: number): string[] => {
  const lines = ['mx.scaling.example Hello']
  let n = lines[0]!.length
  for (let i = 0; n < bytes; i++) {
    const l = i % 3 === 0 ? `AUTH M${i} PLAIN` : i % 3 === 1 ? `X-EXT${i} param` : 'PIPELINING'
    lines.push(l)
    n += l.length + 2
  }
  return lines
}
const ehloReplyText = (bytes: number): string =>
  ehloLines(bytes)
    .map((l, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${l}\r\n`)
    .join('')

function starttls(reply: Uint8Array, chunk: number): unknown {
  const c = new StartTlsClient({ ehloName: 'client.example', requireTls: false, servername: 'mx', maxLines: 1 << 20 })
  c.handle({ type: 'data', bytes: GREETING })
  let last: unknown
  for (let i = 0; i < reply.length; i += chunk) last = c.handle({ type: 'data', bytes: reply.subarray(i, i + chunk) })
  return last
}
const GREETING = te.encode('220 mx.scaling.example ESMTP\r\n')

const tlsaResponse = (bytes: number): { input: Uint8Array; bytes: number } => {
  const answers = []
  for (let n = 0; n < bytes - 200; n += 47) {
    answers.push({
      name: '_25._tcp.mx.example',
      type: 'TLSA' as const,
      ttl: 300,
      data: { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, answers.length & 0xff) },
    })
  }
  const buf = new Uint8Array(
    dnsPacket.encode({
      type: 'response',
      id: 1,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [{ name: '_25._tcp.mx.example', type: 'TLSA' }],
      answers,
    }),
  )
  return { input: buf, bytes: buf.length }
}

const pemBundle = (bytes: number): string => {
  const one = derToPem(bigCertificate(600))
  return repeatTo(() => one, bytes)
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each case has its own input type
const CASES: Case<any>[] = [
  {
    name: 'parseTlsaRecord (hex)',
    make: (b) => sized(`3 1 1 ${hexOf(Math.floor((b - 6) / 2))}`),
    run: parseTlsaRecord,
    maxBytes: 2 * 65532 + 6,
  },
  {
    name: 'parseTlsaRecord (zone line, spaced hex)',
    make: (b) => sized(`_25._tcp.mx.example. 300 IN TLSA 3 1 1 ${repeatTo(() => 'a5a5a5a5 ', b - 40)}`),
    run: parseTlsaRecord,
    maxBytes: (65532 / 4) * 9,
  },
  {
    name: 'decodeTlsaRdata',
    make: (b) => ({ input: Uint8Array.from(Buffer.concat([Uint8Array.of(3, 1, 0), Buffer.alloc(b - 3, 7)])), bytes: b }),
    run: decodeTlsaRdata,
    maxBytes: 65535,
  },
  {
    name: 'parsePolicyTable (entries)',
    make: (b) => sized(repeatTo((i) => `host${i}.example.com secure match=nexthop:dot-nexthop protocols=>=TLSv1.2\n`, b)),
    run: (t: string) => parsePolicyTable(t),
  },
  {
    name: 'parsePolicyTable (continuation lines)',
    make: (b) => sized(repeatTo((i) => ` match=h${i}.example\n`, b, 'a verify\n')),
    run: (t: string) => parsePolicyTable(t),
  },
  {
    name: 'parsePolicyTable (continuations at none)',
    make: (b) => sized(repeatTo(() => ' x\n', b, 'a none\n')),
    run: (t: string) => parsePolicyTable(t),
  },
  {
    name: 'parsePolicyTable (long match= list)',
    make: (b) => sized(repeatTo(() => 'a:', b, 'a verify match=')),
    run: (t: string) => parsePolicyTable(t),
  },
  {
    name: 'parsePolicyTable (long attribute list)',
    make: (b) => sized(repeatTo(() => 'x ', b, 'a none ')),
    run: (t: string) => parsePolicyTable(t),
  },
  { name: 'parsePins', make: (b) => sized(repeatTo(() => `${hexOf(32)}|`, b).slice(0, -1)), run: (p: string) => parsePins(p) },
  { name: 'parseReply (multi-line)', make: (b) => sized(ehloReplyText(b)), run: (t: string) => parseReply(t, { maxLines: 1 << 20 }) },
  {
    name: 'ReplyParser (4 KB chunks)',
    make: (b) => ({ input: te.encode(ehloReplyText(b)), bytes: b }),
    run: (bytes: Uint8Array) => {
      const p = new ReplyParser({ maxLines: 1 << 20 })
      let r: unknown
      for (let i = 0; i < bytes.length; i += 4096) {
        p.push(bytes.subarray(i, i + 4096))
        r = p.next() ?? r
      }
      return r
    },
  },
  {
    name: 'ReplyParser (one long line)',
    make: (b) => sized(`250 ${'x'.repeat(b - 6)}\r\n`),
    run: (t: string) => parseReply(t, { maxLineLength: 1 << 24 }),
  },
  {
    name: 'parseEhloCapabilities',
    make: (b) => {
      const lines = ehloLines(b)
      return { input: lines, bytes: lines.reduce((n, l) => n + l.length + 2, 0) }
    },
    run: parseEhloCapabilities,
  },
  {
    name: 'StartTlsClient EHLO (one chunk)',
    make: (b) => ({ input: te.encode(ehloReplyText(b)), bytes: b }),
    run: (r: Uint8Array) => starttls(r, r.length),
  },
  {
    name: 'StartTlsClient EHLO (1 KB chunks)',
    make: (b) => ({ input: te.encode(ehloReplyText(b)), bytes: b }),
    run: (r: Uint8Array) => starttls(r, 1024),
  },
  { name: 'sliceCertificate (DER)', make: certBytes, run: sliceCertificate },
  { name: 'sliceCertificate + readExtensions', make: certBytes, run: (d: Uint8Array) => readExtensions(d, sliceCertificate(d)) },
  { name: 'certificateDnsNames', make: certBytes, run: certificateDnsNames },
  {
    name: 'createTlsaRecord 3 1 1 (DER)',
    make: certBytes,
    run: (d: Uint8Array) => createTlsaRecord(d, { usage: 3, selector: 1, matchingType: 1 }),
  },
  {
    name: 'certificateFingerprint (PEM)',
    make: (b) => sized(derToPem(bigCertificate((b * 3) / 4))),
    run: (p: string) => certificateFingerprint(p),
  },
  { name: 'pemToDerAll (bundle)', make: (b) => sized(pemBundle(b)), run: pemToDerAll },
  { name: 'derToPem', make: certBytes, run: derToPem },
  { name: 'resolver parseResponse (TLSA)', make: tlsaResponse, run: parseResponse, maxBytes: 65535 },
  {
    name: 'parseResolvConf',
    make: (b) => sized(repeatTo((i) => (i % 2 ? `nameserver 10.0.${(i >> 8) & 255}.${i & 255}\n` : `# comment ${i}\n`), b)),
    run: parseResolvConf,
  },
]

function main(): void {
  const only = process.argv.slice(2)
  const ms = Number(process.env.SCALING_MS ?? 150)
  console.log(`Parser scaling: ns per input byte from 1 KB to 1 MB (or the format's limit); target: growth ≤ 3x`)
  const rows: string[][] = [
    ['parser', ...SIZES.map((s) => (s >= 1 << 20 ? `${s >> 20} MB` : `${s >> 10} KB`)), 'last/1st', 'max/min', 'growth', ''],
  ]
  let worst = 0
  for (const c of CASES) {
    if (only.length > 0 && !only.some((o) => c.name.includes(o))) continue
    const perByte: (number | undefined)[] = []
    for (const size of SIZES) {
      if (c.maxBytes !== undefined && size > c.maxBytes) {
        perByte.push(undefined)
        continue
      }
      const { input, bytes } = c.make(size)
      perByte.push(timePerCall(() => c.run(input), ms) / bytes)
    }
    const got = perByte.filter((x): x is number => x !== undefined)
    const maxMin = Math.max(...got) / Math.min(...got)
    const lastVsFirst = got[got.length - 1]! / got[0]!
    // Growth: how much the per-byte time rose above the best seen at any smaller size. Equal to
    // max/min for a parser that slows down; near 1 for one whose per-call cost does not depend on
    // the size (slicing a certificate skips the extension bytes), where max/min only shows fixed costs.
    let growth = 1
    let best = Infinity
    for (const x of got) {
      best = Math.min(best, x)
      growth = Math.max(growth, x / best)
    }
    worst = Math.max(worst, growth)
    rows.push([
      c.name,
      ...perByte.map((x) => (x === undefined ? '-' : x.toFixed(2))),
      lastVsFirst.toFixed(2) + 'x',
      maxMin.toFixed(2) + 'x',
      growth.toFixed(2) + 'x',
      growth <= 3 ? 'ok' : 'OVER',
    ])
    printRow(rows[0]!, rows[rows.length - 1]!, rows.length === 2)
  }
  console.log(`  worst growth of the per-byte time: ${worst.toFixed(2)}x (target ≤ 3x)`)
}

const WIDTHS = [40, 8, 8, 8, 8, 8, 8, 9, 9, 8, 4]
function printRow(head: string[], row: string[], first: boolean): void {
  const fmt = (r: string[]): string => r.map((x, i) => (i === 0 ? x.padEnd(WIDTHS[i]!) : x.padStart(WIDTHS[i]!))).join(' ')
  if (first) console.log('  ' + fmt(head) + '\n  ' + '-'.repeat(fmt(head).length))
  console.log('  ' + fmt(row))
}

main()
