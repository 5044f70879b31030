// An in-process DNS server on 127.0.0.1 (UDP and TCP on the same port), built on dns-packet, that
// answers from a script: AD set or not, any RCODE, TC then a full answer over TCP, delays, silence,
// raw (malformed) bytes, and forged datagrams from another socket or with a wrong ID.
import { createSocket, type Socket } from 'node:dgram'
import { createServer, type Server, type Socket as TcpSocket } from 'node:net'
import dnsPacket from 'dns-packet'

export interface DnsQuery {
  id: number
  name: string
  type: string
  tcp: boolean
  ad: boolean
  cd: boolean
  rd: boolean
  /** EDNS0 present with the DO bit */
  dnssecOk: boolean
  udpPayloadSize: number | undefined
  raw: Buffer
  /** the client's UDP source port (0 for TCP) */
  clientPort: number
}

export type Rr = { name: string; type: string; ttl?: number; data: unknown; class?: string }

export interface DnsReply {
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'FORMERR' | 'NOTIMP'
  ad?: boolean
  tc?: boolean
  answers?: Rr[]
  authorities?: Rr[]
  /** RFC 8914 Extended DNS Errors to put in the OPT record */
  ede?: { code: number; text?: string }[]
  /** wait this long before answering */
  delayMs?: number
  /** send nothing */
  drop?: boolean
  /** send these bytes instead of an encoded reply (gets the query for ID and question) */
  raw?: (q: DnsQuery, encoded: Buffer) => Buffer
  /** TCP only: write these bytes as they are, without the two-octet length framing */
  tcpRaw?: (q: DnsQuery, encoded: Buffer) => Buffer
  /** before the real reply, send these forged datagrams (UDP only) */
  spoof?: Array<{ fromOtherPort?: boolean; bytes: (q: DnsQuery, encoded: Buffer) => Buffer }>
}

export type DnsHandler = (q: DnsQuery) => DnsReply | Promise<DnsReply>

export interface TestDnsServer {
  address: string
  port: number
  /** "127.0.0.1:port" for createResolver({ servers }) */
  server: string
  queries: DnsQuery[]
  close(): Promise<void>
}

const RCODE: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 }

export function encodeReply(q: DnsQuery, r: DnsReply): Buffer {
  let flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (RCODE[r.rcode ?? 'NOERROR'] as number)
  if (r.ad) flags |= dnsPacket.AUTHENTIC_DATA
  if (r.tc) flags |= dnsPacket.TRUNCATED_RESPONSE
  const options = (r.ede ?? []).map((e) => {
    const text = Buffer.from(e.text ?? '')
    const data = Buffer.alloc(2 + text.length)
    data.writeUInt16BE(e.code, 0)
    text.copy(data, 2)
    return { code: 15, data }
  })
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags,
    questions: [{ name: q.name, type: q.type as never, class: 'IN' }],
    answers: (r.answers ?? []).map((a) => ({ ttl: 300, class: 'IN', ...a }) as never),
    authorities: (r.authorities ?? []).map((a) => ({ ttl: 300, class: 'IN', ...a }) as never),
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK, options } as never],
  })
}

