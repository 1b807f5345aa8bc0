// Create a .torrent with the JS `create-torrent` (what WebTorrent uses) and print what
// `parse-torrent` reports about it, as JSON.
//
// usage: node create.mjs PATH OUT [--piece-length N] [--tracker URL]... [--web-seed URL]...
//                        [--comment S] [--created-by S] [--private]
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import createTorrent from 'create-torrent'
import { describe } from './describe.mjs'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'piece-length': { type: 'string' },
    tracker: { type: 'string', multiple: true, default: [] },
    'web-seed': { type: 'string', multiple: true, default: [] },
    comment: { type: 'string' },
    'created-by': { type: 'string' },
    private: { type: 'boolean', default: false }
  }
})
if (positionals.length !== 2) {
  console.error('usage: node create.mjs PATH OUT [options]')
  process.exit(2)
}
const [input, out] = positionals
const opts = {
  // One tier per tracker; an explicit (possibly empty) list stops create-torrent from adding
  // its default public trackers.
  announceList: values.tracker.map((t) => [t]),
  private: values.private
}
if (values['piece-length']) opts.pieceLength = Number(values['piece-length'])
if (values['web-seed'].length) opts.urlList = values['web-seed']
if (values.comment !== undefined) opts.comment = values.comment
if (values['created-by'] !== undefined) opts.createdBy = values['created-by']

createTorrent(input, opts, async (err, buf) => {
  if (err) {
    console.error(`error: ${err.message}`)
    process.exit(1)
  }
  writeFileSync(out, buf)
  console.log(JSON.stringify(await describe(buf)))
})
