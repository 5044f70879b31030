// The source twin of bin/smtp-tls-policy.js (see test/helpers/cli.ts): the same body, importing src/.
import { main } from '../../src/cli/main.js'

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status
  },
  (err) => {
    console.error('smtp-tls-policy: internal error:', err)
    process.exitCode = 70
  },
)
