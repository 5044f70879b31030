/** Resolver configuration: server strings, /etc/resolv.conf, and which servers may be trusted for AD. */
import { coded, describeValue, invalidArgument } from '../../args.js'
import { isIP } from 'node:net'
import { SmtpTlsError } from '../../errors.js'

/** A recursive resolver to query. @public */
export interface DnsServer {
  address: string
  port: number
  family: 4 | 6
}

/** Settings read from resolv.conf(5). @public */
export interface ResolvConf {
  servers: DnsServer[]
  /** `options timeout:N`, in milliseconds (glibc default 5 s). */
  timeoutMs: number
  /** `options attempts:N` (glibc default 2). */
  attempts: number
}

function configError(message: string): SmtpTlsError {
  return new SmtpTlsError('ERR_DNS_CONFIG', message)
}

/**
 * Parse a server: `"127.0.0.1"`, `"127.0.0.1:5353"`, `"::1"`, `"[::1]:53"`. Default port 53.
 * @throws {@link SmtpTlsError} `ERR_DNS_CONFIG`
 * @public
 */
export function parseDnsServer(text: string): DnsServer {
  if (typeof text !== 'string') throw configError('a DNS server must be a string')
  const s = text.trim()
  let host = s
  let port = 53
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  if (bracket) {
    host = bracket[1] as string
    if (bracket[2] !== undefined) port = Number(bracket[2])
  } else if (isIP(s) === 0) {
    const hp = /^([^:]+):(\d+)$/.exec(s)
    if (!hp) throw configError(`invalid DNS server ${JSON.stringify(text)}: expected an IP address, IP:PORT or [IPv6]:PORT`)
    host = hp[1] as string
    port = Number(hp[2])
  }
  const family = isIP(host)
  if (family === 0) throw configError(`invalid DNS server ${JSON.stringify(text)}: ${JSON.stringify(host)} is not an IP address`)
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw configError(`invalid DNS server ${JSON.stringify(text)}: port out of range`)
  return { address: host, port, family: family as 4 | 6 }
}

/** `address:port`, IPv6 in brackets. @public */
export function formatDnsServer(s: DnsServer): string {
  try {
    return formatDnsServerChecked(s)
  } catch (e) {
    throw coded(e, 'formatDnsServer')
  }
}

function formatDnsServerChecked(s: DnsServer): string {
  if (typeof s !== 'object' || s === null) throw invalidArgument(`formatDnsServer needs a DnsServer, got ${describeValue(s)}`)
  return s.family === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`
}

/**
 * Loopback: 127.0.0.0/8 and ::1 (and ::ffff:127.x.y.z). The only addresses trusted for the AD bit by
 * default: RFC 4035 §4.9.3 and RFC 7672 §2.1.1 rely on AD only over a secure channel to a trusted resolver,
 * and a resolver on the same host is the usual such channel.
 * @public
 */
export function isLoopbackAddress(address: string): boolean {
  try {
    return isLoopbackAddressChecked(address)
  } catch (e) {
    throw coded(e, 'isLoopbackAddress')
  }
}

function isLoopbackAddressChecked(address: string): boolean {
  if (typeof address !== 'string') throw invalidArgument(`address must be a string, got ${describeValue(address)}`)
  const a = address.toLowerCase()
  if (isIP(a) === 4) return a.startsWith('127.')
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  return mapped !== null && (mapped[1] as string).startsWith('127.')
}

/**
 * Parse resolv.conf(5) text: `nameserver` lines (at most 3 are used, like glibc's MAXNS) and
 * `options timeout:N attempts:N`. Unknown lines are ignored; an invalid nameserver line is skipped.
 * No nameserver means 127.0.0.1, as in glibc.
 * @public
 */
export function parseResolvConf(text: string): ResolvConf {
  try {
    return parseResolvConfChecked(text)
  } catch (e) {
    throw coded(e, 'parseResolvConf')
  }
}

function parseResolvConfChecked(text: string): ResolvConf {
  if (typeof text !== 'string') throw invalidArgument(`resolv.conf text must be a string, got ${describeValue(text)}`)
  const servers: DnsServer[] = []
  let timeoutMs = 5000
  let attempts = 2
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim()
    if (line === '') continue
    const [key, ...args] = line.split(/\s+/)
    if (key === 'nameserver' && args[0] !== undefined && servers.length < 3) {
      const addr = (args[0] as string).replace(/%.*$/, '') // drop an IPv6 zone index
      if (isIP(addr) !== 0) servers.push({ address: addr, port: 53, family: isIP(addr) as 4 | 6 })
    } else if (key === 'options') {
      for (const o of args) {
        const m = /^(timeout|attempts):(\d+)$/.exec(o)
        if (!m) continue
        const n = Number(m[2])
        // glibc caps timeout at 30 s and attempts at 5
        if (m[1] === 'timeout') timeoutMs = Math.min(Math.max(n, 1), 30) * 1000
        else attempts = Math.min(Math.max(n, 1), 5)
      }
    }
  }
  if (servers.length === 0) servers.push({ address: '127.0.0.1', port: 53, family: 4 })
  return { servers, timeoutMs, attempts }
}
