// Drive the sans-IO StartTlsClient over a real socket: npx tsx examples/custom-driver.ts mx.example.com [port]
import { connect } from 'node:net'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { StartTlsClient, type StartTlsInput } from 'smtp-tls-policy'

const [host = 'localhost', port = '25'] = process.argv.slice(2)
const client = new StartTlsClient({ ehloName: 'client.example', requireTls: true, servername: host })
const raw = connect(Number(port), host)
let io: typeof raw | TLSSocket = raw
let done = false // after `ready` or `close` the socket is ours, the machine is finished
raw.setTimeout(30_000, () => feed({ type: 'timeout' }))
const onData = (bytes: Buffer) => feed({ type: 'data', bytes })

function feed(input: StartTlsInput): void {
  if (done) return
  for (const a of client.handle(input)) {
    done ||= a.type === 'ready' || a.type === 'close'
    if (a.type === 'send') io.write(a.bytes)
    else if (a.type === 'upgrade') {
      raw.off('data', onData) // RFC 3207 §4.2: from now on only the TLS layer reads the socket
      const tls = tlsConnect({ socket: raw, servername: a.servername })
      tls.once('secureConnect', () => feed({ type: 'tlsEstablished' }))
      tls.once('error', (cause) => feed({ type: 'tlsFailed', cause }))
      tls.on('data', onData)
      io = tls
    } else if (a.type === 'ready') {
      console.log(client.transcript.join('\n'))
      console.log(`ready (secure: ${a.secure}), extensions: ${[...a.extensions.keys()].join(' ')}`)
      io.end('QUIT\r\n') // a real client would now send MAIL FROM on `io`
    } else if (a.type === 'close') {
      console.error(`${a.error?.code} ${a.error?.enhancedStatus}: ${a.error?.message}`)
      io.destroy()
    }
  }
}
raw.on('data', onData).once('end', () => feed({ type: 'eof' }))
raw.on('error', () => feed({ type: 'eof' }))
