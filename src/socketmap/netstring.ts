/**
 * Netstrings (D. J. Bernstein, https://cr.yp.to/proto/netstrings.txt) as Postfix's socketmap protocol
 * frames them (socketmap_table(5)): `<length>:<bytes>,`. Strict: decimal digits only, no leading zero
 * (`0:,` is the only zero), exactly `<length>` bytes, then `,`. Pure: no I/O.
 */
import { coded, describeValue, invalidArgument, isBytes } from '../args.js'
import { SmtpTlsError } from '../errors.js'

/** socketmap_table(5): "The maximum length of a request is 10000 bytes" (Postfix `SOCKMAP_MAX_QUERY`-like bound). @public */
export const SOCKETMAP_MAX_QUERY = 10000
/** socketmap_table(5): "The maximum length of a reply is 100000 bytes". @public */
export const SOCKETMAP_MAX_REPLY = 100000

function syntax(message: string, position: number): SmtpTlsError {
  return new SmtpTlsError('ERR_SOCKETMAP_SYNTAX', message, { temporary: false, position })
}

function checkLimit(maxLength: unknown, what: string): number {
  if (typeof maxLength !== 'number' || !Number.isInteger(maxLength) || maxLength < 0 || maxLength > 0x7fffffff)
    throw invalidArgument(`${what}: maxLength must be an integer from 0 to 2^31-1, got ${describeValue(maxLength)}`)
  return maxLength
}

/**
 * Frame `payload` (a string is UTF-8 encoded) as a netstring.
 * @throws {@link SmtpTlsError} `ERR_SOCKETMAP_SYNTAX` when the payload is longer than `maxLength`
 *   (default {@link SOCKETMAP_MAX_REPLY}); `ERR_INVALID_ARGUMENT` for wrong types.
 * @public
 */
export function encodeNetstring(payload: string | Uint8Array, maxLength: number = SOCKETMAP_MAX_REPLY): Uint8Array {
  try {
    const max = checkLimit(maxLength, 'encodeNetstring')
    let body: Uint8Array
    if (typeof payload === 'string') body = Buffer.from(payload, 'utf8')
    else if (isBytes(payload)) body = payload
    else throw invalidArgument(`encodeNetstring: payload must be a string or bytes, got ${describeValue(payload)}`)
    if (body.length > max) throw syntax(`netstring payload of ${body.length} bytes exceeds the limit of ${max}`, 0)
    const head = Buffer.from(`${body.length}:`, 'latin1')
    const out = Buffer.allocUnsafe(head.length + body.length + 1)
    head.copy(out, 0)
    out.set(body, head.length)
    out[out.length - 1] = 0x2c
    return out
  } catch (e) {
    throw coded(e, 'encodeNetstring')
  }
}

/** An incremental netstring decoder: feed bytes as they arrive, get whole payloads. @public */
export interface NetstringDecoder {
  /**
   * The payloads completed by `chunk`, in order (often none). After an error every later call throws it again.
   * @throws {@link SmtpTlsError} `ERR_SOCKETMAP_SYNTAX` for a framing error or a length past the limit.
   */
  push(chunk: Uint8Array): Uint8Array[]
  /** Bytes of an incomplete netstring are buffered (a peer closing now cut a message). */
  readonly pending: boolean
}

/**
 * A decoder for netstrings of at most `maxLength` payload bytes (default {@link SOCKETMAP_MAX_QUERY}).
 * A length is refused as soon as its digits exceed the limit, so a hostile peer never makes it buffer more.
 * @public
 */
export function createNetstringDecoder(opts?: { maxLength?: number }): NetstringDecoder {
  try {
    if (opts !== undefined && (typeof opts !== 'object' || opts === null))
      throw invalidArgument(`createNetstringDecoder options must be an object, got ${describeValue(opts)}`)
    const raw = opts?.maxLength
    return netstringDecoder(raw === undefined ? SOCKETMAP_MAX_QUERY : checkLimit(raw, 'createNetstringDecoder'))
  } catch (e) {
    throw coded(e, 'createNetstringDecoder')
  }
}

function netstringDecoder(max: number): NetstringDecoder {
  // state: 0 reading length digits, 1 reading payload, 2 expecting ','
  let state = 0
  let digits = 0
  let length = 0
  let body: Buffer = Buffer.alloc(0)
  let filled = 0
  let offset = 0 // bytes consumed over the stream, for error positions
  let failed: SmtpTlsError | undefined
  const push = (chunk: Uint8Array): Uint8Array[] => {
    if (failed !== undefined) throw failed
    if (!isBytes(chunk)) throw invalidArgument(`NetstringDecoder.push needs bytes, got ${describeValue(chunk)}`)
    const out: Uint8Array[] = []
    let i = 0
    try {
      while (i < chunk.length) {
        if (state === 0) {
          const c = chunk[i] as number
          if (c >= 0x30 && c <= 0x39) {
            // No leading zero: "0" is only the whole length of an empty payload.
            if (digits === 1 && length === 0) throw syntax('netstring length has a leading zero', offset + i)
            length = length * 10 + (c - 0x30)
            digits++
            if (length > max) throw syntax(`netstring length exceeds the limit of ${max} bytes`, offset + i)
          } else if (c === 0x3a && digits > 0) {
            state = length === 0 ? 2 : 1
            body = Buffer.allocUnsafe(length)
            filled = 0
          } else {
            throw syntax(digits === 0 ? 'netstring must start with a decimal length' : "netstring length must end with ':'", offset + i)
          }
          i++
        } else if (state === 1) {
          const n = Math.min(length - filled, chunk.length - i)
          body.set(chunk.subarray(i, i + n), filled)
          filled += n
          i += n
          if (filled === length) state = 2
        } else {
          if (chunk[i] !== 0x2c) throw syntax("netstring must end with ','", offset + i)
          out.push(body)
          state = 0
          digits = 0
          length = 0
          body = Buffer.alloc(0)
          i++
        }
      }
    } catch (e) {
      failed = e as SmtpTlsError
      throw failed
    }
    offset += chunk.length
    return out
  }
  return {
    push: (chunk) => {
      try {
        return push(chunk)
      } catch (e) {
        throw coded(e, 'NetstringDecoder.push')
      }
    },
    get pending() {
      return state !== 0 || digits > 0
    },
  }
}
