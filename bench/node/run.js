'use strict'
// Runs app.js once per store and drives it with autocannon on one fixed
// session cookie: rounds interleave the stores (the order rotates each
// round), every store meets the same Redis, medians over the rounds.
//
//   REDIS_URL=redis://127.0.0.1:<port> node run.js
// Knobs (env): ROUNDS=3 DURATION=10 WARMUP=3 CONNECTIONS=10 ROUTES=read,write
//   STORES=sessionkeeper,sessionkeeper-14d,ioredis,node-redis,memory,memory-rtt
//     (an entry `sessionkeeper@/path/addon.node` runs our store on another
//     build of the addon, for A/B comparisons)  MONITOR_REQUESTS=200
//   MEMORY_SESSIONS=2000 MEMORY_ROUNDS=3 (MEMORY_ROUNDS=0: no memory pass)
// Writes results/<time>.json and prints a Markdown table.
//
// Per run it records req/s, p50/p99 latency, errors, the load average,
// the Redis commands per request from an INFO commandstats delta (commands a
// Lua script runs count there too) and the Redis server's CPU time per
// request (INFO cpu: what a store costs the Redis every app server shares).
// A separate, untimed pass counts the commands each client sends per request
// with MONITOR (script-internal commands, marked "lua", excluded): the round
// trips. A last, untimed pass measures memory: each store's app, fresh, after
// a warm-up, then MEMORY_SESSIONS users (CONNECTIONS at a time) each logging
// in, writing and reading: the app's RSS growth and peak RSS (the peak reset
// through /proc/<pid>/clear_refs after the warm-up), its private dirty memory
// (what each further worker costs; RSS also counts code that every worker
// shares through the page cache), and the bytes the sessions take in Redis
// (MEMORY USAGE summed over every key, per session). Medians of MEMORY_ROUNDS
// fresh apps per store.

const { execFile, spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const autocannon = require('autocannon')

const env = process.env
const ROUNDS = Number(env.ROUNDS || 3)
const DURATION = Number(env.DURATION || 10)
const WARMUP = Number(env.WARMUP || 3)
const CONNECTIONS = Number(env.CONNECTIONS || 10)
const MONITOR_REQUESTS = Number(env.MONITOR_REQUESTS || 200)
const MEMORY_SESSIONS = Number(env.MEMORY_SESSIONS || 2000)
const MEMORY_ROUNDS = Number(env.MEMORY_ROUNDS ?? 3)
const STORES = (env.STORES || 'sessionkeeper,sessionkeeper-14d,ioredis,node-redis,memory,memory-rtt').split(',')
const ROUTES = (env.ROUTES || 'read,write').split(',')
const REDIS_URL = env.REDIS_URL
if (!REDIS_URL) throw new Error('REDIS_URL must point at the Redis the bench may use')
const redisPort = String(new URL(REDIS_URL).port)

const LABELS = {
  sessionkeeper: 'sessionkeeper (idle_ttl = maxAge)',
  'sessionkeeper-14d': 'sessionkeeper (default idle_ttl)',
  ioredis: 'connect-redis 8 + ioredis',
  'node-redis': 'connect-redis 10 + node-redis',
  memory: 'MemoryStore',
  'memory-rtt': 'MemoryStore + a PING per get and per set (bound of a Redis store)'
}

function redisCli (args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', redisPort, ...args], { timeout: 10000 }, (err, out) => (err ? reject(err) : resolve(out)))
  })
}

async function commandCalls () {
  const out = await redisCli(['INFO', 'commandstats'])
  const calls = {}
  for (const line of out.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (m) calls[m[1]] = Number(m[2])
  }
  return calls
}

// redis-server's CPU time so far (user + system), in microseconds.
async function serverCpuUs () {
  const out = await redisCli(['INFO', 'cpu'])
  const seconds = (name) => Number((new RegExp(`^${name}:([0-9.]+)`, 'm').exec(out) || [])[1] || 0)
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6
}

function delta (before, after) {
  const d = {}
  for (const [k, v] of Object.entries(after)) {
    const n = v - (before[k] || 0)
    if (n > 0 && k !== 'info') d[k] = n
  }
  return d
}

