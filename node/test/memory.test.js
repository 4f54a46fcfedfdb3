'use strict'
// Memory growth: 20k get/set cycles through the express-session store (the
// way express-session drives it) and 3k errors against a closed port, in a
// child process; RSS and the live JS heap after the run must stay near their
// values after a warm-up. No timing assertions. The child runs a full
// collection every 1000 cycles: RSS is a high-water mark, and what garbage
// waits for a full collection would otherwise count as growth (Baselines
// that reached the old generation, up to ~30 MiB here), while a real leak
// survives every collection.
//
// The child runs with --jitless and a small young generation: V8's optimizing
// compilers otherwise take tens of MiB of RSS at unpredictable moments (their
// memory is not returned), which would hide a leak of a kilobyte per cycle.
// Without the JIT the process is flat to within a few MiB, so the bounds can
// be tight enough to catch ~1 KiB per cycle natively and ~200 B in the heap.

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const path = require('node:path')

const h = require('./helpers')

const skip = h.noRedis()
const MiB = 1024 * 1024
const RSS_BOUND = 16 * MiB
const HEAP_BOUND = 4 * MiB

describe('memory', { skip }, () => {
  it('RSS and heap stay flat over 20k get/set cycles and 3k connection errors', async () => {
    const topo = h.topologies()[0]
    const env = { ...process.env, SK_URL: topo.url, SK_PREFIX: h.uniquePrefix('memory'), SK_CLOSED_PORT: String(await h.closedPort()) }
    const args = ['--expose-gc', '--jitless', '--max-semi-space-size=1', path.join(__dirname, 'fixtures', 'memory-growth.js')]
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, args, { env, timeout: 300000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`))
        resolve(JSON.parse(stdout.trim().split('\n').pop()))
      })
    })
    const rss = out.after.rss - out.before.rss
    const heap = out.after.heapUsed - out.before.heapUsed
    const mib = (n) => (n / MiB).toFixed(1)
    console.log(`memory: after warm-up RSS ${mib(out.before.rss)} MiB, heap ${mib(out.before.heapUsed)} MiB; after ${out.cycles} cycles + ${out.errors} errors RSS ${mib(out.after.rss)} MiB (${mib(rss)}), heap ${mib(out.after.heapUsed)} MiB (${mib(heap)}); ${out.ms} ms`)
    assert.ok(rss < RSS_BOUND, `RSS grew by ${mib(rss)} MiB (bound ${RSS_BOUND / MiB} MiB)`)
    assert.ok(heap < HEAP_BOUND, `the live JS heap grew by ${mib(heap)} MiB (bound ${HEAP_BOUND / MiB} MiB)`)
  })

  it('Baselines tell V8 the native memory they hold, and give it back when collected', async () => {
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', path.join(__dirname, 'fixtures', 'external-memory.js')], { timeout: 60000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`))
        resolve(JSON.parse(stdout.trim().split('\n').pop()))
      })
    })
    const grown = out.alive - out.before
    console.log(`external memory: ${out.before} before, ${out.alive} with ${out.count} Baselines alive, ${out.collected} after`)
    // Each holds its session's value at least twice (as loaded, as stored).
    assert.ok(grown >= out.count * out.valueBytes, `V8 was told of ${grown} bytes for ${out.count} Baselines of ${out.valueBytes}-byte values`)
    assert.ok(out.collected - out.before < grown / 10, `after collection ${out.collected - out.before} of ${grown} bytes remain`)
  })
})
