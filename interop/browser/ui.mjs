// Drives the web UI of `webtorrent demo` in headless Chromium (Debian's /usr/bin/chromium
// through playwright-core, a fresh profile), as the `ui-stream` interop scenario does: adds a
// magnet link through the form, waits for the progress bar to reach 100 %, plays the video
// through /stream, seeks to 80 % and checks that playback goes on from there. A bad magnet
// link first, whose error the page must show.
//
// usage: node ui.mjs --url URL --magnet URI --screenshot FILE [--timeout SECS] [--chromium PATH]
// stdout, JSON lines (t: milliseconds since the Unix epoch): "error-shown" (the page's
//   message for the bad link), "added", "progress" (each new
//   value the bar shows), "done", "playing", "seeked" (the time sought and reached),
//   "advanced" (the time playback reached after the seek), "screenshot", "error".
// Exit status 0 when every step passed, 1 otherwise (the reason on stderr and as "error").
import { chromium } from 'playwright-core'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const say = obj => console.log(JSON.stringify({ t: Date.now(), ...obj }))
const log = msg => console.error(`${(performance.now() / 1000).toFixed(3)} ${msg}`)

const url = opt('--url')
const magnet = opt('--magnet')
const screenshot = opt('--screenshot')
if (!url || !magnet || !screenshot) {
  console.error('usage: node ui.mjs --url URL --magnet URI --screenshot FILE [--timeout SECS]')
  process.exit(2)
}

// As in driver.mjs, plus autoplay without a gesture (the page calls play() from a click the
// script makes, which counts, but a headless run should not depend on it).
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required', '--mute-audio'
]

let browser
async function quit (code) {
  if (browser) await browser.close().catch(() => {})
  process.exit(code)
}
async function fail (why) {
  say({ event: 'error', message: why })
  log(`failed: ${why}`)
  await quit(1)
}
setTimeout(() => fail('timeout'), Number(opt('--timeout', 120)) * 1000).unref()

browser = await chromium.launch({
  executablePath: opt('--chromium', '/usr/bin/chromium'),
  headless: true,
  args: FLAGS
})
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
page.on('console', msg => log(`page ${msg.type()}: ${msg.text()}`))
page.on('pageerror', e => log(`page error: ${e.message}`))

try {
  await page.goto(url)
  // A link that is not one: the page says so.
  await page.fill('#magnet', 'magnet:?xt=urn:btih:not-a-hash')
  await page.click('#add-button')
  await page.waitForSelector('#error:not([hidden])', { timeout: 10000 })
  say({ event: 'error-shown', text: await page.textContent('#error') })
  await page.fill('#magnet', magnet)
  await page.click('#add-button')
  const row = page.locator('tr.torrent').first()
  await row.waitFor({ timeout: 30000 })
  say({ event: 'added', infoHash: await row.getAttribute('data-info-hash') })

  // The bar: every value it shows on the way, until it is full.
  let last = -1
  for (;;) {
    const shown = await page.evaluate(() => {
      const bar = document.querySelector('tr.torrent .bar')
      const error = document.querySelector('#error')
      return {
        progress: bar ? Number(bar.dataset.progress) : 0,
        width: bar ? bar.firstChild.style.width : '',
        error: error && !error.hidden ? error.textContent : null
      }
    })
    if (shown.error && !shown.error.startsWith('Cannot add the torrent: bad magnet link')) {
      await fail(`the page shows an error: ${shown.error}`)
    }
    if (shown.progress > 0 && shown.width !== `${Math.floor(shown.progress * 1000) / 10}%`) {
      await fail(`the bar shows ${shown.width} for ${shown.progress}`)
    }
    if (shown.progress !== last) {
      last = shown.progress
      say({ event: 'progress', progress: shown.progress, width: shown.width })
    }
    if (shown.progress >= 1) break
    await page.waitForTimeout(100)
  }
  const percent = await page.textContent('tr.torrent .percent')
  say({ event: 'done', percent })

  // The details, then the file's play button.
  await row.click()
  const play = page.locator('#files button.play').first()
  await play.waitFor({ timeout: 30000 })
  await play.click()
  await page.waitForFunction(() => {
    const v = document.querySelector('#video')
    return v && !v.paused && v.readyState >= 3 && v.currentTime > 0.2
  }, null, { timeout: 30000 })
  const started = await page.evaluate(() => {
    const v = document.querySelector('#video')
    return { currentTime: v.currentTime, duration: v.duration, src: v.currentSrc }
  })
  say({ event: 'playing', ...started })
  if (!(started.duration > 0) || !started.src.includes('/stream/')) {
    await fail(`unexpected player state ${JSON.stringify(started)}`)
  }

  // Seek to 80 % and see the time go on from there.
  const target = started.duration * 0.8
  const reached = await page.evaluate(async (to) => {
    const v = document.querySelector('#video')
    await new Promise((resolve, reject) => {
      v.addEventListener('seeked', resolve, { once: true })
      v.addEventListener('error', () => reject(new Error('media error ' + (v.error && v.error.code))), { once: true })
      v.currentTime = to
    })
    return v.currentTime
  }, target)
  say({ event: 'seeked', target, reached })
  if (Math.abs(reached - target) > 2) await fail(`the seek reached ${reached}, not ${target}`)
  await page.waitForFunction((from) => {
    const v = document.querySelector('#video')
    return !v.paused && v.currentTime > from + 1
  }, reached, { timeout: 30000 })
  const after = await page.evaluate(() => document.querySelector('#video').currentTime)
  say({ event: 'advanced', from: reached, to: after })

  await page.screenshot({ path: screenshot, fullPage: true })
  say({ event: 'screenshot', path: screenshot })
} catch (e) {
  await fail(e.message || String(e))
}
await quit(0)
