// Assertions shared by the unit and property tests.
import assert from 'node:assert/strict'
import { SmtpTlsError, type ErrorCode } from '../../src/errors.js'

/** `fn` must throw an SmtpTlsError with `code` (and, when given, a message matching `re`). */
export function throwsCoded(fn: () => unknown, code: ErrorCode, re?: RegExp): SmtpTlsError {
  try {
    fn()
  } catch (e) {
    assert.ok(e instanceof SmtpTlsError, `expected SmtpTlsError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (re) assert.match(e.message, re)
    return e
  }
  assert.fail(`expected ${code} to be thrown`)
}

/** Run `fn`; anything thrown must be an SmtpTlsError with one of `codes`. */
export function onlyCoded(fn: () => unknown, codes: readonly ErrorCode[]): void {
  try {
    fn()
  } catch (e) {
    if (!(e instanceof SmtpTlsError)) throw new Error(`threw a non-coded error: ${String(e)}`, { cause: e })
    if (!codes.includes(e.code)) throw new Error(`unexpected code ${e.code}: ${e.message}`)
  }
}

export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
}
