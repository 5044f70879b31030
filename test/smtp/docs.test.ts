// docs/starttls.md embeds the state diagram generated from STARTTLS_TRANSITIONS; they must not drift.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { STARTTLS_TRANSITIONS, startTlsDiagram } from '../../src/index.js'

const doc = readFileSync(new URL('../../docs/starttls.md', import.meta.url), 'utf8')

describe('docs/starttls.md', () => {
  it('holds the diagram generated from the transition table', () => {
    const m = /<!-- diagram:start -->\s*```mermaid\n([\s\S]*?)```\s*<!-- diagram:end -->/.exec(doc)
    assert.ok(m, 'no diagram block between the markers')
    const expected = startTlsDiagram()
    assert.equal(m[1], expected, `docs/starttls.md is out of date; the diagram should be:\n${expected}`)
  })

  it('the diagram has one edge per row of the live states', () => {
    const edges = startTlsDiagram()
      .split('\n')
      .filter((l) => l.includes(' --> ') && !l.includes('[*]'))
    assert.equal(edges.length, STARTTLS_TRANSITIONS.filter((t) => t.from !== 'ready' && t.from !== 'closed').length)
  })

  it('every error code the machine can close with is documented', () => {
    for (const code of [
      'ERR_STARTTLS_NOT_OFFERED',
      'ERR_STARTTLS_REFUSED',
      'ERR_TLS_HANDSHAKE',
      'ERR_SMTP_RESPONSE_INJECTION',
      'ERR_SMTP_REJECTED',
      'ERR_SMTP_PROTOCOL',
      'ERR_SMTP_REPLY_SYNTAX',
      'ERR_SMTP_REPLY_TOO_LONG',
      'ERR_SMTP_EOF',
      'ERR_SMTP_TIMEOUT',
      'ERR_STATE',
    ]) {
      assert.ok(doc.includes(`\`${code}\``), `${code} missing from docs/starttls.md`)
    }
  })
})
