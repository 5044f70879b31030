/** Client-certificate access tables (Postfix `relay_clientcerts`, `check_ccert_access`). */
export { clientCertPermits, lookupClientCertificate, parseClientCertTable } from './table.js'
export type {
  ClientCertAction,
  ClientCertEntry,
  ClientCertFingerprints,
  ClientCertLookupOptions,
  ClientCertLookupResult,
  ClientCertMatchKind,
  ClientCertTable,
} from './table.js'
