/**
 * `smtp-tls-policy tlsrpt --send DAY --redis URL …`: send a UTC day's TLS-RPT reports (RFC 8460 §5)
 * from the Redis store the senders record into, with `sendTlsRptReports`. Meant for a daily cron line;
 * a run that is repeated sends nothing twice.
 */
import { createRedisStore } from '../redis/index.js'
import { sendTlsRptReports, type TlsRptSendResult } from '../node/tlsrpt-send.js'
import { createResolver } from '../node/resolver/index.js'
import { sliceCertificate } from '../x509/der.js'
import { pemToDerAll } from '../x509/pem.js'
import {
  clean,
  CliError,
  EX_OK,
  EX_TEMPFAIL,
  EX_UNAVAILABLE,
  EX_USAGE,
  inputData,
  isCoded,
  MiB,
  optionValue,
  readInput,
  type CliIo,
  type TlsRptArgs,
} from './common.js'

const MAX_CA_FILE = 8 * MiB

interface RedisModule {
  createClient(o: unknown): {
    on(event: 'error', f: () => void): unknown
    connect(): Promise<unknown>
    destroy(): void
  }
}

export async function tlsRptSendCommand(a: TlsRptArgs, io: CliIo): Promise<number> {
  const o = a.send!
  const ro = { ...(a.resolvers && { servers: a.resolvers }), ...(a.timeoutMs && { timeoutMs: a.timeoutMs }) }
  const resolver = optionValue('--resolver', () => createResolver(ro))
  let ca: string | undefined
  if (o.caFile !== undefined) {
    const what = 'CA file'
    const path = o.caFile
    const text = inputData(what, path, () => readInput(path, what, MAX_CA_FILE).toString('utf8'))
    inputData(what, path, () => pemToDerAll(text).forEach((der) => sliceCertificate(der)))
    ca = text
  }
  let redis: RedisModule
  try {
    redis = (await import('redis')) as unknown as RedisModule
  } catch {
    throw new CliError(EX_UNAVAILABLE, '--send needs the npm package redis (node-redis 5): npm install redis')
  }
  // no reconnecting: a CLI run fails and is run again (what was sent is not sent twice)
  const socket = { reconnectStrategy: false, connectTimeout: 5000 }
  const client = o.redis.startsWith('unix:')
    ? redis.createClient({ socket: { ...socket, path: o.redis.slice(5) } })
    : redis.createClient({ url: o.redis, socket })
  client.on('error', () => undefined)
  try {
    await client.connect()
  } catch (e) {
    throw new CliError(EX_TEMPFAIL, `cannot connect to ${o.redis}: ${e instanceof Error ? e.message : String(e)}`)
  }
  let r: TlsRptSendResult
  try {
    const store = createRedisStore(client as never, o.redisPrefix !== undefined ? { prefix: o.redisPrefix } : {})
    r = await sendTlsRptReports({
      store,
      day: o.day,
      organizationName: o.organization,
      contactInfo: o.contact,
      submitter: o.submitter,
      from: o.from,
      resolver,
      allowPrivateAddresses: o.allowPrivate,
      ...(o.keyPrefix !== undefined && { keyPrefix: o.keyPrefix }),
      ...(ca !== undefined && { ca }),
      deliver: { resolver, ...(o.ehloName !== undefined && { ehloName: o.ehloName }) },
    })
  } catch (e) {
    if (!isCoded(e)) throw e
    throw new CliError(e.code === 'ERR_INVALID_ARGUMENT' ? EX_USAGE : EX_TEMPFAIL, e.message)
  } finally {
    client.destroy()
  }
  const failed = r.domains.some((d) => d.status === 'failed' || d.status === 'partial')
  if (a.json) {
    const plain = {
      day: r.day,
      domains: r.domains.map((d) => ({
        ...d,
        uris: d.uris.map((u) => ({
          uri: u.uri,
          status: u.status,
          ...(u.error && { error: { code: u.error.code, message: u.error.message } }),
        })),
        ...(d.error && { error: { code: d.error.code, message: d.error.message } }),
      })),
    }
    io.out(JSON.stringify(plain, null, 2))
    return failed ? EX_TEMPFAIL : EX_OK
  }
  const out = (l: string): void => io.out(clean(l))
  if (r.domains.length === 0) out(`${r.day}: no sessions recorded`)
  for (const d of r.domains) {
    out(`report ${d.policyDomain} ${r.day}: ${d.status} (${d.sessions.successful} successful, ${d.sessions.failed} failed sessions)`)
    if (d.error) out(`  ${d.error.message} [${d.error.code}]`)
    for (const u of d.uris) out(`  ${u.uri}: ${u.status}${u.error ? `: ${u.error.message}` : ''}`)
  }
  return failed ? EX_TEMPFAIL : EX_OK
}
