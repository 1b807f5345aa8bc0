// The tracker of the `webrtc-*` interop scenarios: bittorrent-tracker's server on 127.0.0.1,
// WebSocket only (WebRTC peers meet through it), or with --http also HTTP on the same port
// number (TCP peers, e.g. qBittorrent in the bridge scenario). HTTP peers are only told of HTTP
// peers and WebSocket peers of WebSocket peers: that is bittorrent-tracker's rule.
//
// usage: node rtc_tracker.mjs [--port N] [--http] [--interval MS]
//   --port N       listen on N (default 0: any free port)
//   --http         serve HTTP announces too (http://127.0.0.1:N/announce)
//   --interval MS  the announce interval told to HTTP clients; WebSocket clients are told a
//                  fifth of it (bittorrent-tracker's rule). Default 30000 (WebSocket: 6 s).
// stdout, JSON lines:
//   {"port": N}                                          listening
//   {"t": MS, "event": "start"|"update"|"complete"|"stop", "type": "ws"|"http",
//    "peer": ID, "left": N, "offers": N, "answer": BOOL}  one per announce it handled
// Exits when its standard input closes.
import { Server } from 'bittorrent-tracker'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const port = Number(opt('--port', 0))
const http = args.includes('--http')
const interval = Number(opt('--interval', 30000))

const server = new Server({ http, udp: false, ws: true, stats: false, interval })
server.on('error', e => { console.error(String(e)); process.exit(1) })
server.on('warning', e => console.error(`warning: ${e.message || e}`))
for (const event of ['start', 'update', 'complete', 'stop']) {
  server.on(event, (peer, params) => {
    console.log(JSON.stringify({
      t: Date.now(),
      event,
      type: params.type,
      peer: String(peer),
      left: params.left,
      offers: Array.isArray(params.offers) ? params.offers.length : 0,
      answer: Boolean(params.answer)
    }))
  })
}
server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.ws.address().port }))
})
process.stdin.on('end', () => server.close(() => process.exit(0)))
process.stdin.resume()
