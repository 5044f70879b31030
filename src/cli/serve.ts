/**
 * `smtp-tls-policy serve` (the socketmap TLS policy server for Postfix) and `smtp-tls-policy query`
 * (one answer and its trace). Options are checked by main.ts; the resolver's here (64).
 */
import {
  createSocketmapLookup,
  createSocketmapServer,
  type SocketmapReloadOptions,
  type SocketmapServer,
  type SocketmapServerOptions,
} from '../node/socketmap.js'
import type { SocketmapLogEvent } from '../node/socketmap.js'
import { createResolver } from '../node/resolver/index.js'
import { SOCKETMAP_PROFILES, type SocketmapProfile } from '../socketmap/answer.js'
import { formatTrace } from '../policy/trace.js'
import { readCaFile } from './ca-file.js'
import {
  clean,
  CliError,
  EX_CONFIG,
  EX_OK,
  EX_TEMPFAIL,
  EX_UNAVAILABLE,
  EX_USAGE,
  firstLine,
  isCoded,
  optionValue,
  type CliIo,
  type QueryArgs,
  type ServeArgs,
  type ServeSettings,
} from './common.js'
import { loadServeConfig, mergeSettings } from './config.js'
import { connectRedis, openServeStore, readOnly, type LogEvent } from './store.js'

function profiles(testingMay: boolean): Record<string, SocketmapProfile> {
  const out: Record<string, SocketmapProfile> = {}
  for (const [name, p] of Object.entries(SOCKETMAP_PROFILES)) out[name] = testingMay ? { ...p, testing: 'may' } : { ...p }
  return out
}

/** The settings' profiles: the file's (or the default dane, sts, dane+sts), `testing-may` for those that do not say. */
function profilesOf(s: ServeSettings): Record<string, SocketmapProfile> {
  if (s.profiles === undefined) return profiles(s.testingMay === true)
  const out: Record<string, SocketmapProfile> = {}
  for (const [name, { tlsrpt, ...p }] of Object.entries(s.profiles))
    out[name] = {
      ...p,
      ...(p.testing === undefined && s.testingMay === true && { testing: 'may' as const }),
      ...(tlsrpt === true && { tlsrpt }), // the TLS-RPT attributes (Postfix ≥ 3.10); `false` is the default
    }
  return out
}

/**
 * What SIGHUP can change, built from the settings: the resolver (resolv.conf is read again), the
 * profiles, cache times, timeouts, the connection limit and the MTA-STS fetch options (the CA file
 * is read again). A bad value is 64 when a flag gave it, 78 when the file did.
 */
async function reloadable(s: ServeSettings, flags: ServeArgs): Promise<SocketmapReloadOptions> {
  const resolver = fromSource(flags, flags.resolvers !== undefined ? '--resolver' : 'resolver', () =>
    createResolver(s.resolvers ? { servers: s.resolvers } : {}),
  )
  let ca: string | undefined
  if (s.caFile !== undefined) ca = readCaFile(s.caFile)
  return {
    resolver,
    profiles: profilesOf(s),
    ...(s.maxConnections !== undefined && { maxConnections: s.maxConnections }),
    ...(s.idleTimeoutMs !== undefined && { idleTimeoutMs: s.idleTimeoutMs }),
    ...(s.lookupTimeoutMs !== undefined && { lookupTimeoutMs: s.lookupTimeoutMs }),
    ...(s.cache !== undefined && { cache: { ...s.cache } }),
    mtaSts: {
      ...(ca !== undefined && { ca }),
      ...(s.stsPort !== undefined && { port: s.stsPort }),
      ...(s.allowPrivate !== undefined && { allowPrivateAddresses: s.allowPrivate }),
      ...(s.stsTimeoutMs !== undefined && { timeoutMs: s.stsTimeoutMs }),
    },
  }
}

/** A coded error from a value: 64 (usage) when a flag gave it, 78 (EX_CONFIG) when the configuration file did. */
function fromSource<T>(flags: ServeArgs, key: string, check: () => T): T {
  if (key.startsWith('--') || flags.config === undefined) return optionValue(key, check)
  try {
    return check()
  } catch (e) {
    if (!isCoded(e)) throw e
    throw new CliError(EX_CONFIG, `config file ${flags.config}: ${key}: ${e.message} [${e.code}]`)
  }
}

/** At most one `store-error` line per this many ms: during a Redis outage every lookup fails a get and a set. */
const STORE_ERROR_EVERY_MS = 10_000

/** `store-error` events thinned to one per interval; the next one carries how many were left out (`suppressed`). */
function throttled(log: (e: LogEvent) => void): (e: LogEvent) => void {
  let last = -Infinity
  let suppressed = 0
  return (e) => {
    if (e.event === 'store-error') {
      const now = Date.now()
      if (now - last < STORE_ERROR_EVERY_MS) {
        suppressed++
        return
      }
      last = now
      if (suppressed > 0) e = { ...e, suppressed }
      suppressed = 0
    }
    log(e)
  }
}

/** Settings a running server keeps (a new socket, a new store): SIGHUP logs that they need a restart. */
const RESTART_ONLY = ['socketmap', 'mode', 'redis', 'redisPrefix', 'metrics'] as const

