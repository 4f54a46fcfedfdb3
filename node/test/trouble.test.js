'use strict'
// Redis down, Redis not answering, fail-open, and the error objects.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const signature = require('cookie-signature')

const sk = require('..')
const h = require('./helpers')

const SECRET = 'test secret'

/** A client carrying a signed cookie for `sid`, as a browser with an old session would. */
function clientWithSession (app, sid = sk.generateId()) {
  const c = new h.Client(app.url)
  c.cookies.set('connect.sid', encodeURIComponent('s:' + signature.sign(sid, SECRET)))
  return c
}

async function timed (fn) {
  const started = performance.now()
  const out = await fn()
  return { out, ms: performance.now() - started }
}

describe('Redis down', () => {
  it('errors reach express-session as Error objects with code and temporary, quickly', async () => {
    const port = await h.closedPort()
    const store = new sk.SessionkeeperStore({ url: `redis://127.0.0.1:${port}`, connect_timeout: '500ms', command_timeout: '500ms' })
    const app = await h.startExpress(store)
    try {
      const { out: res, ms } = await timed(() => clientWithSession(app).get('/whoami'))
      assert.equal(res.status, 500)
      assert.equal(res.body.code, 'SESSIONKEEPER_CONNECTION')
      assert.equal(res.body.temporary, true)
      assert.equal(res.body.kind, 'connection')
      assert.ok(ms < 1500, `answered after ${ms} ms`)
      // A request that never needs the store still works.
      assert.equal((await new h.Client(app.url).get('/whoami')).status, 200)
    } finally {
      await app.close()
    }
  })

  it('fail-open hands the request a fresh session instead', async () => {
    const port = await h.closedPort()
    const store = new sk.SessionkeeperStore({ url: `redis://127.0.0.1:${port}`, connect_timeout: '500ms', command_timeout: '500ms', failOpen: true })
    const events = []
    store.on('failopen', (err, op) => events.push([op, err.code, err.temporary]))
    const app = await h.startExpress(store)
    try {
      const c = clientWithSession(app)
      const res = await c.get('/whoami')
      assert.equal(res.status, 200)
      assert.equal(res.body.user, null)
      const inc = await c.get('/inc')
      assert.equal(inc.status, 200, 'a write that cannot be stored is dropped, not a 500')
      assert.deepEqual(events[0], ['get', 'SESSIONKEEPER_CONNECTION', true])
      assert.ok(events.some(([op]) => op === 'set'))
      // A logout that did not happen must not look like one that did.
      const logout = await clientWithSession(app).get('/logout')
      assert.equal(logout.status, 500)
      assert.equal(logout.body.code, 'SESSIONKEEPER_CONNECTION')
    } finally {
      await app.close()
    }
  })

  it('fail-open also drops the delete of a session whose cookie has expired (set and touch)', async () => {
    const port = await h.closedPort()
    const store = new sk.SessionkeeperStore({ url: `redis://127.0.0.1:${port}`, connect_timeout: '300ms', command_timeout: '300ms', failOpen: true })
    const events = []
    store.on('failopen', (err, op) => events.push([op, err.code]))
    const expired = { cookie: { originalMaxAge: 1000, expires: new Date(Date.now() - 1000), path: '/' }, user: 'ada' }
    await store.set(sk.generateId(), expired)
    await store.touch(sk.generateId(), expired)
    assert.deepEqual(events, [['set', 'SESSIONKEEPER_CONNECTION'], ['touch', 'SESSIONKEEPER_CONNECTION']])
    // Not fail-open: the caller hears of it.
    const strict = new sk.SessionkeeperStore({ url: `redis://127.0.0.1:${port}`, connect_timeout: '300ms', command_timeout: '300ms' })
    await assert.rejects(strict.set(sk.generateId(), expired), { code: 'SESSIONKEEPER_CONNECTION' })
  })

  it('a host that never answers the connect fails a load within connect_timeout, once', async () => {
    const host = await h.unanswered()
    // 1 s each: one connect_timeout, not two (the event-loop socket's, then the engine's own).
    const store = new sk.Store(`redis://127.0.0.1:${host.port}`, { connect_timeout: '1s', command_timeout: '1s' })
    try {
      const { out: err, ms } = await timed(() => store.load(sk.generateId()).then(() => null, (e) => e))
      assert.ok(err, 'the load failed')
      assert.ok(sk.isSessionkeeperError(err), err)
      assert.equal(err.code, 'SESSIONKEEPER_TIMEOUT')
      assert.equal(err.kind, 'timeout')
      assert.equal(err.temporary, true)
      assert.ok(ms < 1800, `failed after ${ms} ms`)
    } finally {
      host.close()
    }
  })

  it('a server that never answers times out within command_timeout', async () => {
    const hole = await h.blackhole()
    const store = new sk.SessionkeeperStore({ url: `redis://127.0.0.1:${hole.port}`, connect_timeout: '400ms', command_timeout: '400ms' })
    const app = await h.startExpress(store)
    try {
      const { out: res, ms } = await timed(() => clientWithSession(app).get('/whoami'))
      assert.equal(res.status, 500)
      assert.equal(res.body.code, 'SESSIONKEEPER_TIMEOUT')
      assert.equal(res.body.temporary, true)
      assert.ok(ms < 1500, `answered after ${ms} ms`)
    } finally {
      await app.close()
      await hole.close()
    }
  })
})

