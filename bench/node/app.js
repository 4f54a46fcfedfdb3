'use strict'
// One express + express-session app per store, the same for every store:
//   STORE=sessionkeeper | sessionkeeper-14d | ioredis | node-redis | memory | memory-rtt
//   REDIS_URL=redis://127.0.0.1:<port>   PORT=<port> (0: any)
// Routes: /login (creates the session), /read (reads it, unmodified: the
// store's touch path), /write (increments a counter: the store's set path).
// Prints one JSON line {"ready": port} on stdout once listening.
//
// Options are the ones a production app would use: resave false,
// saveUninitialized false, a one-hour cookie maxAge; the peers' own defaults
// otherwise (connect-redis: prefix "sess:", touch = EXPIRE).

const path = require('node:path')
const express = require('express')
const session = require('express-session')

const net = require('node:net')

const storeName = process.env.STORE
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'

// MemoryStore plus what no store that keeps sessions in Redis can avoid: one
// round trip (a bare PING on one raw socket, nothing encoded) per get and one
// per set, the PINGs of one event-loop turn sent in one write (as ours and
// node-redis batch their commands). Nobody's store: about the most a store
// that keeps sessions in Redis could do.
class RoundTripMemoryStore extends session.MemoryStore {
  constructor (url) {
    super()
    const { hostname, port } = new URL(url)
    this.socket = net.connect({ host: hostname, port: Number(port) })
    this.socket.setNoDelay(true)
    this.pending = []
    this.unsent = 0
    this.buffered = 0
    this.flush = () => {
      this.socket.write('PING\r\n'.repeat(this.unsent))
      this.unsent = 0
    }
    this.socket.on('data', (chunk) => {
      // Every reply is "+PONG\r\n" (7 bytes), in order.
      this.buffered += chunk.length
      while (this.buffered >= 7) {
        this.buffered -= 7
        this.pending.shift()()
      }
    })
  }

  roundTrip (then) {
    this.pending.push(then)
    if (this.unsent++ === 0) setImmediate(this.flush)
  }

  get (sid, cb) {
    this.roundTrip(() => super.get(sid, cb))
  }

  set (sid, sess, cb) {
    this.roundTrip(() => super.set(sid, sess, cb))
  }
}

async function makeStore () {
  switch (storeName) {
    case 'sessionkeeper':
    case 'sessionkeeper-14d': {
      // The package from this checkout; SESSIONKEEPER_NATIVE points at the
      // release addon scripts/bench-node.sh built. `sessionkeeper` is the
      // configuration the README recommends (the engine's idle_ttl equal to
      // the cookie's maxAge: a load is one GETEX); `sessionkeeper-14d` keeps
      // the default idle_ttl (a load is GETEX + PEXPIREAT).
      const { SessionkeeperStore } = require(path.resolve(__dirname, '..', '..', 'node'))
      // Prefixes as long as connect-redis' below: the memory pass compares key sizes.
      const options = { url: redisUrl, key_prefix: storeName === 'sessionkeeper' ? 'bench:sk:' : 'bench:sk14:' }
      if (storeName === 'sessionkeeper') options.idle_ttl = '1h'
      return { store: new SessionkeeperStore(options) }
    }
    case 'ioredis': {
      const { RedisStore } = require('connect-redis-8')
      const Redis = require('ioredis')
      const client = new Redis(redisUrl)
      await new Promise((resolve, reject) => {
        client.once('ready', resolve)
        client.once('error', reject)
      })
      return { store: new RedisStore({ client, prefix: 'bench:cr8:' }) }
    }
    case 'node-redis': {
      const { RedisStore } = require('connect-redis')
      const { createClient } = require('redis')
      const client = createClient({ url: redisUrl })
      await client.connect()
      return { store: new RedisStore({ client, prefix: 'bench:cr10:' }) }
    }
    case 'memory':
      return { store: new session.MemoryStore() }
    case 'memory-rtt':
      return { store: new RoundTripMemoryStore(redisUrl) }
    default:
      throw new Error(`STORE must be sessionkeeper, sessionkeeper-14d, ioredis, node-redis, memory or memory-rtt, not ${storeName}`)
  }
}

async function main () {
  const { store } = await makeStore()
  const app = express()
  app.use(session({
    store,
    secret: 'bench secret, not a real one',
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 3600 * 1000 }
  }))
  app.get('/login', (req, res) => {
    req.session.user = 'bench-user'
    req.session.roles = ['reader', 'writer']
    req.session.n = 0
    res.json({ ok: true })
  })
  app.get('/read', (req, res) => {
    res.json({ user: req.session.user ?? null })
  })
  app.get('/write', (req, res) => {
    req.session.n = (req.session.n || 0) + 1
    res.json({ user: req.session.user ?? null })
  })
  // Round trips our engine made (sessionkeeper only): a cross-check of the
  // MONITOR count.
  app.get('/engine-stats', (req, res) => {
    res.json(store.store && typeof store.store.stats === 'function' ? store.store.stats().roundTrips : null)
  })
  const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ ready: server.address().port }) + '\n')
  })
  process.on('SIGTERM', () => {
    server.closeAllConnections()
    server.close(() => process.exit(0))
  })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
