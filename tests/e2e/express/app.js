'use strict'
// The Express side of the shared-login demo and end-to-end test
// (docs/shared-sessions.md): a real Express 5 app with express-session whose
// store is Sessionkeeper's. Shared mode needs nothing more than the same
// cookie `name` and `secret` as the Rails and Flask apps: express-session's
// own signed cookie ("s:<id>.<signature>") is the shared format. Configured
// by the environment that tests/e2e/apps.sh sets: SK_REDIS_URL,
// E2E_KEY_PREFIX, E2E_COOKIE, E2E_SECRET, E2E_EXPRESS_PORT, and
// E2E_RAILS_PORT, E2E_FLASK_PORT (for the links).

const path = require('node:path')
const express = require('express')
const session = require('express-session')
// The package in this repository (node/), as `require('sessionkeeper')` gives it.
const { SessionkeeperStore } = require(path.resolve(__dirname, '../../../node'))

const APP = 'Express'
const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set (start the apps with tests/e2e/apps.sh)`)
  return value
}

const app = express()
app.use(express.urlencoded({ extended: false }))
app.use(session({
  name: env('E2E_COOKIE'),
  secret: env('E2E_SECRET'),
  // idle_ttl = cookie.maxAge: sessions the other apps wrote carry no express
  // cookie, so Express slides them by the store's window; keep it the others' hour.
  store: new SessionkeeperStore({ url: env('SK_REDIS_URL'), key_prefix: env('E2E_KEY_PREFIX'), idle_ttl: '1h' }),
  resave: false,
  saveUninitialized: false,
  cookie: { maxAge: 3600 * 1000, sameSite: 'lax', httpOnly: true, path: '/' }
}))

const typeOf = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? 'number (integer)' : 'number') : typeof v)
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]))
// The session's own keys, without express-session's `cookie` object.
const keys = (sess) => Object.keys(sess).filter((k) => k !== 'cookie').sort()

app.get('/state', (req, res) => {
  const uid = req.session.user_id
  res.json({
    app: APP,
    logged_in: uid !== undefined && uid !== null,
    name: req.session.name ?? null,
    user_id: uid ?? null,
    user_id_type: uid === undefined || uid === null ? null : typeOf(uid),
    color: req.session.color ?? null,
    keys: Object.keys(req.session).sort()
  })
})

app.post('/login', (req, res, next) => {
  const userId = Number.parseInt(req.body.user_id, 10)
  const name = String(req.body.name)
  // A new id at login, against session fixation.
  req.session.regenerate((err) => {
    if (err) return next(err)
    req.session.user_id = userId
    req.session.name = name
    req.session.notice = `Logged in on Express as ${name}`
    res.redirect(303, '/')
  })
})

app.post('/logout', (req, res, next) => {
  req.session.destroy((err) => {
    if (err) return next(err)
    res.redirect(303, '/')
  })
})

app.post('/color', (req, res) => {
  req.session.color = String(req.body.color)
  req.session.notice = 'Color set on Express'
  res.redirect(303, '/')
})

app.get('/', (req, res) => {
  const s = req.session
  const uid = s.user_id
  const who = uid === undefined || uid === null
    ? 'Not logged in'
    : `Logged in as ${escape(s.name)}, user_id ${escape(uid)} (a JavaScript ${typeOf(uid)})`
  const notice = s.notice || ''
  if (s.notice) delete s.notice
  const links = [['Rails', 'E2E_RAILS_PORT'], ['Flask', 'E2E_FLASK_PORT'], ['Express', 'E2E_EXPRESS_PORT']]
    .map(([name, v]) => `<a id="to-${name.toLowerCase()}" href="http://127.0.0.1:${env(v)}/">${name}</a>`).join(' | ')
  res.type('html').send(`<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${APP}: one login across languages</title>
<style>body{font-family:sans-serif;margin:2em;border-top:8px solid #090;padding-top:1em}
form{margin:.6em 0}#who{font-size:1.3em;font-weight:bold}</style></head>
<body>
<h1>${APP}</h1>
<p id="flash">${escape(notice)}</p>
<p id="who">${who}</p>
<p id="color">color: ${escape(s.color ?? '(none)')}</p>
<form id="login" method="post" action="/login">
  <input name="name" value="Ann"> <input name="user_id" value="42"> <button type="submit">Log in</button>
</form>
<form id="color-form" method="post" action="/color">
  <input name="color" value="blue"> <button type="submit">Set color</button>
</form>
<form id="logout" method="post" action="/logout"><button type="submit">Log out</button></form>
<nav>${links}</nav>
<p id="keys">session keys: ${escape(keys(s).join(', '))}</p>
</body></html>`)
})

const port = Number(env('E2E_EXPRESS_PORT'))
app.listen(port, '127.0.0.1', () => console.log(`express app on http://127.0.0.1:${port}/`))