const skip = h.noRedis()
const standalone = skip ? null : h.topologies().find((t) => t.name === 'standalone')

describe('Redis paused longer than command_timeout', { skip: skip || (!standalone && 'no standalone Redis') }, () => {
  it('rejects with SESSIONKEEPER_TIMEOUT, temporary, and recovers', async () => {
    const store = new sk.Store(standalone.url, { key_prefix: h.uniquePrefix('pause'), command_timeout: '300ms' })
    const { id } = await store.create({ a: 1 })
    await h.redisCli(standalone, ['CLIENT', 'PAUSE', '1000', 'ALL'])
    const started = performance.now()
    const err = await store.load(id).then(() => null, (e) => e)
    const ms = performance.now() - started
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'SESSIONKEEPER_TIMEOUT')
    assert.equal(err.kind, 'timeout')
    assert.equal(err.temporary, true)
    assert.ok(sk.isSessionkeeperError(err))
    assert.ok(ms < 900, `rejected after ${ms} ms`)
    await h.sleep(1000)
    assert.equal((await store.load(id)).data.a, 1)
  })
})

describe('Redis taking no writes for now (NOREPLICAS)', { skip: skip || (!standalone && 'no standalone Redis') }, () => {
  it('loads still read the session over the event-loop socket; fail-open drops the writes', async () => {
    const store = h.newStore(standalone, 'noreplicas', { failOpen: true })
    const events = []
    store.on('failopen', (err, op) => events.push([op, err.code, err.temporary]))
    const app = await h.startExpress(store)
    const c = new h.Client(app.url)
    const writes = (n) => h.redisCli(standalone, ['CONFIG', 'SET', 'min-replicas-to-write', String(n)])
    try {
      await c.get('/login?user=alice')
      await c.get('/inc')
      await writes(1)
      const who = await c.get('/whoami')
      assert.equal(who.status, 200)
      assert.equal(who.body.user, 'alice', 'still logged in')
      const inc = await c.get('/inc')
      assert.equal(inc.status, 200)
      assert.deepEqual(events, [['set', 'SESSIONKEEPER_CONNECTION', true]])
      await writes(0)
      const after = await c.get('/whoami')
      assert.deepEqual([after.body.user, after.body.n], ['alice', 1], 'the write made meanwhile was dropped')
    } finally {
      await writes(0)
      await app.close()
    }
  })
})

describe('an oversized session', { skip: h.noRedis() }, () => {
  it('reaches express-session as SESSIONKEEPER_TOO_LARGE and keeps what was stored', async () => {
    const store = h.newStore(h.topologies()[0], 'too-large', { max_size: 2000 })
    const errors = []
    const set = store.set.bind(store)
    store.set = (sid, sess, cb) => set(sid, sess, (err) => {
      if (err) errors.push(err)
      cb(err)
    })
    const app = await h.startExpress(store)
    try {
      const c = new h.Client(app.url)
      await c.get('/set?a=1')
      const big = await c.get('/set?big=' + 'x'.repeat(3000))
      // express-session saves as the response ends and has begun sending it:
      // the error goes to next(err), the response is the route's.
      assert.equal(big.status, 200)
      assert.equal(errors.length, 1)
      assert.equal(errors[0].code, 'SESSIONKEEPER_TOO_LARGE')
      assert.equal(errors[0].temporary, false)
      assert.match(errors[0].message, /max_size/)
      const after = await c.get('/whoami')
      assert.deepEqual({ a: after.body.data.a, big: after.body.data.big }, { a: '1', big: undefined }, 'the stored session is as before')
    } finally {
      await app.close()
    }
  })
})

