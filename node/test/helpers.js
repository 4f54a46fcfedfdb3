'use strict'
// Shared by the test files: which Redis topologies are up, a redis-cli wrapper,
// an express app with express-session, and an HTTP client that keeps cookies.

const { execFile, spawn } = require('node:child_process')
const crypto = require('node:crypto')
const net = require('node:net')

const express = require('express')
const session = require('express-session')
const { SessionkeeperStore } = require('..')

const required = process.env.SK_REQUIRE_REDIS === '1'

/** The topologies this run can use: [{ name, url, port, ports (every node), cluster }]. */
function topologies () {
  const out = []
  if (process.env.SK_REDIS_URL) {
    const port = Number(new URL(process.env.SK_REDIS_URL).port)
    out.push({ name: 'standalone', url: process.env.SK_REDIS_URL, port, ports: [port], cluster: false })
  } else if (required) {
    throw new Error('SK_REQUIRE_REDIS=1 but SK_REDIS_URL is not set')
  }
  if (process.env.SK_CLUSTER_URL) {
    const ports = (process.env.SK_CLUSTER_PORTS || '').split(' ').filter(Boolean).map(Number)
    const first = ports[0] || Number(process.env.SK_CLUSTER_URL.split(',')[0].split(':').pop())
    out.push({ name: 'cluster', url: process.env.SK_CLUSTER_URL, port: first, ports: ports.length ? ports : [first], cluster: true })
  } else if (required) {
    throw new Error('SK_REQUIRE_REDIS=1 but SK_CLUSTER_URL is not set')
  }
  return out
}

/** Skip reason when no Redis is configured (and it is not required). */
function noRedis () {
  return topologies().length ? false : 'no Redis (set SK_REDIS_URL / SK_CLUSTER_URL, or run scripts/test-node.sh)'
}

/** Runs redis-cli against a topology; `input` is sent on stdin (for -x). */
function redisCli (topo, args, input) {
  const base = ['-h', '127.0.0.1', '-p', String(topo.port)]
  if (topo.cluster) base.push('-c')
  return new Promise((resolve, reject) => {
    const child = execFile('redis-cli', [...base, ...args], { timeout: 10000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`))
      resolve(stdout.trim())
    })
    if (input !== undefined) child.stdin.end(input)
  })
}

/**
 * `CLIENT PAUSE ms ALL` on every node of a topology at once (a pause is per
 * node); `clientUnpause` ends it early.
 */
function clientPause (topo, ms) {
  return Promise.all(topo.ports.map((port) => redisCli({ port, cluster: false }, ['CLIENT', 'PAUSE', String(ms), 'ALL'])))
}

function clientUnpause (topo) {
  return Promise.all(topo.ports.map((port) => redisCli({ port, cluster: false }, ['CLIENT', 'UNPAUSE'])))
}

/** The Redis key of a session id: prefix + "2::" + sha256(id) (docs/data-layout.md). */
function storageKey (prefix, id) {
  return `${prefix}2::${crypto.createHash('sha256').update(id).digest('hex')}`
}

/** The opaque handle of a session id (`Store#handles()` lists these): "2::" + sha256(id). */
function handleOf (id) {
  return `2::${crypto.createHash('sha256').update(id).digest('hex')}`
}

/** What the engine holds for a session, read through the store API without sliding it (null: none). */
function peek (store, id) {
  const engine = store.store || store
  return engine.peekHandle(handleOf(id))
}

function uniquePrefix (label) {
  return `sk-node-test:${label}:${crypto.randomBytes(4).toString('hex')}:`
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A port nothing listens on (bound, then released). */
async function closedPort () {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A TCP server that accepts connections and never answers. */
async function blackhole () {
  const sockets = new Set()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(resolve))
    }
  }
}

/**
 * A port where connecting never completes (a host that drops the SYN): a
 * socket that listens and never accepts, its queue filled. Node accepts
 * every connection itself, so a small python3 process holds it.
 */
async function unanswered () {
  const script = [
    'import socket, sys',
    'srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(0)',
    'port = srv.getsockname()[1]',
    'fill = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.1", port)); fill.append(c)',
    'print(port, flush=True)',
    'sys.stdin.read()'
  ].join('\n')
  const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())))
    child.once('error', reject)
  })
  return { port, close: () => child.kill() }
}

