// Every export of every entry point, called with values of every JS type, either returns or throws
// (rejects with) a coded SmtpTlsError: never a bare TypeError/RangeError (DESIGN.md §3, issue 10 §3).
// Generic: the exports are enumerated, so a new export is covered without editing this file.
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import fsp from 'node:fs/promises'
import { syncBuiltinESMExports } from 'node:module'
import net from 'node:net'
import tls from 'node:tls'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as core from '../../src/index.js'
import * as node from '../../src/node/index.js'
import * as redis from '../../src/redis/index.js'
import * as nodemailer from '../../src/nodemailer/index.js'

// Not functions or classes: constants and tables, nothing to call.
const NOT_CALLABLE = new Set([
  'CONFIGURABLE_LEVELS',
  'DEFAULT_MAX_LINES',
  'DEFAULT_MAX_LINE_LENGTH',
  'SECURITY_LEVELS',
  'STARTTLS_TRANSITIONS',
  'CLIENT_CERTIFICATE_PROPERTY',
  'TLS_SESSION_FACTS_PROPERTY',
  'MTA_STS_MAX_AGE_LIMIT',
  'SMTP_TRANSACTION_TRANSITIONS',
  'TLS_PROTOCOL_VERSIONS',
  'TlsaMatchingType',
  'TlsaSelector',
  'TlsaUsage',
  'channels',
  'storeErrorChannel',
  'tlsRptSendChannel',
  'MTA_STS_MAX_POLICY_BYTES',
  'SOCKETMAP_MAX_QUERY',
  'SOCKETMAP_MAX_REPLY',
  'SOCKETMAP_PROFILES',
])
// Exports left out of this test (none: every export is checked).
const ELSEWHERE = new Set<string>([])
// Node functions that do I/O with valid-looking input: only wrong types are passed (first argument
// never a string), and they must fail before any socket or file is touched.
const DOES_IO = new Set([
  'connect',
  'probe',
  'discoverDestination',
  'readCertificateFile',
  'fetchMtaStsPolicy',
  'getMtaStsPolicy',
  'getTlsRptRecord',
  'loadTrustStore',
  'deliver',
  'openDeliverySession',
  'check',
  'createSocketmapServer',
  'sendTlsRptReports',
  'scheduleTlsRptReports',
  'startMetricsServer',
])

const hostile = {
  get type() {
    throw new Error('getter')
  },
  toString() {
    throw new Error('toString')
  },
  valueOf() {
    throw new Error('valueOf')
  },
}
const trap = (): never => {
  throw new Error('trap')
}
const proxy = new Proxy({}, { get: trap, has: trap, ownKeys: trap, getPrototypeOf: trap, getOwnPropertyDescriptor: trap })
const revoked = Proxy.revocable({}, {})
revoked.revoke()
const SPECIALS: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  -1,
  NaN,
  Infinity,
  2 ** 53,
  10n,
  '',
  'x',
  '\u0000\uffff',
  Symbol('s'),
  () => 1,
  class {},
  [],
  [null],
  [1, 'x'],
  {},
  Object.create(null),
  hostile,
  proxy,
  revoked.proxy,
  new Uint8Array(0),
  new Uint8Array([0x30, 0x82, 0xff, 0xff]),
  new Date(NaN),
  new Map(),
  Promise.resolve(1),
]
/** Values are boxed: fast-check itself probes generated values (`cloneMethod in v`), which a Proxy trap would break. */
interface Box {
  v: unknown
}
const box = (v: unknown): Box => ({ v, toString: () => `[${typeof v}]` }) as Box
const special = fc.integer({ min: 0, max: SPECIALS.length - 1 }).map((i) => box(SPECIALS[i]))
const anyValue = fc.oneof(
  { weight: 3, arbitrary: special },
  {
    weight: 1,
    arbitrary: fc
      .anything({
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withTypedArray: true,
        withNullPrototype: true,
        withBoxedValues: true,
        withSparseArray: true,
      })
      .map(box),
  },
)
const wrongType = anyValue.filter((b) => typeof b.v !== 'string')

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any callable export
type AnyFn = (...args: any[]) => unknown
const isClass = (f: AnyFn): boolean => /^class\b/.test(Function.prototype.toString.call(f))

/** Call, await a promise; report anything thrown that is not a coded SmtpTlsError. */
async function outcome(f: AnyFn, args: unknown[]): Promise<string | undefined> {
  try {
    const r: unknown = isClass(f)
      ? Reflect.construct(f as unknown as new (...a: unknown[]) => unknown, args)
      : Reflect.apply(f, undefined, args)
    if (r instanceof Promise) await r
    return undefined
  } catch (e) {
    if (e instanceof core.SmtpTlsError && typeof e.code === 'string' && e.code.startsWith('ERR_')) return undefined
    return `${(e as Error)?.constructor?.name}: ${String((e as Error)?.message)}`
  }
}

