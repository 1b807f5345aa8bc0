// LSD peer for the interop test: WebTorrent's bittorrent-lsd (the JS client's LSD).
// Usage: node lsd_js.mjs NODE_MODULES INFO_HASH_HEX PORT SECONDS
// Prints "peer ADDR INFO_HASH" for each announce it accepts, then exits after SECONDS.
import { pathToFileURL } from 'node:url'
import { randomBytes } from 'node:crypto'

const [modules, infoHash, port, seconds] = process.argv.slice(2)
const { default: LSD } = await import(pathToFileURL(`${modules}/bittorrent-lsd/index.js`))
const lsd = new LSD({ peerId: randomBytes(20), infoHash, port: Number(port) })
lsd.on('peer', (addr, hash) => console.log(`peer ${addr} ${hash}`))
lsd.on('warning', (err) => console.error(`warning ${err}`))
lsd.on('error', (err) => { console.error(`error ${err}`); process.exit(1) })
lsd.start()
console.log('started')
setTimeout(() => { lsd.destroy(); process.exit(0) }, Number(seconds) * 1000)
