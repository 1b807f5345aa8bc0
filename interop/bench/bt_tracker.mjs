// bittorrent-tracker's server with HTTP, UDP and WebSocket on one port number, for
// `cargo xtask bench tracker`.
//
// usage: node bt_tracker.mjs --port N
// stdout: {"port": N} once listening. Exits when its standard input closes.
import { Server } from 'bittorrent-tracker'

const args = process.argv.slice(2)
const port = Number(args[args.indexOf('--port') + 1] || 0)
const server = new Server({ http: true, udp: true, ws: true, stats: false })
server.on('error', e => { console.error(String(e)); process.exit(1) })
server.on('warning', () => {})
server.listen(port, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }, () => {
  console.log(JSON.stringify({ port: server.http.address().port }))
})
process.stdin.on('end', () => server.close(() => process.exit(0)))
process.stdin.resume()
