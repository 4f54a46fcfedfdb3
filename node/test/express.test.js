'use strict'
// A real express app with express-session, driven over HTTP, on standalone
// Redis and on the Cluster.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const h = require('./helpers')

const skip = h.noRedis()

for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`express-session on ${topo.name}`, { skip }, () => {
    let store, app

    before(async () => {
      store = h.newStore(topo, 'express')
      app = await h.startExpress(store)
    })
    after(async () => {
      await app?.close()
    })

    it('logs in, keeps the user, logs out for good', async () => {
      const c = new h.Client(app.url)
      const login = await c.get('/login?user=bob')
      assert.equal(login.status, 200)
      assert.equal(login.setCookie.length, 1)
      const sid = c.sid()
      assert.equal((await c.get('/whoami')).body.user, 'bob')
      assert.equal(await store.store.exists(sid), true)

      assert.equal((await c.get('/logout')).status, 200)
      assert.equal(await store.store.exists(sid), false)
      const after = await c.get('/whoami')
      assert.equal(after.body.user, null)
      assert.equal(after.setCookie.length, 0, 'an unmodified new session sets no cookie (saveUninitialized: false)')
    })

    it('regenerate moves the session to a new id and removes the old one', async () => {
      const c = new h.Client(app.url)
      await c.get('/login?user=carol')
      const first = c.sid()
      const old = new h.Client(app.url)
      old.cookies = new Map(c.cookies)
      await c.get('/login?user=dave')
      const second = c.sid()
      assert.notEqual(first, second)
      assert.equal(await store.store.exists(first), false)
      assert.equal(await store.store.exists(second), true)
      assert.equal((await c.get('/whoami')).body.user, 'dave')
      assert.equal((await old.get('/whoami')).body.user, null, 'the pre-login cookie no longer finds a session')
    })

    it('writes only the keys that changed, removes deleted ones', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      await c.get('/set?a=1&b=2')
      const s0 = store.store.stats()
      await c.get('/set?b=3')
      const s1 = store.store.stats()
      assert.equal(s1.keysWritten - s0.keysWritten, 1)
      await c.get('/unset?a')
      const s2 = store.store.stats()
      assert.equal(s2.keysRemoved - s1.keysRemoved, 1)
      const { body } = await c.get('/whoami')
      assert.equal(body.data.a, undefined)
      assert.equal(body.data.b, '3')
    })

    it('an unchanged session costs one round trip', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      await c.get('/whoami') // the store learns the cookie's TTL
      for (let i = 0; i < 3; i++) {
        const { trips } = await h.roundTrips(store, () => c.get('/whoami'))
        assert.equal(trips, 1)
      }
      const { trips } = await h.roundTrips(store, () => c.get('/inc'))
      assert.equal(trips, 2, 'a modified session: load + save')
    })

    it('a second save in one request writes only what changed since the first', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      const s0 = store.store.stats()
      await c.get('/save-twice')
      const s1 = store.store.stats()
      assert.equal(s1.saves - s0.saves, 2)
      assert.equal(s1.keysWritten - s0.keysWritten, 3, 'a, then a and tmp')
      assert.deepEqual(((await c.get('/whoami')).body.data.a), 'second')
    })

    it('concurrent requests changing different keys of one session both survive', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      // Both load before either saves; the slow one saves last.
      const [a, b] = await Promise.all([c.get('/set?x=1&ms=300'), c.get('/set?y=2&ms=50')])
      assert.equal(a.status, 200)
      assert.equal(b.status, 200)
      const { body } = await c.get('/whoami')
      assert.equal(body.data.x, '1')
      assert.equal(body.data.y, '2')
      assert.equal(body.user, 'alice')

      const keys = Array.from({ length: 8 }, (_, i) => `k${i}`)
      await Promise.all(keys.map((k, i) => c.get(`/set?${k}=${i}&ms=${(8 - i) * 20}`)))
      const all = (await c.get('/whoami')).body.data
      for (const [i, k] of keys.entries()) assert.equal(all[k], String(i), k)
    })

    it('Session#reload reads the stored session, and the save then writes only what changed after it', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      await c.get('/inc')
      const slow = c.get('/reload-then-set?before=150&after=250&a=1')
      await h.sleep(50)
      await c.get('/inc') // before the reload: the reload sees n = 2
      await h.sleep(200)
      await c.get('/inc') // after it: n = 3 must survive the slow request's save
      const reloaded = await slow
      assert.equal(reloaded.body.n, 2, 'the reload read the stored session')
      const { body } = await c.get('/whoami')
      assert.deepEqual([body.n, body.data.a, body.user], [3, '1', 'alice'])
    })

    it('a save after a logout does not bring the session back', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      const sid = c.sid()
      const slow = c.get('/set?late=1&ms=400')
      await h.sleep(100)
      await c.get('/logout')
      const res = await slow
      assert.equal(res.status, 200)
      assert.equal(await store.store.exists(sid), false)
      const again = new h.Client(app.url)
      again.cookies.set('connect.sid', c.cookies.get('connect.sid'))
      assert.equal((await again.get('/whoami')).body.user, null)
    })

    it('TTL follows cookie.maxAge in milliseconds', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      const key = h.keyOf(store, c.sid())
      const pttl = Number(await h.redisCli(topo, ['PTTL', key]))
      assert.ok(pttl > 55000 && pttl <= 60000, `PTTL ${pttl}`)
    })

    it('disableTouch: touch writes nothing, loads still slide by the window', async () => {
      const quiet = h.newStore(topo, 'notouch', { disableTouch: true, idle_ttl: '60s' })
      const sid = require('..').generateId()
      const cookie = (maxAge) => ({ originalMaxAge: maxAge, expires: new Date(Date.now() + maxAge), httpOnly: true, path: '/' })
      await quiet.set(sid, { cookie: cookie(60000), user: 'ada' })
      const key = h.keyOf(quiet, sid)
      await quiet.touch(sid, { cookie: cookie(600000), user: 'ada' })
      const pttl = Number(await h.redisCli(topo, ['PTTL', key]))
      assert.ok(pttl > 55000 && pttl <= 60000, `touch left the TTL alone: PTTL ${pttl}`)
      assert.equal((await quiet.get(sid)).cookie.originalMaxAge, 60000, 'and the stored cookie')
      await h.redisCli(topo, ['PEXPIRE', key, '30000'])
      await quiet.get(sid)
      const slid = Number(await h.redisCli(topo, ['PTTL', key]))
      assert.ok(slid > 55000, `a load slides the expiry: PTTL ${slid}`)
    })

    it('touch refreshes the stored cookie and its TTL (remember me)', async () => {
      const c = new h.Client(app.url)
      await c.get('/login')
      const sid = c.sid()
      await c.get('/remember?ms=600000')
      const sess = await store.get(sid)
      // express-session's originalMaxAge may be a millisecond short.
      assert.ok(Math.abs(sess.cookie.originalMaxAge - 600000) <= 5, `originalMaxAge ${sess.cookie.originalMaxAge}`)
      const pttl = Number(await h.redisCli(topo, ['PTTL', h.keyOf(store, sid)]))
      assert.ok(pttl > 590000 && pttl <= 600000, `PTTL ${pttl}`)
      assert.ok(Date.parse(sess.cookie.expires) > Date.now() + 590000)
    })

    // What a session's key may hold that is no session: another store's value
    // (no session, nothing reported, as a migration may read it) and records
    // of ours that cannot be read, whole or in one value (reported once, removed).
    const badValues = [
      ['foreign', Buffer.concat([Buffer.from([0xc1]), Buffer.from('garbage')]), false],
      ['truncated record', Buffer.from('SKv1\x82\xa4a:ok', 'latin1'), true],
      ['undecodable value', Buffer.from('SKv1\x81\xa3a:x\xc4\x01\xc1', 'latin1'), true]
    ]
    for (const [what, bytes, reported] of badValues) {
      it(`a corrupt session (${what}) is treated as missing, never a 500`, async () => {
        const c = new h.Client(app.url)
        await c.get('/login?user=mallory')
        const sid = c.sid()
        await h.redisCli(topo, ['-x', 'SET', h.keyOf(store, sid)], bytes)
        const corrupt = []
        const onCorrupt = (err, id) => corrupt.push({ err, id })
        store.on('corrupt', onCorrupt)
        try {
          const res = await c.get('/whoami')
          assert.equal(res.status, 200)
          assert.equal(res.body.user, null)
          assert.equal(corrupt.length, reported ? 1 : 0, 'reported once, if it is a record of ours')
          for (const { err, id } of corrupt) {
            assert.equal(err.code, 'SESSIONKEEPER_CODEC')
            assert.equal(err.temporary, false)
            assert.equal(id, sid)
            assert.doesNotMatch(err.message, /garbage|mallory/, 'messages never carry session payloads')
          }
          const exists = Number(await h.redisCli(topo, ['EXISTS', h.keyOf(store, sid)]))
          assert.equal(exists, reported ? 0 : 1, 'a record of ours that cannot be read is removed')
          const again = await c.get('/inc')
          assert.equal(again.status, 200)
          assert.equal(again.body.n, 1, 'an ordinary fresh session')
          assert.notEqual(c.sid(), sid, 'under a new id')
          assert.equal(await store.get(sid), null, 'the old id holds nothing')
        } finally {
          store.off('corrupt', onCorrupt)
        }
      })
    }

    it('get/set/touch/destroy take callbacks or return Promises', async () => {
      const { generateId } = require('..')
      const sid = generateId()
      const sess = { cookie: { originalMaxAge: 60000, expires: new Date(Date.now() + 60000), httpOnly: true, path: '/' }, v: 1 }
      assert.equal(await store.set(sid, sess), undefined)
      const got = await store.get(sid)
      assert.equal(got.v, 1)
      assert.equal(typeof got.cookie.expires, 'string')
      await new Promise((resolve, reject) => store.touch(sid, got, (err) => (err ? reject(err) : resolve())))
      const viaCb = await new Promise((resolve, reject) => store.get(sid, (err, s) => (err ? reject(err) : resolve(s))))
      assert.equal(viaCb.v, 1)
      assert.equal(store.destroy(sid, () => {}), undefined)
      await h.sleep(50)
      assert.equal(await store.get(sid), null)
      assert.equal(await new Promise((resolve) => store.get('not-a-valid-id', (err, s) => resolve(err ?? s))), null)
    })
  })
}
