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

// Last in the file: it moves the Sentinel master to the other node, then
// brings the killed one back as a replica.
describe('express-session through a Sentinel failover', { skip: process.env.SK_SENTINEL_URL ? false : 'no Sentinel topology' }, () => {
  it('requests answer normally (fail-open) until the replica is promoted, then the user is logged in again', async () => {
    const { execFileSync } = require('node:child_process')
    const fs = require('node:fs')
    const path = require('node:path')
    const sentinel = { port: Number(/^redis\+sentinel:\/\/[^:]+:(\d+)/.exec(process.env.SK_SENTINEL_URL)[1]) }
    const masterPort = async () => Number((await h.redisCli(sentinel, ['SENTINEL', 'get-master-addr-by-name', 'skmaster'])).split('\n')[1])
    const port = await masterPort()
    const store = h.newStore({ url: process.env.SK_SENTINEL_URL }, 'failover', { failOpen: true, connect_timeout: '500ms', command_timeout: '500ms' })
    const app = await h.startExpress(store)
    try {
      const c = new h.Client(app.url)
      await c.get('/login?user=tess')
      // Replication is asynchronous: the session must be on the replica first.
      assert.ok(Number(await h.redisCli({ port }, ['WAIT', '1', '5000'])) >= 1)
      const pid = Number(fs.readFileSync(path.join(process.env.SK_REDIS_DIR, 'sentinel', `${port}.pid`), 'utf8'))
      process.kill(pid, 'SIGKILL')
      const users = []
      const deadline = Date.now() + 40000
      for (;;) {
        const res = await c.get('/whoami')
        assert.equal(res.status, 200, 'a failover is never an error for the user (fail-open)')
        users.push(res.body.user)
        if (res.body.user === 'tess') break
        assert.ok(Date.now() < deadline, `not logged in again after 40 s: ${users.slice(-5)}`)
        await h.sleep(200)
      }
      assert.equal(users[0], null, 'the first request after the kill met the outage')
      assert.notEqual(await masterPort(), port, 'no failover happened')
      // Writes reach the promoted master.
      assert.equal((await c.get('/inc')).status, 200)
      assert.equal((await c.get('/whoami')).body.n, 1)
    } finally {
      await app.close()
      execFileSync('bash', [path.join(__dirname, '..', '..', 'tests', 'topology', 'redis.sh'), 'restart-node', String(port)], { stdio: 'ignore', timeout: 120000 })
    }
  })
})
