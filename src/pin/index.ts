/** Certificate pins for Postfix's `fingerprint` security level. */
export { certificateFingerprint } from './fingerprint.js'
export type { FingerprintOptions, PinDigest, PinSubject } from './fingerprint.js'
export { matchPins, parsePins } from './match.js'
export type { PinMatch, PinMismatch, PinOptions, PinResult } from './match.js'
