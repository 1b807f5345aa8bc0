// One JS WebTorrent 3 peer in Node for the `webrtc-*` interop scenarios: WebRTC through the
// torrent's ws:// trackers only (no DHT, LSD, uTP, UPnP/NAT-PMP, web seeds), with loopback ICE
// candidates (rtcConfig {iceServers: [], bindAddress: '127.0.0.1'}: node-datachannel gathers
// a loopback candidate only when bound to it, and no STUN server is asked).
//
// usage:
//   node wt_peer.mjs seed --path FILE_OR_DIR --announce URL... [--piece-length N]
//                         [--torrent-out FILE]      hash and seed PATH (create-torrent)
//   node wt_peer.mjs seed --torrent FILE --dir DIR  seed a torrent from the data in DIR
//   node wt_peer.mjs leech --torrent FILE_OR_MAGNET --out DIR [--announce URL...]
// options: --timeout SECS (default 120; exit 1 when it passes)
// stdout, JSON lines (t: milliseconds since the Unix epoch):
//   {"event": "ready", "t", "infoHash", "magnet", "name", "length", "pieces", "pieceLength"}
//   {"event": "wire", "t", "type", "addr"}     a peer connection (type "webrtc" for WebRTC)
//   {"event": "first-block", "t"}              the first piece block received
//   {"event": "first-upload", "t"}             the first piece block served
//   {"event": "first-piece", "t", "index"}     the first piece received and verified
//   {"event": "done", "t", "downloaded", "uploaded"}  every piece verified
// stderr: a status line every second, warnings and errors.
// A leecher exits 0 once done (its files closed); a seeder runs until stdin closes.
// Run it with stdin open (a pipe): its end stops the peer.
import fs from 'node:fs'
import WebTorrent from 'webtorrent'

const [mode, ...args] = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const opts = name => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []))
const say = obj => console.log(JSON.stringify({ t: Date.now(), ...obj }))
const log = msg => console.error(`${(performance.now() / 1000).toFixed(3)} ${msg}`)

if (mode !== 'seed' && mode !== 'leech') {
  console.error('usage: node wt_peer.mjs seed|leech ... (see the header of this file)')
  process.exit(2)
}

const timeout = Number(opt('--timeout', 120)) * 1000
setTimeout(() => {
  log('timeout')
  process.exit(1)
}, timeout).unref()

const client = new WebTorrent({
  dht: false,
  lsd: false,
  utp: false,
  natUpnp: false,
  natPmp: false,
  webSeeds: false,
  tracker: { rtcConfig: { iceServers: [], bindAddress: '127.0.0.1' } }
})
client.on('error', e => {
  log(`client error: ${e.message || e}`)
  process.exit(1)
})

const announce = opts('--announce')
let torrent
if (mode === 'seed' && opt('--path')) {
  const seedOpts = { announce }
  if (opt('--piece-length')) seedOpts.pieceLength = Number(opt('--piece-length'))
  torrent = client.seed(opt('--path'), seedOpts)
} else {
  const source = opt('--torrent')
  if (!source) {
    console.error('--torrent is required')
    process.exit(2)
  }
  const id = source.startsWith('magnet:') ? source : fs.readFileSync(source)
  const addOpts = { path: mode === 'seed' ? opt('--dir', '.') : opt('--out', '.') }
  if (announce.length) addOpts.announce = announce
  torrent = client.add(id, addOpts)
}

torrent.on('error', e => {
  log(`torrent error: ${e.message || e}`)
  process.exit(1)
})
torrent.on('warning', e => log(`warning: ${e.message || e}`))
torrent.on('ready', () => {
  if (opt('--torrent-out')) fs.writeFileSync(opt('--torrent-out'), torrent.torrentFile)
  say({
    event: 'ready',
    infoHash: torrent.infoHash,
    magnet: torrent.magnetURI,
    name: torrent.name,
    length: torrent.length,
    pieces: torrent.pieces.length,
    pieceLength: torrent.pieceLength
  })
})
let firstBlock = false
let firstUpload = false
torrent.on('wire', (wire, addr) => {
  say({ event: 'wire', type: wire.type, addr: String(addr) })
  wire.on('close', () => log(`wire closed: ${wire.type} ${addr}`))
  // A wire's `download`/`upload` events are piece blocks (the torrent's count every byte).
  wire.once('download', () => {
    if (!firstBlock) say({ event: 'first-block' })
    firstBlock = true
  })
  wire.once('upload', () => {
    if (!firstUpload) say({ event: 'first-upload' })
    firstUpload = true
  })
})
torrent.once('verified', index => say({ event: 'first-piece', index }))
torrent.on('done', () => {
  say({ event: 'done', downloaded: torrent.downloaded, uploaded: torrent.uploaded })
  if (mode === 'leech') {
    client.destroy(err => {
      if (err) log(`destroy: ${err.message || err}`)
      process.exit(0)
    })
  }
})

setInterval(() => {
  if (!torrent.ready) return log('status: waiting for metadata')
  log(`status: progress=${torrent.progress.toFixed(4)} peers=${torrent.numPeers} ` +
    `wires=${torrent.wires.map(w => w.type).join(',')} down=${torrent.downloaded} ` +
    `up=${torrent.uploaded}`)
}, 1000).unref()

// Closing stdin stops a seeder (exit 0) or a leecher that is not done yet (exit 1).
process.stdin.on('end', () => client.destroy(() => process.exit(mode === 'seed' ? 0 : 1)))
process.stdin.resume()
