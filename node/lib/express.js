'use strict'
// SessionkeeperStore: an express-session store (also usable by @fastify/session)
// over the native Store. Only adapts express-session's interface; every session
// rule (change detection, merging, expiry, ids, corrupt values) lives in the engine.

const { AsyncLocalStorage } = require('node:async_hooks')
const { EventEmitter } = require('node:events')
const { createRequire } = require('node:module')
const path = require('node:path')
const native = require('./native')

// express-session's Store base class: from the app when this package is linked
// (a symlinked package resolves modules from its own directory first).
function findExpressSessionStore () {
  for (const from of [__filename, path.join(process.cwd(), 'index.js')]) {
    try {
      return createRequire(from)('express-session').Store
    } catch {}
  }
  return null
}
const Base = findExpressSessionStore() || EventEmitter

// Baselines remembered for callers that do not go through createSession
// (@fastify/session, direct calls), by session id, most recent last.
const RECENT_LIMIT = 10000
// A touch is skipped when the load already slid the TTL to within this much
// of what the cookie asks for.
const TTL_SLACK_MS = 1000
// Sessions read at once by all().
const ALL_BATCH = 64

class SessionkeeperStore extends Base {
  /**
   * @param {object} options `url` (required unless `store` is given), `ttl`,
   *   `failOpen`, `disableTouch`, `store`, `migrate` ({ prefix, serializer }:
   *   move connect-redis sessions over on first use), and any engine option
   *   (`key_prefix`, `command_timeout`, `idle_ttl`, ...).
   */
  constructor (options = {}) {
    super()
    const { url, store, ttl, failOpen = false, disableTouch = false, migrate, ...engineOptions } = options
    if (store !== undefined) {
      if (!(store instanceof native.Store)) throw new TypeError('options.store must be a sessionkeeper Store')
      this.store = store
    } else {
      if (typeof url !== 'string') throw new TypeError('options.url must be a Redis URL string (redis://, rediss://, redis+cluster://, redis+sentinel://, memory://)')
      this.store = new native.Store(url, engineOptions)
    }
    if (ttl !== undefined && typeof ttl !== 'function' && !(typeof ttl === 'number' && ttl > 0)) {
      throw new TypeError('options.ttl must be a number of seconds > 0 or a function (session) => seconds')
    }
    this.ttl = ttl
    this.failOpen = Boolean(failOpen)
    this.disableTouch = Boolean(disableTouch)
    this.migrate = null
    if (migrate !== undefined && migrate !== null && migrate !== false) {
      const m = migrate === true ? {} : migrate
      if (typeof m !== 'object') throw new TypeError('options.migrate must be an object { prefix, serializer } or true')
      const prefix = m.prefix ?? 'sess:'
      if (typeof prefix !== 'string' || prefix === '') throw new TypeError('options.migrate.prefix must be a non-empty string (connect-redis: "sess:")')
      const serializer = m.serializer ?? JSON
      if (typeof serializer.parse !== 'function') throw new TypeError('options.migrate.serializer must have a parse(text) method')
      this.migrate = { sources: [prefix], serializer }
    }
    // Loads go through a handle expecting the window the sessions carry
    // (their cookie's maxAge, stored by set): learnt from the last load, so
    // one GETEX slides a session by its own window, no correcting command.
    this._loader = null
    this._loaderBase = null
    this._loaderWindowMs = undefined
    // What get() returned -> its entry, until createSession wraps it.
    this._loaded = new WeakMap()
    // express-session's Session object -> the entry of the request holding it.
    this._bySession = new WeakMap()
    this._recent = new Map()
    this._viaCreateSession = false
    // For callers that never use createSession (@fastify/session): the
    // request's own entry, carried in the async context of get's callback,
    // which is where such a framework continues the request (and later
    // calls set). Created on first use; disabled once createSession shows
    // the caller is express-session, which needs none of it.
    this._context = null
  }

  get (sid, cb) {
    if (typeof cb !== 'function' || this._viaCreateSession) return callbackify(this._get(sid), cb)
    this._get(sid).then(
      (sess) => {
        const entry = sess && this._loaded.get(sess)
        if (!entry || this._viaCreateSession) return process.nextTick(cb, null, sess)
        this._context ??= new AsyncLocalStorage()
        const context = this._context
        process.nextTick(() => context.run({ sid, entry }, cb, null, sess))
      },
      (err) => process.nextTick(cb, err)
    )
    return undefined
  }

