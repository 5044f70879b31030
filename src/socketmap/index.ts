export { createNetstringDecoder, encodeNetstring, SOCKETMAP_MAX_QUERY, SOCKETMAP_MAX_REPLY } from './netstring.js'
export type { NetstringDecoder } from './netstring.js'
export { parseSocketmapKey, socketmapAnswer, socketmapError, SOCKETMAP_PROFILES } from './answer.js'
export type { SocketmapAnswer, SocketmapAnswerInput, SocketmapKey, SocketmapProfile, SocketmapStsInput } from './answer.js'
