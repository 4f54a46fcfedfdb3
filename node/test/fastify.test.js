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
      app.get('/whoami', async (request) => ({ user: request.session.get('user') ?? null, sid: request.session.sessionId }))
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
