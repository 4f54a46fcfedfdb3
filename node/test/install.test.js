'use strict'
// `npm install <path-to-node/>` from an app runs the install script, which
// builds the addon with cargo, and the app can then require and import the
// package. The build here is a debug one (SESSIONKEEPER_BUILD_PROFILE=debug)
// so it reuses the tests' build instead of compiling a release from scratch;
// the release path is the same script with `--release`.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const pkgDir = path.join(__dirname, '..')

function run (cmd, args, options) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 600000, maxBuffer: 64 * 1024 * 1024, ...options }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
      resolve(stdout)
    })
  })
}

describe('npm install <path>', () => {
  it('builds the addon and the app can require and import it', async () => {
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'sessionkeeper-app-'))
    try {
      fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
      const addon = path.join(pkgDir, 'sessionkeeper.node')
      const before = fs.statSync(addon).mtimeMs
      const log = await run('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', pkgDir], {
        cwd: app,
        env: { ...process.env, SESSIONKEEPER_BUILD_PROFILE: 'debug' }
      })
      assert.match(log, /sessionkeeper: built/)
      assert.ok(fs.statSync(addon).mtimeMs > before, 'the install script rebuilt and replaced the addon')
      const cjs = await run(process.execPath, ['-e', 'const { Store } = require("sessionkeeper"); new Store("memory://app").create({ a: 1 }).then(({ id }) => console.log(id.length))'], { cwd: app })
      assert.equal(cjs.trim(), '32')
      const esm = await run(process.execPath, ['--input-type=module', '-e', 'import { SessionkeeperStore } from "sessionkeeper"; console.log(typeof new SessionkeeperStore({ url: "memory://app" }).get)'], { cwd: app })
      assert.equal(esm.trim(), 'function')
    } finally {
      fs.rmSync(app, { recursive: true, force: true })
    }
  })
})
