/** Every PEM block of a text, whatever its label (RFC 7468), numbered from 1. */
import { SmtpTlsError } from '../errors.js'

/** One PEM block. @public */
export interface PemBlock {
  /** The label, e.g. `CERTIFICATE`, `PUBLIC KEY`. */
  label: string
  der: Uint8Array
  /** 1-based position among the blocks of the text. */
  index: number
  /** Offset of the BEGIN line. */
  offset: number
}

const BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Decode every PEM block of `text`, in order. Text outside blocks is ignored (OpenSSL does the
 * same). OpenSSL-style encapsulated headers (`Proc-Type:` lines) are not accepted.
 * @throws {@link SmtpTlsError} with `code` (default `ERR_PEM_SYNTAX`) naming the block number for a
 * block without its END line or with bad base64.
 */
export function readPemBlocks(text: string, code: 'ERR_PEM_SYNTAX' | 'ERR_TRUST_STORE' = 'ERR_PEM_SYNTAX', where = 'PEM text'): PemBlock[] {
  const out: PemBlock[] = []
  BEGIN.lastIndex = 0
  let m: RegExpExecArray | null
  while ((m = BEGIN.exec(text)) !== null) {
    const label = m[1]!
    const index = out.length + 1
    const end = `-----END ${label}-----`
    const e = text.indexOf(end, m.index + m[0].length)
    if (e < 0) throw new SmtpTlsError(code, `${where}: PEM block ${index} (${label}) has no "${end}" line`, { position: m.index })
    const body = text.slice(m.index + m[0].length, e).replace(/[\r\n\t ]+/g, '')
    if (body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body))
      throw new SmtpTlsError(code, `${where}: PEM block ${index} (${label}) is not valid base64`, { position: m.index })
    out.push({ label, der: new Uint8Array(Buffer.from(body, 'base64')), index, offset: m.index })
    BEGIN.lastIndex = e + end.length
  }
  return out
}
