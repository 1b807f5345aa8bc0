// A JS WebTorrent peer on loopback TCP, for the ut_metadata interop runs (run.sh).
//   node wt_peer.mjs seed v1 OUT_DIR        seeds a 600-file v1 torrent, writes
//                                           OUT_DIR/expected-v1.bin (the info
//                                           dictionary), prints {"port","hashes"}, seeds
//                                           until stdin closes
//   node wt_peer.mjs fetch PORT MAGNET FILE resolves the magnet from 127.0.0.1:PORT and
//                                           exits 0 when the metadata equals FILE
//   node wt_peer.mjs want                   adds a magnet of a random info-hash with ut_pex
//                                           on and no peer, prints {"port","hashes"}, and
//                                           waits (for peers to come by PEX) until stdin closes
// WebTorrent comes from the repository's interop/node_modules.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../../..')
const { default: WebTorrent } = await import(
  pathToFileURL(path.join(root, 'interop/node_modules/webtorrent/index.js')).href
)

const [mode, ...args] = process.argv.slice(2)
const options = {
  dht: false, tracker: false, lsd: false, utPex: mode === 'want', natUpnp: false,
  natPmp: false, utp: false, webSeeds: false, secure: 0
}
const client = new WebTorrent(options)
client.on('error', (err) => { console.error(err); process.exit(1) })

if (mode === 'seed') {
  const [flavour, outDir] = args
  if (flavour !== 'v1') throw new Error('WebTorrent makes v1 torrents only')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-seed-'))
  const tree = path.join(dir, 'tree')
  fs.mkdirSync(tree)
  for (let i = 0; i < 600; i++) {
    fs.writeFileSync(path.join(tree, `file-${String(i).padStart(4, '0')}.txt`), randomBytes(1000 + i))
  }
  client.seed(tree, { announce: [], pieceLength: 16384 }, (torrent) => {
    fs.writeFileSync(path.join(outDir, 'expected-v1.bin'), torrent.infoBuffer)
    const port = client.address().port
    console.log(JSON.stringify({ port, hashes: [torrent.infoHash] }))
  })
  process.stdin.resume()
  process.stdin.on('end', () => client.destroy(() => process.exit(0)))
} else if (mode === 'fetch') {
  const [port, magnet, expected] = args
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-fetch-'))
  const torrent = client.add(magnet, { path: dir, announce: [] })
  torrent.on('metadata', () => {
    const same = Buffer.compare(Buffer.from(torrent.infoBuffer), fs.readFileSync(expected)) === 0
    console.log(same ? 'identical' : 'DIFFERENT')
    client.destroy(() => process.exit(same ? 0 : 1))
  })
  torrent.on('infoHash', () => torrent.addPeer(`127.0.0.1:${port}`))
  setTimeout(() => { console.error('no metadata within 30 s'); process.exit(1) }, 30000).unref()
} else if (mode === 'want') {
  const hash = randomBytes(20).toString('hex')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-want-'))
  client.add(`magnet:?xt=urn:btih:${hash}`, { path: dir, announce: [] })
  const report = () => console.log(JSON.stringify({ port: client.address().port, hashes: [hash] }))
  if (client.listening) report()
  else client.once('listening', report)
  process.stdin.resume()
  process.stdin.on('end', () => client.destroy(() => process.exit(0)))
} else {
  console.error('usage: wt_peer.mjs seed v1 OUT_DIR | fetch PORT MAGNET FILE | want')
  process.exit(2)
}
