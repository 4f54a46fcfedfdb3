'use strict'
// express-session's options against our store: saveUninitialized, resave,
// rolling, cookie expiry, the ttl option, on standalone Redis and the Cluster.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')

const h = require('./helpers')

const skip = h.noRedis()

async function withApp (topo, label, storeOptions, sessionOptions, fn) {
  const store = h.newStore(topo, label, storeOptions)
  const app = await h.startExpress(store, sessionOptions)
  try {
    await fn({ store, app, client: new h.Client(app.url) })
  } finally {
    await app.close()
  }
}

function cookieExpires (res) {
  const line = res.setCookie.find((l) => l.startsWith('connect.sid='))
  const m = line && /Expires=([^;]+)/i.exec(line)
  return m ? Date.parse(m[1]) : null
}

for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`express-session options on ${topo.name}`, { skip }, () => {
    it('saveUninitialized: false stores nothing until the session changes', async () => {
      await withApp(topo, 'uninit-false', {}, { saveUninitialized: false }, async ({ store, client }) => {
        const res = await client.get('/whoami')
        assert.equal(res.setCookie.length, 0)
        assert.equal(store.store.stats().creates, 0)
        assert.equal(store.store.stats().roundTrips.count, 0)
        await client.get('/inc')
        assert.equal(store.store.stats().creates, 1)
        assert.equal(await store.store.exists(client.sid()), true)
      })
    })

    it('saveUninitialized: true stores the new session and sets the cookie', async () => {
      await withApp(topo, 'uninit-true', {}, { saveUninitialized: true }, async ({ store, client }) => {
        const res = await client.get('/whoami')
        assert.equal(res.setCookie.length, 1)
        assert.equal(await store.store.exists(client.sid()), true)
        assert.equal((await client.get('/whoami')).body.sid, client.sid())
      })
    })

    it('resave: true on an unchanged session sends nothing but the load', async () => {
      await withApp(topo, 'resave', {}, { resave: true }, async ({ store, client }) => {
        await client.get('/login')
        await client.get('/whoami')
        const s0 = store.store.stats()
        const { trips } = await h.roundTrips(store, () => client.get('/whoami'))
        assert.equal(trips, 1)
        const s1 = store.store.stats()
        assert.equal(s1.skippedSaves - s0.skippedSaves, 1, 'express-session called set; the engine found nothing changed')
      })
    })

    it('rolling: true re-sends the cookie on every response and slides the TTL', async () => {
      await withApp(topo, 'rolling', {}, { rolling: true, cookie: { maxAge: 60000 } }, async ({ store, client }) => {
        await client.get('/login')
        const first = await client.get('/whoami')
        await h.sleep(1100)
        const second = await client.get('/whoami')
        assert.equal(second.setCookie.length, 1)
        assert.ok(cookieExpires(second) > cookieExpires(first), 'the cookie expiry moves forward')
        const pttl = Number(await h.redisCli(topo, ['PTTL', h.keyOf(store, client.sid())]))
        assert.ok(pttl > 58000, `PTTL ${pttl}`)
      })
    })

    it('rolling: false sends no cookie for an unchanged session', async () => {
      await withApp(topo, 'not-rolling', {}, { rolling: false }, async ({ client }) => {
        await client.get('/login')
        assert.equal((await client.get('/whoami')).setCookie.length, 0)
        assert.equal((await client.get('/inc')).setCookie.length, 1, 'a modified session with an expiring cookie re-sends it')
      })
    })

    it('a session expires with its cookie', async () => {
      await withApp(topo, 'expiry', {}, { cookie: { maxAge: 1200 } }, async ({ store, client }) => {
        await client.get('/login')
        const sid = client.sid()
        assert.equal((await client.get('/whoami')).body.user, 'alice')
        await h.sleep(1800)
        const res = await client.get('/whoami')
        assert.equal(res.body.user, null)
        assert.equal(await store.store.exists(sid), false)
      })
    })

    it('use slides the expiry (touch) past the first maxAge', async () => {
      await withApp(topo, 'sliding', {}, { cookie: { maxAge: 1500 } }, async ({ client }) => {
        await client.get('/login')
        for (let i = 0; i < 5; i++) {
          await h.sleep(600)
          assert.equal((await client.get('/whoami')).body.user, 'alice', `request ${i} at ${(i + 1) * 600} ms`)
        }
      })
    })

    it('a session whose stored cookie.expires has passed is missing, even if Redis still has it', async () => {
      // A ttl function overrides the cookie's lifetime (connect-redis' rule),
      // so Redis keeps the session longer than the cookie allows.
      await withApp(topo, 'expired-cookie', { ttl: () => 60 }, { cookie: { maxAge: 1000 } }, async ({ store, client }) => {
        await client.get('/login')
        const sid = client.sid()
        await h.sleep(1500)
        assert.equal(await store.store.exists(sid), true)
        assert.equal(await store.get(sid), null)
        assert.equal((await client.get('/whoami')).body.user, null)
      })
    })

    it('the ttl option sets the lifetime of browser-session cookies', async () => {
      await withApp(topo, 'ttl-option', { ttl: 120 }, { cookie: { maxAge: null } }, async ({ store, client }) => {
        const res = await client.get('/login')
        assert.equal(cookieExpires(res), null, 'a browser-session cookie')
        const pttl = Number(await h.redisCli(topo, ['PTTL', h.keyOf(store, client.sid())]))
        assert.ok(pttl > 115000 && pttl <= 120000, `PTTL ${pttl}`)
        assert.equal((await client.get('/whoami')).body.user, 'alice')
      })
    })
  })
}
