'use strict'
// sessionkeeper: web sessions in Redis on the Sessionkeeper engine.
//
//   const { Store, SessionkeeperStore } = require('sessionkeeper')
//   const store = new Store('redis://127.0.0.1:6379', { idle_ttl: '30m' })
//   app.use(session({ store: new SessionkeeperStore({ url: 'redis://127.0.0.1:6379' }), secret, resave: false, saveUninitialized: false }))
//
// Store: the engine, every I/O method returns a Promise and never blocks the
// event loop. SessionkeeperStore: express-session's Store over it.

const native = require('./lib/native')
const { SessionkeeperStore } = require('./lib/express')

/** The `code` of every engine error, `SESSIONKEEPER_CONFIG` ... `SESSIONKEEPER_UNEXPECTED`. */
const ERROR_CODES = Object.freeze(native.errorCodes())

/** Whether `err` came from the engine (it has `code`, `kind` and `temporary`). */
function isSessionkeeperError (err) {
  return err instanceof Error && typeof err.code === 'string' && ERROR_CODES.includes(err.code)
}

module.exports = {
  Store: native.Store,
  Baseline: native.Baseline,
  SessionkeeperStore,
  generateId: native.generateId,
  isValidId: native.isValidId,
  isValidHandle: native.isValidHandle,
  sign: native.sign,
  unsign: native.unsign,
  isSessionkeeperError,
  ERROR_CODES
}
// `import sk from "sessionkeeper"` under TypeScript's CommonJS interop reads `.default`.
module.exports.default = module.exports
