#!/usr/bin/env node
// Loads the argument parser only; each command loads its own modules when it runs (issue 17).
import { internalError, main } from '../dist/cli/main.js'

// main() never rejects; an exception thrown from an event handler is still one line, status 70.
process.on('uncaughtException', (err) => {
  internalError(err)
  process.exit(70)
})
main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status
  },
  (err) => {
    internalError(err)
    process.exitCode = 70
  },
)
