// The browser peer of the `webrtc-chromium-*` interop scenarios: JS WebTorrent 3's browser
// bundle (an ES module) in headless Chromium. driver.mjs serves this page and calls
// `window.peer(mode, params)`; events go back through `window.report(obj)`, a function the
// driver exposes.
//
// leech: downloads the torrent the driver serves at /torrent (or params.magnet), then PUTs every
//   file's bytes to /out/<path>?at=<offset> (8 MiB at a time) and reports its length and
//   SHA-256.
// seed: fetches the files listed at /files.json from /files/<path>, seeds them as one torrent
//   (create-torrent in the page: params.pieceLength, params.announce), PUTs the .torrent to
//   /torrent-out, and keeps serving.
import WebTorrent from '/webtorrent.min.js'

// Largest request body the page sends.
const PUT_SLICE = 8 * 1024 * 1024

const report = obj => window.report({ t: Date.now(), ...obj })
const urlPath = path => path.split('/').map(encodeURIComponent).join('/')
const hex = buf => Array.from(new Uint8Array(buf), b => b.toString(16).padStart(2, '0')).join('')

async function put (url, body) {
  const res = await fetch(url, { method: 'PUT', body })
  if (!res.ok) throw new Error(`PUT ${url}: ${res.status}`)
}

function watch (torrent) {
  torrent.on('warning', e => console.warn(`warning: ${e.message || e}`))
  torrent.once('verified', index => report({ event: 'first-piece', index }))
  let firstBlock = false
  let firstUpload = false
  torrent.on('wire', (wire, addr) => {
    report({ event: 'wire', type: wire.type, addr: String(addr) })
    wire.on('close', () => console.log(`wire closed: ${wire.type} ${addr}`))
    // A wire's `download`/`upload` events are piece blocks (the torrent's count every byte).
    wire.once('download', () => {
      if (!firstBlock) report({ event: 'first-block' })
      firstBlock = true
    })
    wire.once('upload', () => {
      if (!firstUpload) report({ event: 'first-upload' })
      firstUpload = true
    })
  })
  setInterval(() => {
    if (!torrent.ready) return console.log('status: waiting for metadata')
    console.log(`status: progress=${torrent.progress.toFixed(4)} peers=${torrent.numPeers} ` +
      `wires=${torrent.wires.map(w => w.type).join(',')} down=${torrent.downloaded} ` +
      `up=${torrent.uploaded}`)
  }, 1000)
}

function ready (torrent) {
  return new Promise((resolve, reject) => {
    torrent.once('error', reject)
    if (torrent.ready) resolve()
    else torrent.once('ready', resolve)
  })
}

async function leech (client, params) {
  const id = params.magnet ||
    new Uint8Array(await (await fetch('/torrent')).arrayBuffer())
  const torrent = client.add(id, { announce: params.announce })
  watch(torrent)
  await ready(torrent)
  report({ event: 'ready', infoHash: torrent.infoHash, name: torrent.name, length: torrent.length })
  if (!torrent.done) await new Promise(resolve => torrent.once('done', resolve))
  report({ event: 'done', downloaded: torrent.downloaded, uploaded: torrent.uploaded })
  for (const file of torrent.files) {
    const bytes = await file.arrayBuffer()
    // In slices: the browser's debugging protocol carries each request body to the driver,
    // and one message of hundreds of MiB is more than Node can hold as a string.
    for (let at = 0; at === 0 || at < bytes.byteLength; at += PUT_SLICE) {
      await put(`/out/${urlPath(file.path)}?at=${at}`, bytes.slice(at, at + PUT_SLICE))
    }
    const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes))
    report({ event: 'file', path: file.path, length: bytes.byteLength, sha256 })
  }
}

async function seed (client, params) {
  const list = await (await fetch('/files.json')).json()
  const files = []
  for (const { path } of list) {
    const bytes = await (await fetch(`/files/${urlPath(path)}`)).arrayBuffer()
    const file = new File([bytes], path.split('/').pop())
    // create-torrent takes a File's path in the torrent from `fullPath`.
    file.fullPath = path
    files.push(file)
  }
  const torrent = client.seed(files, {
    announce: params.announce,
    pieceLength: params.pieceLength
  })
  watch(torrent)
  await ready(torrent)
  await put('/torrent-out', torrent.torrentFile)
  report({
    event: 'ready',
    infoHash: torrent.infoHash,
    magnet: torrent.magnetURI,
    name: torrent.name,
    length: torrent.length,
    pieces: torrent.pieces.length
  })
}

window.peer = async (mode, params) => {
  const client = new WebTorrent({
    webSeeds: false,
    // Loopback candidates only (Chromium gathers them with --allow-loopback-in-peer-connection);
    // no STUN server is asked.
    tracker: { rtcConfig: { iceServers: [] } }
  })
  client.on('error', e => report({ event: 'error', message: String(e.message || e) }))
  if (mode === 'leech') await leech(client, params)
  else await seed(client, params)
}
window.pageLoaded = true
