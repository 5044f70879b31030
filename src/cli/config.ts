/**
 * The YAML configuration file of `smtp-tls-policy serve` (`--config FILE`, read again on SIGHUP).
 * Its keys are serve's option names without `--`; `profiles` exists only here. Strict: an unknown
 * key, a wrong type, a value out of range, a YAML error (a duplicate key, an unknown tag, more than
 * 100 aliases) is one line and exit status 78 (EX_CONFIG, sysexits.h); a file that cannot be opened
 * is 66 (EX_NOINPUT), as for every input file. The `yaml` package is loaded only here, only when a
 * file is given, so the CLI's start-up does not pay for it (issue 17).
 */
import type { ProfileSettings, ServeSettings, StoreArgs } from './common.js'
import { CliError, EX_CONFIG, EX_DATAERR, isMetricsListen, MiB, readInput } from './common.js'
import { MAX_CACHE_SECONDS, REDIS_URL, SOCKETMAP_ADDRESS } from './main.js'

/** A configuration file is a page or two; 1 MiB leaves room for any real one. */
export const MAX_CONFIG_FILE = MiB

const TOP_KEYS = [
  'socketmap',
  'mode',
  'resolver',
  'max-connections',
  'idle-timeout',
  'lookup-timeout',
  'testing-may',
  'cache',
  'profiles',
  'mta-sts',
  'redis',
  'redis-prefix',
  'metrics',
] as const

type Obj = Record<string, unknown>

