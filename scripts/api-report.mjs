#!/usr/bin/env node
// API Extractor for each public entry point. `--check` fails when a report under etc/ is out of
// date (the public API changed without the report); without it the reports are rewritten.
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor'

const check = process.argv.includes('--check')
let failed = false
for (const file of ['api-extractor.json', 'api-extractor.node.json', 'api-extractor.redis.json', 'api-extractor.nodemailer.json']) {
  const config = ExtractorConfig.loadFileAndPrepare(file)
  const result = Extractor.invoke(config, { localBuild: !check, showVerboseMessages: false })
  if (!result.succeeded) {
    failed = true
    console.error(
      `${file}: ${result.errorCount} errors, ${result.warningCount} warnings` +
        (result.apiReportChanged ? ' (API report out of date: run `npm run api`)' : ''),
    )
  } else {
    console.log(`${file}: API report ${result.apiReportChanged ? 'updated' : 'up to date'}`)
  }
}
process.exit(failed ? 1 : 0)
