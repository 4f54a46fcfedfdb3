'use strict'
// Both module systems load the same package (and the same addon).

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const pkgDir = path.join(__dirname, '..')

describe('entry points', () => {
  it('require("sessionkeeper") gives the named exports and .default', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const sk = require("sessionkeeper")
      const { Store, SessionkeeperStore, generateId } = sk
      const s = new Store("memory://cjs")
      console.log(JSON.stringify([typeof Store, typeof SessionkeeperStore, generateId().length, sk.default === sk, s.idleTtlMs]))
    `], { cwd: pkgDir, encoding: 'utf8' })
    assert.deepEqual(JSON.parse(out), ['function', 'function', 32, true, 14 * 24 * 3600 * 1000])
  })

  it('import ... from "sessionkeeper" gives the same classes', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import sk, { Store, SessionkeeperStore, ERROR_CODES } from "sessionkeeper"
      import { createRequire } from "node:module"
      const cjs = createRequire(import.meta.url)("sessionkeeper")
      const s = new Store("memory://esm")
      const { id } = await s.create({ a: 1 })
      console.log(JSON.stringify([Store === cjs.Store, sk.SessionkeeperStore === SessionkeeperStore, ERROR_CODES.length, (await s.load(id)).data.a]))
    `], { cwd: pkgDir, encoding: 'utf8' })
    assert.deepEqual(JSON.parse(out), [true, true, 8, 1])
  })

  it('the process exits by itself after using a store (no handle keeps it alive)', () => {
    execFileSync(process.execPath, ['-e', `
      const { Store } = require("sessionkeeper")
      new Store("memory://exit").create({ a: 1 }).then(() => console.log("done"))
    `], { cwd: pkgDir, encoding: 'utf8', timeout: 10000 })
  })
})