  set (sid, sess, cb) {
    return callbackify(this._set(sid, sess).then(() => undefined), cb)
  }

  destroy (sid, cb) {
    return callbackify(this._destroy(sid), cb)
  }

  touch (sid, sess, cb) {
    return callbackify(this._touch(sid, sess), cb)
  }

  /** Every live session (cookie not expired) as an array, as express-session
   * documents (connect-redis too); each carries its opaque `handle` as a
   * non-enumerable property. Handles are not session ids. Peeking does not
   * slide the sessions' expiry. SCANs the keyspace: for admin tools only. */
  all (cb) {
    return callbackify(this._all(), cb)
  }

  /** The opaque handles (`2::<sha256>`) of the live sessions: NOT session
   * ids (ids are stored only as SHA-256, by design) and not usable as cookies. */
  ids (cb) {
    return callbackify(this.store.handles(), cb)
  }

  length (cb) {
    return callbackify(this.store.count(), cb)
  }

  clear (cb) {
    return callbackify(this.store.clear().then(() => undefined), cb)
  }

  // express-session calls this with what get() returned; the Session it makes
  // is what set()/touch() receive, so the request's baseline moves to it.
  createSession (req, sess) {
    if (!this._viaCreateSession) {
      // express-session: every request has its own entry; the by-id
      // fallback (and the memory it holds) is not needed.
      this._viaCreateSession = true
      this._recent.clear()
      // The async-context hooks cost every promise of the process something.
      this._context?.disable()
      this._context = null
    }
    const entry = this._loaded.get(sess)
    if (entry && entry.foreign) {
      // Shared mode: a session another framework wrote. If express-session
      // re-issues its cookie, it must carry this app's settings (domain,
      // maxAge, sameSite ...), not made-up ones.
      const cookie = this._appCookie(req)
      if (cookie) {
        sess.cookie = cookie
        entry.cookie = cookieKey(this._storedCookie(cookie))
      }
    }
    const session = super.createSession(req, sess)
    if (entry) this._bySession.set(session, entry)
    return session
  }

  async _all () {
    const handles = await this.store.handles()
    const peek = (h) => this.store.peekHandle(h).catch((err) => {
      if (err.code === 'SESSIONKEEPER_CODEC') return null
      throw err
    })
    // At most ALL_BATCH reads in flight, however many sessions there are.
    const loaded = []
    for (let i = 0; i < handles.length; i += ALL_BATCH) {
      loaded.push(...await Promise.all(handles.slice(i, i + ALL_BATCH).map(peek)))
    }
    const out = []
    loaded.forEach((l, i) => {
      const sess = l && this._session(l)
      if (!sess) return
      Object.defineProperty(sess, 'handle', { value: handles[i], enumerable: false, configurable: true, writable: true })
      out.push(sess)
    })
    return out
  }

  async _get (sid) {
    let loaded
    try {
      // The engine slides by the window stored with the session (written by
      // set/touch); the handle expects the window loads found before, so the
      // GETEX alone does it: one round trip.
      loaded = await this._loadHandle().load(sid)
      if (loaded === null && this.migrate) loaded = await this._migrate(sid)
      if (loaded !== null) this._learnWindow(loaded.meta.idleTtlMs)
    } catch (err) {
      if (err.code === 'SESSIONKEEPER_CODEC') {
        // The engine removed the undecodable session; the request gets a
        // fresh one instead of an error on every request.
        this.emit('corrupt', err, sid)
        return null
      }
      if (this.failOpen && err.temporary) {
        this.emit('failopen', err, 'get', sid)
        return null
      }
      throw err
    }
    if (loaded === null) return null
    const foreign = !isPlainObject(loaded.data.cookie)
    const storedCookie = foreign ? null : cookieKey(loaded.data.cookie)
    const sess = this._session(loaded)
    if (sess === null) return null
    // The window the load slid by: the session's own, else the store's.
    const ttlMs = loaded.meta.idleTtlMs !== undefined ? loaded.meta.idleTtlMs : this.store.idleTtlMs
    // What the stored cookie is, so touch writes it only when it changed. A
    // session another framework wrote has none; its made-up cookie counts as
    // stored, so reading such a session writes nothing.
    const stored = foreign ? cookieKey(this._storedCookie(sess.cookie)) : storedCookie
    const entry = { baseline: loaded.baseline, ttlMs, cookie: stored, foreign }
    this._loaded.set(sess, entry)
    this._remember(sid, entry)
    return sess
  }

