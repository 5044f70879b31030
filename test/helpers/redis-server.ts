// A real redis-server (the Debian package) on a Unix socket in a temporary directory: no TCP port, so
// nothing clashes with other tests or helpers on this machine.
import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { join } from 'node:path'
import { tempDir } from './openssl.js'

export interface TestRedis {
  /** the Unix socket path */
  path: string
  /** SIGKILL the server (a crash), without waiting */
  kill(): void
  /** resolves when the server has exited */
  exited: Promise<void>
  /** stop the server and remove its directory */
  stop(): Promise<void>
}

function reachable(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path)
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

/** `at`: the socket path, e.g. the one of a server that was killed, to start it again there. */
export async function startRedis(at?: string): Promise<TestRedis> {
  const tmp = tempDir()
  const path = at ?? join(tmp.dir, 'redis.sock')
  const proc: ChildProcess = spawn(
    '/usr/bin/redis-server',
    ['--port', '0', '--unixsocket', path, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', tmp.dir],
    { stdio: 'ignore' },
  )
  proc.on('error', () => {})
  const exited = new Promise<void>((res) => proc.on('exit', () => res()))
  for (let i = 0; i < 200 && !(await reachable(path)); i++) await new Promise((r) => setTimeout(r, 25))
  return {
    path,
    kill: () => void proc.kill('SIGKILL'),
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      await exited
      tmp.done()
    },
  }
}
