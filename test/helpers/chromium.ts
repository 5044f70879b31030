// Headless Chromium (Debian `chromium`) driven over the DevTools protocol on a pipe
// (`--remote-debugging-pipe`: requests on fd 3, replies and events on fd 4, each a JSON text ended by
// NUL), so no WebSocket client or npm driver is needed. One browser, one page at a time; every wait
// is bounded, and close() kills the process we started (by its PID).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'

/** Where Debian's chromium package puts the browser; `CHROMIUM` overrides it. */
export const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium'

export interface PageProblem {
  /** `console.error`, an uncaught exception, or a browser log entry (CSP violation, failed load) */
  kind: 'console' | 'exception' | 'log'
  text: string
}

export interface RenderedPage {
  /** Evaluate an expression in the page; its value comes back as JSON. */
  evaluate<T>(expression: string): Promise<T>
  /** A PNG of the whole page (not only the viewport). */
  screenshot(): Promise<Buffer>
  /** Resize the viewport (CSS pixels) and wait until the page has laid out again. */
  resize(width: number, height: number): Promise<void>
  /** Console errors, exceptions and error log entries seen so far. */
  problems: PageProblem[]
  /** Every URL the page asked for, other than the page itself (a self-contained page asks for none). */
  requests: string[]
  close(): Promise<void>
}

export interface Browser {
  open(url: string, width: number, height: number): Promise<RenderedPage>
  close(): Promise<void>
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void
  reject: (e: Error) => void
  timer: ReturnType<typeof setTimeout>
}

export function requireChromium(): void {
  if (!existsSync(CHROMIUM) || spawnSync(CHROMIUM, ['--version'], { timeout: 30_000 }).status !== 0)
    throw new Error(`${CHROMIUM} is missing: run \`bash .ci/run\` (apt-get install chromium); the tests never skip`)
}

