'use strict'
// The README's examples run as written (only the Redis URL is the test's).

const { describe, it } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const h = require('./helpers')

const README = path.join(__dirname, '..', 'README.md')
const blocks = () => [...fs.readFileSync(README, 'utf8').matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1])
const skip = h.noRedis()

describe('README', { skip }, () => {
  it('the Store example runs', async () => {
    const [block] = blocks().filter((b) => b.includes("const { Store } = require('sessionkeeper')"))
    const example = /'(redis\+cluster:\/\/[^']+)'/.exec(block)
    assert.ok(example, "the example's URL changed: update this test")
    const topo = h.topologies().find((t) => t.cluster) ?? h.topologies()[0]
    const code = block.replace(example[1], topo.url).replace("require('sessionkeeper')", "require('..')")
    // The example awaits at the top level, as in an ES module: run it in an async function.
    const run = new Function('require', `return (async () => {\n${code}\nreturn { store, id, loaded }\n})()`)
    const { store, id, loaded } = await run(require)
    assert.deepEqual({ ...loaded.data }, { user: 'alice', visits: 1 })
    assert.equal((await store.load(id)).data.visits, 1, 'the save was stored')
    await store.destroy(id)
  })
})
