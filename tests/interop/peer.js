'use strict'
// Node interop peer. Usage:
//   node tests/interop/peer.js write URL        -> prints the new session id
//   node tests/interop/peer.js read URL ID      -> prints what JavaScript sees, as tagged JSON
//   node tests/interop/peer.js hammer URL ID N T  -> from Unix time T (ms), N times: load, set "js_<i>" = i, save
const path = require('node:path')
const { Store } = require(path.resolve(__dirname, '..', '..', 'node'))

const PREFIX = 'sk-interop:'

function golden () {
  return {
    nil: null,
    true: true,
    false: false,
    int_small: 42,
    int_negative: -7,
    int_2_53_plus_1: 2n ** 53n + 1n,
    int_min: -(2n ** 63n),
    int_max: 2n ** 63n - 1n,
    float: 3.25,
    float_tenth: 0.1,
    float_whole: 2.0,
    float_negative_zero: -0,
    float_huge: 1.5e300,
    float_2_53: 2 ** 53,
    str_empty: '',
    str_utf8: 'h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c \u{1F389}',
    bytes: Buffer.from([0, 1, 0x61, 0x62, 0x63, 0xfe, 0xff]),
    bytes_empty: Buffer.alloc(0),
    array: [1, 'two', null, [3.5, false]],
    array_empty: [],
    map: { a: 1, nested: { b: [true, { c: 'd' }] }, empty: {} },
    symbol: 'sym',
    timestamp: new Date(1795437296123),
    timestamp_pre_epoch: new Date(-500)
  }
}

function floatHex (f) {
  const b = Buffer.alloc(8)
  b.writeDoubleBE(f)
  return b.toString('hex')
}

function tag (v) {
  if (v === null) return ['nil']
  if (v === undefined) return ['undefined']
  switch (typeof v) {
    case 'boolean': return ['bool', v]
    case 'number': return ['number', floatHex(v)]
    case 'bigint': return ['bigint', v.toString()]
    case 'string': return ['str', v]
  }
  if (Buffer.isBuffer(v)) return ['bytes', v.toString('hex')]
  if (Array.isArray(v)) return ['array', v.map(tag)]
  if (v instanceof Date) return ['date', v.getTime()]
  if (Object.getPrototypeOf(v) === Object.prototype) {
    const out = {}
    for (const [k, x] of Object.entries(v)) out[k] = tag(x)
    return ['map', out]
  }
  return [`other(${v.constructor && v.constructor.name})`, String(v)]
}

async function main () {
  const [cmd, url, id, n] = process.argv.slice(2)
  // SK_INTEROP_CODEC: the store codec ("msgpack" by default, or "json").
  const store = new Store(url, { key_prefix: PREFIX, codec: process.env.SK_INTEROP_CODEC || 'msgpack' })
  if (cmd === 'write') {
    const { id: sid } = await store.create(golden())
    console.log(sid)
  } else if (cmd === 'read') {
    const loaded = await store.load(id)
    if (!loaded) throw new Error(`node: no session ${id}`)
    console.log(JSON.stringify(tag(loaded.data)))
  } else if (cmd === 'hammer') {
    await new Promise((resolve) => setTimeout(resolve, Math.max(Number(process.argv[6]) - Date.now(), 0)))
    const first = Date.now()
    for (let i = 0; i < Number(n); i++) {
      const loaded = await store.load(id)
      if (!loaded) throw new Error(`node: session ${id} vanished`)
      loaded.data[`js_${i}`] = i
      await store.save(id, loaded.baseline, loaded.data)
    }
    console.log(`${first} ${Date.now()}`)
  } else if (cmd === 'refuse') {
    // Each value alone under key "k": the error class it raises, or what reads back.
    class Point { constructor () { this.x = 1 } }
    const cases = {
      bigint_2_64: 2n ** 64n,
      symbol: Symbol('s'),
      function: () => 1,
      map: new Map([['a', 1]]),
      set: new Set([1]),
      class_instance: new Point(),
      invalid_date: new Date(NaN),
      float64array: new Float64Array(1),
      uint8array: new Uint8Array([1, 2]),
      number_2_53: 2 ** 53,
      bigint_small: 5n,
      undefined_value: undefined,
      array_with_undefined: [undefined, 1],
      nan: NaN
    }
    const out = []
    for (const [name, value] of Object.entries(cases)) {
      try {
        const { id: sid } = await store.create({ k: value })
        const data = (await store.load(sid)).data
        out.push([name, 'stored', 'k' in data ? tag(data.k) : ['absent']])
      } catch (e) {
        out.push([name, `${e.constructor.name} ${e.code}`, e.message])
      }
    }
    console.log(JSON.stringify(out))
  } else {
    throw new Error('usage: peer.js write|read|hammer URL [ID] [N]')
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
