'use strict'
// index.d.ts compiles against real usage (ESM and CommonJS, express-session
// and the engine API), and rejects wrong usage (@ts-expect-error lines).

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const path = require('node:path')

describe('TypeScript types', () => {
  it('tsc --noEmit accepts the usage files', async () => {
    const tsc = require.resolve('typescript/bin/tsc')
    const project = path.join(__dirname, 'types', 'tsconfig.json')
    const { code, output } = await new Promise((resolve) => {
      execFile(process.execPath, [tsc, '--noEmit', '-p', project], { timeout: 120000 }, (err, stdout, stderr) => {
        resolve({ code: err ? err.code : 0, output: stdout + stderr })
      })
    })
    assert.equal(code, 0, output)
  })
})
