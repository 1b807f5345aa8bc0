// bittorrent-tracker's own Client (npm) against a tracker: a seeder and a leecher of one
// torrent announce, the leecher scrapes, completes, the seeder stops, the leecher scrapes again.
// Over ws:// no offers are made (numwant 0: Node has no WebRTC here), so the check there is on
// the counts; over http:// and udp:// the leecher must be told the seeder's address.
//
// usage: node tracker_client.mjs --announce URL [--info-hash HEX] [--timeout S]
// stdout, JSON lines: {"step": NAME, ...figures}; exit 0 when every step got its answer.
import Client from 'bittorrent-tracker'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const announce = opt('--announce')
const infoHash = opt('--info-hash', '0badc0ffee0badc0ffee0badc0ffee0badc0ffee')
const timeoutMs = Number(opt('--timeout', 30)) * 1000
const ws = announce.startsWith('ws')
setTimeout(() => { console.error('timed out'); process.exit(2) }, timeoutMs).unref()

const print = o => console.log(JSON.stringify(o))

function client (peerId, port, state) {
  const c = new Client({
    infoHash,
    peerId,
    announce: [announce],
    port,
    // Over WebSocket the client needs a WebRTC implementation only to make offers, and makes
    // none with numwant 0.
    wrtc: ws ? {} : undefined,
    getAnnounceOpts: () => ({ numwant: ws ? 0 : 50, left: state.left, uploaded: 0, downloaded: 0 })
  })
  c.on('error', e => { print({ step: 'error', peer: peerId.slice(0, 4), message: String(e.message || e) }); process.exit(1) })
  c.on('warning', e => print({ step: 'warning', peer: peerId.slice(0, 4), message: String(e.message || e) }))
  return c
}

const once = (c, event) => new Promise(resolve => c.once(event, resolve))
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

const seedState = { left: 0 }
const leechState = { left: 1000 }
const seeder = client('2d5345303030302d' + 'aa'.repeat(12), 7001, seedState)
const leecher = client('2d4c45303030302d' + 'bb'.repeat(12), 7002, leechState)

let u = once(seeder, 'update')
seeder.start()
let d = await u
print({ step: 'seeder-started', complete: d.complete, incomplete: d.incomplete })

const peers = new Set()
leecher.on('peer', p => peers.add(typeof p === 'string' ? p : 'object'))
u = once(leecher, 'update')
leecher.start()
d = await u
await sleep(300)
print({ step: 'leecher-started', complete: d.complete, incomplete: d.incomplete, peers: [...peers] })

let s = once(leecher, 'scrape')
leecher.scrape()
d = await s
print({ step: 'scrape', complete: d.complete, incomplete: d.incomplete, downloaded: d.downloaded })

leechState.left = 0
u = once(leecher, 'update')
leecher.complete()
d = await u
print({ step: 'leecher-completed', complete: d.complete, incomplete: d.incomplete })

u = once(seeder, 'update')
seeder.stop()
await Promise.race([u, sleep(2000)])
s = once(leecher, 'scrape')
leecher.scrape()
d = await s
print({ step: 'scrape-after-stop', complete: d.complete, incomplete: d.incomplete, downloaded: d.downloaded })

leecher.stop()
await sleep(300)
seeder.destroy()
leecher.destroy()
print({ step: 'done' })
process.exit(0)
