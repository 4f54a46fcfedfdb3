'use strict'
// The express-session store through Sentinel (redis+sentinel://) and over TLS
// (rediss:// with the test CA), driven over HTTP like the other suites.
// scripts/test-node.sh starts both topologies (SK_SENTINEL_URL, SK_TLS_URL,
// SK_TLS_CA); without them these tests are skipped unless SK_REQUIRE_REDIS=1.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const h = require('./helpers')
const { Store } = require('..')

const required = process.env.SK_REQUIRE_REDIS === '1'

const topologies = [
  {
    name: 'Sentinel',
    url: process.env.SK_SENTINEL_URL,
    options: {}
  },
  {
    name: 'TLS',
    url: process.env.SK_TLS_URL,
    options: { tls_ca_file: process.env.SK_TLS_CA }
  }
]

for (const topo of topologies) {
  const skip = topo.url ? false : `no ${topo.name} (set SK_${topo.name === 'TLS' ? 'TLS_URL and SK_TLS_CA' : 'SENTINEL_URL'}, or run scripts/test-node.sh)`
  if (skip && required) throw new Error(`SK_REQUIRE_REDIS=1 but ${skip}`)

  describe(`express-session through ${topo.name}`, { skip }, () => {
    let store, app

    before(async () => {
      store = h.newStore({ url: topo.url }, topo.name.toLowerCase(), topo.options)
      app = await h.startExpress(store)
    })
    after(() => app?.close())

    it('logs in, counts, keeps concurrent changes, logs out', async () => {
      const c = new h.Client(app.url)
      assert.equal((await c.get('/login?user=tess')).status, 200)
      const sid = c.sid()
      for (let i = 1; i <= 3; i++) assert.equal((await c.get('/inc')).body.n, i)
      await Promise.all([c.get('/set?x=1&ms=150'), c.get('/set?y=2&ms=20')])
      const { body } = await c.get('/whoami')
      assert.equal(body.user, 'tess')
      assert.equal(body.n, 3)
      assert.equal(body.data.x, '1')
      assert.equal(body.data.y, '2')
      const stored = await h.peek(store, sid)
      assert.equal(stored.data.user, 'tess')
      assert.equal((await c.get('/logout')).status, 200)
      assert.equal(await store.store.exists(sid), false)
      assert.equal((await c.get('/whoami')).body.user, null)
    })

    it('all/length/clear list this prefix', async () => {
      const c = new h.Client(app.url)
      await c.get('/login?user=uma')
      assert.equal(await store.length(), 1)
      const all = await store.all()
      assert.deepEqual(all.map((s) => s.user), ['uma'])
      await store.clear()
      assert.equal(await store.length(), 0)
    })
  })
}

describe('TLS failures are clear errors', { skip: process.env.SK_TLS_URL ? false : 'no TLS topology' }, () => {
  it('without the CA the server certificate is refused: a connection error, not a hang', async () => {
    const s = new Store(process.env.SK_TLS_URL, { connect_timeout: '2s', command_timeout: '2s' })
    const started = Date.now()
    await assert.rejects(s.exists(require('..').generateId()), (err) => {
      assert.match(err.code, /^SESSIONKEEPER_(CONNECTION|TIMEOUT)$/)
      return true
    })
    assert.ok(Date.now() - started < 10000)
  })

  it('plain redis:// to a TLS-only port fails within the timeout', async () => {
    const port = new URL(process.env.SK_TLS_URL).port
    const s = new Store(`redis://127.0.0.1:${port}`, { connect_timeout: '1s', command_timeout: '1s' })
    const started = Date.now()
    await assert.rejects(s.exists(require('..').generateId()), (err) => err.temporary === true)
    assert.ok(Date.now() - started < 10000)
  })

  it('a missing CA file is a configuration error at construction', () => {
    assert.throws(() => new Store(process.env.SK_TLS_URL, { tls_ca_file: '/nonexistent/ca.crt' }), (err) => {
      return err.code === 'SESSIONKEEPER_CONFIG'
    })
  })
})
