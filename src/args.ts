/**
 * Checks of the caller's arguments, shared by every entry point (DESIGN.md §3: a wrong type is a
 * coded `ERR_INVALID_ARGUMENT`, never a bare `TypeError`).
 */
import { SmtpTlsError } from './errors.js'

/** `ERR_INVALID_ARGUMENT`: the caller's mistake, so never temporary. */
export function invalidArgument(message: string, cause?: unknown): SmtpTlsError {
  return new SmtpTlsError('ERR_INVALID_ARGUMENT', message, cause === undefined ? { temporary: false } : { temporary: false, cause })
}

/** A short description of any value for an error message; never throws (no getter, toString or trap runs). */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v)
    case 'number':
    case 'boolean':
    case 'undefined':
      return String(v)
    case 'bigint':
      return 'a bigint'
    case 'symbol':
      return 'a symbol'
    case 'function':
      return 'a function'
    default:
      return v === null ? 'null' : 'an object'
  }
}

/**
 * Turn anything thrown while reading the caller's arguments (a getter, a `Proxy` trap, a `toString`)
 * into `ERR_INVALID_ARGUMENT`; an {@link SmtpTlsError} passes through unchanged.
 */
export function coded(e: unknown, what: string): SmtpTlsError {
  if (e instanceof SmtpTlsError) return e
  let detail = ''
  try {
    detail = e instanceof Error ? `: ${e.message}` : ''
  } catch {
    detail = ''
  }
  return invalidArgument(`${what}: could not read the arguments${detail}`, e)
}

/**
 * An options argument: `undefined` gives `{}`; anything else must be a non-null object, and the named
 * keys are read once into a plain snapshot (so a getter runs once, and a throwing one is coded).
 */
export function readOptions<K extends string>(value: unknown, what: string, keys: readonly K[]): Partial<Record<K, unknown>> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw invalidArgument(`${what} must be an object, got ${describeValue(value)}`)
  const out: Partial<Record<K, unknown>> = {}
  try {
    for (const k of keys) {
      const v = (value as Record<string, unknown>)[k]
      if (v !== undefined) out[k] = v
    }
  } catch (e) {
    throw coded(e, what)
  }
  return out
}

/** Is `v` a Uint8Array (a throwing `Proxy` trap answers no)? */
export function isBytes(v: unknown): v is Uint8Array {
  try {
    return v instanceof Uint8Array
  } catch {
    return false
  }
}