async function startApp (spec) {
  const [store, addon] = spec.split('@')
  const child = spawn(process.execPath, [path.join(__dirname, 'app.js')], {
    cwd: __dirname,
    env: { ...env, STORE: store, PORT: '0', REDIS_URL, ...(addon ? { SESSIONKEEPER_NATIVE: path.resolve(addon) } : {}) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${store}: app did not start in 20 s`)), 20000)
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      const m = /\{"ready":(\d+)\}/.exec(buf)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.on('exit', (code) => reject(new Error(`${store}: app exited (${code})`)))
  })
  const base = `http://127.0.0.1:${port}`
  const res = await fetch(`${base}/login`)
  const cookie = res.headers.getSetCookie()[0].split(';')[0]
  await res.text()
  return {
    base,
    cookie,
    pid: child.pid,
    stop: () => new Promise((resolve) => {
      child.once('exit', resolve)
      child.kill('SIGTERM')
    })
  }
}

function cannon (url, cookie, duration) {
  return autocannon({ url, connections: CONNECTIONS, duration, headers: { cookie } })
}

async function measure (app, route) {
  const url = `${app.base}/${route}`
  await cannon(url, app.cookie, WARMUP)
  const before = await commandCalls()
  const cpuBefore = await serverCpuUs()
  const load = os.loadavg()[0]
  const r = await cannon(url, app.cookie, DURATION)
  const cpuAfter = await serverCpuUs()
  const after = await commandCalls()
  const ok = r.requests.total - r.non2xx
  const cmds = delta(before, after)
  const total = Object.values(cmds).reduce((a, b) => a + b, 0)
  return {
    rps: ok / DURATION,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
    requests: ok,
    load: Number(load.toFixed(2)),
    commandsPerRequest: ok ? total / ok : 0,
    redisCpuUsPerRequest: ok ? (cpuAfter - cpuBefore) / ok : 0,
    commands: Object.fromEntries(Object.entries(cmds).map(([k, v]) => [k, Number((v / ok).toFixed(3))]))
  }
}

// Client commands per request with MONITOR (sequential requests, untimed).
async function monitorPass (app, route) {
  const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', redisPort, 'MONITOR'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  await new Promise((resolve) => child.stdout.on('data', (d) => {
    out += d
    if (out.includes('OK')) resolve()
  }))
  for (let i = 0; i < MONITOR_REQUESTS; i++) {
    const res = await fetch(`${app.base}/${route}`, { headers: { cookie: app.cookie } })
    await res.text()
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  child.kill()
  const lines = out.split('\n').filter((l) => /^\d+\.\d+ \[\d+ /.test(l))
  const client = lines.filter((l) => !/^\d+\.\d+ \[\d+ lua\]/.test(l))
  const byName = {}
  for (const l of client) {
    const name = (/\] "([^"]+)"/.exec(l) || [])[1]?.toLowerCase()
    byName[name] = (byName[name] || 0) + 1
  }
  return {
    perRequest: client.length / MONITOR_REQUESTS,
    scriptInternalPerRequest: (lines.length - client.length) / MONITOR_REQUESTS,
    byName: Object.fromEntries(Object.entries(byName).map(([k, v]) => [k, v / MONITOR_REQUESTS]))
  }
}

