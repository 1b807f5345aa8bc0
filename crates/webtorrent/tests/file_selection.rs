//! File selection (BEP 53 and file priorities) end to end on 127.0.0.1: only the chosen
//! files are written, the others never appear, and choosing more later completes them.

use std::path::Path;
use std::time::Duration;

use webtorrent::magnet::FileRange;
use webtorrent::metainfo::{MetaVersion, Metainfo};
use webtorrent::session::{AddOptions, Client, SessionError};

mod common;

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(60);

/// Four files of a v1 torrent with 32 KiB pieces: every boundary falls inside a piece, so
/// the chosen files share pieces with the others.
fn files() -> [(&'static str, Vec<u8>); 4] {
    [
        ("a.bin", common::data(1, 50_000)),
        ("b.bin", common::data(2, 70_000)),
        ("c.bin", common::data(3, 30_000)),
        ("d.bin", common::data(4, 10)),
    ]
}

/// Seeds the v1 torrent `name` of [`files`] (32 KiB pieces).
async fn seeder(
    name: &str,
    files: &[(&'static str, Vec<u8>)],
) -> (Client, Metainfo, tempfile::TempDir) {
    let metainfo = common::torrent_version(name, 32 * 1024, files, MetaVersion::V1);
    let (client, dir) = common::seeder(&metainfo, files).await;
    (client, metainfo, dir)
}

/// Checks which files are on disk under `root/name`: the `wanted` ones hold their bytes,
/// the others do not exist.
fn check_files(root: &Path, name: &str, files: &[(&'static str, Vec<u8>)], wanted: &[usize]) {
    for (i, (path, bytes)) in files.iter().enumerate() {
        let on_disk = root.join(name).join(path);
        if wanted.contains(&i) {
            let got = std::fs::read(&on_disk).expect("a chosen file is written");
            assert!(got == *bytes, "{path} differs");
        } else {
            assert!(!on_disk.exists(), "{path} was not chosen but exists");
        }
    }
}

fn parts_dir(root: &Path, metainfo: &Metainfo) -> std::path::PathBuf {
    root.join(format!(".{}.parts", metainfo.info_hashes().wire().to_hex()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_files_only_then_the_rest() {
    common::logs();
    let files = files();
    let (seeder, metainfo, _seed_dir) = seeder("sel", &files).await;
    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dst.path()).await;
    let mut options = AddOptions::default();
    options.select = Some(vec![FileRange::single(1), FileRange::single(3)]);
    options.peers = vec![seeder.local_addr()];
    let download = leecher.add(metainfo.clone(), options).await.expect("add");
    assert_eq!(
        download.file_priorities().await.expect("priorities"),
        [0, 4, 0, 4]
    );
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the chosen files complete");
    let stats = download.stats();
    assert_eq!(stats.left, 0);
    assert!(
        stats.wanted < metainfo.info().total_length(),
        "{} of {}",
        stats.wanted,
        metainfo.info().total_length()
    );
    assert!(stats.verified_pieces < stats.total_pieces);
    check_files(dst.path(), "sel", &files, &[1, 3]);
    // b.bin shares its first piece with a.bin and its last with c.bin: those bytes of a.bin
    // and c.bin are kept aside.
    let parts = parts_dir(dst.path(), &metainfo);
    assert!(parts.is_dir(), "{}", parts.display());

    // Everything now: the rest comes, the kept bytes go into their files.
    download
        .set_file_priorities(vec![4; 4])
        .await
        .expect("set priorities");
    assert!(!download.is_done());
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the whole torrent completes");
    assert_eq!(
        download.stats().verified_pieces,
        download.stats().total_pieces
    );
    check_files(dst.path(), "sel", &files, &[0, 1, 2, 3]);
    assert!(!parts.exists(), "part files are left: {}", parts.display());

    // Priorities that do not fit are refused, and change nothing.
    for bad in [vec![4; 3], vec![4, 4, 8, 4]] {
        let err = download
            .set_file_priorities(bad)
            .await
            .expect_err("refused");
        assert!(matches!(err, SessionError::FilePriorities(_)), "{err}");
    }
    assert!(download.is_done());
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_survives_a_restart() {
    let files = files();
    let (seeder, metainfo, _seed_dir) = seeder("restart", &files).await;
    let dst = tempfile::tempdir().expect("tempdir");
    let select = Some(vec![FileRange::new(0, 1).expect("range")]);
    {
        let leecher = Client::new(common::config(dst.path()))
            .await
            .expect("leecher");
        let mut options = AddOptions::default();
        options.select.clone_from(&select);
        options.peers = vec![seeder.local_addr()];
        let download = leecher.add(metainfo.clone(), options).await.expect("add");
        tokio::time::timeout(LIMIT, download.wait_done())
            .await
            .expect("complete");
        leecher.shutdown().await.expect("shutdown");
    }
    seeder.shutdown().await.expect("shutdown");
    check_files(dst.path(), "restart", &files, &[0, 1]);

    // No peer now: what was verified, part files included, is found again on disk.
    let leecher = common::client(dst.path()).await;
    let mut options = AddOptions::default();
    options.select = select;
    let download = leecher.add(metainfo.clone(), options).await.expect("add");
    assert!(download.is_done(), "{:?}", download.stats());
    check_files(dst.path(), "restart", &files, &[0, 1]);
    leecher.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_so_parameter_selects_files() {
    let files = files();
    let (seeder, metainfo, _seed_dir) = seeder("so", &files).await;
    let mut magnet = common::magnet(&metainfo, seeder.local_addr());
    magnet.select_only = vec![FileRange::single(2)];
    let dst = tempfile::tempdir().expect("tempdir");
    let leecher = common::client(dst.path()).await;
    let download = leecher
        .add_magnet(&magnet, AddOptions::default())
        .await
        .expect("add magnet");
    // One priority is wrong either way: the files are not known yet, or there are four.
    let err = download
        .set_file_priorities(vec![1])
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            SessionError::MetadataPending | SessionError::FilePriorities(_)
        ),
        "{err}"
    );
    tokio::time::timeout(LIMIT, download.wait_done())
        .await
        .expect("the chosen file completes");
    check_files(dst.path(), "so", &files, &[2]);
    assert_eq!(
        download.file_priorities().await.expect("priorities"),
        [0, 0, 4, 0]
    );
    leecher.shutdown().await.expect("shutdown");
    seeder.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_naming_no_file_is_an_error() {
    let files = files();
    let metainfo = common::torrent_version("none", 32 * 1024, &files, MetaVersion::V1);
    let dst = tempfile::tempdir().expect("tempdir");
    let client = Client::new(common::config(dst.path()))
        .await
        .expect("client");
    let mut options = AddOptions::default();
    options.select = Some(vec![FileRange::new(4, 100).expect("range")]);
    let err = client.add(metainfo, options).await.expect_err("refused");
    assert!(
        matches!(err, SessionError::EmptySelection { files: 4 }),
        "{err}"
    );
    client.shutdown().await.expect("shutdown");
}
