// A fixed script of WebSocket tracker frames, sent over four connections; every frame each
// connection receives is printed. Run against two trackers, the outputs are compared field by
// field (cargo xtask interop tracker-ws-parity).
//
// usage: node ws_parity.mjs --url ws://HOST:PORT
// stdout, JSON lines: {"step": N, "conn": C, "frame": OBJECT} for each frame received after
// step N, then {"done": true}. Steps are spaced so that every reply of one step arrives before
// the next step is sent.
import WebSocket from 'ws'

const args = process.argv.slice(2)
const url = args[args.indexOf('--url') + 1]
const GAP = 250

const bin = b => String.fromCharCode(b).repeat(20)
const A = bin(0xa1)
const B = bin(0xb2)
const announce = (hash, peer, left, event, extra = {}) =>
  ({ action: 'announce', info_hash: hash, peer_id: bin(peer), uploaded: 0, downloaded: 0, left, event, ...extra })
const offer = i => ({ offer_id: bin(0xe0 + i), offer: { type: 'offer', sdp: `v=0 offer ${i}` } })

// [connection, frame (object, or a string sent as is)] or ['close', connection]
const script = [
  [0, announce(A, 0x10, 0, 'started', { numwant: 5 })],
  [1, announce(A, 0x11, 500, 'started', { numwant: 5, offers: [offer(1)] })],
  [0, { action: 'announce', info_hash: A, peer_id: bin(0x10), to_peer_id: bin(0x11), offer_id: bin(0xe1), answer: { type: 'answer', sdp: 'v=0 answer' } }],
  [2, { action: 'scrape', info_hash: A }],
  [2, { action: 'scrape', info_hash: [A, B] }],
  [2, { action: 'scrape' }],
  [1, announce(A, 0x11, 0, 'completed')],
  [1, announce(A, 0x11, 0, undefined)],
  [2, announce(A, 0x12, 9, 'paused')],
  [2, announce(B, 0x12, 9, 'started', { offers: [offer(2), offer(3)] })],
  [1, announce(A, 0x11, 0, 'stopped')],
  [2, { action: 'scrape', info_hash: [A, B] }],
  [3, 'this is not json'],
  [3, announce('short', 0x13, 0, 'started')],
  [3, { action: 'announce', info_hash: A }],
  [3, { action: 'announce', info_hash: A, peer_id: bin(0x13), answer: { type: 'answer', sdp: 'x' }, offer_id: bin(1) }],
  [3, { action: 'dance' }],
  [3, announce(A, 0x13, 0, 'exploded')],
  [3, { action: 'announce', info_hash: A, peer_id: bin(0x13), to_peer_id: bin(0x77), offer_id: bin(1), answer: { type: 'answer', sdp: 'x' } }],
  ['close', 0],
  [2, { action: 'scrape', info_hash: A }],
  ['close', 2],
  [3, { action: 'scrape', info_hash: [A, B] }]
]

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
let step = -1
const conns = []
for (let c = 0; c < 4; c++) {
  const ws = new WebSocket(url)
  ws.on('message', data => {
    let frame
    try { frame = JSON.parse(data.toString()) } catch { frame = { unparsable: data.toString() } }
    console.log(JSON.stringify({ step, conn: c, frame }))
  })
  ws.on('error', e => { console.error(`conn ${c}: ${e.message}`) })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  conns.push(ws)
}
for (const [i, [c, frame]] of script.entries()) {
  step = i
  if (c === 'close') conns[frame].close()
  else conns[c].send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  await sleep(GAP)
}
console.log(JSON.stringify({ done: true }))
for (const ws of conns) ws.terminate()
process.exit(0)
