// Certificates generated at test time with the openssl CLI (an independent implementation).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function openssl(args: string[], input?: Uint8Array | string): Buffer {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] })
}

export type KeyType = 'rsa2048' | 'ec256' | 'ed25519'

export interface Issued {
  /** DER certificate */
  der: Uint8Array
  pem: string
  keyPem: string
}

export interface CertOptions {
  subject?: string
  /** subjectAltName DNS names */
  dns?: string[]
  key?: KeyType
  /** issuer; self-signed when absent */
  issuer?: Issued
  ca?: boolean
  pathLen?: number
  /** openssl -not_before/-not_after are not in 3.0; use days (negative not allowed), or the 'expired' shortcut */
  days?: number
  /** extra -addext values */
  ext?: string[]
  keyUsage?: string
  /** the subject is UTF-8 (openssl req -utf8), for non-ASCII attribute values */
  utf8?: boolean
}

const keyArgs: Record<KeyType, string[]> = {
  rsa2048: ['-newkey', 'rsa:2048'],
  ec256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  ed25519: ['-newkey', 'ed25519'],
}

/** A temporary directory removed by the returned function. */
export function tempDir(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'stp-'))
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Create a certificate with the openssl CLI. */
export function makeCert(o: CertOptions = {}): Issued {
  const { dir, done } = tempDir()
  try {
    const key = join(dir, 'key.pem')
    const cert = join(dir, 'cert.pem')
    const cfg = join(dir, 'ext.cnf')
    const exts: string[] = []
    if (o.dns && o.dns.length > 0) exts.push(`subjectAltName=${o.dns.map((d) => `DNS:${d}`).join(',')}`)
    if (o.ca) exts.push(`basicConstraints=critical,CA:TRUE${o.pathLen !== undefined ? `,pathlen:${o.pathLen}` : ''}`)
    else exts.push('basicConstraints=critical,CA:FALSE')
    if (o.keyUsage) exts.push(`keyUsage=${o.keyUsage}`)
    else if (o.ca) exts.push('keyUsage=critical,keyCertSign,cRLSign')
    exts.push(...(o.ext ?? []))
    writeFileSync(cfg, `[v3]\n${exts.join('\n')}\n`)
    const subject = o.subject ?? '/CN=test'
    const days = String(o.days ?? 365)
    if (!o.issuer) {
      openssl([
        'req',
        '-x509',
        ...keyArgs[o.key ?? 'ec256'],
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        subject,
        ...(o.utf8 ? ['-utf8'] : []),
        '-days',
        days,
        '-extensions',
        'v3',
        '-config',
        cfgWithReq(cfg),
      ])
    } else {
      const csr = join(dir, 'req.csr')
      openssl([
        'req',
        '-new',
        ...keyArgs[o.key ?? 'ec256'],
        '-nodes',
        '-keyout',
        key,
        '-out',
        csr,
        '-subj',
        subject,
        ...(o.utf8 ? ['-utf8'] : []),
        '-config',
        cfgWithReq(cfg),
      ])
      const ik = join(dir, 'issuer.key')
      const ic = join(dir, 'issuer.pem')
      writeFileSync(ik, o.issuer.keyPem)
      writeFileSync(ic, o.issuer.pem)
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ic,
        '-CAkey',
        ik,
        '-CAcreateserial',
        '-out',
        cert,
        '-days',
        days,
        '-extfile',
        cfg,
        '-extensions',
        'v3',
      ])
    }
    const pem = readFileSync(cert, 'utf8')
    const der = new Uint8Array(openssl(['x509', '-in', cert, '-outform', 'DER']))
    return { der, pem, keyPem: readFileSync(key, 'utf8') }
  } finally {
    done()
  }
}

function cfgWithReq(extCfg: string): string {
  const text = readFileSync(extCfg, 'utf8')
  const p = extCfg + '.req'
  writeFileSync(p, `[req]\ndistinguished_name=dn\nx509_extensions=v3\nreq_extensions=v3\n[dn]\n${text}`)
  return p
}

/** SHA-256/512 digests of the certificate and of its SubjectPublicKeyInfo, computed by openssl. */
export function opensslDigests(pem: string): Record<string, string> {
  const certDer = openssl(['x509', '-outform', 'DER'], pem)
  const spkiDer = openssl(['pkey', '-pubin', '-outform', 'DER'], openssl(['x509', '-pubkey', '-noout'], pem))
  const dgst = (alg: string, data: Buffer) =>
    openssl(['dgst', `-${alg}`, '-r'], data)
      .toString('latin1')
      .split(' ')[0]!
      .trim()
      .toLowerCase()
  return {
    '0 0': certDer.toString('hex'),
    '0 1': dgst('sha256', certDer),
    '0 2': dgst('sha512', certDer),
    '1 0': spkiDer.toString('hex'),
    '1 1': dgst('sha256', spkiDer),
    '1 2': dgst('sha512', spkiDer),
  }
}