function show(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  const text = JSON.stringify(v) ?? String(v)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** Reads and checks one file; every error names the file and the key. */
class Checker {
  constructor(readonly file: string) {}

  fail(key: string, message: string): never {
    throw new CliError(EX_CONFIG, `config file ${this.file}: ${key ? `${key}: ` : ''}${message}`)
  }

  mapping(v: unknown, key: string, keys: readonly string[] | undefined): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, `must be a mapping, got ${show(v)}`)
    if (keys)
      for (const k of Object.keys(v)) if (!keys.includes(k)) this.fail(key, `unknown key ${JSON.stringify(k)} (known: ${keys.join(', ')})`)
    return v as Obj
  }

  int(v: unknown, key: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      this.fail(key, `must be a whole number from ${min} to ${max}, got ${show(v)}`)
    return v
  }

  bool(v: unknown, key: string): boolean {
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${show(v)}`)
    return v
  }

  string(v: unknown, key: string, test: RegExp, what: string): string {
    if (typeof v !== 'string' || !test.test(v)) this.fail(key, `must be ${what}, got ${show(v)}`)
    return v
  }
}

/** Parse YAML text strictly (YAML 1.2 core schema: `yes` is a string, `0660` is decimal). */
async function parseYaml(text: string, c: Checker): Promise<unknown> {
  const { parseDocument } = await import('yaml')
  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: true, strict: true, prettyErrors: true })
  // The first line of a pretty error ends "at line L, column C:"; the source excerpt after it is left out.
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem) c.fail('', (problem.message.split('\n')[0] ?? '').replace(/:$/, ''))
  try {
    // maxAliasCount: an alias-expansion bomb ("billion laughs") fails here instead of eating memory.
    return doc.toJS({ maxAliasCount: 100 }) as unknown
  } catch (e) {
    return c.fail('', (e as Error).message.split('\n')[0] ?? 'cannot be read')
  }
}

/** Read a configuration file (at most 1 MiB): 66 when it cannot be opened, 78 for anything wrong in it. */
export async function loadServeConfig(file: string): Promise<ServeSettings> {
  const c: Checker = new Checker(file)
  let bytes: Buffer
  try {
    bytes = readInput(file, 'config file', MAX_CONFIG_FILE)
  } catch (e) {
    if (e instanceof CliError && e.status === EX_DATAERR) throw new CliError(EX_CONFIG, e.message) // too large
    throw e
  }
  const text = utf8(bytes)
  if (text === undefined) c.fail('', 'is not UTF-8 text')
  return checkConfig(await parseYaml(text, c), c)
}

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

function checkConfig(v: unknown, c: Checker): ServeSettings {
  if (v === null || v === undefined) return {} // an empty file (or comments only): every default
  const o = c.mapping(v, '', TOP_KEYS)
  const out: ServeSettings = {}
  if (o['socketmap'] !== undefined) out.socketmap = c.string(o['socketmap'], 'socketmap', SOCKETMAP_ADDRESS, 'unix:PATH or inet:HOST:PORT')
  if (o['mode'] !== undefined) {
    // A string: YAML 1.2 reads 0660 as the decimal 660, which is not what anyone means by a mode.
    if (typeof o['mode'] !== 'string') c.fail('mode', `must be a quoted octal string such as "660", got ${show(o['mode'])}`)
    const m = c.string(o['mode'], 'mode', /^[0-7]{1,4}$/, 'a quoted octal string such as "660"')
    if (parseInt(m, 8) > 0o777) c.fail('mode', `must be at most "777", got ${show(m)}`)
    out.mode = parseInt(m, 8)
  }
  if (o['resolver'] !== undefined) {
    const r = o['resolver']
    const list = typeof r === 'string' ? [r] : r
    if (!Array.isArray(list) || list.length === 0 || list.length > 16)
      c.fail('resolver', `must be an address or a list of 1 to 16 addresses, got ${show(r)}`)
    out.resolvers = list.map((x, i) => c.string(x, `resolver[${i}]`, /^[0-9a-fA-F:.[\]]{2,64}$/, 'an IP address, optionally with :PORT'))
  }
  if (o['max-connections'] !== undefined) out.maxConnections = c.int(o['max-connections'], 'max-connections', 1, 65535)
  if (o['idle-timeout'] !== undefined) out.idleTimeoutMs = c.int(o['idle-timeout'], 'idle-timeout', 1, 3600) * 1000
  if (o['lookup-timeout'] !== undefined) out.lookupTimeoutMs = c.int(o['lookup-timeout'], 'lookup-timeout', 1, 3600) * 1000
  if (o['testing-may'] !== undefined) out.testingMay = c.bool(o['testing-may'], 'testing-may')
  if (o['cache'] !== undefined) {
    const m = c.mapping(o['cache'], 'cache', ['negative', 'dane', 'max'])
    out.cache = {}
    for (const k of ['negative', 'dane', 'max'] as const)
      if (m[k] !== undefined) out.cache[k] = c.int(m[k], `cache.${k}`, 0, MAX_CACHE_SECONDS)
  }
  if (o['profiles'] !== undefined) out.profiles = checkProfiles(o['profiles'], c)
  if (o['mta-sts'] !== undefined) {
    const m = c.mapping(o['mta-sts'], 'mta-sts', ['ca-file', 'port', 'allow-private', 'timeout'])
    if (m['ca-file'] !== undefined) out.caFile = c.string(m['ca-file'], 'mta-sts.ca-file', /^[^\0]{1,4096}$/, 'a file name')
    if (m['port'] !== undefined) out.stsPort = c.int(m['port'], 'mta-sts.port', 1, 65535)
    if (m['allow-private'] !== undefined) out.allowPrivate = c.bool(m['allow-private'], 'mta-sts.allow-private')
    if (m['timeout'] !== undefined) out.stsTimeoutMs = c.int(m['timeout'], 'mta-sts.timeout', 1, 3600) * 1000
  }
  if (o['redis'] !== undefined) out.redis = c.string(o['redis'], 'redis', REDIS_URL, 'redis://HOST:PORT, rediss://... or unix:/path')
  if (o['redis-prefix'] !== undefined)
    out.redisPrefix = c.string(o['redis-prefix'], 'redis-prefix', /^[!-~]{0,100}$/, 'at most 100 printable characters, no space')
  if (o['metrics'] !== undefined) {
    const m = o['metrics']
    if (typeof m !== 'string' || !isMetricsListen(m)) c.fail('metrics', `must be [HOST:]PORT, got ${show(m)}`)
    out.metrics = m
  }
  return out
}

function checkProfiles(v: unknown, c: Checker): Record<string, ProfileSettings> {
  const m = c.mapping(v, 'profiles', undefined)
  const names = Object.keys(m)
  if (names.length === 0 || names.length > 100) c.fail('profiles', `must name 1 to 100 map names, got ${names.length}`)
  const out: Record<string, ProfileSettings> = {}
  for (const name of names) {
    // The map name is the last field of Postfix's table name (socketmap:…:NAME): printable, no space.
    if (!/^[!-~]{1,100}$/.test(name)) c.fail('profiles', `a map name must be printable with no space, got ${show(name)}`)
    const key = `profiles.${name}`
    const p = c.mapping(m[name], key, ['dane', 'sts', 'testing', 'tlsrpt'])
    if (p['dane'] === undefined || p['sts'] === undefined) c.fail(key, 'needs dane: and sts: (true or false)')
    const prof: ProfileSettings = { dane: c.bool(p['dane'], `${key}.dane`), sts: c.bool(p['sts'], `${key}.sts`) }
    if (p['testing'] !== undefined)
      prof.testing = c.string(p['testing'], `${key}.testing`, /^(notfound|may)$/, 'notfound or may') as 'notfound' | 'may'
    if (p['tlsrpt'] !== undefined) prof.tlsrpt = c.bool(p['tlsrpt'], `${key}.tlsrpt`)
    out[name] = prof
  }
  return out
}

/** Flags win over the file; `cache` merges key by key. */
export function mergeSettings(file: ServeSettings, flags: ServeSettings): ServeSettings {
  const out: ServeSettings = { ...file }
  for (const [k, v] of Object.entries(flags)) if (v !== undefined && k !== 'cache') (out as Record<string, unknown>)[k] = v
  if (flags.cache) out.cache = { ...file.cache, ...flags.cache }
  delete (out as { config?: string }).config
  return out
}

/** dump and purge: the Redis URL and prefix from the flags, else from the configuration file. */
export async function storeSettings(a: StoreArgs): Promise<{ redis?: string; redisPrefix?: string }> {
  const file = a.config !== undefined ? await loadServeConfig(a.config) : {}
  const redis = a.redis ?? file.redis
  const redisPrefix = a.redisPrefix ?? file.redisPrefix
  return { ...(redis !== undefined && { redis }), ...(redisPrefix !== undefined && { redisPrefix }) }
}
