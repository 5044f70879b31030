/**
 * Prometheus metrics of the socketmap server (issue 15), counted from its log events, and a small HTTP
 * server exposing them at `GET /metrics`. `prom-client` is an optional dependency, imported here only
 * when metrics are created: the CLI and a server without metrics never load it.
 */
import http from 'node:http'
import type net from 'node:net'
import type * as PromClient from 'prom-client'
import type { Counter, Histogram, Registry } from 'prom-client'
import { coded, describeValue, invalidArgument, readOptions } from '../args.js'
import { SmtpTlsError } from '../errors.js'
import type { SocketmapLogEvent } from './socketmap.js'

/** Options of {@link createSocketmapMetrics}. @public */
export interface SocketmapMetricsOptions {
  /** The prom-client registry to register the metrics in; default a new one. */
  registry?: Registry
  /** Prefix of every metric name; default `smtp_tls_policy_socketmap_`. */
  prefix?: string
  /** Also collect prom-client's default metrics (process CPU, memory, event loop lag, `process_`/`nodejs_`); default `false`. */
  defaultMetrics?: boolean
}

/** The socketmap server's metrics. @public */
export interface SocketmapMetrics {
  /** The registry holding them (`registry.metrics()` renders the text format). */
  readonly registry: Registry
  /**
   * Count one server event: pass this as the server's `log` option, or call it from your own `log`.
   * Synchronous, no allocation per event beyond prom-client's own.
   */
  observe(event: SocketmapLogEvent): void
}

// Label values are bounded: a reply read from a damaged shared store cannot create new series.
const RESULTS = new Set(['OK', 'NOTFOUND', 'TEMP', 'PERM', 'TIMEOUT'])
const POLICIES = new Set(['dane-only', 'dane', 'secure', 'may', 'encrypt', 'verify', 'none', 'fingerprint'])
const PREFETCH = new Set(['refreshed', 'failed', 'dropped'])
const OPERATIONS = new Set(['get', 'set'])

/**
 * Create the Prometheus metrics of a socketmap server: queries by result and policy, cache hits and
 * misses, prefetch outcomes, store, lookup and client errors, and a latency histogram. Loads the
 * optional dependency `prom-client`.
 *
 * @example
 * ```ts
 * const metrics = await createSocketmapMetrics()
 * const server = await createSocketmapServer({ listen, store, log: metrics.observe })
 * const http = await startMetricsServer({ listen: '127.0.0.1:9464', metrics })
 * ```
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for bad options, or when `prom-client` is not installed.
 * @public
 */
export async function createSocketmapMetrics(opts?: SocketmapMetricsOptions): Promise<SocketmapMetrics> {
  let o: Partial<Record<keyof SocketmapMetricsOptions, unknown>>
  let prefix = 'smtp_tls_policy_socketmap_'
  try {
    o = readOptions(opts, 'createSocketmapMetrics options', ['registry', 'prefix', 'defaultMetrics'])
    if (o.prefix !== undefined) {
      if (typeof o.prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(o.prefix))
        throw invalidArgument(`createSocketmapMetrics options.prefix must be a metric name prefix, got ${describeValue(o.prefix)}`)
      prefix = o.prefix
    }
    if (o.defaultMetrics !== undefined && typeof o.defaultMetrics !== 'boolean')
      throw invalidArgument('createSocketmapMetrics options.defaultMetrics must be a boolean')
    if (
      o.registry !== undefined &&
      (typeof o.registry !== 'object' || o.registry === null || typeof (o.registry as Registry).metrics !== 'function')
    )
      throw invalidArgument('createSocketmapMetrics options.registry must be a prom-client Registry')
  } catch (e) {
    throw coded(e, 'createSocketmapMetrics')
  }
  let prom: typeof PromClient
  try {
    prom = await import('prom-client')
  } catch (e) {
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'metrics need the optional dependency prom-client (npm install prom-client)', {
      cause: e,
    })
  }
  const registry = (o.registry as Registry | undefined) ?? new prom.Registry()
  const registers = [registry]
  if (o.defaultMetrics === true) prom.collectDefaultMetrics({ register: registry })
  const queries = new prom.Counter({
    name: `${prefix}queries_total`,
    help: 'Socketmap queries answered, by result (OK, NOTFOUND, TEMP, PERM, TIMEOUT) and the policy of an OK answer',
    labelNames: ['result', 'policy'] as const,
    registers,
  })
  const hits = new prom.Counter({ name: `${prefix}cache_hits_total`, help: 'Queries answered from the cache', registers })
  const misses = new prom.Counter({
    name: `${prefix}cache_misses_total`,
    help: 'Queries the cache did not answer (looked up in DNS and over HTTPS)',
    registers,
  })
  const prefetch = new prom.Counter({
    name: `${prefix}prefetch_total`,
    help: 'Background refreshes of cached answers, by outcome (refreshed; failed: the unexpired answer stays; dropped: queue full)',
    labelNames: ['outcome'] as const,
    registers,
  })
  const storeErrors = new prom.Counter({
    name: `${prefix}store_errors_total`,
    help: 'Policy store operations that failed (each a cache miss, never a weaker answer)',
    labelNames: ['operation'] as const,
    registers,
  })
  const lookupErrors = new prom.Counter({
    name: `${prefix}lookup_errors_total`,
    help: 'Lookups that failed unexpectedly or took too long (answered TEMP or TIMEOUT)',
    registers,
  })
  const clientErrors = new prom.Counter({
    name: `${prefix}client_errors_total`,
    help: 'Client connections closed for a framing error or too many pipelined requests',
    registers,
  })
  const latency = new prom.Histogram({
    name: `${prefix}query_duration_seconds`,
    help: 'Time from a request to its answer, by whether it came from the cache',
    labelNames: ['cached'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
    registers,
  })
  // Children resolved once per label combination (labels() hashes its arguments on every call).
  const byQuery = new Map<string, ReturnType<Counter<'result' | 'policy'>['labels']>>()
  const queryChild = (result: string, policy: string): ReturnType<Counter<'result' | 'policy'>['labels']> => {
    const k = `${result} ${policy}`
    let c = byQuery.get(k)
    if (c === undefined) byQuery.set(k, (c = queries.labels(result, policy)))
    return c
  }
  const cachedLatency = latency.labels('true') as ReturnType<Histogram<'cached'>['labels']>
  const lookedUpLatency = latency.labels('false') as ReturnType<Histogram<'cached'>['labels']>

  const observe = (e: SocketmapLogEvent): void => {
    if (typeof e !== 'object' || e === null) return
    switch (e.event) {
      case 'query': {
        const result = typeof e.result === 'string' && RESULTS.has(e.result) ? e.result : 'other'
        const policy = result !== 'OK' ? 'none' : typeof e.policy === 'string' && POLICIES.has(e.policy) ? e.policy : 'other'
        queryChild(result, policy).inc()
        if (e.cache === 'hit') hits.inc()
        else if (e.cache === 'miss') misses.inc()
        if (typeof e.durationMs === 'number' && e.durationMs >= 0)
          (e.cached === true ? cachedLatency : lookedUpLatency).observe(e.durationMs / 1000)
        return
      }
      case 'prefetch':
        prefetch.labels(typeof e.outcome === 'string' && PREFETCH.has(e.outcome) ? e.outcome : 'other').inc()
        return
      case 'store-error':
        storeErrors.labels(typeof e.operation === 'string' && OPERATIONS.has(e.operation) ? e.operation : 'other').inc()
        return
      case 'lookup-error':
        lookupErrors.inc()
        return
      case 'client-error':
        clientErrors.inc()
        return
    }
  }
  return { registry, observe }
}

