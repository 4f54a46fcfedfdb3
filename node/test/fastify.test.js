'use strict'
// The same store, unchanged, as an @fastify/session store.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const h = require('./helpers')

const skip = h.noRedis()

for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`@fastify/session on ${topo.name}`, { skip }, () => {
    let app, base, store

    before(async () => {
      const Fastify = require('fastify')
      store = h.newStore(topo, 'fastify')
      app = Fastify()
      app.register(require('@fastify/cookie'))
      app.register(require('@fastify/session'), {
        secret: 'a fastify session secret of at least 32 characters',
        store,
        saveUninitialized: false,
        cookie: { secure: false, maxAge: 60000 }
      })
      app.get('/login', async (request) => {
        await request.session.regenerate()
        request.session.set('user', request.query.user || 'alice')
        return { sid: request.session.sessionId }
      })
      app.get('/inc', async (request) => {
        request.session.set('n', (request.session.get('n') || 0) + 1)
        return { n: request.session.get('n') }
      })
      app.get('/whoami', async (request) => {
        const data = {}
        for (const k of Object.keys(request.session)) if (k !== 'cookie') data[k] = request.session[k]
        return { user: request.session.get('user') ?? null, sid: request.session.sessionId, data }
      })
      // Sets every query parameter as a session key after an optional delay,
      // so concurrent requests overlap between their load and their save.
      app.get('/set', async (request) => {
        const { ms, ...rest } = request.query
        if (ms) await h.sleep(Number(ms))
        for (const [k, v] of Object.entries(rest)) request.session.set(k, v)
        return { ok: true }
      })
      app.get('/logout', async (request) => {
        await request.session.destroy()
        return { ok: true }
      })
      await app.listen({ port: 0, host: '127.0.0.1' })
      base = `http://127.0.0.1:${app.server.address().port}`
    })
    after(() => app?.close())

    it('logs in, counts, logs out', async () => {
      const c = new h.Client(base)
      const { body } = await c.get('/login?user=erin')
      assert.equal(await store.store.exists(body.sid), true)
      assert.equal((await c.get('/whoami')).body.user, 'erin')
      for (let i = 1; i <= 3; i++) assert.equal((await c.get('/inc')).body.n, i)
      assert.equal((await c.get('/logout')).status, 200)
      assert.equal(await store.store.exists(body.sid), false)
      assert.equal((await c.get('/whoami')).body.user, null)
    })

    it('concurrent requests changing different keys of one session both survive', async () => {
      const c = new h.Client(base)
      await c.get('/login?user=gina')
      // Both load before either saves; the slow one saves last.
      const [a, b] = await Promise.all([c.get('/set?x=1&ms=300'), c.get('/set?y=2&ms=50')])
      assert.equal(a.status, 200)
      assert.equal(b.status, 200)
      let { data } = (await c.get('/whoami')).body
      assert.equal(data.x, '1')
      assert.equal(data.y, '2')
      assert.equal(data.user, 'gina')

      // Many at once, saving in the reverse order of their loads.
      const keys = Array.from({ length: 8 }, (_, i) => `k${i}`)
      await Promise.all(keys.map((k, i) => c.get(`/set?${k}=${i}&ms=${(8 - i) * 20}`)))
      data = (await c.get('/whoami')).body.data
      for (const [i, k] of keys.entries()) assert.equal(data[k], String(i), k)
      assert.equal(data.x, '1')
      assert.equal(data.user, 'gina')
    })

    it('regenerate replaces the old session', async () => {
      const c = new h.Client(base)
      const first = (await c.get('/login')).body.sid
      const second = (await c.get('/login?user=frank')).body.sid
      assert.notEqual(first, second)
      assert.equal(await store.store.exists(first), false)
      assert.equal((await c.get('/whoami')).body.user, 'frank')
    })
  })
}
