// Issue 15 figures: the socketmap server's per-request work. Decoding one request netstring, the pure
// answer for a two-MX DANE destination, and a cached lookup round trip over loopback TCP (one
// connection, one request at a time, as Postfix's smtp(8) asks), with the wire work as a ratio of it.
import net from 'node:net'
import {
  createMemoryStore,
  createNetstringDecoder,
  encodeNetstring,
  parseSocketmapKey,
  parseTlsaRecord,
  socketmapAnswer,
  SOCKETMAP_PROFILES,
  type DestinationFacts,
  type MxHostFacts,
} from '../src/index.js'
import { createResolver, createSocketmapServer } from '../src/node/index.js'
import { measure, ratio, report, type Result } from './harness.js'

const request = encodeNetstring('dane+sts example.com')
const decoder = createNetstringDecoder()
const usable = parseTlsaRecord('3 1 1 ' + 'ab'.repeat(32))
const host = (name: string): MxHostFacts => ({
  host: name,
  preference: 10,
  canonicalHost: name,
  cnames: [],
  addresses: [{ address: '192.0.2.1', family: 4 }],
  addressSecure: true,
  tlsa: { status: 'secure', records: [usable], qname: `_25._tcp.${name}`, base: name, candidates: [name], cnames: [], ttl: 3600 },
  referenceNames: [name],
  usable: true,
})
const facts: DestinationFacts = {
  domain: 'example.com',
  port: 25,
  mxLookup: true,
  status: 'ok',
  mxSecure: true,
  nullMx: false,
  implicitMx: false,
  canonicalDomain: 'example.com',
  cnames: [],
  mx: [host('mx1.example.com'), host('mx2.example.com')],
}
const key = parseSocketmapKey('example.com')!
const profile = SOCKETMAP_PROFILES['dane+sts']!

const results: Result[] = []
results.push(measure('decode one request netstring', () => decoder.push(request)))
results.push(measure('socketmapAnswer, 2 MX with TLSA', () => socketmapAnswer({ profile, key, facts })))

const store = createMemoryStore()
store.set('socketmap|dane+sts|example.com:25', 'OK dane-only')
const server = await createSocketmapServer({
  listen: 'inet:127.0.0.1:0',
  store,
  resolver: createResolver({ servers: ['127.0.0.1:9'] }), // never asked: every answer is cached
})
const sock = net.connect(Number(server.address.split(':').pop()), '127.0.0.1')
sock.on('error', () => {})
await new Promise((r) => sock.once('connect', r))
const replies = createNetstringDecoder({ maxLength: 100000 })
let waiting: (() => void) | undefined
sock.on('data', (d) => {
  if (replies.push(d).length > 0) waiting?.()
})
const ask = () =>
  new Promise<void>((r) => {
    waiting = r
    sock.write(request)
  })
for (let i = 0; i < 500; i++) await ask()
let ops = 0
const start = process.hrtime.bigint()
let elapsed = 0
while (elapsed < 600) {
  for (let i = 0; i < 100; i++) await ask()
  ops += 100
  elapsed = Number(process.hrtime.bigint() - start) / 1e6
}
const rt: Result = { name: 'cached lookup round trip (loopback TCP)', usPerOp: (elapsed * 1000) / ops, ops }
results.push(rt)
sock.destroy()
await server.close()

console.log('socketmap (issue 15)')
report(results)
ratio('round trip / pure answer', rt, results[1]!)
console.log(`  cached lookups per second on one connection: ${Math.round(1e6 / rt.usPerOp)}`)
