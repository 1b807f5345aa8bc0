// Print what `parse-torrent` reports about .torrent files and magnet links (one JSON object
// per line). usage: node parse.mjs TORRENT|MAGNET...
import { readFileSync } from 'node:fs'
import { describe } from './describe.mjs'

const inputs = process.argv.slice(2)
if (inputs.length === 0) {
  console.error('usage: node parse.mjs TORRENT|MAGNET...')
  process.exit(2)
}
for (const input of inputs) {
  const source = input.startsWith('magnet:') ? input : readFileSync(input)
  console.log(JSON.stringify(await describe(source)))
}