/** Count socket and file attempts while the I/O functions run (the adapters import these named functions). */
let io = 0
function spyIo(): () => void {
  const saved = { nc: net.connect, ncc: net.createConnection, tc: tls.connect, ds: dgram.createSocket, rf: fsp.readFile, op: fsp.open }
  const no = (): never => {
    io++
    throw new Error('I/O attempted')
  }
  net.connect = net.createConnection = tls.connect = dgram.createSocket = no as never
  fsp.readFile = fsp.open = no as never
  syncBuiltinESMExports()
  return () => {
    Object.assign(net, { connect: saved.nc, createConnection: saved.ncc })
    tls.connect = saved.tc
    dgram.createSocket = saved.ds
    Object.assign(fsp, { readFile: saved.rf, open: saved.op })
    syncBuiltinESMExports()
  }
}

for (const [entry, mod] of [
  ['smtp-tls-policy', core],
  ['smtp-tls-policy/node', node],
  ['smtp-tls-policy/redis', redis],
  ['smtp-tls-policy/nodemailer', nodemailer],
] as const) {
  describe(`${entry}: every export refuses wrong types with a coded error`, () => {
    for (const [name, f] of Object.entries(mod)) {
      if (NOT_CALLABLE.has(name) || ELSEWHERE.has(name)) continue
      it(`${name}`, async () => {
        assert.equal(typeof f, 'function', `${name} is neither callable nor in NOT_CALLABLE`)
        const fn = f as AnyFn
        const arity = Math.max(fn.length, 1) + 1
        const first = DOES_IO.has(name) ? wrongType : anyValue
        const restore = DOES_IO.has(name) ? spyIo() : () => {}
        try {
          await fc.assert(
            fc.asyncProperty(first, fc.array(anyValue, { maxLength: arity }), async (a, rest) => {
              const why = await outcome(fn, [a.v, ...rest.map((b) => b.v)])
              if (why !== undefined) throw new Error(why)
            }),
            { numRuns: 150 },
          )
          // Each special value in each position, the others valid-looking strings or absent.
          for (let pos = 0; pos < arity; pos++) {
            for (const v of SPECIALS) {
              if (DOES_IO.has(name) && (pos !== 0 || typeof v === 'string')) continue
              const args = Array.from({ length: pos + 1 }, (_, i) => (i === pos ? v : 'x'))
              const why = await outcome(fn, args)
              assert.equal(why, undefined, `${name}(${args.map((x) => typeof x).join(', ')}) threw ${why}`)
            }
          }
        } finally {
          restore()
        }
        assert.equal(io, 0, `${name} attempted I/O with wrong-typed arguments`)
      })
    }
  })
}

describe('the cases of issue 10 §3, and methods', () => {
  const invalid = (fn: () => unknown): void => {
    assert.throws(fn, (e) => e instanceof core.SmtpTlsError && e.code === 'ERR_INVALID_ARGUMENT' && e.temporary === false)
  }
  it('parseReply(null), new ReplyParser(null), parseEhloCapabilities(5): ERR_INVALID_ARGUMENT', () => {
    invalid(() => core.parseReply(null as never))
    invalid(() => new core.ReplyParser(null as never))
    invalid(() => core.parseEhloCapabilities(5 as never))
    invalid(() => core.parseEhloCapabilities(['mx', 5] as never))
  })
  it('ReplyParser.push refuses a non-Uint8Array', () => {
    const p = new core.ReplyParser()
    for (const v of [null, undefined, 'x', [1], proxy]) invalid(() => p.push(v as never))
  })
  it('StartTlsClient.handle never throws, even for a Proxy or a throwing getter: it closes with ERR_INVALID_ARGUMENT', () => {
    for (const v of [proxy, revoked.proxy, hostile]) {
      const c = new core.StartTlsClient({ ehloName: 'c.example', requireTls: true, servername: 'mx' })
      const acts = c.handle(v as never)
      assert.equal(acts.length, 1)
      const a = acts[0]!
      assert.ok(a.type === 'close' && a.error?.code === 'ERR_INVALID_ARGUMENT')
    }
  })
  it('levelRank and the level predicates refuse what is not a level (no silent undefined or false)', () => {
    for (const v of ['bogus', 'constructor', null, {}]) {
      invalid(() => core.levelRank(v as never))
      invalid(() => core.mustEncrypt(v as never))
      invalid(() => core.minLevel('may', v as never))
    }
  })
  it('SmtpTlsError and SmtpReplyError construct whatever they are given', () => {
    assert.equal(new core.SmtpTlsError('ERR_STATE', Symbol('m') as never, proxy as never).message, 'Symbol(m)')
    assert.equal(new core.SmtpTlsError('ERR_STATE', hostile as never).message, '(object)')
    assert.ok(Number.isNaN(new core.SmtpReplyError('ERR_SMTP_PROTOCOL', 'm', null as never).replyCode))
    assert.equal(core.isSmtpTlsError(proxy), false)
  })
})
