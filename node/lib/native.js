'use strict'
// Loads the native addon built by scripts/build-native.js.
// SESSIONKEEPER_NATIVE=/path/to/addon.node overrides the location.

const path = require('node:path')

const file = process.env.SESSIONKEEPER_NATIVE || path.join(__dirname, '..', 'sessionkeeper.node')
let native
try {
  native = require(file)
} catch (e) {
  const err = new Error(
    `sessionkeeper: cannot load the native addon ${file} (${e.message}). ` +
      `Build it with \`npm install\` or \`npm run build:debug\` in ${path.join(__dirname, '..')} (needs Rust: https://rustup.rs).`
  )
  err.code = 'SESSIONKEEPER_CONFIG'
  err.temporary = false
  err.kind = 'config'
  err.cause = e
  throw err
}
// Loads and saves over an event-loop socket where the topology allows (wire.js).
require('./wire').install(native)
module.exports = native
