/**
 * One query, one server, one transport: UDP (a fresh socket, so a fresh random source port, per query:
 * RFC 5452 §9.2) or TCP (RFC 7766: two-octet length prefix). Every path ends with the socket closed and
 * the promise settled: on a matching response, a timeout, a network error or an abort.
 */
import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { SmtpTlsError } from '../../errors.js'
import type { DnsServer } from './config.js'
import { formatDnsServer } from './config.js'
import { type EncodedQuery, malformed, matchResponse } from './wire.js'

/** Counters the resolver exposes in its stats. */
export interface TransportCounters {
  udpSent: number
  tcpSent: number
  /** datagrams dropped: wrong source, wrong ID, wrong question, not a response */
  dropped: number
}

function timeoutError(server: DnsServer, ms: number, proto: string): SmtpTlsError {
  return new SmtpTlsError('ERR_DNS_TIMEOUT', `no DNS response from ${formatDnsServer(server)} over ${proto} within ${ms} ms`)
}

export function abortError(signal: AbortSignal): SmtpTlsError {
  return new SmtpTlsError('ERR_ABORTED', 'DNS lookup aborted', { cause: signal.reason })
}

function networkError(server: DnsServer, proto: string, e: unknown): SmtpTlsError {
  const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message
  return new SmtpTlsError('ERR_DNS_NETWORK', `DNS ${proto} exchange with ${formatDnsServer(server)} failed: ${why}`, { cause: e })
}

/** Send `q` over UDP and wait for the first acceptable response from exactly `server`'s address and port. */
export function udpExchange(
  server: DnsServer,
  q: EncodedQuery,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  c: TransportCounters,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const sock = createSocket({ type: server.family === 6 ? 'udp6' : 'udp4' })
    let done = false
    const finish = (err: SmtpTlsError | null, buf?: Buffer) => {
      if (done) return
      done = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      sock.removeAllListeners('message')
      sock.on('error', () => {}) // late errors after settling are irrelevant
      try {
        sock.close()
      } catch {
        // already closed
      }
      if (err) reject(err)
      else resolve(buf as Buffer)
    }
    const onAbort = () => finish(abortError(signal as AbortSignal))
    const timer = setTimeout(() => finish(timeoutError(server, timeoutMs, 'UDP')), timeoutMs)
    signal?.addEventListener('abort', onAbort, { once: true })
    sock.on('error', (e) => finish(networkError(server, 'UDP', e)))
    sock.on('message', (msg, rinfo) => {
      // RFC 5452 §9.1: accept only from the address and port the query went to
      if (rinfo.address !== server.address || rinfo.port !== server.port || matchResponse(msg, q) === 'drop') {
        c.dropped++
        return
      }
      finish(null, msg)
    })
    // port 0: the kernel picks a random ephemeral source port for this socket alone
    sock.bind({ port: 0, exclusive: true }, () => {
      if (done) return
      c.udpSent++
      sock.send(q.message, server.port, server.address, (e) => {
        if (e) finish(networkError(server, 'UDP', e))
      })
    })
  })
}

/** Largest TCP response accepted: the two-octet length allows 65535. */
const MAX_TCP_MESSAGE = 65535

/** Send `q` over TCP (RFC 7766 §8, RFC 1035 §4.2.2) and read one length-prefixed response. */
export function tcpExchange(
  server: DnsServer,
  q: EncodedQuery,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  c: TransportCounters,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal))
    const sock = connect({ host: server.address, port: server.port, family: server.family })
    let done = false
    const chunks: Buffer[] = []
    let have = 0
    const finish = (err: SmtpTlsError | null, buf?: Buffer) => {
      if (done) return
      done = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      sock.removeAllListeners('data')
      sock.on('error', () => {})
      sock.destroy()
      if (err) reject(err)
      else resolve(buf as Buffer)
    }
    const onAbort = () => finish(abortError(signal as AbortSignal))
    const timer = setTimeout(() => finish(timeoutError(server, timeoutMs, 'TCP')), timeoutMs)
    signal?.addEventListener('abort', onAbort, { once: true })
    sock.on('error', (e) => finish(networkError(server, 'TCP', e)))
    sock.on('end', () => finish(malformed(`${formatDnsServer(server)} closed the TCP connection before a complete response`)))
    sock.on('close', () => finish(malformed(`${formatDnsServer(server)} closed the TCP connection before a complete response`)))
    sock.on('connect', () => {
      c.tcpSent++
      const len = Buffer.allocUnsafe(2)
      len.writeUInt16BE(q.message.length, 0)
      sock.write(Buffer.concat([len, q.message]))
    })
    sock.on('data', (d: Buffer) => {
      chunks.push(d)
      have += d.length
      if (have < 2) return
      const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
      chunks.length = 0
      chunks.push(all)
      const n = all.readUInt16BE(0)
      if (n < 12 || n > MAX_TCP_MESSAGE) return finish(malformed(`TCP length prefix ${n}`))
      if (have < n + 2) return
      const msg = all.subarray(2, n + 2)
      // Over TCP the peer is the server itself; a mismatch is a broken server, not a spoof to wait out.
      if (matchResponse(msg, q) === 'drop') return finish(malformed('TCP response does not match the query (ID or question)'))
      finish(null, msg)
    })
  })
}
