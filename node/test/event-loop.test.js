'use strict'
// The event loop keeps running while a call waits on Redis: the engine works
// on its own threads and settles the Promise afterwards.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { Worker } = require('node:worker_threads')

const { Store, generateId, isValidId } = require('..')
const h = require('./helpers')

const skip = h.noRedis()
const standalone = skip ? null : h.topologies().find((t) => t.name === 'standalone')

describe('event loop', { skip: skip || (!standalone && 'no standalone Redis') }, () => {
  it('a timer keeps firing while a call waits on a paused Redis', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('loop'), command_timeout: '5s' })
    const { id } = await store.create({ a: 1 }) // connected before the pause
    await h.redisCli(standalone, ['CLIENT', 'PAUSE', '1000', 'ALL'])
    let ticks = 0
    const timer = setInterval(() => ticks++, 10)
    const started = performance.now()
    try {
      const loaded = await store.load(id)
      const ms = performance.now() - started
      assert.equal(loaded.data.a, 1)
      assert.ok(ms >= 700, `the pause held the call for ${ms} ms`)
      // 10 ms timers in ~1 s: a blocked loop would fire once, at the end.
      assert.ok(ticks >= 40, `only ${ticks} ticks in ${ms} ms`)
    } finally {
      clearInterval(timer)
    }
  })

  it('many calls in flight at once all settle', async () => {
    const store = new Store(standalone.url, { key_prefix: h.uniquePrefix('flight') })
    const created = await Promise.all(Array.from({ length: 200 }, (_, i) => store.create({ i })))
    const loaded = await Promise.all(created.map(({ id }) => store.load(id)))
    assert.deepEqual(loaded.map((l) => l.data.i), created.map((_, i) => i))
  })

  it('a call in flight keeps the process alive until it settles, an idle store does not', async () => {
    const prefix = h.uniquePrefix('alive')
    const { id } = await new Store(standalone.url, { key_prefix: prefix }).create({ a: 'kept' })
    // Nothing but the Promise holds the child's event loop: it must print
    // the session, then exit by itself (the store idle).
    const script = `
      const { Store } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const store = new Store(process.env.URL, { key_prefix: process.env.PREFIX })
      store.load(process.env.ID).then((l) => console.log('loaded ' + l.data.a))
    `
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { env: { ...process.env, URL: standalone.url, PREFIX: prefix, ID: id }, timeout: 20000 },
        (err, stdout, stderr) => err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))
    })
    assert.equal(out.trim(), 'loaded kept')
  })

  it('a paused Redis holds a bounded number of threads, and every call settles', async () => {
    // In a fresh process, so no idle threads of earlier tests hide new ones.
    const script = `
      const { execFileSync } = require('node:child_process')
      const fs = require('node:fs')
      const { Store } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const threads = () => fs.readdirSync('/proc/self/task').length
      ;(async () => {
        const store = new Store(process.env.URL, { key_prefix: process.env.PREFIX, command_timeout: '5s' })
        const created = await Promise.all(Array.from({ length: 64 }, (_, i) => store.create({ i })))
        await store.load(created[0].id)
        const before = threads()
        execFileSync('redis-cli', ['-p', process.env.PORT, 'CLIENT', 'PAUSE', '800', 'ALL'])
        const loads = created.map(({ id }) => store.load(id))
        await new Promise((resolve) => setTimeout(resolve, 300))
        const during = threads()
        const loaded = await Promise.all(loads)
        console.log(JSON.stringify({ before, during, all: loaded.every((l, i) => l.data.i === i) }))
      })()
    `
    const env = { ...process.env, URL: standalone.url, PORT: String(standalone.port), PREFIX: h.uniquePrefix('bounded') }
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { env, timeout: 30000 },
        (err, stdout, stderr) => err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))
    })
    const { before, during, all } = JSON.parse(out)
    assert.ok(all, 'every load settled with its session')
    // At most 16 calls wait on threads of their own; the other 48 are
    // pipelined on the runtime's connection.
    assert.ok(during - before <= 16, `threads: ${before} before, ${during} while 64 calls waited`)
  })

  it('worker threads use the store concurrently with the main thread', async () => {
    const prefix = h.uniquePrefix('workers')
    const store = new Store(standalone.url, { key_prefix: prefix })
    const { id } = await store.create({ n: 0 })
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { Store } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const store = new Store(workerData.url, { key_prefix: workerData.prefix })
      ;(async () => {
        for (let i = 0; i < 50; i++) {
          const l = await store.load(workerData.id)
          await store.save(workerData.id, l.baseline, { ...l.data, ['w' + workerData.w]: i })
        }
        parentPort.postMessage('done')
      })().catch((e) => parentPort.postMessage(String(e)))
    `
    const workers = [1, 2].map((w) => new Worker(source, { eval: true, workerData: { url: standalone.url, prefix, id, w } }))
    const messages = workers.map((worker) => new Promise((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    }))
    for (let i = 0; i < 50; i++) {
      const l = await store.load(id)
      await store.save(id, l.baseline, { ...l.data, main: i })
    }
    assert.deepEqual(await Promise.all(messages), ['done', 'done'])
    await Promise.all(workers.map((w) => w.terminate()))
    const { data } = await store.load(id)
    assert.deepEqual({ main: data.main, w1: data.w1, w2: data.w2 }, { main: 49, w1: 49, w2: 49 })
  })

  it('a worker terminated while its calls are in flight does not take the process down', async () => {
    const prefix = h.uniquePrefix('terminated')
    const store = new Store(standalone.url, { key_prefix: prefix, command_timeout: '5s' })
    const { id } = await store.create({ a: 1 })
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { Store } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const store = new Store(workerData.url, { key_prefix: workerData.prefix })
      for (let i = 0; i < 40; i++) store.load(workerData.id)
      parentPort.postMessage('started')
    `
    await h.redisCli(standalone, ['CLIENT', 'PAUSE', '500', 'ALL'])
    const worker = new Worker(source, { eval: true, workerData: { url: standalone.url, prefix, id } })
    await new Promise((resolve) => worker.once('message', resolve))
    await worker.terminate()
    // The worker's calls finish after its environment is gone; this process
    // goes on and its own calls still settle.
    await new Promise((resolve) => setTimeout(resolve, 700))
    assert.equal((await store.load(id)).data.a, 1)
  })
})

