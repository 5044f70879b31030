/**
 * `smtp-tls-policy tlsrpt --send DAY --redis URL …`: send a UTC day's TLS-RPT reports (RFC 8460 §5)
 * from the Redis store the senders record into, with `sendTlsRptReports`. Meant for an hourly cron line;
 * a run that is repeated sends nothing twice.
 */
import { sendTlsRptReports, type TlsRptSendResult } from '../node/tlsrpt-send.js'
import { createResolver } from '../node/resolver/index.js'
import { readCaFile } from './ca-file.js'
import { connectRedis } from './store.js'
import { clean, CliError, EX_OK, EX_TEMPFAIL, EX_USAGE, isCoded, optionValue, type CliIo, type TlsRptArgs } from './common.js'

export async function tlsRptSendCommand(a: TlsRptArgs, io: CliIo): Promise<number> {
  const o = a.send!
  const ro = { ...(a.resolvers && { servers: a.resolvers }), ...(a.timeoutMs && { timeoutMs: a.timeoutMs }) }
  const resolver = optionValue('--resolver', () => createResolver(ro))
  let ca: string | undefined
  if (o.caFile !== undefined) ca = readCaFile(o.caFile)
  // no reconnecting: a CLI run fails and is run again (what was sent is not sent twice)
  const { store, close } = await connectRedis(o.redis, o.redisPrefix)
  let r: TlsRptSendResult
  try {
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
    close()
  }
  // 75: run again later (a failed URI is retried, one in progress is sent once its claim has lapsed)
  const failed = r.domains.some((d) => d.status === 'failed' || d.status === 'partial' || d.status === 'in-progress')
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
