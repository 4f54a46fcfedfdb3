'use strict'
// Store#load and Store#save over a socket the event loop drives.
//
// On a standalone Redis (TCP or unix socket, no TLS) each store opens one
// net.Socket and sends its loads and saves over it, pipelined: the engine
// builds each command and turns each reply into the result (the addon's
// `Wire`, bindings/node/src/wire.rs), this file only moves the bytes. A reply
// settles its Promise in the socket's 'data' callback, many per wake-up, with
// no thread hand-off. Until the socket is connected, while Redis cannot be
// reached, and for every other call, the engine's own threads do the work
// (the same results and errors, only slower), so nothing waits here.
//
// The socket never keeps the process alive by itself: a call in flight does
// (the addon holds the loop open until its Promise settles), an idle store
// does not.

const net = require('node:net')

/** After a failed connect, calls use the engine's threads this long before the next try. */
const RETRY_MS = 1000

/** How the socket shows in Redis' CLIENT LIST: which process holds it. */
const CONNECTION_NAME = `sessionkeeper-node-loop-${process.pid}`

/** The error of a connect that timed out, shaped as the engine's errors are. */
function connectTimeout (ms) {
  const err = new Error(`sessionkeeper: connecting to Redis took longer than connect_timeout (${ms} ms)`)
  err.code = 'SESSIONKEEPER_TIMEOUT'
  err.kind = 'timeout'
  err.temporary = true
  return err
}

class Connection {
  constructor (native, store) {
    this.native = native
    // null: this store's calls never go over an event-loop socket.
    this.target = native.wireTarget(store)
    this.socket = null
    this.wire = null
    this.timer = null
    this.waiting = []
    this.flushing = false
    this.flush = () => {
      this.flushing = false
      const out = this.wire === null ? null : this.wire.take()
      if (out !== null) this.socket.write(out)
    }
    this.retryAt = 0
    // Stores sharing this connection (withIdleTtl/withLoadWindow copies) still alive.
    this.users = 0
  }

  /**
   * `viaWire(wire)`'s Promise, or `viaNative()`'s when it gives undefined or
   * there is no connected socket. While the socket connects, a call that
   * `waits` waits for it (at most connect_timeout), so it goes over it once
   * Redis answers; the others go on without it.
   */
  route (store, waits, viaWire, viaNative) {
    if (this.wire !== null) {
      const promise = viaWire(this.wire)
      if (promise === undefined) return viaNative()
      this.sent(this.wire)
      return promise
    }
    if (this.target === null) return viaNative()
    if (this.socket === null) {
      if (Date.now() < this.retryAt) return viaNative()
      this.open(store)
    }
    if (!waits) return viaNative()
    // A call waiting for the connect keeps the process alive, as one in flight does.
    this.socket.ref()
    return new Promise((resolve, reject) => {
      this.waiting.push((err) => err ? reject(err) : resolve(this.route(store, waits, viaWire, viaNative)))
    })
  }

  /**
   * Calls waiting for the connect go on: over the socket, or without it; or,
   * given `err` (the connect timed out), fail with it: they have waited
   * connect_timeout already, and another connect would double the wait.
   */
  proceed (err) {
    if (this.socket !== null) this.socket.unref()
    const waiting = this.waiting
    this.waiting = []
    for (const go of waiting) go(err)
  }

  open (store) {
    const target = this.target
    const socket = target.path !== undefined
      ? net.connect({ path: target.path })
      : net.connect({ host: target.host, port: target.port })
    this.socket = socket
    socket.setNoDelay(true)
    socket.unref()
    let timedOut = null
    const connectTimer = setTimeout(() => {
      timedOut = connectTimeout(target.connectTimeoutMs)
      socket.destroy(timedOut)
    }, target.connectTimeoutMs)
    connectTimer.unref()
    let wire = null
    socket.once('connect', () => {
      clearTimeout(connectTimer)
      // The handshake (AUTH, SELECT) goes first; calls pipeline behind it, and
      // fail with its error if Redis refuses it.
      wire = new this.native.Wire(store, CONNECTION_NAME)
      const hello = wire.take()
      if (hello !== null) socket.write(hello)
      this.wire = wire
      this.proceed()
    })
    socket.on('data', (chunk) => {
      if (wire.feed(chunk) !== null) {
        socket.destroy()
        return
      }
      const out = wire.take()
      if (out !== null) socket.write(out)
    })
    // 'close' follows; what went wrong shows in the calls' own errors.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(connectTimer)
      if (wire === null) {
        this.retryAt = Date.now() + RETRY_MS
      } else {
        // Calls in flight run again on the engine's own connection.
        wire.closed()
      }
      if (this.wire === wire) this.wire = null
      if (this.socket === socket) this.socket = null
      this.proceed(wire === null ? timedOut : null)
    })
  }

  /**
   * After a call went into `wire`: write it with every other call made in
   * this turn of the event loop (one write, one wake-up of Redis, for the
   * calls of all the requests read at once), and watch command_timeout.
   */
  sent (wire) {
    if (!this.flushing) {
      this.flushing = true
      setImmediate(this.flush)
    }
    if (this.timer === null) this.watch(this.target.commandTimeoutMs)
  }

  watch (ms) {
    this.timer = setTimeout(() => {
      this.timer = null
      const wire = this.wire
      if (wire === null) return
      const left = wire.overdueMs()
      if (left < 0) return
      if (left > 0) {
        this.watch(left)
        return
      }
      // The oldest call waited command_timeout: its reply may never come, and
      // every reply behind it would be out of step. Fail them, start over.
      wire.timedOut()
      this.wire = null
      this.socket.destroy()
    }, ms)
    this.timer.unref()
  }

  close () {
    if (this.socket !== null) this.socket.destroy()
  }
}

/** Routes `Store#load` and `Store#save` of the addon `native` through Connections. */
function install (native) {
  // An older addon (a benchmark's comparison build) has no Wire: leave it be.
  if (typeof native.Wire !== 'function' || typeof native.wireTarget !== 'function') return
  const proto = native.Store.prototype
  const nativeLoad = proto.load
  const nativeSave = proto.save
  const connections = new WeakMap()
  const unused = new FinalizationRegistry((connection) => {
    connection.users -= 1
    if (connection.users === 0) connection.close()
  })
  const share = (store, connection) => {
    connections.set(store, connection)
    connection.users += 1
    unused.register(store, connection)
    return connection
  }
  const connectionOf = (store) => connections.get(store) ?? share(store, new Connection(native, store))

  proto.load = function load (id, ttlMs) {
    if (ttlMs !== undefined) return nativeLoad.call(this, id, ttlMs)
    return connectionOf(this).route(this, true, (wire) => wire.load(this, id), () => nativeLoad.call(this, id))
  }

  proto.save = function save (id, baseline, data, ttlMs) {
    // A save never waits for the connect: its data is read now, as the caller left it.
    return connectionOf(this).route(
      this,
      false,
      (wire) => wire.save(this, id, baseline, data, ttlMs),
      () => nativeSave.call(this, id, baseline, data, ttlMs)
    )
  }

  // Copies share their original's connection.
  for (const name of ['withIdleTtl', 'withLoadWindow']) {
    const copyOf = proto[name]
    proto[name] = function (ms) {
      const copy = copyOf.call(this, ms)
      share(copy, connectionOf(this))
      return copy
    }
  }
}

module.exports = { install }
