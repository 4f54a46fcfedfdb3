'use strict'
// The event loop keeps running while a call waits on Redis: the engine works
// on its own threads and settles the Promise afterwards.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')

const { Store } = require('..')
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
})