function procKib (pid, file, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/${file}`, 'utf8'))
  if (!m) throw new Error(`no ${field} in /proc/${pid}/${file}`)
  return Number(m[1])
}

async function get (url, cookie) {
  const res = await fetch(url, cookie ? { headers: { cookie } } : {})
  await res.text()
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return res
}

// One user arriving: logs in (a new session), writes, reads.
async function visit (base) {
  const cookie = (await get(`${base}/login`)).headers.getSetCookie()[0].split(';')[0]
  await get(`${base}/write`, cookie)
  await get(`${base}/read`, cookie)
}

async function memoryPass (store, redis) {
  const app = await startApp(store)
  try {
    await get(`${app.base}/read`, app.cookie)
    await get(`${app.base}/write`, app.cookie)
    await redis.flushdb()
    const rssWarm = procKib(app.pid, 'status', 'VmRSS')
    fs.writeFileSync(`/proc/${app.pid}/clear_refs`, '5') // resets VmHWM to the current RSS
    let started = 0
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (started++ < MEMORY_SESSIONS) await visit(app.base)
    }))
    const m = {
      rssWarmKib: rssWarm,
      rssGrowthKib: procKib(app.pid, 'status', 'VmRSS') - rssWarm,
      peakKib: procKib(app.pid, 'status', 'VmHWM'),
      privateDirtyKib: procKib(app.pid, 'smaps_rollup', 'Private_Dirty'),
      cookieBytes: app.cookie.split('=')[1].length
    }
    const keys = []
    let cursor = '0'
    do {
      const [next, batch] = await redis.scan(cursor, 'COUNT', 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== '0')
    const usage = await redis.pipeline(keys.map((k) => ['memory', 'usage', k, 'samples', '0'])).exec()
    m.redisBytesPerSession = usage.reduce((a, [, n]) => a + Number(n || 0), 0) / MEMORY_SESSIONS
    m.redisKeysPerSession = keys.length / MEMORY_SESSIONS
    return m
  } finally {
    await app.stop()
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

async function main () {
  const started = new Date()
  const runs = [] // { round, store, route, ... }
  console.error(`bench: ${ROUNDS} rounds x ${STORES.length} stores x ${ROUTES.length} routes, ${DURATION}s each (+${WARMUP}s warm-up), ${CONNECTIONS} connections; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  for (let round = 0; round < ROUNDS; round++) {
    const order = STORES.map((_, i) => STORES[(i + round) % STORES.length])
    for (const store of order) {
      const app = await startApp(store)
      try {
        for (const route of round % 2 ? [...ROUTES].reverse() : ROUTES) {
          const m = await measure(app, route)
          runs.push({ round, store, route, ...m })
          console.error(`round ${round + 1} ${store.padEnd(17)} /${route.padEnd(5)} ${m.rps.toFixed(0).padStart(6)} req/s  p50 ${m.p50} ms  p99 ${m.p99} ms  cmds/req ${m.commandsPerRequest.toFixed(2)}  redis ${m.redisCpuUsPerRequest.toFixed(1)} us/req  errors ${m.errors}  load ${m.load}`)
        }
      } finally {
        await app.stop()
      }
    }
  }

  const monitor = {}
  for (const store of STORES.filter((s) => s !== 'memory')) {
    const app = await startApp(store)
    try {
      for (const route of ROUTES) monitor[`${store} ${route}`] = await monitorPass(app, route)
    } finally {
      await app.stop()
    }
  }

  const memoryRuns = {}
  const memoryStores = STORES.filter((s) => s !== 'memory-rtt')
  if (MEMORY_ROUNDS > 0) {
    const Redis = require('ioredis')
    const redis = new Redis(REDIS_URL)
    try {
      for (let round = 0; round < MEMORY_ROUNDS; round++) {
        for (const store of memoryStores) {
          const m = await memoryPass(store, redis)
          ;(memoryRuns[store] ||= []).push(m)
          console.error(`memory ${store.padEnd(17)} warm ${(m.rssWarmKib / 1024).toFixed(1)} MiB  growth ${(m.rssGrowthKib / 1024).toFixed(1)} MiB  peak ${(m.peakKib / 1024).toFixed(1)} MiB  private dirty ${(m.privateDirtyKib / 1024).toFixed(1)} MiB  redis ${m.redisBytesPerSession.toFixed(0)} B/session`)
        }
      }
    } finally {
      redis.disconnect()
    }
  }
  // The median of each figure (the peak depends on when the GC ran).
  const memory = Object.fromEntries(Object.entries(memoryRuns).map(([store, ms]) =>
    [store, Object.fromEntries(Object.keys(ms[0]).map((f) => [f, median(ms.map((m) => m[f]))]))]))

  const summary = {}
  for (const store of STORES) {
    for (const route of ROUTES) {
      const rs = runs.filter((r) => r.store === store && r.route === route)
      summary[`${store} ${route}`] = {
        rps: median(rs.map((r) => r.rps)),
        rpsRounds: rs.map((r) => Math.round(r.rps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
        commandsPerRequest: median(rs.map((r) => r.commandsPerRequest)),
        redisCpuUsPerRequest: median(rs.map((r) => r.redisCpuUsPerRequest)),
        clientCommandsPerRequest: monitor[`${store} ${route}`]?.perRequest ?? 0,
        errors: rs.reduce((a, r) => a + r.errors, 0)
      }
    }
  }
  const loads = runs.map((r) => r.load)
  const result = {
    started: started.toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    config: { ROUNDS, DURATION, WARMUP, CONNECTIONS, STORES },
    load: { min: Math.min(...loads), median: median(loads), max: Math.max(...loads) },
    summary,
    monitor,
    memory,
    memoryConfig: { MEMORY_SESSIONS, MEMORY_ROUNDS },
    runs
  }
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true })
  const file = path.join(__dirname, 'results', `${started.toISOString().replace(/[:.]/g, '-')}.json`)
  fs.writeFileSync(file, JSON.stringify(result, null, 2))
  console.log(table(result))
  console.error(`bench: results in ${path.relative(process.cwd(), file)}`)
}