/**
 * An express app with express-session on `store`, listening on a free port.
 * Routes answer JSON; errors answer 500 with the error's code/temporary.
 */
async function startExpress (store, sessionOptions = {}) {
  const app = express()
  app.use(session({
    store,
    secret: 'test secret',
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 60000 },
    ...sessionOptions
  }))
  const state = (req) => ({ sid: req.sessionID, user: req.session.user ?? null, n: req.session.n ?? 0, data: { ...req.session, cookie: undefined } })
  app.get('/login', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.user = req.query.user || 'alice'
      res.json(state(req))
    })
  })
  app.get('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })))
  })
  app.get('/whoami', (req, res) => res.json(state(req)))
  app.get('/inc', (req, res) => {
    req.session.n = (req.session.n || 0) + 1
    res.json(state(req))
  })
  // Sets every query parameter as a session key, after an optional delay
  // (so concurrent requests overlap between their load and their save).
  app.get('/set', async (req, res) => {
    const { ms, ...rest } = req.query
    if (ms) await sleep(Number(ms))
    for (const [k, v] of Object.entries(rest)) req.session[k] = v
    res.json(state(req))
  })
  // Waits `before` ms, reloads the session from the store
  // (express-session's Session#reload), waits `after` ms, then sets the
  // other query parameters.
  app.get('/reload-then-set', async (req, res, next) => {
    const { before, after, ...rest } = req.query
    await sleep(Number(before))
    req.session.reload(async (err) => {
      if (err) return next(err)
      await sleep(Number(after))
      for (const [k, v] of Object.entries(rest)) req.session[k] = v
      res.json(state(req))
    })
  })
  app.get('/unset', (req, res) => {
    for (const k of Object.keys(req.query)) delete req.session[k]
    res.json(state(req))
  })
  app.get('/remember', (req, res) => {
    req.session.cookie.maxAge = Number(req.query.ms)
    res.json(state(req))
  })
  app.get('/save-twice', (req, res, next) => {
    req.session.a = 'first'
    req.session.save((err) => {
      if (err) return next(err)
      req.session.a = 'second'
      req.session.tmp = 'x'
      res.json(state(req))
    })
  })
  app.use((err, req, res, next) => {
    // A save error comes after express-session began the response.
    if (res.headersSent) return next(err)
    res.status(500).json({ error: err.message, code: err.code ?? null, temporary: err.temporary ?? null, kind: err.kind ?? null })
  })
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(resolve)
    })
  }
}

/** An HTTP client with one cookie jar (name -> value). */
class Client {
  constructor (base) {
    this.base = base
    this.cookies = new Map()
  }

  async get (path) {
    const headers = {}
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetch(this.base + path, { headers })
    const setCookies = res.headers.getSetCookie()
    for (const line of setCookies) {
      const [pair] = line.split(';')
      const i = pair.indexOf('=')
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim())
    }
    const text = await res.text()
    let body
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
    return { status: res.status, body, setCookie: setCookies }
  }

  /** The session id in the express-session cookie (unsigned part). */
  sid (name = 'connect.sid') {
    const v = this.cookies.get(name)
    if (!v) return null
    const raw = decodeURIComponent(v)
    return raw.startsWith('s:') ? raw.slice(2, raw.lastIndexOf('.')) : raw
  }
}

/** A SessionkeeperStore under a fresh key prefix (remembered as `testPrefix`). */
function newStore (topo, label, options = {}) {
  const prefix = uniquePrefix(label)
  const store = new SessionkeeperStore({ url: topo.url, key_prefix: prefix, command_timeout: '3s', ...options })
  store.testPrefix = prefix
  return store
}

/** The Redis key of a session in a store made by newStore. */
function keyOf (store, sid) {
  return storageKey(store.testPrefix, sid)
}

/** Round trips the store made while `fn` ran. */
async function roundTrips (store, fn) {
  const before = store.store.stats().roundTrips.count
  const out = await fn()
  return { out, trips: store.store.stats().roundTrips.count - before }
}

module.exports = {
  topologies,
  noRedis,
  redisCli,
  clientPause,
  clientUnpause,
  storageKey,
  handleOf,
  peek,
  uniquePrefix,
  sleep,
  closedPort,
  blackhole,
  unanswered,
  startExpress,
  Client,
  newStore,
  keyOf,
  roundTrips
}
