// A bittorrent-tracker WebSocket tracker on 127.0.0.1 for the tracker crate's WebSocket tests.
// usage: node ws_tracker.mjs [PORT]   (PORT 0 or absent: any free port)
// Prints {"port": N} once listening and exits when its standard input closes. Torrents whose
// info-hash starts with byte 0xff are refused with the failure reason "torrent not allowed",
// the way a tracker with a whitelist answers.
import { Server } from 'bittorrent-tracker'

const port = Number(process.argv[2] || 0)
const server = new Server({
  http: false,
  udp: false,
  ws: true,
  stats: false,
  filter: (infoHash, params, cb) => {
    cb(infoHash.startsWith('ff') ? new Error('torrent not allowed') : null)
  }
})
server.on('error', e => { console.error(String(e)); process.exit(1) })
// Refusals and bad requests are warnings for the server; the tests look at what clients get.
server.on('warning', () => {})
server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.ws.address().port }))
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
