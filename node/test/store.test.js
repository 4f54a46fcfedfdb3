'use strict'
// The engine API (Store) directly, on standalone Redis and the Cluster.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')

const { Store, Baseline, generateId, isValidId } = require('..')
const h = require('./helpers')

const skip = h.noRedis()

for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`Store on ${topo.name}`, { skip }, () => {
    const open = (options = {}) => {
      const prefix = h.uniquePrefix('store')
      const store = new Store(topo.url, { key_prefix: prefix, ...options })
      return { store, key: (id) => h.storageKey(prefix, id) }
    }
    const pttl = async (key) => Number(await h.redisCli(topo, ['PTTL', key]))

    it('create, load, save, insert, exists, touch, renew, destroy', async () => {
      const { store } = open()
      const { id, baseline } = await store.create({ user: 'alice', n: 1 })
      assert.ok(isValidId(id))
      assert.ok(baseline instanceof Baseline)
      const loaded = await store.load(id)
      assert.deepEqual({ ...loaded.data }, { user: 'alice', n: 1 })
      assert.ok(loaded.meta.createdAtMs > 0 && loaded.meta.expiresAtMs > loaded.meta.createdAtMs)
      assert.equal(loaded.meta.deadlineMs, null)

      loaded.data.n = 2
      delete loaded.data.user
      assert.deepEqual(await store.save(id, loaded.baseline, loaded.data), { outcome: 'saved', written: 1, removed: 1 })
      assert.deepEqual(await store.save(id, loaded.baseline, loaded.data), { outcome: 'unchanged', written: 0, removed: 0 })

      assert.equal(await store.insert(id, { other: true }), null, 'insert never overwrites')
      const fresh = generateId()
      assert.ok((await store.insert(fresh, { x: 1 })) instanceof Baseline)
      assert.equal(await store.exists(fresh), true)
      assert.equal(await store.touch(fresh), true)

      const moved = await store.renew(id)
      assert.ok(isValidId(moved) && moved !== id)
      assert.equal(await store.exists(id), false)
      assert.equal((await store.load(moved)).data.n, 2)
      assert.equal(await store.renew(id), null)

      assert.equal(await store.destroy(moved), true)
      assert.equal(await store.destroy(moved), false)
      assert.equal(await store.touch(moved), false)
      assert.equal(await store.load(moved), null)
      assert.equal(await store.load('short'), null)
    })

    it('a save after a destroy is gone and creates nothing', async () => {
      const { store } = open()
      const { id } = await store.create({ a: 1 })
      const loaded = await store.load(id)
      await store.destroy(id)
      loaded.data.a = 2
      assert.equal((await store.save(id, loaded.baseline, loaded.data)).outcome, 'gone')
      assert.equal(await store.exists(id), false)
      assert.equal((await store.save(id, store.emptyBaseline(), { a: 3 })).outcome, 'gone')
      assert.equal(await store.exists(id), false)
    })

    it('two baselines of one session merge their changes; copy() is independent', async () => {
      const { store } = open()
      const { id } = await store.create({ a: 0, b: 0 })
      const one = await store.load(id)
      const two = await store.load(id)
      one.data.a = 1
      two.data.b = 2
      await store.save(id, one.baseline, one.data)
      await store.save(id, two.baseline, two.data)
      assert.deepEqual({ ...(await store.load(id)).data }, { a: 1, b: 2 })

      const three = await store.load(id)
      const copy = three.baseline.copy()
      three.data.c = 3
      await store.save(id, three.baseline, three.data)
      // The copy still describes the state before that save: it rewrites c.
      assert.deepEqual(await store.save(id, copy, three.data), { outcome: 'saved', written: 1, removed: 0 })
    })

    it('idle TTL per handle and per call, in milliseconds', async () => {
      const { store, key } = open({ idle_ttl: '1h' })
      assert.equal(store.idleTtlMs, 3600000)
      const short = store.withIdleTtl(5000)
      assert.equal(short.idleTtlMs, 5000)
      const { id } = await short.create({ a: 1 })
      let t = await pttl(key(id))
      assert.ok(t > 4000 && t <= 5000, `PTTL ${t}`)
      await store.touch(id, 20000)
      t = await pttl(key(id))
      assert.ok(t > 19000 && t <= 20000, `PTTL ${t}`)
      // A per-call window sticks to the session: the default handle slides by it.
      const again = await store.load(id)
      assert.equal(again.meta.idleTtlMs, 20000)
      t = await pttl(key(id))
      assert.ok(t > 19000 && t <= 20000, `the session's own window: PTTL ${t}`)
      await store.load(id, 3600000)
      t = await pttl(key(id))
      assert.ok(t > 3590000, `a per-call TTL: PTTL ${t}`)
      assert.equal((await store.load(id)).meta.idleTtlMs, 3600000)
      await store.load(id, null)
      assert.equal(await pttl(key(id)), -1, 'null: no sliding expiry')
      assert.equal(store.withIdleTtl(null).idleTtlMs, null)
      assert.equal(store.idleTtlMs, 3600000, 'the original handle is unchanged')
    })

    it('stats count what happened', async () => {
      const { store } = open()
      const { id } = await store.create({ a: 1 })
      await store.load(id)
      await store.load(generateId())
      const s = store.stats()
      assert.equal(s.creates, 1)
      assert.equal(s.loads, 2)
      assert.equal(s.hits, 1)
      assert.equal(s.misses, 1)
      assert.equal(s.roundTrips.count, 3)
      assert.ok(s.roundTrips.p99Us > 0)
      assert.equal(s.errors.timeout, 0)
    })
  })
}
