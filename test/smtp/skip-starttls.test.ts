// skipStartTls: Postfix level `none`, and the plaintext retry after a failed handshake at `may`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { StartTlsClient, type StartTlsAction } from '../../src/index.js'
import { throwsCoded } from '../helpers/assert-coded.js'

const bytes = (s: string) => ({ type: 'data' as const, bytes: new Uint8Array(Buffer.from(s)) })
const sent = (acts: StartTlsAction[]) => acts.flatMap((a) => (a.type === 'send' ? [Buffer.from(a.bytes).toString()] : []))

describe('StartTlsClient skipStartTls', () => {
  it('never sends STARTTLS even when offered, and ends in a plaintext ready', () => {
    const c = new StartTlsClient({ ehloName: 'client.test', requireTls: false, servername: 'mx.test', skipStartTls: true })
    assert.deepEqual(sent(c.handle(bytes('220 mx.test ESMTP\r\n'))), ['EHLO client.test\r\n'])
    const acts = c.handle(bytes('250-mx.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n'))
    assert.deepEqual(sent(acts), [])
    const ready = acts.find((a) => a.type === 'ready')
    assert.ok(ready && ready.type === 'ready')
    assert.equal(ready.secure, false)
  })
  it('without it, the same transcript sends STARTTLS', () => {
    const c = new StartTlsClient({ ehloName: 'client.test', requireTls: false, servername: 'mx.test' })
    c.handle(bytes('220 mx.test ESMTP\r\n'))
    assert.deepEqual(sent(c.handle(bytes('250-mx.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n'))), ['STARTTLS\r\n'])
  })
  it('cannot be combined with requireTls, and must be a boolean', () => {
    throwsCoded(() => new StartTlsClient({ ehloName: 'c', requireTls: true, servername: 'mx', skipStartTls: true }), 'ERR_INVALID_ARGUMENT')
    throwsCoded(
      () => new StartTlsClient({ ehloName: 'c', requireTls: false, servername: 'mx', skipStartTls: 'yes' as never }),
      'ERR_INVALID_ARGUMENT',
    )
  })
})
