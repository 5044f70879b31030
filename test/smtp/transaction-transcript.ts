// Transcript replay for the SmtpTransaction tests: server turns and client inputs in, actions out as short strings.
import {
  parseEhloCapabilities,
  SmtpTransaction,
  type SmtpEnvelope,
  type SmtpTransactionAction,
  type SmtpTransactionInput,
  type SmtpTransactionOptions,
} from '../../src/index.js'
import { latin1 } from './transcript.js'

/** A server turn (string), or a client input. */
export type TxStep =
  | string
  | { mail: SmtpEnvelope }
  | { body: string }
  | { bodyEnd: true; bytes?: string }
  | { quit: true }
  | { eof: true }
  | { timeout: true }

const td = new TextDecoder('latin1')

export function toInput(step: TxStep): SmtpTransactionInput {
  if (typeof step === 'string') return { type: 'data', bytes: latin1(step) }
  if ('mail' in step) return { type: 'mail', envelope: step.mail }
  if ('body' in step) return { type: 'body', bytes: latin1(step.body) }
  if ('bodyEnd' in step) return step.bytes === undefined ? { type: 'bodyEnd' } : { type: 'bodyEnd', bytes: latin1(step.bytes) }
  if ('quit' in step) return { type: 'quit' }
  if ('eof' in step) return { type: 'eof' }
  return { type: 'timeout' }
}

/** An action as a short, comparable string; a send shows its lines joined by " | ". */
export function show(a: SmtpTransactionAction): string {
  switch (a.type) {
    case 'send':
      return `> ${td.decode(a.bytes).replace(/\r\n$/, '').split('\r\n').join(' | ')}`
    case 'needBody':
      return 'needBody'
    case 'done': {
      const r = a.result
      const rs = r.recipients.map((x) => `${x.address}=${x.status}:${x.code ?? '-'}:${x.enhancedStatus}`).join(' ')
      return `done ${rs}${r.dataReply ? ` data=${r.dataReply.code}` : ''}${r.error ? ` error=${r.error.code}` : ''}`
    }
    case 'close':
      return `close ${a.error?.code ?? '-'} ${a.error?.enhancedStatus ?? '-'}${a.reply ? ` (${a.reply.code})` : ''}`
  }
}

/** EHLO capabilities from extension lines. */
export function caps(...lines: string[]) {
  return parseEhloCapabilities(['mx.test', ...lines])
}

/** Postfix after STARTTLS, with AUTH for the relay tests. */
export const FULL = [
  'PIPELINING',
  'SIZE 10240000',
  'ENHANCEDSTATUSCODES',
  '8BITMIME',
  'DSN',
  'SMTPUTF8',
  'REQUIRETLS',
  'CHUNKING',
  'AUTH PLAIN LOGIN',
]
/** A server with no extension at all: lock-step, DATA. */
export const BARE: string[] = []

export interface TxOpts extends Partial<Omit<SmtpTransactionOptions, 'capabilities'>> {
  ext?: string[]
}

export function newTx(o: TxOpts = {}): SmtpTransaction {
  const { ext, ...rest } = o
  return new SmtpTransaction({ secure: true, servername: 'mx.test', ...rest, capabilities: caps(...(ext ?? BARE)) })
}

export interface TxRun {
  tx: SmtpTransaction
  actions: SmtpTransactionAction[]
  shown: string[]
}

/** Replay steps; server turns cut by `split` when given; stops at the first close. */
export function replayTx(steps: readonly TxStep[], o: TxOpts = {}, split?: (turn: Uint8Array) => Uint8Array[]): TxRun {
  const tx = newTx(o)
  const actions: SmtpTransactionAction[] = []
  outer: for (const step of steps) {
    const inputs: SmtpTransactionInput[] =
      typeof step === 'string' && split ? split(latin1(step)).map((bytes) => ({ type: 'data', bytes })) : [toInput(step)]
    for (const input of inputs) {
      const acts = tx.handle(input)
      actions.push(...acts)
      if (acts.some((a) => a.type === 'close')) break outer
    }
  }
  return { tx, actions, shown: actions.map(show) }
}

/**
 * What a server stores from a DATA stream: undo dot-stuffing up to the final "." line (RFC 5321
 * §4.5.2). Returns undefined when the stream has no terminator.
 */
export function unstuff(wire: string): string | undefined {
  if (!wire.endsWith('\r\n.\r\n') && wire !== '.\r\n') return undefined
  const body = wire === '.\r\n' ? '' : wire.slice(0, -3)
  return body
    .split('\r\n')
    .map((l) => (l.startsWith('.') ? l.slice(1) : l))
    .join('\r\n')
}

/** The message a server should store for `input`: every CR, LF and CRLF as CRLF, and a final CRLF. */
export function normalised(input: string): string {
  const s = input.replace(/\r\n|\r|\n/g, '\r\n')
  return s === '' || s.endsWith('\r\n') ? s : s + '\r\n'
}

/** Reassemble BDAT commands: the chunks' bytes, with a check of every announced size. */
export function unchunk(wire: string): { body: string; sizes: number[]; last: boolean } {
  let i = 0
  let body = ''
  const sizes: number[] = []
  let last = false
  while (i < wire.length) {
    const eol = wire.indexOf('\r\n', i)
    const m = /^BDAT (\d+)( LAST)?$/.exec(wire.slice(i, eol))
    if (!m) throw new Error(`not a BDAT command at ${i}: ${JSON.stringify(wire.slice(i, i + 20))}`)
    const n = Number(m[1])
    sizes.push(n)
    body += wire.slice(eol + 2, eol + 2 + n)
    i = eol + 2 + n
    if (m[2]) {
      last = true
      if (i !== wire.length) throw new Error('bytes after BDAT LAST')
    }
  }
  return { body, sizes, last }
}
