// The source twin of bin/smtp-tls-policy.js (see test/helpers/cli.ts): the same body, importing src/.
import { internalError, main } from '../../src/cli/main.js'

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
