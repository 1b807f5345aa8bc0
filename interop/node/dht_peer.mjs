// A bittorrent-dht node on 127.0.0.1 driven by JSON lines on standard input, for the dht
// crate's interop tests.
// usage: node dht_peer.mjs [BOOTSTRAP_HOST:PORT ...]
// Prints {"event":"ready","port":N,"id":HEX} once listening. Commands (one JSON object a line;
// every reply is one JSON line with the same "cmd"):
//   {"cmd":"bootstrap"}                          → {"cmd","nodes":N} after a find_node of our id
//   {"cmd":"announce","ih":HEX,"port":N}         → {"cmd","ok":true}
//   {"cmd":"lookup","ih":HEX}                    → {"cmd","peers":["ip:port",...]}
//   {"cmd":"put","v":TEXT}                       → {"cmd","target":HEX,"stored":N}   (immutable)
//   {"cmd":"put","v":TEXT,"seed":HEX,"seq":N,"salt":TEXT}   → same, mutable (ed25519 seed)
//   {"cmd":"get","target":HEX[,"salt":TEXT]}     → {"cmd","v":TEXT|null,"seq":N|null}
//   {"cmd":"key","seed":HEX}                     → {"cmd","k":HEX}   (public key of a seed)
// Exits when standard input closes.
import crypto from 'node:crypto'
import readline from 'node:readline'
import DHT from 'bittorrent-dht'

// DER wrappers around raw ed25519 keys, so Node's own crypto signs and verifies.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function privateKey (seedHex) {
  const der = Buffer.concat([PKCS8_PREFIX, Buffer.from(seedHex, 'hex')])
  return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
}

function publicRaw (priv) {
  return crypto.createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(12)
}

function verify (sig, msg, pub) {
  try {
    const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' })
    return crypto.verify(null, msg, key, sig)
  } catch {
    return false
  }
}

const dht = new DHT({ bootstrap: process.argv.slice(2), verify, host: '127.0.0.1' })
dht.on('error', e => { console.error(String(e)); process.exit(1) })
dht.on('warning', () => {})

const out = obj => console.log(JSON.stringify(obj))

dht.listen(0, '127.0.0.1', () => {
  out({ event: 'ready', port: dht.address().port, id: dht.nodeId.toString('hex') })
})

function handle (c) {
  const reply = extra => out(Object.assign({ cmd: c.cmd }, extra))
  switch (c.cmd) {
    case 'bootstrap':
      dht._closest(dht.nodeId, { q: 'find_node', a: { id: dht.nodeId, target: dht.nodeId } }, null,
        () => reply({ nodes: dht.toJSON().nodes.length }))
      break
    case 'announce':
      dht.announce(c.ih, c.port, err => reply(err ? { error: String(err) } : { ok: true }))
      break
    case 'lookup': {
      const peers = new Set()
      const onpeer = (peer, ih) => {
        if (ih.toString('hex') === c.ih) peers.add(`${peer.host}:${peer.port}`)
      }
      dht.on('peer', onpeer)
      dht.lookup(c.ih, err => {
        dht.removeListener('peer', onpeer)
        reply(err ? { error: String(err) } : { peers: [...peers] })
      })
      break
    }
    case 'put': {
      const opts = { v: Buffer.from(c.v) }
      if (c.seed) {
        const priv = privateKey(c.seed)
        opts.k = publicRaw(priv)
        opts.seq = c.seq
        if (c.salt) opts.salt = Buffer.from(c.salt)
        opts.sign = buf => crypto.sign(null, buf, priv)
      }
      dht.put(opts, (err, hash, n) => {
        reply(err ? { error: String(err) } : { target: hash.toString('hex'), stored: n })
      })
      break
    }
    case 'get': {
      const opts = { cache: false }
      if (c.salt) opts.salt = Buffer.from(c.salt)
      dht.get(c.target, opts, (err, res) => {
        if (err) return reply({ error: String(err) })
        reply({ v: res ? res.v.toString() : null, seq: res && res.seq != null ? res.seq : null })
      })
      break
    }
    case 'key':
      reply({ k: publicRaw(privateKey(c.seed)).toString('hex') })
      break
    default:
      reply({ error: 'unknown command' })
  }
}

readline.createInterface({ input: process.stdin }).on('line', line => {
  if (line.trim()) handle(JSON.parse(line))
})
process.stdin.on('end', () => dht.destroy(() => process.exit(0)))
