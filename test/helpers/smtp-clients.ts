// Reference SMTP clients run asynchronously (an in-process smtp-server must keep answering):
// `openssl s_client` driven line by line, and `posttls-finger`.
import { spawn } from 'node:child_process'
import { connect as netConnect } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Issued } from './openssl.js'

export interface ClientRun {
  /** the final line of every reply, in order */
  replies: string[]
  output: string
}

/** The reply to RCPT TO in a run that ends with RCPT, QUIT: the one before the 221. */
export function rcptReply(run: ClientRun): string | undefined {
  return run.replies.at(-1)?.startsWith('221') === true ? run.replies.at(-2) : undefined
}

/**
 * `openssl s_client` as an SMTP client: STARTTLS (`-starttls smtp`, s_client does the first EHLO)
 * or implicit TLS. Sends each command after the previous reply; the last reply ends the run.
 */
export function opensslSmtp(o: {
  host: string
  port: number
  implicit: boolean
  /** client certificate and key, written to `dir` */
  cert?: Issued
  dir: string
  commands: string[]
  /** more s_client arguments, e.g. ['-tls1_2'] */
  args?: string[]
  timeoutMs?: number
}): Promise<ClientRun> {
  const args = ['s_client', '-connect', `${o.host}:${o.port}`, '-crlf', '-quiet', '-nocommands', '-verify_quiet']
  if (!o.implicit) args.push('-starttls', 'smtp', '-name', 'client.test')
  args.push(...(o.args ?? []))
  if (o.cert) {
    const f = join(o.dir, `client-${Math.random().toString(36).slice(2)}.pem`)
    writeFileSync(f, o.cert.pem + o.cert.keyPem)
    args.push('-cert', f, '-key', f)
  }
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    let buf = ''
    const replies: string[] = []
    const queue = [...o.commands]
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`openssl s_client timed out; output:\n${output}`))
    }, o.timeoutMs ?? 15_000)
    const send = () => {
      const c = queue.shift()
      if (c === undefined) child.stdin.end()
      else child.stdin.write(c + '\n')
    }
    child.stdin.on('error', () => undefined)
    child.stderr.on('data', (d: Buffer) => (output += d.toString('latin1')))
    child.stdout.on('data', (d: Buffer) => {
      const s = d.toString('latin1')
      output += s
      buf += s
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '')
        buf = buf.slice(nl + 1)
        if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
          replies.push(line)
          if (o.implicit) send()
        }
      }
    })
    child.on('error', reject)
    child.on('close', () => {
      clearTimeout(timer)
      resolve({ replies, output })
    })
    // STARTTLS: s_client already read the greeting and the first EHLO reply, and may print a
    // leftover line of it; pipeline every command (RFC 2920: both servers offer PIPELINING).
    if (!o.implicit) {
      child.stdin.write(queue.splice(0).join('\n') + '\n')
      child.stdin.end()
    }
  })
}

/** posttls-finger, asynchronously. */
export function posttlsFingerAsync(args: string[], configDir: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('posttls-finger', args, { env: { ...process.env, MAIL_CONFIG: configDir }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.on('data', (d: Buffer) => (output += d.toString('latin1')))
    child.stderr.on('data', (d: Buffer) => (output += d.toString('latin1')))
    child.on('error', reject)
    child.on('close', () => {
      clearTimeout(timer)
      resolve(output)
    })
  })
}

/** A plaintext SMTP client: sends each command after the previous reply (the greeting first). */
export function plainSmtp(o: { host: string; port: number; commands: string[]; timeoutMs?: number }): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const s = netConnect(o.port, o.host)
    const replies: string[] = []
    const queue = [...o.commands]
    let output = ''
    let buf = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`SMTP client timed out; output:\n${output}`))
    }, o.timeoutMs ?? 15_000)
    s.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    s.on('data', (d: Buffer) => {
      const t = d.toString('latin1')
      output += t
      buf += t
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '')
        buf = buf.slice(nl + 1)
        if (/^\d{3}( |$)/.test(line)) {
          replies.push(line)
          // DATA content goes out in one piece after the 354
          const c = queue.shift()
          if (c === undefined) s.end()
          else if (line.startsWith('354')) {
            const end = queue.indexOf('.')
            const body = [c, ...queue.splice(0, end + 1)]
            s.write(body.join('\r\n') + '\r\n')
          } else s.write(c + '\r\n')
        }
      }
    })
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ replies, output })
    })
  })
}
