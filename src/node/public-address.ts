/**
 * Where the HTTPS clients (the MTA-STS policy fetch, the TLS-RPT report POST) may connect: the host's
 * A and AAAA records from our resolver, loopback, private and link-local addresses refused unless
 * allowed, and the request pinned to exactly those addresses (node:dns is never asked).
 */
import net from 'node:net'
import type { LookupAddress } from 'node:dns'
import type { SmtpTlsError } from '../errors.js'
import type { Resolver } from './resolver/index.js'

// Addresses a policy host may not have unless allowPrivateAddresses (RFC 6890 special-purpose registries).
const PRIVATE4 = new net.BlockList()
const PRIVATE6 = new net.BlockList() // separate: a BlockList checks IPv4 addresses against IPv4-mapped IPv6 rules too
for (const [a, p] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE4.addSubnet(a, p, 'ipv4')
for (const [a, p] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['::ffff:0:0', 96], // IPv4-mapped in a form not converted below: refused
] as const)
  PRIVATE6.addSubnet(a, p, 'ipv6')

/** Is `address` loopback, private, link-local, CGNAT, unspecified or multicast (IPv4-mapped IPv6 included)? */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address)
  if (family === 0) return true
  if (family === 4) return PRIVATE4.check(address, 'ipv4')
  // IPv4-mapped (RFC 4291 §2.5.5.2): judged as the IPv4 address it carries
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (dotted) return PRIVATE4.check(dotted[1]!, 'ipv4')
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address)
  if (hex) {
    const hi = parseInt(hex[1]!, 16)
    const lo = parseInt(hex[2]!, 16)
    return PRIVATE4.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4')
  }
  return PRIVATE6.check(address, 'ipv6')
}

/** One address to connect to. */
export interface PublicAddress {
  address: string
  family: 4 | 6
}

/**
 * The addresses of `host` (an IP literal stands for itself); `fail(message)` makes the error when none
 * is left: only refused addresses, none at all, or the lookups failed.
 */
export async function resolvePublicAddresses(
  resolver: Resolver,
  host: string,
  o: { allowPrivate: boolean; signal?: AbortSignal },
  fail: (message: string) => SmtpTlsError,
): Promise<PublicAddress[]> {
  const literal = net.isIP(host)
  if (literal !== 0) {
    if (!o.allowPrivate && isPrivateAddress(host)) throw fail(`${host} is a loopback, private or link-local address: refused`)
    return [{ address: host, family: literal as 4 | 6 }]
  }
  const look = o.signal ? { signal: o.signal } : {}
  const [a, aaaa] = await Promise.all([resolver.lookup(host, 'A', look), resolver.lookup(host, 'AAAA', look)])
  const found: PublicAddress[] = []
  const refused: string[] = []
  for (const [ans, family] of [
    [a, 4],
    [aaaa, 6],
  ] as const) {
    if (ans.status !== 'secure' && ans.status !== 'insecure') continue
    for (const address of ans.records as string[]) {
      if (!o.allowPrivate && isPrivateAddress(address)) refused.push(address)
      else found.push({ address, family })
    }
  }
  if (found.length > 0) return found
  if (refused.length > 0) throw fail(`${host} has only loopback, private or link-local addresses (${refused.join(', ')}): refused`)
  const failure = [a, aaaa].find((x) => x.error !== undefined)?.error
  throw fail(`${host} has no address${failure ? `: ${failure.message}` : ` (A ${a.status}, AAAA ${aaaa.status})`}`)
}

/** A `lookup` for http(s).request that answers with `addresses` only. */
export function pinnedLookup(addresses: readonly PublicAddress[]): never {
  const lookup = (
    _host: string,
    o: { all?: boolean } | number | undefined,
    cb: (err: Error | null, a: string | LookupAddress[], f?: number) => void,
  ): void => {
    if (typeof o === 'object' && o?.all) cb(null, addresses as LookupAddress[])
    else cb(null, addresses[0]!.address, addresses[0]!.family)
  }
  return lookup as never
}