/** Options of {@link startMetricsServer}. @public */
export interface MetricsServerOptions {
  /** `HOST:PORT`, `[IPv6]:PORT` or `PORT` (on 127.0.0.1); port 0 picks a free one. */
  listen: string
  metrics: SocketmapMetrics
}

/** A running metrics HTTP server. @public */
export interface MetricsServer {
  /** `HOST:PORT` with the real port. */
  readonly address: string
  /** Stop listening and close every connection. */
  close(): Promise<void>
}

function parseHostPort(v: unknown): { host: string; port: number } {
  const m = typeof v === 'string' ? /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):)?([0-9]{1,5})$/.exec(v) : null
  if (m === null || Number(m[3]) > 65535)
    throw invalidArgument(`startMetricsServer options.listen must be HOST:PORT or PORT, got ${describeValue(v)}`)
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port: Number(m[3]) }
}

/**
 * Serve `GET /metrics` (the Prometheus text format) over HTTP; every other path is 404, other methods
 * on `/metrics` 405. Listens on loopback unless another host is given. Every socket has an `'error'` listener.
 * @throws {@link SmtpTlsError} `ERR_INVALID_ARGUMENT` for bad options, `ERR_CONNECT` when it cannot listen.
 * @public
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  let where: { host: string; port: number }
  let registry: Registry
  try {
    const o = readOptions(opts, 'startMetricsServer options', ['listen', 'metrics'])
    where = parseHostPort(o.listen)
    const m = o.metrics as SocketmapMetrics | undefined
    if (typeof m !== 'object' || m === null || typeof m.registry?.metrics !== 'function')
      throw invalidArgument('startMetricsServer options.metrics must come from createSocketmapMetrics')
    registry = m.registry
  } catch (e) {
    throw coded(e, 'startMetricsServer')
  }
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    req.on('error', () => req.destroy())
    res.on('error', () => res.destroy())
    const path = (req.url ?? '').split('?', 1)[0]
    if (path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end()
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n'),
    )
  })
  server.maxConnections = 64 // a scraper needs one; more are closed as they arrive
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  server.on('error', () => {}) // after listening: nothing to do but keep running
  server.on('clientError', (_e, sock) => sock.destroy())
  server.on('connection', (sock: net.Socket) => {
    sockets.add(sock)
    sock.on('error', () => sock.destroy())
    sock.on('close', () => sockets.delete(sock))
  })
  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error): void =>
      reject(new SmtpTlsError('ERR_CONNECT', `cannot listen on ${where.host}:${where.port}: ${e.message}`, { temporary: true, cause: e }))
    server.once('error', fail)
    server.listen(where.port, where.host, () => {
      server.off('error', fail)
      resolve()
    })
  })
  const a = server.address() as net.AddressInfo
  const address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
  let closing: Promise<void> | undefined
  return {
    address,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      })),
  }
}
