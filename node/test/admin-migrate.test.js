'use strict'
// express-session's optional store methods (all, ids, length, clear), the
// per-session sliding window (one round trip on the first request after a
// restart) and migration from connect-redis, with a real express app over
// HTTP on standalone Redis and on the Cluster.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const signature = require('cookie-signature')

const h = require('./helpers')
const { isValidHandle } = require('..')

const skip = h.noRedis()
const SECRET = 'test secret' // helpers.startExpress

// A cookie as express-session writes it for `sid`, signed with the app secret.
function signedCookie (sid) {
  return encodeURIComponent('s:' + signature.sign(sid, SECRET))
}

// MONITOR on a standalone server through redis-cli: stop() returns the lines.
async function monitorStart (topo) {
  const { spawn } = require('node:child_process')
  const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(topo.port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  await new Promise((resolve, reject) => {
    child.on('error', reject)
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('OK')) resolve()
    })
  })
  return {
    stop: async () => {
      await h.sleep(200)
      child.kill()
      return out.split('\n')
    }
  }
}

for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`SessionkeeperStore all/ids/length/clear on ${topo.name}`, { skip }, () => {
    let store, app
    before(async () => {
      store = h.newStore(topo, 'admin')
      app = await h.startExpress(store)
    })
    after(async () => {
      await app?.close()
    })

    it('lists, counts and clears the sessions created over HTTP', async () => {
      const clients = []
      for (const user of ['ann', 'ben', 'cid']) {
        const c = new h.Client(app.url)
        await c.get(`/login?user=${user}`)
        clients.push(c)
      }
      // A session whose cookie has expired (the engine still holds it).
      await store.store.insert(crypto.randomBytes(24).toString('base64url'),
        { user: 'old', cookie: { originalMaxAge: 1000, expires: new Date(Date.now() - 1000).toISOString(), path: '/' } }, 60000)

      assert.equal(await store.length(), 4)
      const ids = await store.ids()
      assert.equal(ids.length, 4)
      for (const handle of ids) assert.ok(isValidHandle(handle), handle)
      const sids = clients.map((c) => c.sid())
      for (const sid of sids) assert.ok(!ids.includes(sid), 'handles are not session ids')
      assert.ok(ids.includes(h.storageKey(store.testPrefix, sids[0]).slice(store.testPrefix.length)))

      const ttlBefore = Number(await h.redisCli(topo, ['PTTL', h.storageKey(store.testPrefix, sids[0])]))
      const all = await store.all()
      assert.ok(Array.isArray(all))
      assert.deepEqual(all.map((s) => s.user).sort(), ['ann', 'ben', 'cid'], 'the expired cookie is skipped')
      for (const s of all) {
        assert.ok(ids.includes(s.handle))
        assert.ok(!Object.keys(s).includes('handle'), 'handle is not enumerable')
        assert.equal(typeof s.cookie.expires, 'string')
        assert.ok(s.cookie.originalMaxAge > 59000 && s.cookie.originalMaxAge <= 60000, String(s.cookie.originalMaxAge))
      }
      const ttlAfter = Number(await h.redisCli(topo, ['PTTL', h.storageKey(store.testPrefix, sids[0])]))
      assert.ok(ttlAfter <= ttlBefore, 'listing does not slide the expiry')

      // Callback forms.
      const n = await new Promise((resolve, reject) => store.length((err, v) => (err ? reject(err) : resolve(v))))
      assert.equal(n, 4)
      const viaCb = await new Promise((resolve, reject) => store.all((err, v) => (err ? reject(err) : resolve(v))))
      assert.equal(viaCb.length, 3)

      await new Promise((resolve, reject) => store.clear((err) => (err ? reject(err) : resolve())))
      assert.equal(await store.length(), 0)
      assert.deepEqual(await store.ids(), [])
      assert.equal((await clients[0].get('/whoami')).body.user, null)
    })
  })

  describe(`SessionkeeperStore ids/clear call forms on ${topo.name}`, { skip }, () => {
    // The timeout: a callback that is never called would otherwise hang the run.
    it('clear() without a callback returns a Promise; ids(cb) answers through the callback', { timeout: 20000 }, async () => {
      const store = h.newStore(topo, 'forms')
      const sid = crypto.randomBytes(24).toString('base64url')
      await store.set(sid, { user: 'dee', cookie: { originalMaxAge: 60000, expires: new Date(Date.now() + 60000).toISOString(), path: '/' } })

      let answer
      const answered = new Promise((resolve, reject) => { answer = (err, v) => (err ? reject(err) : resolve(v)) })
      assert.equal(store.ids(answer), undefined, 'given a callback, ids returns nothing')
      assert.deepEqual(await answered, [h.handleOf(sid)])

      const cleared = store.clear()
      assert.ok(cleared instanceof Promise)
      assert.equal(await cleared, undefined)
      assert.equal(await h.peek(store, sid), null, 'cleared once the Promise resolves')
      assert.equal(await store.length(), 0)
    })
  })

  describe(`Store handles on ${topo.name}`, { skip }, () => {
    it('handles, count, peekHandle (no sliding), destroyHandle, clear', async () => {
      const { Store } = require('..')
      const prefix = h.uniquePrefix('handles')
      const s = new Store(topo.url, { key_prefix: prefix, command_timeout: '3s' })
      const a = await s.create({ n: 1 }, 60000)
      const b = await s.create({ n: 2 }, 60000)
      const handles = await s.handles()
      assert.equal(handles.length, 2)
      assert.equal(await s.count(), 2)
      const handleA = h.storageKey(prefix, a.id).slice(prefix.length)
      assert.ok(handles.includes(handleA))
      await h.redisCli(topo, ['PEXPIRE', prefix + handleA, '30000'])
      const peeked = await s.peekHandle(handleA)
      assert.deepEqual(peeked.data, { n: 1 })
      assert.equal(peeked.meta.idleTtlMs, 60000)
      const t = Number(await h.redisCli(topo, ['PTTL', prefix + handleA]))
      assert.ok(t <= 30000, `peeking does not slide: PTTL ${t}`)
      assert.equal(await s.peekHandle(a.id), null, 'an id is not a handle')
      assert.equal(await s.peekHandle('2::nope'), null)
      assert.equal(isValidHandle(handleA), true)
      assert.equal(isValidHandle(a.id), false)
      assert.equal(isValidHandle(42), false)
      assert.equal(await s.destroyHandle(handleA), true)
      assert.equal(await s.destroyHandle(handleA), false)
      assert.equal(await s.exists(a.id), false)
      assert.equal(await s.clear(), 1)
      assert.equal(await s.exists(b.id), false)
      assert.equal(await s.count(), 0)
      await assert.rejects(s.peekHandle(1), TypeError)
    })
  })

  describe(`per-session sliding window on ${topo.name}`, { skip }, () => {
    // With the engine's idle_ttl equal to the cookie's maxAge (what the README
    // recommends), a load needs no expiry correction: one GETEX.
    it('the first request after a fresh store costs one command (stats; MONITOR on standalone) and slides by the cookie maxAge', async () => {
      const first = h.newStore(topo, 'window', { idle_ttl: '45s' })
      const app1 = await h.startExpress(first, { cookie: { maxAge: 45000 } })
      const c = new h.Client(app1.url)
      await c.get('/login?user=wes')
      await app1.close()
      const key = h.storageKey(first.testPrefix, c.sid())
      assert.equal((await h.peek(first, c.sid())).meta.idleTtlMs, 45000, 'the window is stored with the session')

      // A new process: a fresh store instance on the same prefix.
      const second = h.newStore(topo, 'window')
      second.store = new (require('..').Store)(topo.url, { key_prefix: first.testPrefix, command_timeout: '3s', idle_ttl: '45s' })
      const app2 = await h.startExpress(second, { cookie: { maxAge: 45000 } })
      try {
        await h.redisCli(topo, ['PEXPIRE', key, '10000'])
        const c2 = new h.Client(app2.url)
        c2.cookies = new Map(c.cookies)
        const monitor = topo.cluster ? null : await monitorStart(topo)
        const res = await c2.get('/whoami')
        if (monitor) {
          // Commands the client sent (the script's own calls show as "lua").
          const lines = (await monitor.stop()).filter((l) => l.includes(key) && !l.includes(' lua]'))
          assert.equal(lines.length, 1, `MONITOR: one command for the session:\n${lines.join('\n')}`)
        }
        assert.equal(res.body.user, 'wes')
        const s = second.store.stats()
        assert.equal(s.roundTrips.count, 1, 'one round trip for an unchanged session')
        const t = Number(await h.redisCli(topo, ['PTTL', key]))
        assert.ok(t > 44000 && t <= 45000, `slid by the cookie's maxAge: PTTL ${t}`)
      } finally {
        await app2.close()
      }
    })
  })

  describe(`migration from connect-redis on ${topo.name}`, { skip }, () => {
    let store, app, legacy
    before(async () => {
      legacy = `sk-node-test:legacy:${crypto.randomBytes(4).toString('hex')}:sess:`
      store = h.newStore(topo, 'migrate', { migrate: { prefix: legacy } })
      app = await h.startExpress(store)
    })
    after(async () => {
      await app?.close()
    })

    it('a connect-redis session stays logged in and moves to our layout', async () => {
      const sid = crypto.randomBytes(24).toString('base64url')
      const expires = new Date(Date.now() + 3600000).toISOString()
      const json = JSON.stringify({ cookie: { originalMaxAge: 3600000, expires, httpOnly: true, path: '/' }, user: 'liz', n: 2 })
      await h.redisCli(topo, ['SET', legacy + sid, json, 'EX', '3600'])

      const c = new h.Client(app.url)
      c.cookies.set('connect.sid', signedCookie(sid))
      const res = await c.get('/whoami')
      assert.equal(res.status, 200)
      assert.equal(res.body.sid, sid)
      assert.equal(res.body.user, 'liz')
      assert.equal(res.body.n, 2)

      const key = h.storageKey(store.testPrefix, sid)
      const stored = await h.peek(store, sid)
      assert.ok(stored, 'the engine reads it as its own session')
      assert.equal(stored.data.user, 'liz')
      assert.equal(stored.data.n, 2)
      assert.equal(stored.data.cookie.originalMaxAge, 3600000)
      assert.equal(await h.redisCli(topo, ['EXISTS', legacy + sid]), '0', 'the old key is gone')
      const t = Number(await h.redisCli(topo, ['PTTL', key]))
      assert.ok(t > 3590000 && t <= 3600000, `keeps the cookie's lifetime: PTTL ${t}`)

      assert.equal((await c.get('/inc')).body.n, 3)
      assert.equal((await c.get('/whoami')).body.n, 3)
    })

    it('two concurrent first requests migrate once and both keep their change', async () => {
      const sid = crypto.randomBytes(24).toString('base64url')
      const json = JSON.stringify({ cookie: { originalMaxAge: 3600000, expires: new Date(Date.now() + 3600000).toISOString(), path: '/' }, user: 'kim' })
      await h.redisCli(topo, ['SET', legacy + sid, json, 'EX', '3600'])
      const c = new h.Client(app.url)
      c.cookies.set('connect.sid', signedCookie(sid))
      const [r1, r2] = await Promise.all([c.get('/set?a=1&ms=50'), c.get('/set?b=2&ms=50')])
      assert.equal(r1.body.user, 'kim')
      assert.equal(r2.body.user, 'kim')
      const after = (await c.get('/whoami')).body
      assert.equal(after.sid, sid)
      assert.equal(after.data.a, '1')
      assert.equal(after.data.b, '2')
      assert.equal(await h.redisCli(topo, ['EXISTS', legacy + sid]), '0')
    })

    it('Store: legacyRead / legacyMigrate / legacyDelete, and argument errors', async () => {
      const s = store.store
      const sid = crypto.randomBytes(24).toString('base64url')
      await h.redisCli(topo, ['SET', legacy + sid, '{"x":1}'])
      const found = await s.legacyRead(sid, ['nothing-here:', { plain: legacy }])
      assert.equal(found.source, 1)
      assert.ok(Buffer.isBuffer(found.bytes))
      assert.equal(found.bytes.toString(), '{"x":1}')
      assert.ok(await s.legacyMigrate(sid, [legacy], { x: 1 }, 60000))
      assert.equal(await s.legacyMigrate(sid, [legacy], { x: 2 }), null, 'migrated already')
      assert.deepEqual((await s.load(sid)).data, { x: 1 })
      assert.equal(await s.legacyRead(sid, [legacy]), null)
      await h.redisCli(topo, ['SET', legacy + sid, 'y'])
      await s.legacyDelete(sid, [legacy])
      assert.equal(await h.redisCli(topo, ['EXISTS', legacy + sid]), '0')
      assert.equal(await s.legacyRead('short', [legacy]), null, 'an invalid id never reaches Redis')
      await assert.rejects(s.legacyRead(sid, [42]), TypeError)
      await assert.rejects(s.legacyRead(sid, [{ plain: 'a', privateId: 'b' }]), TypeError)
      await assert.rejects(s.legacyMigrate(sid, {}, {}), TypeError)
    })

    it('an undecodable or expired connect-redis value is treated as missing', async () => {
      const bad = crypto.randomBytes(24).toString('base64url')
      await h.redisCli(topo, ['SET', legacy + bad, '{not json', 'EX', '3600'])
      const c = new h.Client(app.url)
      c.cookies.set('connect.sid', signedCookie(bad))
      const res = await c.get('/whoami')
      assert.equal(res.status, 200)
      assert.equal(res.body.user, null)
      assert.equal(await h.redisCli(topo, ['EXISTS', legacy + bad]), '0')

      const stale = crypto.randomBytes(24).toString('base64url')
      const json = JSON.stringify({ cookie: { originalMaxAge: 1000, expires: new Date(Date.now() - 5000).toISOString(), path: '/' }, user: 'old' })
      await h.redisCli(topo, ['SET', legacy + stale, json, 'EX', '3600'])
      const d = new h.Client(app.url)
      d.cookies.set('connect.sid', signedCookie(stale))
      assert.equal((await d.get('/whoami')).body.user, null)
      assert.equal(await h.redisCli(topo, ['EXISTS', h.storageKey(store.testPrefix, stale)]), '0')
    })
  })

  // connect-redis' default prefix, "sess:", is shared by every test run on
  // this Redis: each test has a sid of its own and removes its key.
  describe(`migration with connect-redis' default prefix on ${topo.name}`, { skip }, () => {
    async function connectRedisSession (user) {
      const sid = crypto.randomBytes(24).toString('base64url')
      const json = JSON.stringify({ cookie: { originalMaxAge: 3600000, expires: new Date(Date.now() + 3600000).toISOString(), httpOnly: true, path: '/' }, user })
      await h.redisCli(topo, ['SET', 'sess:' + sid, json, 'EX', '600'])
      return { sid, json, key: 'sess:' + sid }
    }

    it('migrate: true reads sess:<sid> and moves it to our layout', async () => {
      const store = h.newStore(topo, 'migrate-default', { migrate: true })
      const app = await h.startExpress(store)
      const { sid, key } = await connectRedisSession('max')
      try {
        const c = new h.Client(app.url)
        c.cookies.set('connect.sid', signedCookie(sid))
        const res = await c.get('/whoami')
        assert.equal(res.body.sid, sid)
        assert.equal(res.body.user, 'max')
        assert.equal((await h.peek(store, sid)).data.user, 'max')
        assert.equal(await h.redisCli(topo, ['EXISTS', key]), '0', 'the old key is gone')
      } finally {
        await app.close()
        await h.redisCli(topo, ['DEL', key])
      }
    })

    it('without migrate, a sess:<sid> key is no session and is left untouched', async () => {
      for (const options of [{}, { migrate: false }]) {
        const store = h.newStore(topo, 'no-migrate', options)
        const app = await h.startExpress(store)
        const { sid, json, key } = await connectRedisSession('ned')
        try {
          const c = new h.Client(app.url)
          c.cookies.set('connect.sid', signedCookie(sid))
          const res = await c.get('/whoami')
          assert.equal(res.status, 200)
          assert.equal(res.body.user, null, `${JSON.stringify(options)}: not logged in`)
          assert.equal(await h.peek(store, sid), null)
          assert.equal(await h.redisCli(topo, ['GET', key]), json, 'the old key keeps its value')
          assert.ok(Number(await h.redisCli(topo, ['PTTL', key])) > 0, 'and its expiry')
        } finally {
          await app.close()
          await h.redisCli(topo, ['DEL', key])
        }
      }
    })
  })
}
