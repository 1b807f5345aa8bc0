// Drives the browser peer of the `webrtc-chromium-*` interop scenarios: serves page.html,
// page.mjs and WebTorrent's browser bundle from a small HTTP server on 127.0.0.1, opens the
// page in headless Chromium (Debian's /usr/bin/chromium through playwright-core, a fresh
// profile) and calls `window.peer(mode, params)` in it.
//
// usage:
//   node driver.mjs leech (--torrent FILE | --magnet URI) --out DIR [--announce URL...]
//   node driver.mjs seed --data DIR --announce URL... [--piece-length N] --torrent-out FILE
// options: --timeout SECS (default 120; exit 1 when it passes), --chromium PATH
//   leech: the page downloads the torrent; its files are written under DIR (DIR/<path in the
//     torrent>) and listed as {"event": "file", "path", "length", "sha256"}; exits 0 after.
//   seed: the page seeds the files under DIR (their paths in the torrent start with DIR's own
//     name, as a folder torrent's do); the .torrent the page made is written to FILE before
//     the "ready" event; serves until stdin closes.
// stdout, JSON lines (t: milliseconds since the Unix epoch): the page's events ("ready",
//   "wire" with its type, "first-block", "first-upload", "first-piece" with its index, "done",
//   "file", "error"), and {"event": "listening", "url"} for the page server.
// Closing stdin closes the browser and exits (0 once a leecher is done, else 1).
// stderr: the page's console (a status line every second) and errors.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const here = path.dirname(fileURLToPath(import.meta.url))
const [mode, ...args] = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const opts = name => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []))
const say = obj => console.log(JSON.stringify({ t: Date.now(), ...obj }))
const log = msg => console.error(`${(performance.now() / 1000).toFixed(3)} ${msg}`)

if (mode !== 'seed' && mode !== 'leech') {
  console.error('usage: node driver.mjs seed|leech ... (see the header of this file)')
  process.exit(2)
}

// The flags headless Chromium needs on loopback: without --allow-loopback-in-peer-connection
// it gathers no loopback ICE candidate; mDNS would hide the address it does gather.
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns'
]

let browser
async function quit (code) {
  if (browser) await browser.close().catch(() => {})
  process.exit(code)
}
setTimeout(() => {
  log('timeout')
  quit(1)
}, Number(opt('--timeout', 120)) * 1000).unref()

/// Every file under `dir`, as `/`-separated paths relative to it, sorted.
function listFiles (dir, prefix = '') {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isDirectory()) out.push(...listFiles(path.join(dir, entry.name), rel))
    else if (entry.isFile()) out.push(rel)
  }
  return out.sort()
}

/// `root/rel` for a `/`-separated `rel` without `..` or empty components, else null.
function inside (root, rel) {
  const parts = rel.split('/')
  if (parts.some(p => p === '' || p === '.' || p === '..')) return null
  return path.join(root, ...parts)
}

const STATIC = {
  '/': [path.join(here, 'page.html'), 'text/html'],
  '/page.mjs': [path.join(here, 'page.mjs'), 'text/javascript'],
  '/webtorrent.min.js': [
    path.join(here, '../node_modules/webtorrent/dist/webtorrent.min.js'), 'text/javascript'
  ]
}

function serve (req, res) {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname)
  const send = (status, body, type = 'application/octet-stream') => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
    res.end(body)
  }
  // A body written at `?at=N` (bytes from the start; 0 or absent: the file starts anew).
  const receive = file => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const at = Number(new URL(req.url, 'http://x').searchParams.get('at') || 0)
    if (!Number.isSafeInteger(at) || at < 0) return send(400, 'bad offset', 'text/plain')
    const out = fs.createWriteStream(file, at === 0 ? {} : { flags: 'r+', start: at })
    req.pipe(out)
    out.on('finish', () => send(204))
    out.on('error', e => send(500, String(e)))
  }
  if (req.method === 'GET' && STATIC[url]) {
    const [file, type] = STATIC[url]
    return send(200, fs.readFileSync(file), type)
  }
  if (req.method === 'GET' && url === '/torrent' && opt('--torrent')) {
    return send(200, fs.readFileSync(opt('--torrent')))
  }
  const data = opt('--data')
  if (req.method === 'GET' && url === '/files.json' && data) {
    const name = path.basename(path.resolve(data))
    const list = listFiles(data).map(rel => ({
      path: `${name}/${rel}`,
      length: fs.statSync(path.join(data, ...rel.split('/'))).size
    }))
    return send(200, JSON.stringify(list), 'application/json')
  }
  if (req.method === 'GET' && url.startsWith('/files/') && data) {
    // The path in the torrent starts with the folder's own name.
    const rel = url.slice('/files/'.length).split('/').slice(1).join('/')
    const file = inside(data, rel)
    if (file && fs.existsSync(file)) return send(200, fs.readFileSync(file))
  }
  if (req.method === 'PUT' && url.startsWith('/out/') && opt('--out')) {
    const file = inside(opt('--out'), url.slice('/out/'.length))
    if (file) return receive(file)
  }
  if (req.method === 'PUT' && url === '/torrent-out' && opt('--torrent-out')) {
    return receive(opt('--torrent-out'))
  }
  send(404, 'not found', 'text/plain')
}

const server = http.createServer(serve)
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
const base = `http://127.0.0.1:${server.address().port}`
say({ event: 'listening', url: base })

browser = await chromium.launch({
  executablePath: opt('--chromium', '/usr/bin/chromium'),
  headless: true,
  args: FLAGS
})
const page = await browser.newPage()
page.on('console', msg => log(`page ${msg.type()}: ${msg.text()}`))
page.on('pageerror', e => log(`page error: ${e.message}`))
page.on('crash', () => {
  log('the page crashed')
  quit(1)
})
let failed = false
let finished = false
process.stdin.on('end', () => quit(finished && !failed ? 0 : 1))
process.stdin.resume()
await page.exposeFunction('report', obj => {
  console.log(JSON.stringify(obj))
  if (obj.event === 'error') failed = true
})
await page.goto(`${base}/`)
await page.waitForFunction(() => window.pageLoaded === true)

const params = {
  announce: opts('--announce'),
  magnet: opt('--magnet'),
  pieceLength: opt('--piece-length') ? Number(opt('--piece-length')) : undefined
}
try {
  await page.evaluate(([m, p]) => window.peer(m, p), [mode, params])
} catch (e) {
  log(`peer failed: ${e.message || e}`)
  await quit(1)
}
finished = true
if (mode === 'leech') await quit(failed ? 1 : 0)
