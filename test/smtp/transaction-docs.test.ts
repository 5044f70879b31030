// docs/transaction.md embeds the state diagram generated from SMTP_TRANSACTION_TRANSITIONS; they must not drift.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { SMTP_TRANSACTION_TRANSITIONS, smtpTransactionDiagram } from '../../src/index.js'

const doc = readFileSync(new URL('../../docs/transaction.md', import.meta.url), 'utf8')

describe('docs/transaction.md', () => {
  it('holds the diagram generated from the transition table', () => {
    const m = /<!-- diagram:start -->\s*```mermaid\n([\s\S]*?)```\s*<!-- diagram:end -->/.exec(doc)
    assert.ok(m, 'no diagram block between the markers')
    const expected = smtpTransactionDiagram()
    assert.equal(m[1], expected, `docs/transaction.md is out of date; the diagram should be:\n${expected}`)
  })

  it('the diagram has one edge per row of the live states', () => {
    const edges = smtpTransactionDiagram()
      .split('\n')
      .filter((l) => l.includes(' --> ') && !l.includes('[*]'))
    assert.equal(edges.length, SMTP_TRANSACTION_TRANSITIONS.filter((t) => t.from !== 'closed').length)
  })

  it('every state and every error code the machine can close with is documented', () => {
    for (const s of new Set(SMTP_TRANSACTION_TRANSITIONS.flatMap((t) => [t.from, t.to]))) {
      if (s !== '*') assert.ok(doc.includes(`| \`${s}\``), `state ${s} missing from the state table`)
    }
    for (const code of [
      'ERR_SMTP_REJECTED',
      'ERR_SMTP_PROTOCOL',
      'ERR_SMTP_REPLY_SYNTAX',
      'ERR_SMTP_REPLY_TOO_LONG',
      'ERR_SMTP_EOF',
      'ERR_SMTP_TIMEOUT',
      'ERR_SMTP_AUTH_FAILED',
      'ERR_SMTP_AUTH_UNAVAILABLE',
      'ERR_SMTP_AUTH_INSECURE',
      'ERR_SMTP_MESSAGE_TOO_BIG',
      'ERR_SMTP_EXTENSION_MISSING',
      'ERR_SMTP_BAD_ADDRESS',
      'ERR_REQUIRETLS',
      'ERR_ABORTED',
      'ERR_STATE',
      'ERR_INVALID_ARGUMENT',
    ]) {
      assert.ok(doc.includes(`\`${code}\``), `${code} missing from docs/transaction.md`)
    }
  })
})
