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
// Writes results/<time>.json and prints a Markdown table.
//
// Per run it records req/s, p50/p99 latency, errors, the load average,
// the Redis commands per request from an INFO commandstats delta (commands a
// Lua script runs count there too) and the Redis server's CPU time per
// request (INFO cpu: what a store costs the Redis every app server shares).
// A separate, untimed pass counts the commands each client sends per request
// with MONITOR (script-internal commands, marked "lua", excluded): the round
// trips.

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
  return lines.join('\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
