'use strict'
// Loads and saves on a standalone Redis go over one socket the event loop
// drives (lib/wire.js, bindings/node/src/wire.rs), and keep the engine's
// semantics there: errors, timeouts, a lost connection, scripts Redis forgot.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')

const { Store } = require('..')
const h = require('./helpers')

const skip = h.noRedis()
const standalone = skip ? null : h.topologies().find((t) => t.name === 'standalone')
const NAME = `sessionkeeper-node-loop-${process.pid}`

/** The CLIENT LIST lines of this process' event-loop sockets. */
async function loopClients () {
  const list = await h.redisCli(standalone, ['CLIENT', 'LIST'])
  return list.split('\n').filter((line) => line.includes(`name=${NAME} `))
}

/** The last command of a CLIENT LIST line. */
function commandOf (line) {
  return / cmd=(\S+)/.exec(line)[1]
}

/** The last command of each of this process' event-loop sockets. */
async function lastCommands () {
  return (await loopClients()).map(commandOf)
}

describe('event-loop socket', { skip: skip || (!standalone && 'no standalone Redis') }, () => {
  it('carries loads and saves, one GETEX and one EVALSHA each', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('wire') })
    const { id } = await store.create({ a: 1 })
    const before = (await loopClients()).length
    const loaded = await store.load(id)
    assert.deepEqual(loaded.data, { a: 1 })
    const clients = await loopClients()
    assert.equal(clients.length, before + 1, 'the first load opened the socket and went over it')
    assert.ok((await lastCommands()).includes('getex'), clients.join('\n'))
    const saved = await store.save(id, loaded.baseline, { a: 2, b: 'x' })
    assert.deepEqual(saved, { outcome: 'saved', written: 2, removed: 0 })
    // EVALSHA, or EVAL on a server that did not have the script yet.
    assert.ok((await lastCommands()).some((cmd) => /^eval/.test(cmd)))
    assert.deepEqual((await store.load(id)).data, { a: 2, b: 'x' })
    // Calls that cannot go over it still work: a per-call window is a script.
    assert.deepEqual((await store.load(id, 60000)).data, { a: 2, b: 'x' })
    assert.equal(await store.load('not-an-id'), null)
    assert.equal((await loopClients()).length, before + 1, 'one socket per store')
  })

  it('pipelines many calls and settles each with its own result', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('pipe') })
    const created = await Promise.all(Array.from({ length: 300 }, (_, i) => store.create({ i, pad: 'x'.repeat(i * 50) })))
    const loaded = await Promise.all(created.map(({ id }) => store.load(id)))
    assert.deepEqual(loaded.map((l) => l.data.i), created.map((_, i) => i))
    const saved = await Promise.all(loaded.map((l, i) => store.save(created[i].id, l.baseline, { ...l.data, n: i })))
    assert.ok(saved.every((s) => s.outcome === 'saved'))
    const again = await Promise.all(created.map(({ id }) => store.load(id)))
    assert.deepEqual(again.map((l) => l.data.n), created.map((_, i) => i))
  })

  it('a save after Redis forgot its scripts sends the script itself', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('noscript') })
    const { id } = await store.create({ a: 1 })
    const loaded = await store.load(id)
    await h.redisCli(standalone, ['SCRIPT', 'FLUSH'])
    const saved = await store.save(id, loaded.baseline, { a: 2 })
    assert.equal(saved.outcome, 'saved')
    assert.ok((await lastCommands()).includes('eval'))
    assert.deepEqual((await store.load(id)).data, { a: 2 })
  })

  it('an unchanged session sends nothing; a destroyed one is not re-created', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('gone') })
    const { id } = await store.create({ a: 1 })
    const loaded = await store.load(id)
    assert.equal((await store.save(id, loaded.baseline, { a: 1 })).outcome, 'unchanged')
    await store.destroy(id)
    assert.equal((await store.save(id, loaded.baseline, { a: 3 })).outcome, 'gone')
    assert.equal(await store.load(id), null)
  })

  it('a corrupt session is removed and reported as SESSIONKEEPER_CODEC', async () => {
    const prefix = h.uniquePrefix('corrupt')
    const store = new Store(standalone.url, { key_prefix: prefix })
    const { id } = await store.create({ a: 1 })
    await store.load(id) // the socket is up
    await h.redisCli(standalone, ['SET', h.storageKey(prefix, id), 'SKv1garbage'])
    await assert.rejects(store.load(id), (e) => e.code === 'SESSIONKEEPER_CODEC' && /it was removed/.test(e.message))
    assert.equal(await h.redisCli(standalone, ['EXISTS', h.storageKey(prefix, id)]), '0')
    assert.ok((await lastCommands()).includes('del'))
    assert.equal(await store.load(id), null)
  })

  it('a session with its own window gets its expiry corrected over the same socket, then is remembered', async () => {
    const prefix = h.uniquePrefix('window')
    const { id } = await new Store(standalone.url, { key_prefix: prefix }).withIdleTtl(60000).create({ a: 1 }) // its own 60 s window
    const clientId = (line) => / id=(\d+) /.exec(` ${line}`)[1]
    const before = new Set((await loopClients()).map(clientId))
    const store = new Store(standalone.url, { key_prefix: prefix, idle_ttl: '14d' }) // no socket yet, nothing seen
    const lastCommand = async () => {
      const ours = (await loopClients()).filter((line) => !before.has(clientId(line)))
      assert.equal(ours.length, 1, ours.join('\n'))
      return commandOf(ours[0])
    }
    const pttl = async () => Number(await h.redisCli(standalone, ['PTTL', h.storageKey(prefix, id)]))
    const loaded = await store.load(id) // GETEX slides by 14 days, the session's window says 60 s
    assert.deepEqual(loaded.data, { a: 1 })
    let t = await pttl()
    assert.ok(t > 50000 && t <= 60000, `PTTL ${t}`)
    assert.equal(await lastCommand(), 'pexpireat')
    // The store remembers the window: the next load's GETEX slides by it, nothing to correct.
    await h.redisCli(standalone, ['PEXPIRE', h.storageKey(prefix, id), '5000'])
    await store.load(id)
    t = await pttl()
    assert.ok(t > 50000 && t <= 60000, `PTTL ${t}`)
    assert.equal(await lastCommand(), 'getex')
  })

  it('a session past its absolute deadline is deleted over the same socket and reads as none', async () => {
    const prefix = h.uniquePrefix('deadline')
    const store = new Store(standalone.url, { key_prefix: prefix, absolute_ttl: '1s' })
    const { id } = await store.create({ a: 1 })
    await store.load(id) // the socket is up
    // Redis would expire it at the deadline; keep it to see the engine's own check.
    await h.redisCli(standalone, ['PERSIST', h.storageKey(prefix, id)])
    await new Promise((resolve) => setTimeout(resolve, 1100))
    assert.equal(await store.load(id), null)
    assert.equal(await h.redisCli(standalone, ['EXISTS', h.storageKey(prefix, id)]), '0')
    assert.ok((await lastCommands()).includes('del'))
  })

  it('a save stores the data as it was at the call, even before the socket is up', async () => {
    const prefix = h.uniquePrefix('snapshot')
    const { id } = await new Store(standalone.url, { key_prefix: prefix }).create({ a: 0 })
    const store = new Store(standalone.url, { key_prefix: prefix }) // no socket yet
    const data = { a: 1 }
    const saving = store.save(id, store.emptyBaseline(), data)
    data.a = 2
    assert.equal((await saving).outcome, 'saved')
    assert.deepEqual((await store.load(id)).data, { a: 1 })
  })

  it('a reply later than command_timeout fails every call in flight with SESSIONKEEPER_TIMEOUT, and the next calls work', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('slow'), command_timeout: '300ms' })
    const { id } = await store.create({ a: 1 })
    await store.load(id) // the socket is up
    await h.redisCli(standalone, ['CLIENT', 'PAUSE', '1500', 'ALL'])
    const started = performance.now()
    const results = await Promise.allSettled([store.load(id), store.load(id), store.load(id)])
    const ms = performance.now() - started
    for (const r of results) {
      assert.equal(r.status, 'rejected')
      assert.equal(r.reason.code, 'SESSIONKEEPER_TIMEOUT')
      assert.equal(r.reason.temporary, true)
    }
    assert.ok(ms < 1200, `failed after ${ms} ms, not within command_timeout`)
    await new Promise((resolve) => setTimeout(resolve, 1500 - ms + 100))
    assert.deepEqual((await store.load(id)).data, { a: 1 })
    assert.equal(store.stats().errors.timeout, 3)
  })

  it('a socket Redis closed while idle is replaced, nothing fails', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('killed') })
    const { id } = await store.create({ a: 1 })
    await store.load(id)
    // Killed while idle: nothing fails, the next call opens a new socket.
    await killLoopSockets()
    assert.deepEqual((await store.load(id)).data, { a: 1 })
  })

  it('calls in flight on a socket that closes run again on the engine\'s own connection', async () => {
    const prefix = h.uniquePrefix('retry')
    const store0 = new Store(standalone.url, { key_prefix: prefix })
    const { id } = await store0.create({ a: 'kept' })
    // A proxy to Redis that drops its first connection as the first call arrives.
    let connections = 0
    const proxy = net.createServer((client) => {
      connections += 1
      client.on('error', () => {})
      if (connections === 1) {
        client.once('data', () => client.destroy())
        return
      }
      const upstream = net.connect(standalone.port, '127.0.0.1')
      upstream.on('error', () => client.destroy())
      client.pipe(upstream)
      upstream.pipe(client)
    })
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const store = new Store(`redis://127.0.0.1:${proxy.address().port}`, { key_prefix: prefix })
      assert.deepEqual((await store.load(id)).data, { a: 'kept' })
      assert.ok(connections >= 2, `${connections} connections`)
    } finally {
      proxy.close()
    }
  })

  it('calls in flight on a socket that closes, with Redis gone, fail as SESSIONKEEPER_CONNECTION', async () => {
    // A server that never answers holds the calls; closing it drops the socket.
    const hole = await h.blackhole()
    const store = new Store(`redis://127.0.0.1:${hole.port}`, { command_timeout: '10s' })
    const inFlight = [store.load('a'.repeat(43)), store.save('b'.repeat(43), store.emptyBaseline(), { a: 1 })]
    await new Promise((resolve) => setTimeout(resolve, 200))
    await hole.close()
    const results = await Promise.allSettled(inFlight)
    for (const r of results) {
      assert.equal(r.status, 'rejected')
      assert.equal(r.reason.code, 'SESSIONKEEPER_CONNECTION', r.reason.message)
      assert.equal(r.reason.temporary, true)
    }
  })

  it('without Redis, calls fail with SESSIONKEEPER_CONNECTION, not a hang', async () => {
    const port = await h.closedPort()
    const store = new Store(`redis://127.0.0.1:${port}`, { connect_timeout: '500ms', command_timeout: '500ms' })
    await assert.rejects(store.load('a'.repeat(43)), (e) => e.code === 'SESSIONKEEPER_CONNECTION' && e.temporary === true)
    await assert.rejects(store.save('a'.repeat(43), store.emptyBaseline(), { a: 1 }), (e) => e.code === 'SESSIONKEEPER_CONNECTION')
  })

  it('a server that accepts and never answers fails calls within command_timeout', async () => {
    const hole = await h.blackhole()
    try {
      const store = new Store(`redis://127.0.0.1:${hole.port}`, { connect_timeout: '500ms', command_timeout: '300ms' })
      const started = performance.now()
      await assert.rejects(store.load('a'.repeat(43)), (e) => e.code === 'SESSIONKEEPER_TIMEOUT' && e.temporary === true)
      const ms = performance.now() - started
      assert.ok(ms < 1500, `failed after ${ms} ms`)
    } finally {
      await hole.close()
    }
  })
})

/** Closes this process' event-loop sockets from the server's side. */
async function killLoopSockets () {
  for (const line of await loopClients()) {
    await h.redisCli(standalone, ['CLIENT', 'KILL', 'ID', /^id=(\d+)/.exec(line)[1]])
  }
}