function label (spec) {
  const [store, addon] = spec.split('@')
  return addon ? `${LABELS[store]} [${path.basename(addon)}]` : LABELS[store]
}

function table (result) {
  const { summary } = result
  const lines = []
  lines.push(`Load average (1 min) during the runs: min ${result.load.min}, median ${result.load.median}, max ${result.load.max} on ${result.cpus} cores; Node ${result.node}; ${result.config.ROUNDS} rounds x ${result.config.DURATION} s, ${result.config.CONNECTIONS} connections.`)
  lines.push('')
  lines.push('| store | route | req/s (median) | per round | p50 ms | p99 ms | Redis cmds/req (commandstats) | client cmds/req (MONITOR) | Redis CPU µs/req | errors |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|')
  for (const route of ROUTES) {
    for (const store of result.config.STORES) {
      const s = summary[`${store} ${route}`]
      lines.push(`| ${label(store)} | /${route} | ${Math.round(s.rps)} | ${s.rpsRounds.join(' / ')} | ${s.p50} | ${s.p99} | ${s.commandsPerRequest.toFixed(2)} | ${s.clientCommandsPerRequest.toFixed(2)} | ${s.redisCpuUsPerRequest.toFixed(1)} | ${s.errors} |`)
    }
  }
  // memory-rtt's row: the most a store that keeps sessions in Redis could reach.
  const ours = result.config.STORES.filter((s) => s.startsWith('sessionkeeper') || s === 'memory-rtt')
  if (ours.length) {
    lines.push('')
    lines.push('| ours | route | vs connect-redis 8 + ioredis (target >= 1.3x) | vs connect-redis 10 + node-redis | vs MemoryStore (target >= 0.9x) | p99: ours vs best Redis peer | p99: ours vs MemoryStore |')
    lines.push('|---|---|---|---|---|---|---|')
    for (const spec of ours) {
      for (const route of ROUTES) {
        const me = summary[`${spec} ${route}`]
        const ratio = (store) => summary[`${store} ${route}`] ? (me.rps / summary[`${store} ${route}`].rps).toFixed(2) + 'x' : 'n/a'
        const peers = ['ioredis', 'node-redis'].map((s) => summary[`${s} ${route}`]).filter(Boolean)
        const bestP99 = peers.length ? Math.min(...peers.map((p) => p.p99)) : null
        const mem = summary[`memory ${route}`]
        lines.push(`| ${label(spec)} | /${route} | ${ratio('ioredis')} | ${ratio('node-redis')} | ${ratio('memory')} | ${me.p99} vs ${bestP99 ?? 'n/a'} ms | ${me.p99} vs ${mem ? mem.p99 : 'n/a'} ms |`)
      }
    }
  }
  lines.push(...memoryTable(result))
  return lines.join('\n')
}

function memoryTable ({ memory, memoryConfig }) {
  if (!memory || !Object.keys(memory).length) return []
  const mib = (kib) => (kib / 1024).toFixed(1)
  const lines = ['', `Memory (${memoryConfig.MEMORY_SESSIONS} users, each logging in, writing and reading; each store's app fresh; medians of ${memoryConfig.MEMORY_ROUNDS} apps per store):`, '']
  lines.push('| store | RSS after warm-up MiB | RSS growth MiB | peak RSS MiB | private dirty MiB | Redis bytes / session | Redis keys / session | cookie bytes |')
  lines.push('|---|---|---|---|---|---|---|---|')
  for (const [store, m] of Object.entries(memory)) {
    lines.push(`| ${label(store)} | ${mib(m.rssWarmKib)} | ${mib(m.rssGrowthKib)} | ${mib(m.peakKib)} | ${mib(m.privateDirtyKib)} | ${m.redisBytesPerSession.toFixed(0)} | ${m.redisKeysPerSession.toFixed(2)} | ${m.cookieBytes} |`)
  }
  lines.push('', 'Ours / peer (below 1: ours uses less):', '')
  lines.push('| ours vs peer | peak RSS | private dirty | Redis bytes / session |')
  lines.push('|---|---|---|---|')
  for (const ours of Object.keys(memory).filter((s) => s.startsWith('sessionkeeper'))) {
    for (const peer of ['ioredis', 'node-redis'].filter((p) => memory[p])) {
      const a = memory[ours]
      const b = memory[peer]
      const r = (f) => (a[f] / b[f]).toFixed(2) + 'x'
      lines.push(`| ${label(ours)} / ${label(peer)} | ${r('peakKib')} | ${r('privateDirtyKib')} | ${r('redisBytesPerSession')} |`)
    }
  }
  return lines
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
