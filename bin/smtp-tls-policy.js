#!/usr/bin/env node
import { main } from '../dist/cli/main.js'

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status
  },
  (err) => {
    console.error('smtp-tls-policy: internal error:', err)
    process.exitCode = 70
  },
)
