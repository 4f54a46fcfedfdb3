#!/usr/bin/env node
// Builds the native addon (the napi-rs crate in ../bindings/node) with cargo
// and installs it as ./sessionkeeper.node. Run by `npm install` (release) and
// `npm run build:debug` (debug, what the tests use).
//
// No build tool from npm is needed: napi-rs' build script (napi-build) sets
// the linker flags, cargo reports where the library landed, and we copy it.
// Needs a Rust toolchain (https://rustup.rs). SESSIONKEEPER_SKIP_BUILD=1 skips
// the build (for CI steps that build the addon themselves);
// SESSIONKEEPER_BUILD_PROFILE=debug|release overrides the profile (the tests
// install the package with a debug build, which reuses the one they made);
// SESSIONKEEPER_BUILD_OUT=/path/addon.node writes the addon there instead.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const pkgDir = path.resolve(__dirname, '..')
const manifest = path.resolve(pkgDir, '..', 'bindings', 'node', 'Cargo.toml')
// SESSIONKEEPER_BUILD_OUT: another place for the addon (the benchmark keeps
// its release build beside the tests' debug one).
const dest = process.env.SESSIONKEEPER_BUILD_OUT ? path.resolve(process.env.SESSIONKEEPER_BUILD_OUT) : path.join(pkgDir, 'sessionkeeper.node')
const profile = process.env.SESSIONKEEPER_BUILD_PROFILE || (process.argv.includes('--release') ? 'release' : 'debug')
if (profile !== 'debug' && profile !== 'release') {
  console.error(`sessionkeeper: SESSIONKEEPER_BUILD_PROFILE must be debug or release, not ${profile}`)
  process.exit(1)
}
const release = profile === 'release'

if (process.env.SESSIONKEEPER_SKIP_BUILD === '1') {
  console.log('sessionkeeper: SESSIONKEEPER_SKIP_BUILD=1, not building the addon')
  process.exit(0)
}
if (!fs.existsSync(manifest)) {
  console.error(`sessionkeeper: ${manifest} not found; this package builds from a checkout of the sessionkeeper repository`)
  process.exit(1)
}

const cargo = process.env.CARGO || 'cargo'
const args = ['build', '--manifest-path', manifest, '-p', 'sessionkeeper-node', '--message-format=json-render-diagnostics']
if (release) args.push('--release')
console.log(`sessionkeeper: ${cargo} ${args.join(' ')}`)
const started = Date.now()
const out = spawnSync(cargo, args, { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' })
if (out.error) {
  console.error(`sessionkeeper: cannot run ${cargo} (${out.error.message}); install Rust from https://rustup.rs`)
  process.exit(1)
}
if (out.status !== 0) {
  console.error(`sessionkeeper: cargo build failed (exit ${out.status})`)
  process.exit(out.status || 1)
}

// cargo prints one JSON message per line; the artifact of our cdylib names
// the file, wherever the target directory is.
let library = null
for (const line of out.stdout.split('\n')) {
  if (!line.startsWith('{')) continue
  const msg = JSON.parse(line)
  if (msg.reason === 'compiler-artifact' && msg.target && msg.target.name === 'sessionkeeper_node') {
    library = msg.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) || library
  }
}
if (!library) {
  console.error('sessionkeeper: cargo did not report the sessionkeeper_node library')
  process.exit(1)
}

// Copy then rename: overwriting a library a running process has mapped can
// crash that process; a rename leaves its inode alone.
fs.mkdirSync(path.dirname(dest), { recursive: true })
const tmp = `${dest}.${process.pid}.tmp`
fs.copyFileSync(library, tmp)
fs.renameSync(tmp, dest)
console.log(`sessionkeeper: built ${path.relative(process.cwd(), dest) || dest} (${release ? 'release' : 'debug'}, ${((Date.now() - started) / 1000).toFixed(1)} s)`)
