/**
 * `smtp-tls-policy serve` (the socketmap TLS policy server for Postfix) and `smtp-tls-policy query`
 * (one answer and its trace). Options are checked by main.ts; the resolver's here (64).
 */
import { createSocketmapLookup, createSocketmapServer, type SocketmapLogEvent } from '../node/socketmap.js'
import { createResolver } from '../node/resolver/index.js'
import { createMemoryStore } from '../store/memory.js'
import { SOCKETMAP_PROFILES, type SocketmapProfile } from '../socketmap/answer.js'
import { formatTrace } from '../policy/trace.js'
import { clean, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, optionValue, type CliIo, type QueryArgs, type ServeArgs } from './common.js'

function profiles(testingMay: boolean): Record<string, SocketmapProfile> {
  const out: Record<string, SocketmapProfile> = {}
  for (const [name, p] of Object.entries(SOCKETMAP_PROFILES)) out[name] = testingMay ? { ...p, testing: 'may' } : { ...p }
  return out
}

export async function serveCommand(a: ServeArgs, io: CliIo): Promise<number> {
  const resolver = optionValue('--resolver', () => createResolver(a.resolvers ? { servers: a.resolvers } : {}))
  const write = (e: SocketmapLogEvent): void => io.err(JSON.stringify({ time: new Date().toISOString(), ...e }))
  let log = write
  let metricsServer: { address: string; close(): Promise<void> } | undefined
  if (a.metrics !== undefined) {
    // prom-client is loaded only with --metrics: the CLI's start-up does not pay for it.
    const { createSocketmapMetrics, startMetricsServer } = await import('../node/socketmap-metrics.js')
    const metrics = await createSocketmapMetrics({ defaultMetrics: true })
    log = (e) => {
      metrics.observe(e)
      write(e)
    }
    metricsServer = await startMetricsServer({ listen: a.metrics, metrics })
    write({ event: 'listening', metrics: `http://${metricsServer.address}/metrics` })
  }
  let server
  try {
    server = await createSocketmapServer({
      listen: a.socketmap,
      resolver,
      store: createMemoryStore(),
      profiles: profiles(a.testingMay),
      log,
      ...(a.mode !== undefined && { mode: a.mode }),
      ...(a.maxConnections !== undefined && { maxConnections: a.maxConnections }),
    })
  } catch (e) {
    await metricsServer?.close()
    throw e
  }
  // Graceful shutdown: stop listening, close client connections, exit 0.
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      log({ event: 'closed', signal })
      void Promise.all([server.close(), metricsServer?.close()]).then(() => resolve())
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
  })
  return EX_OK
}

export async function queryCommand(a: QueryArgs, io: CliIo): Promise<number> {
  const resolver = optionValue('--resolver', () => createResolver(a.resolvers ? { servers: a.resolvers } : {}))
  // The server's lookup path, without a socket and without a cache.
  const lookup = createSocketmapLookup({ resolver, profiles: profiles(a.testingMay) })
  const r = await lookup(a.map, a.key)
  if (a.json) io.out(JSON.stringify({ map: a.map, key: a.key, reply: r.reply, trace: r.trace }, null, 2))
  else {
    io.out(clean(r.reply))
    for (const t of r.trace) io.out(clean(`  ${formatTrace([t])}`))
  }
  return r.reply.startsWith('TEMP') ? EX_TEMPFAIL : r.reply.startsWith('PERM') ? EX_UNAVAILABLE : EX_OK
}