// Every call that does not go over the event-loop socket (all of them on the
// Cluster) runs on the engine's threads and settles through the addon's
// threadsafe function (bindings/node/src/settle.rs): on the runtime, or, for
// a standalone save made before the socket is up, on a blocking thread. None
// of them may hold the event loop while Redis is slow.
for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`event loop on ${topo.name}, calls on the engine's threads`, { skip }, () => {
    const PAUSE_MS = 500

    it('a timer keeps firing while each call waits on paused Redis', async () => {
      const options = { key_prefix: h.uniquePrefix('engine-threads'), command_timeout: '5s', connect_timeout: '5s' }
      const store = new Store(topo.url, options)
      const { id } = await store.create({ a: 1 })
      const doomed = (await store.create({ b: 1 })).id
      await store.handles() // connected to every node before the pauses
      const calls = {
        create: async () => assert.ok(isValidId((await store.create({ c: 1 })).id)),
        insert: async () => assert.ok(await store.insert(generateId(), { d: 1 })),
        touch: async () => assert.equal(await store.touch(id, 60000), true),
        'load with a per-call ttlMs': async () => assert.equal((await store.load(id, 60000)).data.a, 1),
        destroy: async () => assert.equal(await store.destroy(doomed), true),
        handles: async () => assert.ok((await store.handles()).length >= 2),
        count: async () => assert.ok(await store.count() >= 2),
        // A new store's first save does not wait for its event-loop socket:
        // on standalone it runs on a blocking thread with a socket of its own.
        'save on a new store': async () => {
          const fresh = new Store(topo.url, options)
          assert.equal((await fresh.save(id, fresh.emptyBaseline(), { e: 1 })).outcome, 'saved')
        }
      }
      for (const [name, call] of Object.entries(calls)) {
        await h.clientPause(topo, PAUSE_MS)
        let ticks = 0
        const timer = setInterval(() => ticks++, 10)
        const started = performance.now()
        let ms
        try {
          await call()
          ms = performance.now() - started
        } finally {
          clearInterval(timer)
          await h.clientUnpause(topo)
        }
        assert.ok(ms >= PAUSE_MS / 2, `${name}: the pause did not hold the call up (${ms} ms), so this proves nothing`)
        // 10 ms timers over hundreds of ms; a loop blocked by the call fires once, after it.
        assert.ok(ticks >= 10, `${name}: only ${ticks} ticks while it waited ${ms} ms`)
      }
      assert.deepEqual((await store.load(id)).data, { a: 1, e: 1 })
    })
  })
}