describe('error objects', () => {
  it('a bad URL or option throws SESSIONKEEPER_CONFIG from the constructor', () => {
    assert.throws(() => new sk.Store('nope://x'), (e) => e.code === 'SESSIONKEEPER_CONFIG' && e.temporary === false && e.kind === 'config')
    assert.throws(() => new sk.Store('memory://x', { idle_tll: '5m' }), (e) => e.code === 'SESSIONKEEPER_CONFIG' && /idle_tll/.test(e.message))
    assert.throws(() => new sk.SessionkeeperStore({}), TypeError)
    assert.throws(() => new sk.Store('redis://user:hunter2@127.0.0.1:1', { command_timeout: 'soon' }), (e) => !e.message.includes('hunter2'))
  })

  it('every failure rejects (never throws) with a typed error', async () => {
    const store = new sk.Store('memory://errors', { max_size: 200 })
    const rejects = async (p, check) => {
      assert.ok(p instanceof Promise)
      await assert.rejects(p, check)
    }
    await rejects(store.save('short', store.emptyBaseline(), { a: 1 }), (e) => e.code === 'SESSIONKEEPER_INVALID_ID' && e.temporary === false)
    await rejects(store.create({ big: 'x'.repeat(500) }), (e) => e.code === 'SESSIONKEEPER_TOO_LARGE' && e.kind === 'too_large')
    await rejects(store.create({ user: { fn () {} } }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && /"user.fn"/.test(e.message))
    await rejects(store.create({ s: Symbol('x') }), (e) => e instanceof TypeError && /"s"/.test(e.message))
    await rejects(store.create({ m: new Map() }), (e) => e instanceof TypeError && /Map/.test(e.message))
    await rejects(store.create({ n: 2n ** 64n }), (e) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE')
    await rejects(store.load(42), (e) => e instanceof TypeError && /argument id/.test(e.message))
    await rejects(store.load(sk.generateId(), -5), (e) => e instanceof RangeError && /ttlMs/.test(e.message))
    await rejects(store.save(sk.generateId(), {}, {}), (e) => e instanceof TypeError && /Baseline/.test(e.message))
    // An invalid id is "no session", and never reaches Redis.
    assert.equal(await store.load('../etc/passwd'), null)
    assert.equal(store.stats().invalidIds, 2)
  })

  it('connection errors are temporary', async () => {
    const port = await h.closedPort()
    const store = new sk.Store(`redis://127.0.0.1:${port}`, { connect_timeout: '300ms' })
    await assert.rejects(store.exists(sk.generateId()), (e) => e.code === 'SESSIONKEEPER_CONNECTION' && e.temporary === true)
    assert.equal(store.stats().errors.connection, 1)
  })
})

describe('values round-trip through the engine', () => {
  it('JSON-only data comes back exactly (built by one JSON.parse)', async () => {
    const store = new sk.Store('memory://json-values')
    const data = {
      quotes: 'say "hi" \\ back\\slash',
      controls: 'tab\there\nnew line\u0000nul\u001f',
      unicode: 'héllo ✓ 😀 \u2028\u2029',
      floats: [0.1, -0, 1e21, 5e-324, 1.7976931348623157e308, -2.5, 3],
      ints: [0, -1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER],
      nested: { a: [{ b: null, c: true, d: false }], e: {} },
      empty: '',
      ['__proto__']: { polluted: true },
      '1': 'integer-like key'
    }
    const { id } = await store.create(data)
    const { data: back } = await store.load(id)
    assert.deepEqual(back, data)
    assert.ok(Object.is(back.floats[1], -0), '-0 kept')
    assert.equal(Object.getPrototypeOf(back), Object.prototype, 'a "__proto__" key did not become the prototype')
    assert.ok(Object.hasOwn(back, '__proto__') && back.polluted === undefined)
  })

  it('converts every supported type and back', async () => {
    const store = new sk.Store('memory://values')
    const data = {
      nil: null,
      yes: true,
      int: 42,
      neg: -7,
      float: 1.5,
      negZero: -0,
      maxSafe: Number.MAX_SAFE_INTEGER,
      beyondSafe: 2 ** 60,
      bigSmall: 5n,
      bigLarge: 2n ** 62n,
      str: 'héllo ✓',
      bytes: Buffer.from([0, 1, 255]),
      u8: new Uint8Array([7, 8]),
      date: new Date('2026-11-23T12:34:56.789Z'),
      list: [1, 'two', [3], { four: 4 }, null],
      nested: { a: { b: { c: 'deep' } } },
      nullProto: Object.assign(Object.create(null), { k: 'v' }),
      skipped: undefined,
      ['__proto__']: { polluted: true }
    }
    const { id } = await store.create(data)
    const { data: back } = await store.load(id)
    assert.equal(Object.getPrototypeOf(back), Object.prototype, 'a "__proto__" key did not become the prototype')
    assert.ok(Object.hasOwn(back, '__proto__') && back.polluted === undefined)
    assert.equal(back.nil, null)
    assert.equal(back.yes, true)
    assert.equal(back.int, 42)
    assert.equal(back.neg, -7)
    assert.equal(back.float, 1.5)
    assert.ok(Object.is(back.negZero, -0))
    assert.equal(back.maxSafe, Number.MAX_SAFE_INTEGER)
    assert.equal(back.beyondSafe, 2 ** 60, 'a float beyond 2^53 stays a number')
    assert.equal(back.bigSmall, 5, 'a BigInt that fits in a number comes back as a number')
    assert.equal(back.bigLarge, 2n ** 62n, 'an integer beyond 2^53 comes back as a BigInt')
    assert.equal(back.str, 'héllo ✓')
    assert.ok(Buffer.isBuffer(back.bytes) && back.bytes.equals(Buffer.from([0, 1, 255])))
    assert.deepEqual([...back.u8], [7, 8])
    assert.ok(back.date instanceof Date)
    assert.equal(back.date.toISOString(), '2026-11-23T12:34:56.789Z')
    assert.deepEqual(back.list, [1, 'two', [3], { four: 4 }, null])
    assert.equal(back.nested.a.b.c, 'deep')
    assert.deepEqual({ ...back.nullProto }, { k: 'v' })
    assert.ok(!('skipped' in back))
  })
})
