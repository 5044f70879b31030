// Issue 6 figures: resolving MX + A + TLSA for a destination against the in-process DNS server
// (test/helpers/dns-server.ts) with a cold and a warm cache, and the cost of decoding one TLSA response
// (target ≤ 10 µs). Run: npx tsx bench/resolver.ts
import dnsPacket from 'dns-packet'
import { createResolver, type Resolver } from '../src/node/index.js'
import { parseResponse } from '../src/node/resolver/wire.js'
import { startDnsServer } from '../test/helpers/dns-server.js'
import { measure, report } from './harness.js'

const tlsa = { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.alloc(32, 0x5a) }
const rrsig = (name: string, typeCovered: string) => ({
  name,
  type: 'RRSIG',
  ttl: 300,
  data: {
    typeCovered,
    algorithm: 13,
    labels: name.split('.').length,
    originalTTL: 300,
    expiration: 1900000000,
    inception: 1700000000,
    keyTag: 12345,
    signersName: 'bench.test',
    signature: Buffer.alloc(64, 7),
  },
})

async function destination(r: Resolver, d: string): Promise<number> {
  const mx = await r.lookup(d, 'MX')
  const host = mx.records[0]!.exchange
  const a = await r.lookup(host, 'A')
  const t = await r.lookup(`_25._tcp.${host}`, 'TLSA')
  if (a.status !== 'secure' || t.status !== 'secure') throw new Error('bench server misbehaved')
  return 3
}

async function rate(
  label: string,
  r: Resolver,
  names: string[],
  concurrency: number,
): Promise<{ label: string; qps: number; dps: number }> {
  let next = 0
  let queries = 0
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < names.length) {
        const n = await destination(r, names[next++]!) // read `queries` only after the await
        queries += n
      }
    }),
  )
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  return { label, qps: queries / s, dps: names.length / s }
}

export async function benchResolver(): Promise<void> {
  const server = await startDnsServer((q) => {
    const name = q.name.toLowerCase()
    if (q.type === 'MX')
      return { ad: true, answers: [{ name, type: 'MX', data: { preference: 10, exchange: `mx.${name}` } }, rrsig(name, 'MX')] }
    if (q.type === 'A') return { ad: true, answers: [{ name, type: 'A', data: '127.0.0.1' }, rrsig(name, 'A')] }
    if (q.type === 'TLSA') return { ad: true, answers: [{ name, type: 'TLSA', data: tlsa }, rrsig(name, 'TLSA')] }
    return { rcode: 'NXDOMAIN' }
  })
  try {
    const names = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `d${i}.${tag}.bench.test`)
    console.log('MX + A + TLSA per destination, in-process DNS server on 127.0.0.1 (UDP)')
    const rows = [
      await rate('cold cache, 1 at a time', createResolver({ servers: [server.server], cache: false }), names(1000, 'c1'), 1),
      await rate('cold cache, 32 concurrent', createResolver({ servers: [server.server], cache: false }), names(3000, 'c32'), 32),
    ]
    const warm = createResolver({ servers: [server.server] })
    const warmNames = names(500, 'w')
    await rate('prime', warm, warmNames, 32)
    const before = warm.stats().udpSent
    const repeated = Array.from({ length: 40 }, () => warmNames).flat()
    rows.push(await rate('warm cache, 1 at a time', warm, repeated, 1))
    if (warm.stats().udpSent !== before) throw new Error('warm run went to the network')
    for (const r of rows)
      console.log(`  ${r.label.padEnd(28)} ${r.qps.toFixed(0).padStart(9)} queries/s  ${r.dps.toFixed(0).padStart(8)} destinations/s`)
  } finally {
    await server.close()
  }

  // one signed TLSA response as Unbound would send it (answer + RRSIG, OPT)
  const name = '_25._tcp.mx.example.com'
  const wire = dnsPacket.encode({
    type: 'response',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHENTIC_DATA,
    questions: [{ name, type: 'TLSA', class: 'IN' }],
    answers: [{ name, type: 'TLSA', ttl: 300, data: tlsa } as never, rrsig(name, 'TLSA') as never],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK } as never],
  })
  console.log(`\nDecoding one TLSA response (${wire.length} octets, TLSA + RRSIG + OPT); target ≤ 10 µs`)
  report([
    measure('parseResponse (framing checks + decode)', () => parseResponse(wire)),
    measure('dns-packet decode alone (unchecked)', () => dnsPacket.decode(wire)),
  ])
}

if (import.meta.url === `file://${process.argv[1]}`) await benchResolver()
