/**
 * One STARTTLS session to one address, for {@link check}: greeting, EHLO, STARTTLS, the handshake with no
 * verification (the chain is judged afterwards with verifyDane), then QUIT. Bounded by a timeout per step.
 */
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls'
import { StartTlsClient } from '../../smtp/starttls.js'

export interface SessionResult {
  connected: boolean
  starttls?: boolean
  protocol?: string
  cipher?: string
  chain: Uint8Array[]
  error?: string
}

/**
 * One secure context for every session: building one costs about a millisecond of CPU, and the
 * sessions of a check share the one event loop, so per-session contexts made the sessions of a
 * 2 MX × 2 address domain take about four times as long as one (bench/check.ts). `ca: []`: an empty
 * trust store, so that Node adds no root of its own to the peer chain: the chain is the one sent.
 * Node keeps no client sessions in it (no resumption unless asked), so each session sends its chain.
 */
let shared: SecureContext | undefined
const context = (): SecureContext => (shared ??= createSecureContext({ ca: [] }))

/**
 * The peer chain, leaf first, as Node orders what the server sent (each certificate followed by its
 * issuer when the server sent it). Through X509Certificate objects: `getPeerCertificate(true)` builds
 * a JavaScript object per certificate with every field decoded, about a millisecond of CPU per session.
 */
function chainOf(tls: TLSSocket): Uint8Array[] {
  const chain: Buffer[] = []
  let c = tls.getPeerX509Certificate()
  while (c && chain.length < 16) {
    const raw = c.raw
    if (chain.some((x) => x.equals(raw))) break // a self-signed certificate is its own issuer
    chain.push(raw)
    c = c.issuerCertificate
  }
  return chain.map((b) => new Uint8Array(b))
}

export function runSession(
  address: string,
  port: number,
  servername: string,
  ehloName: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<SessionResult> {
  return new Promise((resolve) => {
    const result: SessionResult = { connected: false, chain: [] }
    const client = new StartTlsClient({ ehloName, requireTls: false, servername })
    let tls: TLSSocket | undefined
    let finished = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const arm = (what: string) => {
      if (timer) clearTimeout(timer)
      timer = setTimeout(() => finish(`timeout after ${timeoutMs} ms waiting for ${what}`), timeoutMs)
    }
    const finish = (error?: string) => {
      if (finished) return
      finished = true
      if (timer) clearTimeout(timer)
      if (error !== undefined && result.error === undefined) result.error = error
      signal?.removeEventListener('abort', onAbort)
      tls?.destroy()
      raw.destroy()
      resolve(result)
    }
    const onAbort = () => finish('aborted')
    const raw: Socket = netConnect({ host: address, port })
    raw.on('error', (e) => finish(e.message))
    raw.on('close', () => finish(result.starttls === undefined ? 'connection closed' : undefined))
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted) return finish('aborted')
    arm('the TCP connection')
    raw.on('connect', () => {
      result.connected = true
      arm('the greeting')
    })
    const onData = (bytes: Buffer) => {
      for (const a of client.handle({ type: 'data', bytes })) {
        if (a.type === 'send') {
          raw.write(a.bytes)
          arm('a reply')
        } else if (a.type === 'upgrade') {
          result.starttls = true
          raw.off('data', onData)
          arm('the TLS handshake')
          // No verification here: the chain is judged by verifyDane and the certificate checks.
          tls = tlsConnect({ socket: raw, servername: a.servername, rejectUnauthorized: false, secureContext: context() })
          tls.on('error', (e) => finish(`TLS handshake failed: ${e.message}`))
          tls.on('secureConnect', () => {
            const t = tls as TLSSocket
            const p = t.getProtocol()
            if (p) result.protocol = p
            result.cipher = t.getCipher().standardName || t.getCipher().name
            result.chain = chainOf(t)
            t.write('QUIT\r\n')
            finish()
          })
        } else if (a.type === 'ready') {
          // Only reached without TLS: the server did not offer STARTTLS.
          result.starttls = false
          raw.write('QUIT\r\n')
          finish()
        } else if (a.type === 'close') {
          const s = client.state
          finish(s.name === 'closed' && s.error ? s.error.message : 'the server closed the session')
        }
      }
    }
    raw.on('data', onData)
  })
}
