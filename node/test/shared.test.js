'use strict'
// Shared mode (one login across apps in different languages): the engine's
// signed cookie is express-session's own format, so express-session with the
// same `secret` and `name` reads what the engine signs and issues what the
// engine verifies; sessions another framework wrote (no `cookie` object) load
// in express; and an express app stores nothing of its own beyond the
// documented `cookie` key.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const signature = require('cookie-signature')

const h = require('./helpers')
const { sign, unsign, generateId, Store } = require('..')

const SECRET = 'the shared secret, at least 32 bytes long'
const OLD_SECRET = 'the previous shared secret, also 32+ bytes'
const NAME = 'sk_session'
// What express-session's Cookie#toJSON can hold: nothing else may be stored.
const COOKIE_FIELDS = ['originalMaxAge', 'partitioned', 'priority', 'expires', 'secure', 'httpOnly', 'domain', 'path', 'sameSite']

describe('sign / unsign', () => {
  const id = generateId()

  it('sign gives express-session\'s cookie-signature value', () => {
    assert.equal(sign(id, SECRET), 's:' + signature.sign(id, SECRET))
    assert.equal(sign(id, Buffer.from(SECRET)), sign(id, SECRET))
  })

  it('unsign takes the value as cookie parsers hand it over, and rotation', () => {
    const v = sign(id, SECRET)
    assert.equal(unsign(v, SECRET), id)
    assert.equal(unsign(encodeURIComponent(v), [SECRET]), id, 'percent-encoded (as in the Cookie header)')
    assert.equal(unsign(`"${v}"`, [SECRET]), id, 'quoted')
    assert.equal(unsign(v.replace(/\+/g, ' '), [SECRET]), unsign(v, [SECRET]), 'form-decoded')
    assert.equal(unsign(v, [SECRET, OLD_SECRET]), id)
    assert.equal(unsign(sign(id, OLD_SECRET), [SECRET, OLD_SECRET]), id, 'an old secret still verifies')
    assert.equal(unsign(sign(id, OLD_SECRET), [SECRET]), null, 'a retired secret does not')
    assert.equal(unsign(v.slice(0, -2) + 'xx', SECRET), null, 'a forged signature')
    assert.equal(unsign(id, SECRET), null, 'an unsigned id')
    assert.equal(unsign(undefined, SECRET), null, 'no cookie')
    assert.equal(unsign('', SECRET), null)
  })

  it('refuses short secrets and bad ids with typed errors', () => {
    assert.throws(() => sign(id, 'short'), (e) => e.code === 'SESSIONKEEPER_CONFIG' && e.temporary === false)
    assert.throws(() => unsign(sign(id, SECRET), [SECRET, 'short']), (e) => e.code === 'SESSIONKEEPER_CONFIG')
    assert.throws(() => unsign(undefined, 'short'), (e) => e.code === 'SESSIONKEEPER_CONFIG', 'a misconfiguration shows without a cookie too')
    assert.throws(() => sign('not an id', SECRET), (e) => e.code === 'SESSIONKEEPER_INVALID_ID')
    assert.throws(() => sign(42, SECRET), TypeError)
    assert.throws(() => unsign(42, SECRET), TypeError)
    assert.throws(() => unsign('x', 42), TypeError)
    assert.throws(() => unsign('x', []), TypeError)
  })
})

const skip = h.noRedis()

