//! File readers end to end on 127.0.0.1: a reader that seeks gets its bytes before the rest
//! of the file arrives, several readers read one torrent at once, and reads past the end
//! behave like a file's.

use std::io::SeekFrom;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use webtorrent::metainfo::MetaVersion;
use webtorrent::ratelimit::Limit;
use webtorrent::session::{AddOptions, Client};

mod common;

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(60);

const PIECE: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_the_middle_comes_first_and_readers_share() {
    common::logs();
    // 8 MiB in 128 pieces, from a seeder sending 512 KiB/s: the whole file takes 16 s.
    let len = 8 << 20;
    let files = [("movie.bin", common::data(11, len))];
    let metainfo = common::torrent_version("stream", PIECE, &files, MetaVersion::V1);
    let seed_dir = tempfile::tempdir().expect("tempdir");
    common::write_files(seed_dir.path(), "stream", &files);
    let mut config = common::config(seed_dir.path());
    config.upload_limit = Limit::bytes_per_second(512 * 1024);
    let seeder = Client::new(config).await.expect("seeder");
    seeder
        .add(metainfo.clone(), AddOptions::default())
        .await
        .expect("seed");

    let dir = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dir.path()).await;
    let mut options = AddOptions::default();
    options.peers.push(seeder.local_addr());
    let torrent = leecher.add(metainfo, options).await.expect("add");
    let files_of = torrent.files();
    assert_eq!(files_of.len(), 1);
    let file = &files_of[0];
    assert_eq!(file.length(), len as u64);
    assert_eq!(file.name(), "movie.bin");

    // Two readers: one seeks to the middle, the other reads the start.
    let mut middle = file.reader();
    let mut start = file.reader();
    let at = 4 * 1024 * 1024 + 12_345;
    assert_eq!(middle.seek(SeekFrom::Start(at)).await.expect("seek"), at);
    let mut got_middle = vec![0; 100_000];
    let mut got_start = vec![0; 70_000];
    let (a, b) = tokio::time::timeout(LIMIT, async {
        tokio::join!(
            middle.read_exact(&mut got_middle),
            start.read_exact(&mut got_start)
        )
    })
    .await
    .expect("both reads finish in time");
    a.expect("middle read");
    b.expect("start read");
    let stats = torrent.stats();
    let data = &files[0].1;
    assert!(got_middle[..] == data[at as usize..at as usize + 100_000]);
    assert!(got_start[..] == data[..70_000]);
    // The pieces under the readers came before most of the file: no more than half of it
    // is there (the seeder's limit keeps the rest 8 s away).
    assert!(!torrent.is_done());
    assert!(
        stats.verified_pieces < stats.total_pieces / 2,
        "{} of {} pieces verified before the seek was served",
        stats.verified_pieces,
        stats.total_pieces
    );
    assert!(file.downloaded() >= 100_000 + 70_000);

    // Reading on past a piece boundary keeps going, and seeking back reads from the pieces
    // already there.
    let mut more = vec![0; 3 * PIECE as usize];
    tokio::time::timeout(LIMIT, middle.read_exact(&mut more))
        .await
        .expect("in time")
        .expect("read on");
    let from = at as usize + 100_000;
    assert!(more[..] == data[from..from + more.len()]);
    middle.seek(SeekFrom::Start(at)).await.expect("seek back");
    let mut again = vec![0; 1000];
    middle.read_exact(&mut again).await.expect("read again");
    assert!(again[..] == data[at as usize..at as usize + 1000]);
    drop((middle, start));

    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_complete_file_and_its_end() {
    common::logs();
    let files = [
        ("a.txt", common::data(1, 1000)),
        ("b.bin", common::data(2, 300_000)),
    ];
    let metainfo = common::torrent("complete", PIECE, &files);
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(dir.path(), "complete", &files);
    let client = common::client(dir.path()).await;
    let torrent = client
        .add(metainfo, AddOptions::default())
        .await
        .expect("add");
    assert!(torrent.is_done());
    let b = torrent
        .files()
        .into_iter()
        .find(|f| f.name() == "b.bin")
        .expect("b.bin");
    assert_eq!(b.downloaded(), 300_000);
    let mut reader = b.reader();
    let mut all = Vec::new();
    tokio::time::timeout(LIMIT, reader.read_to_end(&mut all))
        .await
        .expect("in time")
        .expect("read");
    assert!(all == files[1].1);
    // From the end, and past it: nothing more, like a file.
    let pos = reader.seek(SeekFrom::End(-10)).await.expect("seek");
    assert_eq!(pos, 300_000 - 10);
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).await.expect("read tail");
    assert!(tail[..] == files[1].1[300_000 - 10..]);
    reader
        .seek(SeekFrom::Start(400_000))
        .await
        .expect("seek past");
    assert_eq!(reader.read(&mut [0; 10]).await.expect("read past"), 0);
    assert!(reader.seek(SeekFrom::Current(-500_000)).await.is_err());
    assert!(torrent.file(99).is_none());
    client.shutdown().await.expect("shutdown");
}
