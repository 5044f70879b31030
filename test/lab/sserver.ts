// `openssl s_server` as a lab peer (test/lab/README.md): OpenSSL's own TLS server, which reports the
// SNI name of every ClientHello ("Hostname in TLS extension"), can serve a second certificate for one
// SNI name (-servername/-cert2/-key2), and speaks exactly the protocol versions it is told (-tls1_1).
// s_server has no STARTTLS of its own, so a plaintext SMTP front on ADDRESS:25 answers the greeting,
// EHLO and STARTTLS, then joins the connection byte for byte to s_server on ADDRESS:2526. After the
// handshake, s_server prints what the client sends on its stdout and sends what it reads on its stdin:
// this module answers the post-TLS EHLO and QUIT through that pipe.
// Processes are started here and stopped by their PID; nothing else is touched.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { tempDir } from '../helpers/openssl.js'

export interface SServerSpec {
  /** 127.0.x.y only; the front listens on port 25, s_server on 2526 */
  address: string
  /** PEM chain (leaf first) and key served by default */
  certPem: string
  keyPem: string
  /** a second certificate, served when the ClientHello's SNI equals `servername` (s_server -servername/-cert2/-key2) */
  sni?: { servername: string; certPem: string; keyPem: string }
  /** more s_server arguments, e.g. ['-tls1_1', '-cipher', 'DEFAULT:@SECLEVEL=0'] */
  args?: string[]
  /** the name in the SMTP greeting and EHLO reply */
  name?: string
}

export interface SServer {
  address: string
  /** the SNI names s_server reported since the last call ('' is never reported: no SNI, no line) */
  takeServernames(): string[]
  /** s_server's output so far (stdout and stderr) */
  log(): string
  /** resolves once s_server has reported `n` connections closed since it started (bounded: rejects after 10 s) */
  closed(n: number): Promise<void>
  /** connections s_server has reported closed so far */
  closedCount(): number
  stop(): Promise<void>
}

export const FRONT_PORT = 25
const BACKEND_PORT = 2526

function assertLoopback(address: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address)) throw new Error(`lab addresses must be in 127.0.0.0/8, got ${address}`)
}

function ignore(): void {}

/** The plaintext half of an SMTP server: greeting, EHLO with STARTTLS, then a byte pipe to s_server. */
function front(address: string, name: string): Promise<{ server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>()
  const server = createServer((c) => {
    sockets.add(c)
    c.on('error', ignore)
    c.on('close', () => sockets.delete(c))
    c.setNoDelay(true)
    let buf = ''
    const onData = (b: Buffer) => {
      buf += b.toString('latin1')
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).replace(/\r$/, '')
        buf = buf.slice(i + 1)
        const verb = line.slice(0, 8).toUpperCase()
        if (verb.startsWith('EHLO ')) c.write(`250-${name}\r\n250-PIPELINING\r\n250 STARTTLS\r\n`)
        else if (verb.startsWith('HELO ')) c.write(`250 ${name}\r\n`)
        else if (verb === 'STARTTLS') {
          // RFC 3207 §4: from here on the bytes belong to TLS; nothing read after the command is kept
          c.removeListener('data', onData)
          c.pause()
          const b = connect({ host: address, port: BACKEND_PORT })
          b.on('error', () => c.destroy())
          b.setNoDelay(true)
          b.once('connect', () => {
            c.write('220 2.0.0 Ready to start TLS\r\n')
            c.pipe(b)
            b.pipe(c)
            c.resume()
          })
          c.on('close', () => b.destroy())
          b.on('close', () => c.destroy())
          return
        } else if (verb === 'QUIT') {
          c.end('221 2.0.0 Bye\r\n')
          return
        } else c.write('250 2.0.0 Ok\r\n')
      }
    }
    c.on('data', onData)
    c.write(`220 ${name} ESMTP lab front for openssl s_server\r\n`)
  })
  server.on('error', ignore)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(FRONT_PORT, address, () => {
      server.removeListener('error', reject)
      resolve({ server, sockets })
    })
  })
}