for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`shared mode with express-session on ${topo.name}`, { skip }, () => {
    let store, app, other

    before(async () => {
      store = h.newStore(topo, 'shared', { idle_ttl: '1h' })
      app = await h.startExpress(store, {
        name: NAME,
        secret: [SECRET, OLD_SECRET],
        cookie: { maxAge: 3600000, sameSite: 'lax' }
      })
      // Another app's engine handle on the same sessions (what Rails, Flask
      // or the C API would use): no express code involved.
      other = new Store(topo.url, { key_prefix: store.testPrefix, command_timeout: '3s' })
    })
    after(() => app?.close())

    it('a session another framework created, with an engine-signed cookie, is logged in under express', async () => {
      const { id } = await other.create({ user: 'ann', user_id: 7, roles: ['admin'] })
      const c = new h.Client(app.url)
      c.cookies.set(NAME, encodeURIComponent(sign(id, SECRET)))
      const res = await c.get('/whoami')
      assert.equal(res.status, 200)
      assert.equal(res.body.sid, id)
      assert.equal(res.body.user, 'ann')
      assert.deepEqual(res.body.data.roles, ['admin'])
      assert.strictEqual(res.body.data.user_id, 7, 'an integer stays a number')
      // A read changes nothing: express adds no cookie object of its own.
      assert.equal((await other.load(id)).data.cookie, undefined)

      // A write re-issues the cookie with this app's settings, not made-up ones.
      const write = await c.get('/set?x=1')
      assert.equal(write.status, 200)
      const set = write.setCookie.find((l) => l.startsWith(`${NAME}=`))
      assert.ok(set, 'the cookie is re-issued on a write (maxAge)')
      assert.match(set, /SameSite=Lax/)
      assert.match(set, /HttpOnly/)
      const expires = Date.parse(/Expires=([^;]+)/.exec(set)[1])
      assert.ok(Math.abs(expires - (Date.now() + 3600000)) < 5000, `Expires ${new Date(expires).toISOString()}`)
      assert.equal(unsign(decodeURIComponent(set.split(';')[0].slice(NAME.length + 1)), [SECRET]), id, 'same id, same signature format')

      const { data } = await other.load(id)
      assert.deepEqual(Object.keys(data).sort(), ['cookie', 'roles', 'user', 'user_id', 'x'])
      assert.strictEqual(data.user_id, 7)
      assert.equal(data.x, '1')
      for (const k of Object.keys(data.cookie)) assert.ok(COOKIE_FIELDS.includes(k), `cookie field ${k}`)
      assert.equal(data.cookie.originalMaxAge, 3600000)
    })

    it('the cookie express issues is verified by the engine (and by rotation)', async () => {
      const c = new h.Client(app.url)
      const login = await c.get('/login?user=ben')
      const raw = c.cookies.get(NAME)
      assert.ok(login.setCookie.some((l) => l.startsWith(`${NAME}=`)))
      assert.ok(raw.startsWith('s%3A'), 'express percent-encodes it')
      assert.equal(unsign(raw, [SECRET]), c.sid(NAME))
      assert.equal(unsign(decodeURIComponent(raw), [OLD_SECRET, SECRET]), c.sid(NAME))
      assert.equal(unsign(raw, [OLD_SECRET]), null, 'express signs with its first secret')
      // ... and another app reads the session behind it.
      const loaded = await other.load(unsign(raw, [SECRET]))
      assert.equal(loaded.data.user, 'ben')
      // A logout through the engine is a logout in express.
      await other.destroy(c.sid(NAME))
      assert.equal((await c.get('/whoami')).body.user, null)
    })

    it('a cookie signed with the previous secret still works (express rotation)', async () => {
      const { id } = await other.create({ user: 'cid' })
      const c = new h.Client(app.url)
      c.cookies.set(NAME, encodeURIComponent(sign(id, OLD_SECRET)))
      assert.equal((await c.get('/whoami')).body.user, 'cid')
    })

    it('what express stores is only the session\'s keys plus `cookie`', async () => {
      const c = new h.Client(app.url)
      await c.get('/login?user=dee')
      await c.get('/inc')
      await c.get('/remember?ms=7200000')
      const { data } = await other.load(c.sid(NAME))
      assert.deepEqual(Object.keys(data).sort(), ['cookie', 'n', 'user'])
      assert.strictEqual(data.n, 1)
      for (const k of Object.keys(data.cookie)) assert.ok(COOKIE_FIELDS.includes(k), `cookie field ${k}`)
    })

    it('store.get hands express-session a cookie for a session without one', async () => {
      const { id } = await other.create({ user: 'eve' })
      const sess = await store.get(id)
      assert.equal(sess.user, 'eve')
      assert.equal(typeof sess.cookie, 'object')
      assert.equal(sess.cookie.path, '/')
      assert.equal(sess.cookie.httpOnly, true)
      assert.ok(Date.parse(sess.cookie.expires) > Date.now() + 3500000, 'expires when the engine expires it')
      const all = await store.all()
      assert.ok(all.some((s) => s.user === 'eve' && typeof s.cookie === 'object'))
    })
  })
}