  // A loaded session as express-session expects it, or null when its cookie
  // has expired.
  _session (loaded) {
    const sess = loaded.data
    const cookie = isPlainObject(sess.cookie) ? sess.cookie : this._madeUpCookie(loaded)
    const expiresAt = loaded.meta.expiresAtMs
    if (cookie.expires === undefined && typeof cookie.originalMaxAge === 'number' && expiresAt !== null) {
      // Stored without `expires` (see _storedCookie): the session ends when
      // the engine expires it, and that is what the cookie says.
      if (!(expiresAt > Date.now())) return null
      cookie.expires = new Date(expiresAt).toISOString()
    } else if (cookie.expires != null && !(Date.parse(cookie.expires) > Date.now())) {
      return null
    }
    sess.cookie = cookie
    return sess
  }

  // A session another framework wrote (shared mode) has no `cookie`, which
  // express-session needs: this one says what the engine knows (its window
  // and expiry). createSession replaces it with the app's own cookie
  // settings when express-session is the caller.
  _madeUpCookie (loaded) {
    const window = loaded.meta.idleTtlMs !== undefined ? loaded.meta.idleTtlMs : this.store.idleTtlMs
    return { originalMaxAge: window ?? null, httpOnly: true, path: '/' }
  }

  // The cookie express-session would give a new session in this app (its
  // `cookie` options: maxAge, domain, sameSite, secure, ...), by running the
  // generator the middleware installs on its store against a stand-in for the
  // request (so `req` itself is left alone); null when there is none.
  _appCookie (req) {
    if (typeof this.generate !== 'function') return null
    try {
      const probe = Object.create(req)
      this.generate(probe)
      const cookie = probe.session && probe.session.cookie
      if (!cookie || typeof cookie.toJSON !== 'function') return null
      const c = { ...cookie.toJSON() }
      if (c.expires instanceof Date) c.expires = c.expires.toISOString()
      for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k]
      return c
    } catch {
      return null
    }
  }

  // connect-redis' session under migrate.prefix + sid, moved into our layout
  // (the old key is deleted); null when there is none or it cannot be used.
  async _migrate (sid) {
    const { sources, serializer } = this.migrate
    const found = await this.store.legacyRead(sid, sources)
    if (found === null) return null
    let sess
    try {
      sess = await serializer.parse(found.bytes.toString('utf8'))
    } catch (err) {
      sess = undefined
    }
    if (!isPlainObject(sess) || !isPlainObject(sess.cookie)) {
      // connect-redis would fail every request with this cookie (HTTP 500);
      // we treat it as missing and drop it.
      this.emit('corrupt', new Error(`connect-redis session under ${sources[0]}<sid> is not a session object`), sid)
      await this.store.legacyDelete(sid, sources)
      return null
    }
    const ttlMs = this._ttlMs(sess)
    if (ttlMs !== undefined && ttlMs <= 0) {
      await this.store.legacyDelete(sid, sources)
      return null
    }
    await this.store.legacyMigrate(sid, sources, this._data(sess), ttlMs)
    // Migrated now (or by a concurrent request first): read it as ours.
    return this.store.load(sid)
  }

  async _set (sid, sess) {
    const ttlMs = this._ttlMs(sess)
    try {
      if (ttlMs !== undefined && ttlMs <= 0) {
        // The cookie has already expired: nothing to keep (and with
        // fail-open, a delete that fails is dropped like any write: the
        // key expires on its own).
        await this._destroy(sid)
        return
      }
      const data = this._data(sess)
      const entry = this._entry(sid, sess)
      if (entry) {
        // Per request (express): the baseline is this request's own and save
        // keeps it current. By id only (fastify): save with a copy, so one
        // request's save never becomes another's baseline.
        const baseline = entry.shared ? entry.baseline.copy() : entry.baseline
        const { outcome } = await this.store.save(sid, baseline, data, ttlMs)
        if (outcome === 'unchanged' && !sameTtl(entry.ttlMs, this._effective(ttlMs))) {
          await this.store.touch(sid, ttlMs)
        }
        // 'gone': destroyed or expired meanwhile; a logout stays a logout.
        if (outcome !== 'gone') this._saved(sid, sess, entry, baseline, ttlMs, data.cookie)
        return
      }
      let baseline = await this.store.insert(sid, data, ttlMs)
      if (baseline === null) {
        // A session with this id exists but this process never loaded it:
        // write every key we have, delete none, never re-create.
        baseline = this.store.emptyBaseline()
        const { outcome } = await this.store.save(sid, baseline, data, ttlMs)
        if (outcome === 'gone') return
      }
      this._saved(sid, sess, null, baseline, ttlMs, data.cookie)
    } catch (err) {
      if (this.failOpen && err.temporary) {
        this.emit('failopen', err, 'set', sid)
        return
      }
      throw err
    }
  }

  async _touch (sid, sess) {
    if (this.disableTouch) return
    const ttlMs = this._ttlMs(sess)
    try {
      if (ttlMs !== undefined && ttlMs <= 0) {
        await this._destroy(sid)
        return
      }
      const cookie = this._storedCookie(sess.cookie)
      const json = cookieKey(cookie)
      const entry = this._entry(sid, sess)
      if (entry && entry.cookie === json) {
        // The load slid the TTL already when it matched; one round trip in all.
        if (!sameTtl(entry.ttlMs, this._effective(ttlMs))) {
          await this.store.touch(sid, ttlMs)
          entry.ttlMs = this._effective(ttlMs)
        }
      } else {
        // The stored cookie changed (maxAge, or `expires` with a ttl
        // function): write only the cookie, which also slides the TTL; a
        // destroyed session is not re-created.
        const baseline = this.store.emptyBaseline()
        const { outcome } = await this.store.save(sid, baseline, { cookie }, ttlMs)
        if (entry && outcome !== 'gone') {
          entry.cookie = json
          entry.ttlMs = this._effective(ttlMs)
        }
      }
    } catch (err) {
      if (this.failOpen && err.temporary) {
        this.emit('failopen', err, 'touch', sid)
        return
      }
      throw err
    }
  }

  async _destroy (sid) {
    this._recent.delete(sid)
    // Errors always reach the caller, fail-open or not: a logout that did not
    // happen must not look like one that did.
    await this.store.destroy(sid)
  }

  _saved (sid, sess, entry, baseline, ttlMs, cookie) {
    const next = entry && !entry.shared ? entry : { baseline, ttlMs, cookie: null }
    next.baseline = baseline
    next.ttlMs = this._effective(ttlMs)
    next.cookie = cookieKey(cookie)
    if (sess && typeof sess === 'object') this._bySession.set(sess, next)
    this._remember(sid, next)
  }

  _entry (sid, sess) {
    const own = sess && typeof sess === 'object' && (this._bySession.get(sess) || this._loaded.get(sess))
    if (own) return own
    // The load of this very request (@fastify/session), when its async
    // context reached us: its own baseline, so concurrent requests on one
    // session each write only what they changed.
    const current = this._context?.getStore()
    if (current && current.sid === sid) return current.entry
    // Last resort (no context: direct calls, a framework that loses it): the
    // most recent load of this id. Two such requests in flight on one session
    // can then undo each other's changes (see README).
    const recent = this._recent.get(sid)
    return recent ? { ...recent, shared: true } : undefined
  }

  _remember (sid, entry) {
    if (this._viaCreateSession) return
    this._recent.delete(sid)
    this._recent.set(sid, entry)
    if (this._recent.size > RECENT_LIMIT) this._recent.delete(this._recent.keys().next().value)
  }

  // The session's keys as stored: everything but `cookie` as it is, and the
  // cookie in its stored form.
  _data (sess) {
    const data = {}
    for (const key of Object.keys(sess)) {
      if (key !== 'cookie') data[key] = sess[key]
    }
    data.cookie = this._storedCookie(sess.cookie)
    return data
  }

  // Cookie#toJSON's fields. With a maxAge, `expires` is left out: the engine's
  // expiry is the session's, so it need not be rewritten on every request
  // (get() puts it back). With a ttl function the two can differ, so
  // `expires` is kept and checked on get().
  // The fields are stored in sorted order, so cookieKey of a stored cookie
  // is one JSON.stringify.
  _storedCookie (cookie) {
    if (!cookie || typeof cookie !== 'object') return {}
    const from = typeof cookie.toJSON === 'function' ? cookie.toJSON() : cookie
    const keepExpires = typeof from.originalMaxAge !== 'number' || typeof this.ttl === 'function'
    const c = {}
    for (const k of Object.keys(from).sort()) {
      let v = from[k]
      if (v === undefined || (k === 'expires' && !keepExpires)) continue
      // Not a millisecond short now and then (see configuredWindow), so an
      // unchanged cookie stays unchanged and is not rewritten.
      if (k === 'originalMaxAge' && typeof v === 'number' && v > 0) v = configuredWindow(v)
      if (k === 'expires' && v instanceof Date) v = v.toISOString()
      c[k] = v
    }
    return c
  }

  // connect-redis' rule, in milliseconds: a ttl function wins, then the
  // cookie's expiry, then the ttl option; undefined means the store's idle_ttl.
  // A cookie with a maxAge slides (express-session moves `expires` to now +
  // maxAge at the end of every request), so its window is the maxAge itself:
  // stored with the session, the engine slides by it on every load.
  _ttlMs (sess) {
    if (typeof this.ttl === 'function') return Math.ceil(Number(this.ttl(sess)) * 1000)
    const cookie = sess && sess.cookie
    const expires = cookie && cookie.expires
    if (expires) {
      const left = new Date(expires).getTime() - Date.now()
      if (!(left > 0)) return 0
      const window = cookie.originalMaxAge
      return typeof window === 'number' && window > 0 ? configuredWindow(window) : left
    }
    return this._ttlOptionMs()
  }

  // The handle loads go through (reset when `store` is replaced).
  _loadHandle () {
    if (this._loaderBase !== this.store) {
      this._loaderBase = this.store
      this._loader = this.store
      this._loaderWindowMs = undefined
    }
    return this._loader
  }

  // The next loads expect `windowMs` (a loaded session's own window; undefined: none stored).
  _learnWindow (windowMs) {
    if (windowMs === undefined || windowMs === this._loaderWindowMs || this._loaderBase !== this.store) return
    this._loaderWindowMs = windowMs
    this._loader = this.store.withLoadWindow(windowMs)
  }

  // The window a per-call TTL stands for: undefined is the store's own.
  _effective (ttlMs) {
    return ttlMs === undefined ? this.store.idleTtlMs : ttlMs
  }

  _ttlOptionMs () {
    return typeof this.ttl === 'number' ? Math.ceil(this.ttl * 1000) : undefined
  }
}

