'use strict'
// Node's cluster module with two workers sharing one port and one Redis.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const h = require('./helpers')

const skip = h.noRedis()

for (const topo of skip ? [{ name: 'none' }] : h.topologies()) {
  describe(`cluster module, 2 workers, on ${topo.name}`, { skip }, () => {
    let child, base

    before(async () => {
      const port = await h.closedPort()
      child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'cluster-app.js')], {
        env: { ...process.env, PORT: String(port), SK_URL: topo.url, SK_PREFIX: h.uniquePrefix('cluster-module') },
        stdio: ['ignore', 'pipe', 'inherit']
      })
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the cluster did not start in 20 s')), 20000)
        child.stdout.on('data', (chunk) => {
          if (String(chunk).includes('ready')) {
            clearTimeout(timer)
            resolve()
          }
        })
        child.on('exit', (code) => reject(new Error(`the cluster exited early (${code})`)))
      })
      base = `http://127.0.0.1:${port}`
    })
    after(() => child?.kill('SIGTERM'))

    it('a session works across both workers', async () => {
      const c = new h.Client(base)
      await c.get('/login')
      const pids = new Set()
      for (let i = 1; i <= 20; i++) {
        const { status, body } = await c.get('/inc')
        assert.equal(status, 200)
        assert.equal(body.n, i)
        pids.add(body.pid)
      }
      assert.equal(pids.size, 2, 'both workers answered')
      assert.equal((await c.get('/whoami')).body.user, 'alice')
    })

    it('concurrent requests on different workers changing different keys all survive', async () => {
      const c = new h.Client(base)
      await c.get('/login')
      const keys = Array.from({ length: 6 }, (_, i) => `w${i}`)
      const answers = await Promise.all(keys.map((k, i) => c.get(`/set?${k}=${i}&ms=${(6 - i) * 30}`)))
      assert.equal(new Set(answers.map((a) => a.body.pid)).size, 2)
      const { data } = (await c.get('/whoami')).body
      for (const [i, k] of keys.entries()) assert.equal(data[k], String(i), k)
    })
  })
}
