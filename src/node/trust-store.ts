/**
 * Trust stores as Postfix configures them (postconf(5)): `smtp_tls_CAfile` (a PEM bundle),
 * `smtp_tls_CApath` (an OpenSSL hashed directory, made by `c_rehash`/`openssl rehash`), and
 * `tafile=` / `smtp_tls_trust_anchor_file` (PEM `CERTIFICATE` and `PUBLIC KEY` blocks).
 *
 * Every defect is an `ERR_TRUST_STORE` error naming the file and the PEM block number; nothing is
 * skipped silently (Node's `tls` ignores a `ca` entry it cannot parse, so that check is done here).
 */
import { coded } from '../args.js'
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises'
import { join, relative, isAbsolute, sep } from 'node:path'
import type { TrustAnchor } from '../dane/anchors.js'
import { SmtpTlsError } from '../errors.js'
import { isSpkiDer, sliceCertificate } from '../x509/der.js'
import { derToPem } from '../x509/pem.js'
import { readPemBlocks } from '../x509/pem-blocks.js'

/** Options of {@link loadTrustStore}. @public */
export interface TrustStoreOptions {
  /** A PEM bundle of CA certificates (Postfix `smtp_tls_CAfile`). */
  caFile?: string
  /** An OpenSSL hashed directory (Postfix `smtp_tls_CApath`). */
  caPath?: string
  /** Trust-anchor files (Postfix `tafile=`, `smtp_tls_trust_anchor_file`); several are allowed. */
  taFile?: string | readonly string[]
  /**
   * Follow `caPath` symbolic links that lead out of the directory (Debian's `/etc/ssl/certs` links
   * into `/usr/share/ca-certificates`). Default `false`: such a link is an error.
   */
  followLinksOutside?: boolean
  /** Largest file read, in bytes. Default 16 MiB. */
  maxFileBytes?: number
  /** Most entries read from `caPath`. Default 10,000. */
  maxDirectoryEntries?: number
}

/** Where a certificate or anchor came from. @public */
export interface TrustStoreSource {
  file: string
  /** 1-based PEM block number in the file. */
  block: number
}

/** A loaded trust store. @public */
export interface TrustStore {
  /** CA certificates (DER) from `caFile` and `caPath`, for PKIX validation. */
  ca: Uint8Array[]
  /** The same certificates as PEM, for Node's `tls` `ca` option. */
  caPem: string[]
  caSources: TrustStoreSource[]
  /**
   * Trust anchors from `taFile`. When there are any, Postfix trusts only them for the destination:
   * the CA roots are not used (see `trustAnchorTlsaRecords` and docs/trust-stores.md).
   */
  anchors: TrustAnchor[]
  anchorSources: TrustStoreSource[]
  /** What was read but not used (other PEM block types, non-hash names in `caPath`). */
  warnings: string[]
}

const CERT_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE'])
// OpenSSL by-dir lookup: HHHHHHHH.N for certificates, HHHHHHHH.rN for CRLs.
const HASH_NAME = /^[0-9a-f]{8}\.(\d+)$/
const HASH_CRL = /^[0-9a-f]{8}\.r\d+$/

function fail(message: string, cause?: unknown): SmtpTlsError {
  return new SmtpTlsError('ERR_TRUST_STORE', message, cause === undefined ? {} : { cause })
}

