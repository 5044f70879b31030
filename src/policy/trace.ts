/** Decision traces: the ordered rules that produced an effective policy or a verdict. */
import { coded, describeValue, invalidArgument } from '../args.js'

/**
 * One step of a decision: what was decided and the rule that says so.
 * @example `{ rule: 'table match .example.com → secure', ref: 'postconf(5) smtp_tls_policy_maps' }`
 * @public
 */
export interface TraceStep {
  /** What happened, in operator words, e.g. `MX insecure → half-dane`. */
  rule: string
  /** The document and section the rule comes from, e.g. `RFC 7672 §2.2.1`. */
  ref: string
}

/** One log line for a trace: `rule [ref]; rule [ref]; …`. @public */
export function formatTrace(trace: readonly TraceStep[]): string {
  try {
    if (!Array.isArray(trace)) throw invalidArgument(`formatTrace needs a list of trace steps, got ${describeValue(trace)}`)
    let s = ''
    for (let i = 0; i < trace.length; i++) {
      const t: unknown = trace[i]
      if (typeof t !== 'object' || t === null) throw invalidArgument(`trace step ${i} is ${describeValue(t)}, not an object`)
      const { rule, ref } = t as TraceStep
      if (typeof rule !== 'string' || typeof ref !== 'string') throw invalidArgument(`trace step ${i} needs string rule and ref`)
      if (i > 0) s += '; '
      s += `${rule} [${ref}]`
    }
    return s
  } catch (e) {
    throw coded(e, 'formatTrace')
  }
}
