'use strict'
// Per-call cost of the binding, without express: one session read (and
// written) N times, sequentially and with 10 in flight, through our Store
// and through ioredis (GET + JSON.parse; GET + SET EX for a write). Reports ops/s and the process's CPU time per operation
// (every thread: the JavaScript thread, napi's and the engine's runtimes).
//   REDIS_URL=redis://127.0.0.1:<port> SESSIONKEEPER_NATIVE=.build/sessionkeeper.node node micro.js

const path = require('node:path')
const Redis = require('ioredis')
const { Store } = require(path.resolve(__dirname, '..', '..', 'node'))

const url = process.env.REDIS_URL
const N = Number(process.env.N || 20000)

async function measure (op, conc) {
  let next = 0
  const t0 = process.hrtime.bigint()
  const cpu0 = process.cpuUsage()
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next++ < N) await op()
  }))
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const cpu = process.cpuUsage(cpu0)
  return { opsPerSec: Math.round(N / ms * 1000), cpuUsPerOp: Math.round((cpu.user + cpu.system) / N) }
}

async function main () {
  const session = { user: 'bench-user', roles: ['reader', 'writer'], n: 1, cookie: { originalMaxAge: 3600000, httpOnly: true, path: '/' } }
  const store = new Store(url, { key_prefix: 'bench:micro:', idle_ttl: '1h' })
  const { id } = await store.create(session)
  const redis = new Redis(url)
  await redis.set('bench:micro:json', JSON.stringify(session), 'EX', 3600)
  const ops = {
    'sessionkeeper Store#load': () => store.load(id),
    'ioredis GET + JSON.parse': async () => JSON.parse(await redis.get('bench:micro:json')),
    // A write: load, change one key, save (every call in flight on the one session).
    'sessionkeeper load + save': async () => {
      const loaded = await store.load(id)
      await store.save(id, loaded.baseline, { ...loaded.data, n: loaded.data.n + 1 }, 3600000)
    },
    'ioredis GET + SET EX': async () => {
      const data = JSON.parse(await redis.get('bench:micro:json'))
      data.n += 1
      await redis.set('bench:micro:json', JSON.stringify(data), 'EX', 3600)
    }
  }
  console.log('| operation | in flight | ops/s | process CPU per op (µs) |')
  console.log('|---|---|---|---|')
  for (const conc of [1, 10]) {
    for (const [name, op] of Object.entries(ops)) {
      await measure(op, conc) // warm-up
      const m = await measure(op, conc)
      console.log(`| ${name} | ${conc} | ${m.opsPerSec} | ${m.cpuUsPerOp} |`)
    }
  }
  await store.destroy(id)
  redis.disconnect()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