// express-session derives originalMaxAge from a Date, so a configured
// 60000 can arrive as 59999: the window the app configured is the whole
// second within a few milliseconds (so it matches an engine idle_ttl set to
// the same maxAge, and loads need no expiry correction).
function configuredWindow (ms) {
  const whole = Math.round(ms / 1000) * 1000
  return whole > 0 && Math.abs(whole - ms) <= 5 ? whole : Math.ceil(ms)
}

function sameTtl (a, b) {
  if (a == null || b == null) return a === b
  return Math.abs(a - b) <= TTL_SLACK_MS
}

// A stored cookie's identity, whatever the order of its fields.
function cookieKey (cookie) {
  const keys = Object.keys(cookie)
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      const sorted = {}
      for (const k of keys.sort()) sorted[k] = cookie[k]
      return JSON.stringify(sorted)
    }
  }
  return JSON.stringify(cookie)
}

function isPlainObject (v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

// Node-style callback when one is given (called outside the promise chain, so
// a throwing callback is an ordinary uncaught exception), else the Promise.
function callbackify (promise, cb) {
  if (typeof cb !== 'function') return promise
  promise.then(
    (value) => process.nextTick(cb, null, value),
    (err) => process.nextTick(cb, err)
  )
  return undefined
}

module.exports = { SessionkeeperStore }
