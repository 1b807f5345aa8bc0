// JS WebTorrent's side of `cargo xtask bench stream`: streams a torrent through
// `client.createServer()` from one TCP peer and times the first byte of HTTP range requests.
//
// usage: node wt_stream.mjs --torrent FILE --peer IP:PORT --out DIR [--runs N] [--seeks N]
//                           [--timeout SECS]
//   For each of the N runs: a fresh torrent is added (from FILE, no tracker, DHT, LSD, uTP
//   or protocol encryption), the peer is added, and once the torrent is ready a `Range: bytes=0-` request is sent
//   to the server; the time from `client.add` to the first body byte is the run's
//   time to first byte. After the last run, with --seeks N, N range requests go to random
//   offsets whose piece the torrent does not have yet, one after the other, each closed after
//   its first byte. The torrent's data is deleted after every run.
// stdout, JSON lines: {"event": "ttfb", "run", "ms"}, {"event": "seek", "offset", "ms"},
//   {"event": "error", "message"}.
import fs from 'node:fs'
import http from 'node:http'
import WebTorrent from 'webtorrent'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const say = obj => console.log(JSON.stringify(obj))
const torrentFile = fs.readFileSync(opt('--torrent'))
const peer = opt('--peer')
const out = opt('--out')
const runs = Number(opt('--runs', 5))
const seeks = Number(opt('--seeks', 0))
setTimeout(() => {
  say({ event: 'error', message: 'timeout' })
  process.exit(1)
}, Number(opt('--timeout', 600)) * 1000).unref()

// secure: 0, plain BitTorrent: the seeder (ours) does not speak protocol encryption, which
// JS WebTorrent tries first by default.
const client = new WebTorrent({ dht: false, tracker: false, lsd: false, utp: false, webSeeds: false, secure: 0 })
client.on('error', e => {
  say({ event: 'error', message: String(e.message || e) })
  process.exit(1)
})
const server = client.createServer()
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
const port = server.address().port

/// Sends a range request; resolves with the milliseconds from `start` to the first body
/// byte, then drops the connection.
function firstByte (path, from, start) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { Range: `bytes=${from}-` } }, res => {
      if (res.statusCode !== 206) {
        reject(new Error(`status ${res.statusCode} for ${path}`))
        res.destroy()
        return
      }
      res.once('data', () => {
        const ms = performance.now() - start
        req.destroy()
        resolve(ms)
      })
      res.once('error', () => {})
    })
    req.on('error', e => { if (!req.destroyed) reject(e) })
  })
}

function add () {
  return new Promise(resolve => {
    const torrent = client.add(torrentFile, { path: out, announce: [] })
    torrent.once('infoHash', () => torrent.addPeer(peer))
    torrent.once('ready', () => resolve(torrent))
  })
}

function remove (torrent) {
  return new Promise(resolve => client.remove(torrent, { destroyStore: true }, () => resolve()))
}

try {
  for (let run = 0; run < runs; run++) {
    const start = performance.now()
    const torrent = await add()
    const file = torrent.files[0]
    const path = `/webtorrent/${torrent.infoHash}/${encodeURI(file.path.replace(/\\/g, '/'))}`
    const ms = await firstByte(path, 0, start)
    say({ event: 'ttfb', run, ms })
    if (run === runs - 1 && seeks > 0) {
      const pieceLength = torrent.pieceLength
      for (let i = 0; i < seeks; i++) {
        let offset
        for (let tries = 0; tries < 1000; tries++) {
          const candidate = Math.floor(Math.random() * file.length)
          const piece = Math.floor((file.offset + candidate) / pieceLength)
          if (!torrent.bitfield.get(piece) && !torrent.bitfield.get(piece + 1)) {
            offset = candidate
            break
          }
        }
        if (offset === undefined) break
        const t = performance.now()
        say({ event: 'seek', offset, ms: await firstByte(path, offset, t) })
      }
    }
    await remove(torrent)
  }
} catch (e) {
  say({ event: 'error', message: String(e.message || e) })
  process.exit(1)
}
server.close()
client.destroy(() => process.exit(0))