/** Start headless Chromium. Every request times out after `timeoutMs`. */
export async function startChromium(timeoutMs = 20_000): Promise<Browser> {
  requireChromium()
  const profile = mkdtempSync(join(tmpdir(), 'stp-chromium-'))
  const args = [
    '--headless',
    '--remote-debugging-pipe',
    `--user-data-dir=${profile}`,
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-gpu',
    '--disable-extensions',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    '--mute-audio',
    '--force-device-scale-factor=1',
    // As root Chromium refuses to start with its sandbox (it needs an unprivileged user namespace).
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
    'about:blank',
  ]
  // its own process group: close() ends the renderer and helper processes too, not only the browser
  const child: ChildProcess = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString('utf8')
  })
  child.on('error', () => {})
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const toBrowser = child.stdio[3] as Writable
  const fromBrowser = child.stdio[4] as Readable
  toBrowser.on('error', () => {})
  fromBrowser.on('error', () => {})
  let nextId = 1
  const pending = new Map<number, Pending>()
  const listeners = new Set<(method: string, params: Record<string, unknown>, sessionId?: string) => void>()
  let buffered = ''
  fromBrowser.on('data', (d: Buffer) => {
    buffered += d.toString('utf8')
    let nul: number
    while ((nul = buffered.indexOf('\0')) >= 0) {
      const msg = JSON.parse(buffered.slice(0, nul)) as {
        id?: number
        method?: string
        params?: Record<string, unknown>
        result?: Record<string, unknown>
        error?: { message: string }
        sessionId?: string
      }
      buffered = buffered.slice(nul + 1)
      if (msg.id !== undefined) {
        const p = pending.get(msg.id)
        if (!p) continue
        pending.delete(msg.id)
        clearTimeout(p.timer)
        if (msg.error) p.reject(new Error(`DevTools: ${msg.error.message}`))
        else p.resolve(msg.result ?? {})
      } else if (msg.method) for (const l of listeners) l(msg.method, msg.params ?? {}, msg.sessionId)
    }
  })
  const failAll = (why: string) => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer)
      pending.delete(id)
      p.reject(new Error(why))
    }
  }
  child.once('exit', (code, signal) => failAll(`chromium exited (${code ?? signal}): ${stderr.slice(0, 2000)}`))

  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null)
        return reject(new Error(`chromium is not running: ${stderr.slice(0, 2000)}`))
      const id = nextId++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`DevTools ${method}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      pending.set(id, { resolve, reject, timer })
      toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0')
    })
  const waitFor = (sessionId: string, method: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(l)
        reject(new Error(`DevTools: no ${method} within ${timeoutMs} ms`))
      }, timeoutMs)
      const l = (m: string, p: Record<string, unknown>, s?: string) => {
        if (m !== method || s !== sessionId) return
        clearTimeout(timer)
        listeners.delete(l)
        resolve(p)
      }
      listeners.add(l)
    })

  const running = (): boolean => child.exitCode === null && child.signalCode === null
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, signal) // the whole group (see spawn)
    } catch {
      // already gone
    }
  }
  const close = async () => {
    // Browser.close lets Chromium end its own processes and finish writing its profile; signals are the fallback.
    if (running()) await send('Browser.close').catch(() => undefined)
    failAll('browser closed')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())])
    if (running()) {
      signalGroup('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())])
    }
    signalGroup('SIGKILL') // helper processes that outlived the browser
    // A helper process may still be writing into the profile as it exits: retry, and never fail the caller's cleanup.
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 })
    } catch {
      // a temporary directory left behind is not a test failure
    }
  }
  try {
    await send('Browser.getVersion')
  } catch (e) {
    await close()
    throw e
  }

  const open = async (url: string, width: number, height: number): Promise<RenderedPage> => {
    const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as { targetId: string }
    const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string }
    const problems: PageProblem[] = []
    const requests: string[] = []
    listeners.add((method, p, s) => {
      if (s !== sessionId) return
      if (method === 'Runtime.consoleAPICalled' && (p['type'] === 'error' || p['type'] === 'assert')) {
        const args = (p['args'] as { value?: unknown; description?: string }[]) ?? []
        problems.push({ kind: 'console', text: args.map((a) => String(a.value ?? a.description ?? '')).join(' ') })
      } else if (method === 'Runtime.exceptionThrown') {
        const d = p['exceptionDetails'] as { text?: string; exception?: { description?: string } }
        problems.push({ kind: 'exception', text: `${d.text ?? ''} ${d.exception?.description ?? ''}`.trim() })
      } else if (method === 'Log.entryAdded') {
        const e = p['entry'] as { level: string; text: string; source: string; url?: string }
        if (e.level === 'error' || e.level === 'warning')
          problems.push({ kind: 'log', text: `${e.source}: ${e.text} ${e.url ?? ''}`.trim() })
      } else if (method === 'Network.requestWillBeSent') {
        const r = p['request'] as { url: string }
        if (r.url !== url) requests.push(r.url)
      }
    })
    for (const domain of ['Page', 'Runtime', 'Log', 'Network']) await send(`${domain}.enable`, {}, sessionId)
    const metrics = (w: number, h: number) =>
      send('Emulation.setDeviceMetricsOverride', { width: w, height: h, deviceScaleFactor: 1, mobile: false }, sessionId)
    await metrics(width, height)
    const loaded = waitFor(sessionId, 'Page.loadEventFired')
    const nav = (await send('Page.navigate', { url }, sessionId)) as { errorText?: string }
    if (nav.errorText) throw new Error(`navigation to ${url} failed: ${nav.errorText}`)
    await loaded
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = (await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId)) as {
        result: { value?: T }
        exceptionDetails?: { text: string; exception?: { description?: string } }
      }
      if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`)
      return r.result.value as T
    }
    // Two animation frames: style and layout have run for the new viewport.
    const settle = () => evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))')
    await settle()
    return {
      evaluate,
      problems,
      requests,
      resize: async (w, h) => {
        await metrics(w, h)
        await settle()
      },
      screenshot: async () => {
        const m = (await send('Page.getLayoutMetrics', {}, sessionId)) as { cssContentSize: { width: number; height: number } }
        const clip = { x: 0, y: 0, width: Math.ceil(m.cssContentSize.width), height: Math.ceil(m.cssContentSize.height), scale: 1 }
        const r = (await send('Page.captureScreenshot', { format: 'png', clip, captureBeyondViewport: true }, sessionId)) as {
          data: string
        }
        return Buffer.from(r.data, 'base64')
      },
      close: async () => {
        await send('Target.closeTarget', { targetId })
      },
    }
  }
  return { open, close }
}