export async function serveCommand(a: ServeArgs, io: CliIo): Promise<number> {
  const write = (e: LogEvent): void => io.err(JSON.stringify({ time: new Date().toISOString(), ...e }))
  const printed = throttled(write)
  // Metrics see every event (store errors too); stderr gets them thinned.
  let observe: ((e: LogEvent) => void) | undefined
  const log = (e: LogEvent): void => {
    observe?.(e)
    printed(e)
  }
  const load = async (): Promise<ServeSettings> => mergeSettings(a.config !== undefined ? await loadServeConfig(a.config) : {}, a)
  const initial = await load()
  const listen = initial.socketmap
  if (listen === undefined)
    throw new CliError(EX_USAGE, `serve needs --socketmap unix:PATH or inet:HOST:PORT, or socketmap: in ${a.config}`)
  const options: SocketmapServerOptions = { listen, ...(await reloadable(initial, a)) }
  if (initial.mode !== undefined) options.mode = initial.mode
  let metricsServer: { address: string; close(): Promise<void> } | undefined
  if (initial.metrics !== undefined) {
    // prom-client is loaded only with --metrics: the CLI's start-up does not pay for it.
    const { createSocketmapMetrics, startMetricsServer } = await import('../node/socketmap-metrics.js')
    const metrics = await createSocketmapMetrics({ defaultMetrics: true })
    observe = (e) => metrics.observe(e as SocketmapLogEvent)
    metricsServer = await startMetricsServer({ listen: initial.metrics, metrics })
    write({ event: 'listening', metrics: `http://${metricsServer.address}/metrics` })
  }
  const opened = await openServeStore(initial, log)

  // SIGHUP: read the file again and apply it; a bad file is logged and the running settings stay.
  // Installed before listening: Node's default for SIGHUP ends the process.
  let server: SocketmapServer | undefined
  let reloading = Promise.resolve()
  const reload = async (): Promise<void> => {
    if (server === undefined) return
    const from = a.config !== undefined ? { config: a.config } : {}
    try {
      const next = await load()
      const opts = await reloadable(next, a)
      await server.reload(opts)
      const kept = RESTART_ONLY.filter((k) => next[k] !== initial[k])
      log({ event: 'reload', ...from, ...(kept.length > 0 && { restartNeeded: kept }) })
    } catch (e) {
      const error = e instanceof CliError ? e.message : isCoded(e) ? `${e.message} [${e.code}]` : firstLine(e)
      log({ event: 'reload-failed', ...from, error })
    }
  }
  const onHup = (): void => void (reloading = reloading.then(reload))
  process.on('SIGHUP', onHup)
  try {
    options.store = opened.store
    options.log = log
    server = await createSocketmapServer(options)
  } catch (e) {
    process.off('SIGHUP', onHup)
    opened.close()
    await metricsServer?.close()
    // Flags were checked by main.ts: what the library refuses came from the file.
    if (isCoded(e) && e.code === 'ERR_INVALID_ARGUMENT' && a.config !== undefined)
      throw new CliError(EX_CONFIG, `config file ${a.config}: ${e.message} [${e.code}]`)
    throw e
  }
  const running = server
  // Graceful shutdown: stop listening, close client connections, exit 0.
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      log({ event: 'closed', signal })
      void Promise.all([running.close(), metricsServer?.close()]).then(() => resolve())
    }
    const onTerm = (): void => stop('SIGTERM')
    const onInt = (): void => stop('SIGINT')
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
  })
  process.off('SIGHUP', onHup)
  await reloading
  opened.close()
  return EX_OK
}

export async function queryCommand(a: QueryArgs, io: CliIo): Promise<number> {
  // The server's lookup path, without a socket: with --config, its profiles and options; with a Redis
  // URL (flag or file), its cache, read only (query never writes an answer or a policy into it).
  const flags: ServeArgs = {
    ...(a.config !== undefined && { config: a.config }),
    ...(a.resolvers !== undefined && { resolvers: a.resolvers }),
    ...(a.testingMay && { testingMay: true }),
    ...(a.redis !== undefined && { redis: a.redis }),
    ...(a.redisPrefix !== undefined && { redisPrefix: a.redisPrefix }),
  }
  const s = mergeSettings(a.config !== undefined ? await loadServeConfig(a.config) : {}, flags)
  const options = await reloadable(s, flags)
  const redis = s.redis !== undefined ? await connectRedis(s.redis, s.redisPrefix) : undefined
  let r
  try {
    r = await createSocketmapLookup({ ...options, ...(redis && { store: readOnly(redis.store) }) })(a.map, a.key)
  } finally {
    redis?.close()
  }
  if (a.json) io.out(JSON.stringify({ map: a.map, key: a.key, reply: r.reply, cached: r.cached, trace: r.trace }, null, 2))
  else {
    io.out(clean(r.reply))
    for (const t of r.trace) io.out(clean(`  ${formatTrace([t])}`))
  }
  return r.reply.startsWith('TEMP') ? EX_TEMPFAIL : r.reply.startsWith('PERM') ? EX_UNAVAILABLE : EX_OK
}
