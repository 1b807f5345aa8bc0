// Print what `parse-torrent` reports about .torrent files (one JSON object per line).
// usage: node parse.mjs TORRENT...
import { readFileSync } from 'node:fs'
import { describe } from './describe.mjs'

const paths = process.argv.slice(2)
if (paths.length === 0) {
  console.error('usage: node parse.mjs TORRENT...')
  process.exit(2)
}
for (const p of paths) {
  console.log(JSON.stringify(await describe(readFileSync(p))))
}
