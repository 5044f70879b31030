// Transcript replay for the StartTlsClient tests: server turns in, actions out as short strings.
import { StartTlsClient, type StartTlsAction, type StartTlsInput } from '../../src/index.js'

/** One step of a conversation: what the server sent (one turn), or an input from the driver. */
export type Step = string | { tls: true } | { tlsFail: unknown } | { eof: true } | { timeout: true }

export const te = new TextEncoder()
const td = new TextDecoder('latin1')

export function toInput(step: Step): StartTlsInput {
  if (typeof step === 'string') return { type: 'data', bytes: latin1(step) }
  if ('tls' in step) return { type: 'tlsEstablished' }
  if ('tlsFail' in step) return { type: 'tlsFailed', cause: step.tlsFail }
  if ('eof' in step) return { type: 'eof' }
  return { type: 'timeout' }
}

export function latin1(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'))
}

/** An action as a short, comparable string. */
export function show(a: StartTlsAction): string {
  switch (a.type) {
    case 'send':
      return `> ${td.decode(a.bytes).replace(/\r\n$/, '')}`
    case 'upgrade':
      return `upgrade ${a.servername}`
    case 'ready':
      return `ready ${a.secure ? 'secure' : 'plaintext'}${a.heloOnly ? ' helo-only' : ''} [${[...a.extensions.keys()].join(' ')}]`
    case 'close':
      return `close ${a.error?.code ?? '-'} ${a.error?.enhancedStatus ?? '-'}${a.reply ? ` (${a.reply.code})` : ''}`
  }
}

export function isFinal(a: StartTlsAction): boolean {
  return a.type === 'ready' || a.type === 'close'
}

export interface Run {
  client: StartTlsClient
  actions: StartTlsAction[]
  shown: string[]
}

export interface Opts {
  requireTls?: boolean
  maxLineLength?: number
  maxLines?: number
}

export function newClient(o: Opts = {}): StartTlsClient {
  const opts: ConstructorParameters<typeof StartTlsClient>[0] = {
    ehloName: 'client.test',
    requireTls: o.requireTls ?? true,
    servername: 'mx.test',
  }
  if (o.maxLineLength !== undefined) opts.maxLineLength = o.maxLineLength
  if (o.maxLines !== undefined) opts.maxLines = o.maxLines
  return new StartTlsClient(opts)
}

/**
 * Replay steps like a driver: each string turn is cut into chunks by `split` (chunk lengths cycled);
 * feeding stops at the first `ready` or `close` action.
 */
export function replay(steps: readonly Step[], o: Opts = {}, split?: (turn: Uint8Array) => Uint8Array[]): Run {
  const client = newClient(o)
  const actions: StartTlsAction[] = []
  outer: for (const step of steps) {
    const inputs: StartTlsInput[] =
      typeof step === 'string' && split ? split(latin1(step)).map((bytes) => ({ type: 'data', bytes })) : [toInput(step)]
    for (const input of inputs) {
      const acts = client.handle(input)
      actions.push(...acts)
      if (acts.some(isFinal)) break outer
    }
  }
  return { client, actions, shown: actions.map(show) }
}

/** Cut bytes at the given offsets (sorted, deduplicated, within range). */
export function cutAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of points) {
    out.push(bytes.slice(prev, p))
    prev = p
  }
  out.push(bytes.slice(prev))
  return out
}

export function bytewise(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (b) => Uint8Array.of(b))
}

// Server profiles -----------------------------------------------------------------------------

const crlf = (lines: string[]) => lines.map((l) => l + '\r\n').join('')

export const postfix = {
  greeting: '220 mx.test ESMTP Postfix (Debian/GNU)\r\n',
  ehlo: crlf([
    '250-mx.test',
    '250-PIPELINING',
    '250-SIZE 10240000',
    '250-VRFY',
    '250-ETRN',
    '250-STARTTLS',
    '250-ENHANCEDSTATUSCODES',
    '250-8BITMIME',
    '250-DSN',
    '250-SMTPUTF8',
    '250 CHUNKING',
  ]),
  starttls: '220 2.0.0 Ready to start TLS\r\n',
  ehloTls: crlf([
    '250-mx.test',
    '250-PIPELINING',
    '250-SIZE 10240000',
    '250-VRFY',
    '250-ETRN',
    '250-AUTH PLAIN LOGIN',
    '250-ENHANCEDSTATUSCODES',
    '250-8BITMIME',
    '250-DSN',
    '250-SMTPUTF8',
    '250-REQUIRETLS',
    '250 CHUNKING',
  ]),
}

export const exim = {
  greeting: '220 mail.exim.test ESMTP Exim 4.96 Sun, 22 Nov 2026 08:00:00 +0000\r\n',
  ehlo: crlf([
    '250-mail.exim.test Hello client.test [192.0.2.1]',
    '250-SIZE 52428800',
    '250-8BITMIME',
    '250-PIPELINING',
    '250-PIPECONNECT',
    '250-CHUNKING',
    '250-STARTTLS',
    '250-PRDR',
    '250 HELP',
  ]),
  starttls: '220 TLS go ahead\r\n',
  ehloTls: crlf([
    '250-mail.exim.test Hello client.test [192.0.2.1]',
    '250-SIZE 52428800',
    '250-8BITMIME',
    '250-PIPELINING',
    '250-AUTH PLAIN LOGIN',
    '250-CHUNKING',
    '250-PRDR',
    '250 HELP',
  ]),
}

/** A minimal server: single lines, bare LF line endings. */
export const minimal = {
  greeting: '220 m\n',
  ehlo: '250-m\n250 STARTTLS\n',
  starttls: '220\n',
  ehloTls: '250 m\n',
}

export type Profile = typeof postfix

export function secureSteps(p: Profile): Step[] {
  return [p.greeting, p.ehlo, p.starttls, { tls: true }, p.ehloTls]
}
