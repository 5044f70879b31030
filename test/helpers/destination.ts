// One mail destination for driver tests: an smtp-server with STARTTLS on 127.0.0.1 and the
// in-process DNS server playing a validating resolver for `<domain> MX 10 mx.<domain>`, the host's
// address, and (when `tlsa`) a DANE-EE 3 1 1 record for the server's certificate at _PORT._tcp.
import { createTlsaRecord } from '../../src/index.js'
import { createResolver, type ConnectOptions } from '../../src/node/index.js'
import { startDnsServer, validatingZone, type ZoneRecord } from './dns-server.js'
import { makeCert, type Issued } from './openssl.js'
import { startSmtpServer } from './smtp-server.js'

export interface TestDestination {
  cert: Issued
  /** connect()/probe() options: the resolver, the server's port, a test EHLO name, a 5 s timeout */
  options: ConnectOptions
  close(): Promise<void>
}

export async function startDestination(
  domain: string,
  o: { tlsa?: boolean; onCommand?: (line: string) => void } = {},
): Promise<TestDestination> {
  const host = `mx.${domain}`
  const cert = makeCert({ key: 'ec256', subject: `/CN=${host}`, dns: [host] })
  const smtp = await startSmtpServer({ certPem: cert.pem, keyPem: cert.keyPem, ...(o.onCommand ? { onCommand: o.onCommand } : {}) })
  const records: ZoneRecord[] = [
    [domain, 'MX', { preference: 10, exchange: host }],
    [host, 'A', '127.0.0.1'],
  ]
  if (o.tlsa) {
    const r = createTlsaRecord(cert.der, { usage: 3, selector: 1, matchingType: 1 })
    records.push([`_${smtp.port}._tcp.${host}`, 'TLSA', { usage: 3, selector: 1, matchingType: 1, certificate: Buffer.from(r.data) }])
  }
  const dns = await startDnsServer(validatingZone({ records }))
  return {
    cert,
    options: {
      resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 }),
      port: smtp.port,
      ehloName: 'client.test',
      timeoutMs: 5000,
    },
    close: async () => {
      await smtp.close()
      await dns.close()
    },
  }
}
