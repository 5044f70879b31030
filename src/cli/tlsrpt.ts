/**
 * `smtp-tls-policy tlsrpt [<domain>] [--report FILE]`: the `_smtp._tls` record (RFC 8460 §3) and a
 * structural check of a report file (§4.4). Options first (64), then the file (65, 66), then DNS (75).
 */
import { gunzipSync } from 'node:zlib'
import type { getTlsRptRecord as GetTlsRptRecord } from '../node/mta-sts.js'
import type { Resolver } from '../node/resolver/index.js'
import { formatTlsRptRecord, type TlsRptRecord } from '../tlsrpt/record.js'
import { validateTlsRptReport, type TlsRptValidation } from '../tlsrpt/validate.js'
import {
  clean,
  CliError,
  EX_DATAERR,
  EX_OK,
  EX_TEMPFAIL,
  isCoded,
  MiB,
  optionValue,
  readInput,
  type CliIo,
  type TlsRptArgs,
} from './common.js'

const MAX_REPORT = 16 * MiB
const MAX_REPORT_UNCOMPRESSED = 64 * MiB

interface ReportCheck {
  file: string
  validation: TlsRptValidation
  policies?: number
  successful?: number
  failed?: number
}

function checkReport(path: string): ReportCheck {
  const raw = readInput(path, 'report', MAX_REPORT)
  let text: string
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    // RFC 8460 §5.2: application/tlsrpt+gzip
    try {
      text = gunzipSync(raw, { maxOutputLength: MAX_REPORT_UNCOMPRESSED }).toString('utf8')
    } catch (e) {
      throw new CliError(EX_DATAERR, `report ${path}: not valid gzip or larger than 64 MiB uncompressed (${(e as Error).message})`)
    }
  } else text = raw.toString('utf8')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new CliError(EX_DATAERR, `report ${path}: not JSON (${(e as Error).message})`)
  }
  const validation = validateTlsRptReport(value)
  const out: ReportCheck = { file: path, validation }
  if (validation.valid) {
    const policies = (value as { policies: Array<{ summary: Record<string, number> }> }).policies
    out.policies = policies.length
    out.successful = policies.reduce((n, p) => n + p.summary['total-successful-session-count']!, 0)
    out.failed = policies.reduce((n, p) => n + p.summary['total-failure-session-count']!, 0)
  }
  return out
}

export async function tlsRptCommand(a: TlsRptArgs, io: CliIo): Promise<number> {
  if (a.send !== undefined) return (await import('./tlsrpt-send.js')).tlsRptSendCommand(a, io)
  const ro = { ...(a.resolvers && { servers: a.resolvers }), ...(a.timeoutMs && { timeoutMs: a.timeoutMs }) }
  // The DNS modules (sockets) are loaded only for a domain: checking a report needs none of them.
  let resolver: Resolver | undefined
  let getTlsRptRecord: typeof GetTlsRptRecord | undefined
  if (a.domain !== undefined) {
    const { createResolver } = await import('../node/resolver/index.js')
    resolver = optionValue('--resolver', () => createResolver(ro))
    getTlsRptRecord = (await import('../node/mta-sts.js')).getTlsRptRecord
  }
  const report = a.report !== undefined ? checkReport(a.report) : undefined
  let record: TlsRptRecord | undefined
  let recordError: { code: string; message: string } | undefined
  let status = EX_OK
  if (a.domain !== undefined) {
    try {
      record = await getTlsRptRecord!(a.domain, { resolver: resolver! })
    } catch (e) {
      if (!isCoded(e)) throw e
      recordError = { code: e.code, message: e.message }
      status = e.code === 'ERR_TLSRPT_SYNTAX' ? EX_DATAERR : EX_TEMPFAIL
    }
  }
  if (report && !report.validation.valid && status === EX_OK) status = EX_DATAERR
  if (a.json) {
    io.out(
      JSON.stringify(
        {
          ...(a.domain !== undefined && {
            domain: a.domain,
            record: record ? formatTlsRptRecord(record) : null,
            rua: record?.rua ?? null,
            error: recordError ?? null,
          }),
          ...(report && { report }),
        },
        null,
        2,
      ),
    )
    return status
  }
  const out = (l: string): void => io.out(clean(l))
  if (a.domain !== undefined) {
    if (recordError) out(`_smtp._tls.${a.domain}: ${recordError.message} [${recordError.code}]`)
    else if (record === undefined) out(`_smtp._tls.${a.domain}: no TLS-RPT record`)
    else {
      out(`_smtp._tls.${a.domain}: ${formatTlsRptRecord(record)}`)
      for (const u of record.rua) out(`  rua ${u}`)
    }
  }
  if (report) {
    if (report.validation.valid) {
      out(
        `report ${report.file}: valid (RFC 8460 §4.4): ${report.policies} policies, ${report.successful} successful and ${report.failed} failed sessions`,
      )
    } else {
      out(`report ${report.file}: INVALID (RFC 8460 §4.4), ${report.validation.errors.length} defects:`)
      for (const e of report.validation.errors) out(`  ${e.path || '/'}: ${e.message}`)
    }
  }
  return status
}