async function readBounded(file: string, what: string, max: number): Promise<string> {
  let size: number
  try {
    const st = await stat(file)
    if (!st.isFile()) throw fail(`${what} ${file}: not a regular file`)
    size = st.size
  } catch (e) {
    if (e instanceof SmtpTlsError) throw e
    const code = (e as NodeJS.ErrnoException).code
    throw fail(`${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, e)
  }
  if (size > max) throw fail(`${what} ${file}: ${size} bytes is more than the ${max}-byte limit`)
  try {
    return (await readFile(file)).toString('latin1')
  } catch (e) {
    throw fail(`${what} ${file}: ${(e as Error).message}`, e)
  }
}

/** The DER certificate of a block; `TRUSTED CERTIFICATE` carries OpenSSL aux data after it (d2i_X509_AUX). */
function certificateOf(der: Uint8Array, label: string, where: string): Uint8Array {
  let cert = der
  if (label === 'TRUSTED CERTIFICATE' && der.length >= 4 && der[0] === 0x30) {
    // SEQUENCE length: short or long form; the certificate is the first TLV
    const l = der[1]!
    const n = l < 0x80 ? 0 : l & 0x7f
    let len = l < 0x80 ? l : 0
    for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!
    cert = der.subarray(0, 2 + n + len)
  }
  try {
    sliceCertificate(cert)
  } catch (e) {
    throw fail(`${where}: not a valid certificate: ${(e as Error).message}`, e)
  }
  return cert
}

async function loadCaFile(file: string, what: string, store: TrustStore, max: number): Promise<void> {
  const text = await readBounded(file, what, max)
  const blocks = readPemBlocks(text, 'ERR_TRUST_STORE', `${what} ${file}`)
  let n = 0
  for (const b of blocks) {
    const where = `${what} ${file} block ${b.index}`
    if (!CERT_LABELS.has(b.label)) {
      store.warnings.push(`${where}: "${b.label}" ignored (not a certificate)`)
      continue
    }
    const der = certificateOf(b.der, b.label, where)
    store.ca.push(der)
    store.caPem.push(derToPem(der))
    store.caSources.push({ file, block: b.index })
    n++
  }
  // OpenSSL fails to load a CAfile without certificates; Postfix then logs and defers.
  if (n === 0) throw fail(`${what} ${file}: no certificate found`)
}

function inside(dir: string, target: string): boolean {
  const r = relative(dir, target)
  return r.length > 0 && !r.startsWith('..' + sep) && r !== '..' && !isAbsolute(r)
}

async function loadCaPath(
  dir: string,
  store: TrustStore,
  o: Required<Pick<TrustStoreOptions, 'followLinksOutside' | 'maxFileBytes' | 'maxDirectoryEntries'>>,
): Promise<void> {
  let real: string
  let names: string[]
  try {
    real = await realpath(dir)
    names = (await readdir(real)).sort()
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw fail(`CApath ${dir}: ${code === 'ENOENT' ? 'no such directory' : (e as Error).message}`, e)
  }
  if (names.length > o.maxDirectoryEntries) throw fail(`CApath ${dir}: more than ${o.maxDirectoryEntries} entries`)
  for (const name of names) {
    const p = join(real, name)
    if (!HASH_NAME.test(name)) {
      if (!HASH_CRL.test(name)) {
        const st = await lstat(p)
        if (st.isFile() || st.isSymbolicLink())
          store.warnings.push(`CApath ${dir}: ${name} ignored (OpenSSL reads only HHHHHHHH.N names: run "openssl rehash")`)
      } else store.warnings.push(`CApath ${dir}: ${name} ignored (a CRL)`)
      continue
    }
    let target: string
    try {
      target = await realpath(p)
    } catch (e) {
      throw fail(`CApath ${dir}: ${name} is a dangling link`, e)
    }
    if (!o.followLinksOutside && !inside(real, target)) throw fail(`CApath ${dir}: ${name} links outside the directory (${target})`)
    await loadCaFile(p, 'CApath file', store, o.maxFileBytes)
  }
}

async function loadTaFile(file: string, store: TrustStore, max: number): Promise<void> {
  const text = await readBounded(file, 'tafile', max)
  const blocks = readPemBlocks(text, 'ERR_TRUST_STORE', `tafile ${file}`)
  let n = 0
  for (const b of blocks) {
    const where = `tafile ${file} block ${b.index}`
    if (b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE') {
      store.anchors.push({ type: 'certificate', der: certificateOf(b.der, b.label, where) })
    } else if (b.label === 'PUBLIC KEY') {
      if (!isSpkiDer(b.der)) throw fail(`${where}: not a valid SubjectPublicKeyInfo`)
      store.anchors.push({ type: 'publicKey', der: b.der })
    } else {
      store.warnings.push(`${where}: "${b.label}" ignored (a tafile holds CERTIFICATE and PUBLIC KEY blocks)`)
      continue
    }
    store.anchorSources.push({ file, block: b.index })
    n++
  }
  // Postfix tls_dane_load_trustfile returns failure when no anchor was read.
  if (n === 0) throw fail(`tafile ${file}: no CERTIFICATE or PUBLIC KEY block found`)
}

function positive(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `${name} must be a positive integer`)
  return v
}

/**
 * Load a trust store: a CA bundle, an OpenSSL hashed directory, and trust-anchor files.
 *
 * @throws {@link SmtpTlsError} `ERR_TRUST_STORE` for a missing or unreadable file, a file over the
 * size limit, a PEM block that does not parse (named by file and block number), a file without
 * any certificate (or anchor), a `caPath` link that leaves the directory; `ERR_INVALID_ARGUMENT`
 * for bad options.
 * @example
 * ```ts
 * const store = await loadTrustStore({ taFile: '/etc/postfix/example.com-anchors.pem' })
 * const records = trustAnchorTlsaRecords(store.anchors) // for verifyDane at verify/secure
 * ```
 * @public
 */
export async function loadTrustStore(opts: TrustStoreOptions): Promise<TrustStore> {
  try {
    return await loadTrustStoreChecked(opts)
  } catch (e) {
    throw coded(e, 'loadTrustStore')
  }
}

async function loadTrustStoreChecked(opts: TrustStoreOptions): Promise<TrustStore> {
  if (opts === null || typeof opts !== 'object') throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'options must be an object')
  const str = (v: unknown, name: string): string | undefined => {
    if (v === undefined) return undefined
    if (typeof v !== 'string' || v.length === 0) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', `${name} must be a non-empty string`)
    return v
  }
  const caFile = str(opts.caFile, 'caFile')
  const caPath = str(opts.caPath, 'caPath')
  const ta = opts.taFile === undefined ? [] : typeof opts.taFile === 'string' ? [opts.taFile] : opts.taFile
  if (!Array.isArray(ta)) throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'taFile must be a string or an array of strings')
  const taFiles = ta.map((f, i) => str(f, `taFile[${i}]`)!)
  if (opts.followLinksOutside !== undefined && typeof opts.followLinksOutside !== 'boolean')
    throw new SmtpTlsError('ERR_INVALID_ARGUMENT', 'followLinksOutside must be a boolean')
  const o = {
    followLinksOutside: opts.followLinksOutside ?? false,
    maxFileBytes: positive(opts.maxFileBytes, 'maxFileBytes', 16 * 1024 * 1024),
    maxDirectoryEntries: positive(opts.maxDirectoryEntries, 'maxDirectoryEntries', 10_000),
  }
  const store: TrustStore = { ca: [], caPem: [], caSources: [], anchors: [], anchorSources: [], warnings: [] }
  if (caFile !== undefined) await loadCaFile(caFile, 'CAfile', store, o.maxFileBytes)
  if (caPath !== undefined) await loadCaPath(caPath, store, o)
  for (const f of taFiles) await loadTaFile(f, store, o.maxFileBytes)
  return store
}
