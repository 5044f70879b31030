// SmtpTlsError: the class of a temporary failure's enhanced status is 4 (RFC 3463 §3.1; issue 10 §5).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SmtpTlsError } from '../src/index.js'

describe('SmtpTlsError enhanced status', () => {
  const rows: Array<[string, { temporary?: boolean; enhancedStatus: string }, string]> = [
    ['temporary by default: a server 5.7.1 becomes 4.7.1', { enhancedStatus: '5.7.1' }, '4.7.1'],
    ['temporary: 5.1.10 becomes 4.1.10', { temporary: true, enhancedStatus: '5.1.10' }, '4.1.10'],
    ['temporary 4.7.5 stays', { enhancedStatus: '4.7.5' }, '4.7.5'],
    ['permanent 5.1.10 stays (null MX, RFC 7505)', { temporary: false, enhancedStatus: '5.1.10' }, '5.1.10'],
    ['permanent 4.x.x is left as given', { temporary: false, enhancedStatus: '4.7.0' }, '4.7.0'],
  ]
  for (const [name, opts, want] of rows) {
    it(name, () => {
      const e = new SmtpTlsError('ERR_SMTP_REJECTED', 'host refused to talk to me: 554 5.7.1 go away', opts)
      assert.equal(e.enhancedStatus, want)
      assert.match(e.message, /554 5\.7\.1 go away/, 'the server reply is kept in the message')
    })
  }
})