/** Start s_server and its STARTTLS front on `spec.address`. Always call stop(). */
export async function startSServer(spec: SServerSpec): Promise<SServer> {
  assertLoopback(spec.address)
  if (spawnSync('sh', ['-c', 'command -v openssl && command -v stdbuf']).status !== 0) {
    throw new Error('openssl or stdbuf (coreutils) is not installed: run `bash .ci/run`; the lab never skips')
  }
  const name = spec.name ?? 'sserver.lab.test'
  const { dir, done } = tempDir()
  writeFileSync(join(dir, 'cert.pem'), spec.certPem)
  writeFileSync(join(dir, 'key.pem'), spec.keyPem, { mode: 0o600 })
  const args = ['-accept', `${spec.address}:${BACKEND_PORT}`, '-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem')]
  if (spec.sni) {
    writeFileSync(join(dir, 'cert2.pem'), spec.sni.certPem)
    writeFileSync(join(dir, 'key2.pem'), spec.sni.keyPem, { mode: 0o600 })
    args.push('-servername', spec.sni.servername, '-cert2', join(dir, 'cert2.pem'), '-key2', join(dir, 'key2.pem'))
  }
  args.push(...(spec.args ?? []))
  // stdbuf: s_server writes through stdio; line-buffered, each report reaches us when it is made
  const child: ChildProcess = spawn('stdbuf', ['-oL', '-eL', 'openssl', 's_server', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  child.on('error', ignore)
  child.stdin!.on('error', ignore)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let out = ''
  let pending = ''
  let servernames: string[] = []
  let closedCount = 0
  const closeWaiters = new Set<() => void>()
  let accepting!: () => void
  const accepted = new Promise<void>((resolve) => (accepting = resolve))
  child.stdout!.on('data', (b: Buffer) => {
    const s = b.toString('latin1')
    out += s
    pending += s
    for (let i = pending.indexOf('\n'); i >= 0; i = pending.indexOf('\n')) {
      const line = pending.slice(0, i).replace(/\r$/, '')
      pending = pending.slice(i + 1)
      if (line === 'ACCEPT') accepting()
      if (line === 'CONNECTION CLOSED') {
        closedCount++
        for (const w of closeWaiters) w()
      }
      const sni = /^Hostname in TLS extension: "(.*)"$/.exec(line)
      if (sni) servernames.push(sni[1]!)
      // the client's commands inside TLS (s_server prints them as they arrive); lines starting with
      // Q, q, r, R, k, K, c, P or S would be s_server commands, and a reply code never does
      const verb = line.slice(0, 5).toUpperCase()
      if (verb === 'EHLO ') child.stdin!.write(`250-${name}\r\n250 8BITMIME\r\n`)
      else if (verb === 'QUIT') child.stdin!.write('221 2.0.0 Bye\r\n')
      else if (/^(MAIL|RCPT|RSET|NOOP)\b/i.test(line)) child.stdin!.write('250 2.0.0 Ok\r\n')
    }
  })
  child.stderr!.on('data', (b: Buffer) => (out += b.toString('latin1')))
  let fr: { server: Server; sockets: Set<Socket> } | undefined
  const stop = async () => {
    if (fr) {
      for (const s of fr.sockets) s.destroy()
      await new Promise<void>((resolve) => fr!.server.close(() => resolve()))
      fr = undefined
    }
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    done()
  }
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      accepted,
      exited.then(() => {
        throw new Error(`openssl s_server exited on ${spec.address}:\n${out}`)
      }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`openssl s_server did not accept within 10 s:\n${out}`)), 10_000)
      }),
    ])
    fr = await front(spec.address, name)
  } catch (e) {
    await stop()
    throw e
  } finally {
    clearTimeout(timer)
  }
  return {
    address: spec.address,
    takeServernames: () => {
      const r = servernames
      servernames = []
      return r
    },
    log: () => out,
    closedCount: () => closedCount,
    closed: (n) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (closedCount < n) return
          closeWaiters.delete(check)
          clearTimeout(t)
          resolve()
        }
        const t = setTimeout(() => {
          closeWaiters.delete(check)
          reject(new Error(`s_server reported ${closedCount} closed connections, not ${n}:\n${out.slice(-3000)}`))
        }, 10_000)
        closeWaiters.add(check)
        check()
      }),
    stop,
  }
}
