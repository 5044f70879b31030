// smtp-server (npm) on 127.0.0.1 as a STARTTLS peer for driver tests and the demo.
import { createSecureContext, type SecureContext } from 'node:tls'
import { SMTPServer } from 'smtp-server'

export interface TestSmtpServer {
  port: number
  close(): Promise<void>
}

export async function startSmtpServer(o: {
  certPem?: string
  keyPem?: string
  starttls?: boolean
  name?: string
  /** every command line the server reads (smtp-server's debug log 'C:'), e.g. to see that QUIT was sent */
  onCommand?: (line: string) => void
  /** every SNI name a ClientHello carried (not called when the client sent none) */
  onServername?: (name: string) => void
  /** a certificate per SNI name (lower case); any other name, or none, gets `certPem`/`keyPem` */
  sni?: Record<string, { certPem: string; keyPem: string }>
  /** listen address (default 127.0.0.1) and port (default: any free one) */
  address?: '127.0.0.1' | '::1'
  port?: number
}): Promise<TestSmtpServer> {
  const onCommand = o.onCommand
  const onServername = o.onServername
  const sniContexts = new Map<string, SecureContext>(
    Object.entries(o.sni ?? {}).map(([name, c]) => [name.toLowerCase(), createSecureContext({ cert: c.certPem, key: c.keyPem })]),
  )
  const quiet = () => undefined
  const logger = onCommand
    ? {
        info: quiet,
        warn: quiet,
        error: quiet,
        trace: quiet,
        fatal: quiet,
        debug: (_meta: unknown, ...args: unknown[]) => {
          if (args[0] === 'C:' && typeof args[1] === 'string') onCommand(args[1])
        },
      }
    : false
  const server = new SMTPServer({
    name: o.name ?? 'mx.test',
    secure: false,
    ...(o.certPem && o.keyPem ? { cert: o.certPem, key: o.keyPem } : {}),
    hideSTARTTLS: o.starttls === false,
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger,
    ...(onServername || sniContexts.size > 0
      ? {
          // smtp-server hands the (lower-cased) name to this callback; undefined means its default certificate
          SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
            onServername?.(name)
            cb(null, sniContexts.get(name.toLowerCase()))
          },
        }
      : {}),
    onData(stream, _session, cb) {
      stream.resume()
      stream.on('end', () => cb())
    },
  })
  server.on('error', () => undefined)
  await new Promise<void>((resolve) => server.listen(o.port ?? 0, o.address ?? '127.0.0.1', () => resolve()))
  const addr = server.server.address()
  if (addr === null || typeof addr === 'string') throw new Error('smtp-server did not listen')
  return { port: addr.port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}
