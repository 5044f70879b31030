// A receiving MTA for delivery tests: smtp-server on 127.0.0.1 that keeps every message it accepts
// (envelope and exact bytes), logs every command line, and counts connections. Extensions, replies
// to RCPT and DATA, and AUTH are configurable; `smtp` passes any other smtp-server option.
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server'

export interface SinkMessage {
  from: string
  to: string[]
  /** MAIL FROM parameters as smtp-server parsed them (SIZE, BODY, SMTPUTF8, RET, ENVID …) */
  params: Record<string, unknown>
  bytes: Buffer
  secure: boolean
}

export interface MailSink {
  port: number
  messages: SinkMessage[]
  /** every command line read ('MAIL FROM:<a@b> SIZE=12', 'AUTH PLAIN …' as the server logged it) */
  commands: string[]
  connections: number
  close(): Promise<void>
}

export interface MailSinkOptions {
  certPem?: string
  keyPem?: string
  /** an error text with its code for a recipient ('550 5.1.1 no such user'), or undefined to accept */
  rcpt?: (address: string) => string | undefined
  /** decide the end of DATA: an error text ('552 5.3.4 too big') or undefined to accept */
  data?: (bytes: Buffer) => string | undefined
  /** accepted credentials; AUTH is offered when set */
  auth?: { username: string; password: string }
  smtp?: Partial<SMTPServerOptions>
}

function replyError(text: string): Error & { responseCode: number } {
  const m = /^(\d{3}) (.*)$/s.exec(text)
  const e = new Error(m ? m[2] : text) as Error & { responseCode: number }
  e.responseCode = m ? Number(m[1]) : 550
  return e
}

export async function startMailSink(o: MailSinkOptions = {}): Promise<MailSink> {
  const messages: SinkMessage[] = []
  const commands: string[] = []
  const quiet = () => undefined
  const logger = {
    info: quiet,
    warn: quiet,
    error: quiet,
    trace: quiet,
    fatal: quiet,
    debug: (_meta: unknown, ...args: unknown[]) => {
      if (args[0] === 'C:' && typeof args[1] === 'string') commands.push(args[1])
    },
  }
  const server = new SMTPServer({
    name: 'sink.test',
    secure: false,
    ...(o.certPem && o.keyPem ? { cert: o.certPem, key: o.keyPem } : { hideSTARTTLS: true }),
    authOptional: true,
    ...(o.auth ? { authMethods: ['PLAIN', 'LOGIN'] } : { disabledCommands: ['AUTH'] }),
    logger: logger as never,
    onAuth(auth, _session, cb) {
      if (o.auth && auth.username === o.auth.username && auth.password === o.auth.password) cb(null, { user: auth.username })
      else cb(replyError('535 5.7.8 Authentication credentials invalid'))
    },
    onRcptTo(address, _session, cb) {
      const r = o.rcpt?.(address.address)
      cb(r ? replyError(r) : null)
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        const bytes = Buffer.concat(chunks)
        const r = o.data?.(bytes)
        if (r) return cb(replyError(r))
        const mf = session.envelope.mailFrom
        messages.push({
          from: mf ? mf.address : '',
          to: session.envelope.rcptTo.map((t) => t.address),
          params: (mf ? (mf.args as Record<string, unknown>) : {}) ?? {},
          bytes,
          secure: session.secure,
        })
        cb(null, `2.0.0 Ok: queued as Q${messages.length}`)
      })
    },
    ...o.smtp,
  })
  server.on('error', () => undefined)
  let connections = 0
  server.server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const addr = server.server.address()
  if (addr === null || typeof addr === 'string') throw new Error('smtp-server did not listen')
  return {
    port: addr.port,
    messages,
    commands,
    get connections() {
      return connections
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
