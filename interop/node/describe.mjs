// What `parse-torrent` (WebTorrent's parser) reports about a .torrent.
import parseTorrent from 'parse-torrent'

export async function describe (buf) {
  const t = await parseTorrent(buf)
  return {
    parser: 'parse-torrent',
    v1: t.infoHash ?? null,
    v2: t.infoHashV2 ?? null,
    name: t.name,
    piece_length: t.pieceLength,
    num_pieces: t.pieces.length,
    total_size: t.length,
    files: t.files.map((f) => [f.path.split(/[\\/]/).join('/'), f.length]),
    trackers: t.announce,
    web_seeds: t.urlList,
    private: Boolean(t.private),
    comment: t.comment ?? null,
    creator: t.createdBy ?? null
  }
}