function parseQuery(raw: Buffer, tcp: boolean, clientPort: number): DnsQuery | undefined {
  try {
    const p = dnsPacket.decode(raw)
    const q = p.questions?.[0]
    if (!q) return undefined
    const opt = (p.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number; flags?: number } | undefined
    const flags = p.flags ?? 0
    return {
      id: p.id ?? 0,
      name: q.name,
      type: q.type,
      tcp,
      ad: (flags & dnsPacket.AUTHENTIC_DATA) !== 0,
      cd: (flags & dnsPacket.CHECKING_DISABLED) !== 0,
      rd: (flags & dnsPacket.RECURSION_DESIRED) !== 0,
      dnssecOk: opt !== undefined && ((opt.flags ?? 0) & dnsPacket.DNSSEC_OK) !== 0,
      udpPayloadSize: opt?.udpPayloadSize,
      raw,
      clientPort,
    }
  } catch {
    return undefined
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Start the server on 127.0.0.1 (default) or ::1; loopback only. */
export async function startDnsServer(handler: DnsHandler, opts: { address?: '127.0.0.1' | '::1' } = {}): Promise<TestDnsServer> {
  const address = opts.address ?? '127.0.0.1'
  const family = address === '::1' ? 'udp6' : 'udp4'
  const queries: DnsQuery[] = []
  const pending = new Set<NodeJS.Timeout>()
  let closed = false
  let udp: Socket
  let tcp: Server
  const spoofer = createSocket(family)
  await new Promise<void>((res) => spoofer.bind(0, address, res))
  const tcpClients = new Set<TcpSocket>()
  for (;;) {
    udp = createSocket(family)
    await new Promise<void>((res) => udp.bind(0, address, res))
    const port = udp.address().port
    tcp = createServer()
    const ok = await new Promise<boolean>((res) => {
      tcp.once('error', () => res(false))
      tcp.listen(port, address, () => res(true))
    })
    if (ok) break
    udp.close()
  }
  const port = udp.address().port

  const delay = async (ms: number | undefined) => {
    if (!ms) return
    await new Promise<void>((res) => {
      const t = setTimeout(() => {
        pending.delete(t)
        res()
      }, ms)
      pending.add(t)
    })
  }

  udp.on('message', (raw, rinfo) => {
    const q = parseQuery(raw, false, rinfo.port)
    if (!q) return
    queries.push(q)
    void (async () => {
      const r = await handler(q)
      await delay(r.delayMs)
      if (closed || r.drop) return
      const encoded = encodeReply(q, r)
      for (const s of r.spoof ?? []) (s.fromOtherPort ? spoofer : udp).send(s.bytes(q, encoded), rinfo.port, rinfo.address)
      if (r.spoof?.length) await sleep(5)
      if (closed) return
      udp.send(r.raw ? r.raw(q, encoded) : encoded, rinfo.port, rinfo.address)
    })()
  })

  tcp.on('connection', (sock) => {
    tcpClients.add(sock)
    sock.on('close', () => tcpClients.delete(sock))
    sock.on('error', () => {})
    let buf = Buffer.alloc(0)
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (buf.length < 2) return
      const n = buf.readUInt16BE(0)
      if (buf.length < n + 2) return
      const q = parseQuery(buf.subarray(2, n + 2), true, 0)
      buf = buf.subarray(n + 2)
      if (!q) return
      queries.push(q)
      void (async () => {
        const r = await handler(q)
        await delay(r.delayMs)
        if (closed || r.drop || sock.destroyed) return
        const encoded = encodeReply(q, r)
        if (r.tcpRaw) {
          sock.write(r.tcpRaw(q, encoded))
          return
        }
        const body = r.raw ? r.raw(q, encoded) : encoded
        const len = Buffer.alloc(2)
        len.writeUInt16BE(body.length & 0xffff, 0)
        sock.write(Buffer.concat([len, body]))
      })()
    })
  })

  return {
    address,
    port,
    server: family === 'udp6' ? `[${address}]:${port}` : `${address}:${port}`,
    queries,
    async close() {
      closed = true
      for (const t of pending) clearTimeout(t)
      for (const s of tcpClients) s.destroy()
      await Promise.all([
        new Promise<void>((res) => udp.close(() => res())),
        new Promise<void>((res) => spoofer.close(() => res())),
        new Promise<void>((res) => tcp.close(() => res())),
      ])
    },
  }
}

/** A handler that answers from a table keyed "name TYPE" (lower case); unknown names get NXDOMAIN. */
export function zoneHandler(table: Record<string, DnsReply>, fallback: DnsReply = { rcode: 'NXDOMAIN' }): DnsHandler {
  return (q) => table[`${q.name.toLowerCase()} ${q.type}`] ?? fallback
}

/** A SOA authority record for negative answers: negative TTL = min(ttl, minimum) (RFC 2308 §5). */
export function soa(zone: string, minimum = 60, ttl = 300): Rr {
  return {
    name: zone,
    type: 'SOA',
    ttl,
    data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum },
  }
}

export type ZoneRecord = [name: string, type: 'A' | 'AAAA' | 'MX' | 'TLSA' | 'TXT' | 'CNAME', data: unknown]
export interface ZoneSpec {
  records: ZoneRecord[]
  /** names whose data is unsigned (AD clear when the answer touches them) */
  insecure?: string[]
  /** "name TYPE" keys answered with SERVFAIL (bogus) */
  bogus?: string[]
}

/**
 * A recursive, validating resolver over a record list, answering like Unbound would: CNAME chains
 * expanded, AD only when every name on the way is signed, NXDOMAIN/NODATA with a SOA, SERVFAIL for
 * names marked bogus.
 */
export function validatingZone(spec: ZoneSpec): DnsHandler {
  const insecure = new Set(spec.insecure ?? [])
  const bogus = new Set(spec.bogus ?? [])
  const names = new Set(spec.records.map((r) => r[0]))
  return (q): DnsReply => {
    const answers: Rr[] = []
    let name = q.name.toLowerCase()
    let ad = !insecure.has(name)
    for (let hops = 0; hops < 10; hops++) {
      if (bogus.has(`${name} ${q.type}`)) return { rcode: 'SERVFAIL', ede: [{ code: 6, text: 'DNSSEC Bogus' }] }
      const cname = q.type === 'CNAME' ? undefined : spec.records.find((r) => r[0] === name && r[1] === 'CNAME')
      if (cname) {
        answers.push({ name, type: 'CNAME', data: cname[2] })
        name = cname[2] as string
        ad &&= !insecure.has(name)
        continue
      }
      const data = spec.records.filter((r) => r[0] === name && r[1] === q.type)
      for (const r of data) answers.push({ name, type: r[1], data: r[2] })
      if (data.length > 0) return { ad, answers }
      return { ad, answers, rcode: names.has(name) ? 'NOERROR' : 'NXDOMAIN', authorities: [soa('test')] }
    }
    return { rcode: 'SERVFAIL' }
  }
}
