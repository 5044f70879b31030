/** Stores for cached MTA-STS policies, cached DANE answers and TLS-RPT counters. */
export type { Awaitable, PolicyStore } from './types.js'
export { createMemoryStore } from './memory.js'
export type { MemoryStore, MemoryStoreOptions } from './memory.js'
