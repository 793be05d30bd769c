// Run every cache-test against a base URL and print one JSON document on stdout:
// {"tests": [{suite, id, kind, depends_on, browser_only, browser_skip}], "results": {id: ...}}
//
// Usage: node run.mjs http://127.0.0.1:PORT [test-id]
//
// The tests run as the package's own CLI (cli.mjs) runs them, as a non-browser client
// (so each request carries the suite's `Pragma: foo` and `Cache-Control:
// nothing-to-see-here` headers), with one difference: the browser-only tests run too.
// They test a private cache (s-maxage ignored, `private` reused, `immutable`), which
// acc is; the CLI leaves them out only because it usually tests shared caches.
// Grading is left to the caller: a result is `true` or [error name, message].
import fetch from 'node-fetch'

import { runTests, getResults } from 'http-cache-tests/client/runner.mjs'
import suites from 'http-cache-tests/tests/index.mjs'
import surrogate from 'http-cache-tests/tests/surrogate-control.mjs'

const [base, only] = process.argv.slice(2)
if (!base) {
  console.error('usage: node run.mjs BASE_URL [TEST_ID]')
  process.exit(2)
}

const all = suites.concat([surrogate])
const meta = []
const selected = []
for (const suite of all) {
  const tests = []
  for (const test of suite.tests) {
    meta.push({
      suite: suite.id,
      id: test.id,
      kind: test.kind || 'required',
      depends_on: test.depends_on || [],
      browser_only: test.browser_only === true,
      browser_skip: test.browser_skip === true
    })
    if (only && test.id !== only) continue
    if (only) test.dump = true
    const copy = Object.assign({}, test)
    delete copy.browser_only
    tests.push(copy)
  }
  if (tests.length) selected.push(Object.assign({}, suite, { tests }))
}

runTests(selected, fetch, false, base)
  .then(() => {
    const out = JSON.stringify({ tests: meta, results: getResults() })
    if (only) console.error(JSON.stringify(getResults()[only]))
    else process.stdout.write(out + '\n')
  })
  .catch(err => {
    console.error(err)
    process.exit(1)
  })
