'use strict'
// The shared login clicked through by headless Chromium (Debian's
// /usr/bin/chromium, driven by puppeteer-core): a person's path through the
// Rails, Flask and Express apps that tests/e2e/apps.sh started. Every page's
// text is asserted, and every step leaves a screenshot in
// tests/e2e/screenshots/ (gitignored).
//
// Two rounds: log in on Rails, read on Flask, change a key on Flask, read on
// Express and Rails, log out on Express, nobody anywhere; then log in on
// Express, log out on Flask, nobody anywhere.
//
// Environment: apps.sh's env.sh (E2E_*_PORT, E2E_COOKIE); CHROMIUM overrides
// /usr/bin/chromium. Prints "e2e browser: N passed, M failed"; exits 1 when
// anything failed.

const fs = require('node:fs')
const path = require('node:path')
const puppeteer = require('puppeteer-core')

const shots = path.join(__dirname, 'screenshots')
const port = { Rails: process.env.E2E_RAILS_PORT, Flask: process.env.E2E_FLASK_PORT, Express: process.env.E2E_EXPRESS_PORT }
const typeName = { Rails: 'a Ruby Integer', Flask: 'a Python int', Express: 'a JavaScript number (integer)' }
let passed = 0
let failed = 0
let shotNo = 0

function check (cond, what, detail) {
  if (cond) {
    passed++
  } else {
    failed++
    console.log(`FAIL ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`)
  }
  return cond
}

async function text (page, selector) {
  return page.$eval(selector, (e) => e.textContent.trim()).catch(() => null)
}

// The app a page belongs to, from its heading (each app shows its name in <h1>).
async function expectApp (page, app) {
  check(await text(page, 'h1') === app, `on the ${app} page`, await text(page, 'h1'))
}

async function shot (page, name) {
  shotNo++
  const file = path.join(shots, `${String(shotNo).padStart(2, '0')}-${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
}

async function expectUser (page, app, name, userId) {
  const who = await text(page, '#who')
  check(who === `Logged in as ${name}, user_id ${userId} (${typeName[app]})`, `${app} shows ${name} logged in`, who)
}

async function expectNobody (page, app) {
  check(await text(page, '#who') === 'Not logged in', `${app} shows nobody logged in`, await text(page, '#who'))
}

// Follows the link to another app, as a person would.
async function goTo (page, app) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(`#to-${app.toLowerCase()}`)])
  await expectApp(page, app)
}

async function submit (page, formId, fields = {}) {
  for (const [field, value] of Object.entries(fields)) {
    const input = `#${formId} input[name="${field}"]`
    await page.$eval(input, (e) => { e.value = '' })
    await page.type(input, value)
  }
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(`#${formId} button[type="submit"]`)])
}

async function sharedCookie (page) {
  const cookies = await page.cookies()
  return cookies.find((c) => c.name === process.env.E2E_COOKIE)
}

async function main () {
  fs.mkdirSync(shots, { recursive: true })
  for (const f of fs.readdirSync(shots)) if (f.endsWith('.png')) fs.rmSync(path.join(shots, f))

  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    defaultViewport: { width: 900, height: 700 },
    timeout: 60000
  })
  try {
    const page = await browser.newPage()
    page.setDefaultTimeout(20000)

    // Round 1: Rails -> Flask -> Express.
    await page.goto(`http://127.0.0.1:${port.Rails}/`, { waitUntil: 'load' })
    await expectApp(page, 'Rails')
    await expectNobody(page, 'Rails')
    await shot(page, 'rails-before-login')

    await submit(page, 'login', { name: 'Bea', user_id: '7' })
    await expectUser(page, 'Rails', 'Bea', 7)
    check((await text(page, '#flash')) === 'Logged in on Rails as Bea', 'Rails flash after login', await text(page, '#flash'))
    const cookie = await sharedCookie(page)
    check(cookie && /^s(:|%3A)/.test(cookie.value) && cookie.httpOnly, 'the shared cookie is signed and HttpOnly', cookie)
    await shot(page, 'rails-logged-in')

    await goTo(page, 'Flask')
    await expectUser(page, 'Flask', 'Bea', 7)
    await shot(page, 'flask-sees-rails-login')
    await submit(page, 'color-form', { color: 'green' })
    check((await text(page, '#color')) === 'color: green', 'Flask shows the color it set', await text(page, '#color'))
    await shot(page, 'flask-set-color')

    await goTo(page, 'Express')
    await expectUser(page, 'Express', 'Bea', 7)
    check((await text(page, '#color')) === 'color: green', 'Express reads the color set on Flask', await text(page, '#color'))
    await shot(page, 'express-sees-login-and-color')

    await goTo(page, 'Rails')
    await expectUser(page, 'Rails', 'Bea', 7)
    check((await text(page, '#color')) === 'color: green', 'Rails reads the color set on Flask', await text(page, '#color'))
    await shot(page, 'rails-reads-color')

    await goTo(page, 'Express')
    await submit(page, 'logout')
    await expectNobody(page, 'Express')
    await shot(page, 'express-logged-out')
    for (const app of ['Flask', 'Rails']) {
      await goTo(page, app)
      await expectNobody(page, app)
      check((await text(page, '#color')) === 'color: (none)', `${app} has no color after the logout`, await text(page, '#color'))
      await shot(page, `${app.toLowerCase()}-after-express-logout`)
    }

    // Round 2: log in on Express, log out on Flask.
    await goTo(page, 'Express')
    await submit(page, 'login', { name: 'Cy', user_id: '9' })
    await expectUser(page, 'Express', 'Cy', 9)
    await shot(page, 'express-logged-in')
    await goTo(page, 'Rails')
    await expectUser(page, 'Rails', 'Cy', 9)
    await shot(page, 'rails-sees-express-login')
    await goTo(page, 'Flask')
    await expectUser(page, 'Flask', 'Cy', 9)
    await submit(page, 'logout')
    await expectNobody(page, 'Flask')
    await shot(page, 'flask-logged-out')
    for (const app of ['Express', 'Rails']) {
      await goTo(page, app)
      await expectNobody(page, app)
      await shot(page, `${app.toLowerCase()}-after-flask-logout`)
    }
  } catch (e) {
    check(false, 'the browser walk raised', String(e && e.stack ? e.stack : e))
  } finally {
    await browser.close()
  }
  console.log(`e2e browser: ${passed} passed, ${failed} failed (screenshots in ${path.relative(process.cwd(), shots) || shots})`)
  process.exitCode = failed ? 1 : 0
}

main()
