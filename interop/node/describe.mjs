// What `parse-torrent` (WebTorrent's parser) reports about a .torrent or a magnet link.
import parseTorrent from 'parse-torrent'

export async function describe (input) {
  const t = await parseTorrent(input)
  return {
    parser: 'parse-torrent',
    v1: t.infoHash ?? null,
    v2: t.infoHashV2 ?? null,
    name: t.name ?? null,
    piece_length: t.pieceLength ?? null,
    num_pieces: t.pieces ? t.pieces.length : null,
    total_size: t.length ?? null,
    files: t.files ? t.files.map((f) => [f.path.split(/[\\/]/).join('/'), f.length]) : null,
    trackers: t.announce ?? [],
    web_seeds: t.urlList ?? [],
    private: Boolean(t.private),
    comment: t.comment ?? null,
    creator: t.createdBy ?? null
  }
}
