// Child process of hostile-peers.test.ts: a hostile peer must never crash the host process, so the
// shapes run here and the parent checks that this process lived to print its results. An uncaught
// exception (an 'error' event nobody listens to) is recorded instead of killing the process, so the
// parent can say which one it was.
//   node --import tsx test/node/hostile-peers.child.ts shapes
//   node --expose-gc --import tsx test/node/hostile-peers.child.ts soak N
import { setTimeout as sleep } from 'node:timers/promises'
import { main } from '../../src/cli/main.js'
import { SmtpTlsError, type SecurityLevel } from '../../src/index.js'
import { connect, probe } from '../../src/node/index.js'
import { HOSTILE_SHAPES, startHostileServer, type HostileShape } from '../helpers/hostile-smtp.js'

const crashes: string[] = []
process.on('uncaughtException', (e) => crashes.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e)))
process.on('unhandledRejection', (e) => crashes.push(`unhandled rejection: ${e instanceof Error ? e.message : String(e)}`))

const servers = new Map<HostileShape, Awaited<ReturnType<typeof startHostileServer>>>()
for (const shape of HOSTILE_SHAPES) servers.set(shape, await startHostileServer(shape))
const dest = (shape: HostileShape) => `[127.0.0.1]:${servers.get(shape)!.port}`
/** the shape that needs a session to get as far as QUIT runs at `may`; the others require TLS */
const levelOf = (shape: HostileShape): SecurityLevel => (shape === 'reset-after-quit' ? 'may' : 'encrypt')

interface Result {
  shape: HostileShape
  via: 'connect' | 'probe' | 'cli'
  status?: string
  code?: string
  temporary?: boolean
  enhancedStatus?: string
  message?: string
  exit?: number
}

async function viaConnect(shape: HostileShape, timeoutMs: number): Promise<Result> {
  try {
    const c = await connect(dest(shape), { level: levelOf(shape), timeoutMs, ehloName: 'client.test' })
    // the caller's part: QUIT and wait for the server to go away (it resets: reset-after-quit)
    await new Promise<void>((resolve) => {
      c.socket.once('close', () => resolve())
      c.socket.write('QUIT\r\n')
    })
    return { shape, via: 'connect', status: c.outcome.status }
  } catch (e) {
    if (!(e instanceof SmtpTlsError)) return { shape, via: 'connect', code: 'NOT CODED', message: String(e) }
    return {
      shape,
      via: 'connect',
      status: 'rejected',
      code: e.code,
      temporary: e.temporary,
      message: e.message,
      ...(e.enhancedStatus ? { enhancedStatus: e.enhancedStatus } : {}),
    }
  }
}

async function viaProbe(shape: HostileShape, timeoutMs: number): Promise<Result> {
  const r = await probe(dest(shape), { level: levelOf(shape), timeoutMs, ehloName: 'client.test' })
  return {
    shape,
    via: 'probe',
    status: r.outcome.status,
    ...(r.outcome.code ? { code: r.outcome.code } : {}),
    ...(r.outcome.enhancedStatus ? { enhancedStatus: r.outcome.enhancedStatus } : {}),
    ...(r.outcome.reason ? { message: r.outcome.reason } : {}),
    temporary: !r.outcome.permanent,
  }
}

async function viaCli(shape: HostileShape): Promise<Result> {
  let out = ''
  const exit = await main(['probe', dest(shape), '--level', levelOf(shape), '--timeout', '1', '--ehlo', 'client.test'], {
    out: (l) => (out += l + '\n'),
    err: (l) => (out += l + '\n'),
  })
  return { shape, via: 'cli', exit, message: out.trim() }
}

const mode = process.argv[2]
if (mode === 'shapes') {
  const results: Result[] = []
  for (const shape of HOSTILE_SHAPES) {
    results.push(await viaConnect(shape, 1000))
    results.push(await viaProbe(shape, 1000))
    results.push(await viaCli(shape))
  }
  // The library used to destroy failed sockets a second after it let go of them: errors in that
  // window had no listener. Stay alive past it.
  await sleep(1500)
  for (const s of servers.values()) await s.close()
  await sleep(100)
  process.stdout.write(JSON.stringify({ results, crashes }) + '\n')
} else if (mode === 'soak') {
  const n = Number(process.argv[3] ?? 1000)
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with --expose-gc')
  const round = async (count: number) => {
    const codes: Record<string, number> = {}
    const batch = 50
    for (let i = 0; i < count; i += batch) {
      const rs = await Promise.all(
        Array.from({ length: Math.min(batch, count - i) }, (_, j) => {
          const shape = HOSTILE_SHAPES[(i + j) % HOSTILE_SHAPES.length]!
          return (i + j) % 2 === 0 ? viaConnect(shape, 300) : viaProbe(shape, 300)
        }),
      )
      for (const r of rs) codes[r.code ?? r.status ?? '?'] = (codes[r.code ?? r.status ?? '?'] ?? 0) + 1
    }
    return codes
  }
  // Settle: wait until the library has let go of every socket and timer (bounded).
  const settle = async (target: number) => {
    for (let i = 0; i < 40 && process.getActiveResourcesInfo().length > target; i++) await sleep(100)
    await sleep(1200)
    gc()
    await sleep(50)
    gc()
  }
  const idle = process.getActiveResourcesInfo().length
  await round(100) // warm-up: code paths compiled, caches filled
  await settle(idle)
  const before = { handles: process.getActiveResourcesInfo(), heap: process.memoryUsage().heapUsed }
  const codes = await round(n)
  await settle(before.handles.length)
  const after = { handles: process.getActiveResourcesInfo(), heap: process.memoryUsage().heapUsed }
  for (const s of servers.values()) await s.close()
  process.stdout.write(
    JSON.stringify({
      attempts: n,
      codes,
      crashes,
      handlesBefore: before.handles,
      handlesAfter: after.handles,
      heapBefore: before.heap,
      heapAfter: after.heap,
    }) + '\n',
  )
} else {
  throw new Error(`unknown mode ${mode}`)
}
