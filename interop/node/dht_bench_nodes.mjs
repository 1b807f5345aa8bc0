// Many bittorrent-dht nodes on 127.0.0.1 in one process, for `cargo xtask bench dht`.
// usage: node dht_bench_nodes.mjs COUNT [BOOTSTRAP_HOST:PORT ...]
// The first node bootstraps from the given nodes, the others from those and the first.
// Prints {"event":"ready","ports":[...]} once all listen; each node then joins the DHT on its
// own (bittorrent-dht bootstraps when it starts). Exits when standard input closes.
import readline from 'node:readline'
import DHT from 'bittorrent-dht'

const count = Number(process.argv[2])
const boot = process.argv.slice(3)
const nodes = []

function start (bootstrap) {
  const dht = new DHT({ bootstrap, host: '127.0.0.1' })
  dht.on('error', e => { console.error(String(e)); process.exit(1) })
  dht.on('warning', () => {})
  nodes.push(dht)
  return new Promise(resolve => dht.listen(0, '127.0.0.1', () => resolve(dht.address().port)))
}

const first = await start(boot)
const ports = [first]
for (let i = 1; i < count; i++) ports.push(await start([...boot, `127.0.0.1:${first}`]))
console.log(JSON.stringify({ event: 'ready', ports }))

readline.createInterface({ input: process.stdin }).on('close', () => {
  for (const d of nodes) d.destroy()
  process.exit(0)
})
