//! Hundreds of failed connection attempts, and closed connections, leave no task and no
//! socket behind.
//!
//! Alone in its test binary so that the process-wide file-descriptor count is its own.

mod common;

use std::time::Duration;

use common::{config, pair};
use webtorrent_rtc::Rtc;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Waits (bounded) until the runtime's live tasks fall back to `baseline`.
async fn settle(baseline: usize) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..300 {
        if metrics.num_alive_tasks() <= baseline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    metrics.num_alive_tasks()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_leave_nothing_behind() {
    let rtc = Rtc::new(config());
    // Warm up whatever is created once per process, and check the counters see connections.
    let (a, b) = pair(&rtc).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let with_connection = metrics.num_alive_tasks();
    drop((a, b));
    let baseline = settle(0).await;
    assert!(
        with_connection > baseline,
        "a live connection shows no task ({with_connection} vs {baseline})"
    );
    let fds = open_fds();

    let attempts = 300;
    for i in 0..attempts {
        let offer = rtc.create_offer().await.expect("offer");
        match i % 3 {
            // An offer nobody answers, dropped.
            0 => drop(offer),
            // An answer the offerer never applies, dropped; the offer closed explicitly.
            1 => {
                let answer = rtc.accept_offer(offer.sdp()).await.expect("answer");
                drop(answer);
                offer.close().await;
            }
            // An answer that is garbage.
            _ => {
                offer
                    .accept_answer("v=0\r\nnot an answer")
                    .await
                    .expect_err("garbage answer");
            }
        }
    }

    // Connections that did open, then went away: dropped, or shut down and dropped.
    for i in 0..20 {
        let (mut a, b) = pair(&rtc).await;
        if i % 2 == 0 {
            use tokio::io::AsyncWriteExt;
            a.shutdown().await.expect("shutdown");
        }
        drop((a, b));
    }

    let left = settle(baseline).await;
    assert_eq!(
        left,
        baseline,
        "{attempts} failed attempts and 20 closed connections left {} tasks",
        left - baseline
    );
    // Sockets are closed when the drivers stop; allow a few descriptors of slack for
    // lazily created process-wide resources.
    let now = open_fds();
    assert!(
        now <= fds + 4,
        "{attempts} failed attempts left {} file descriptors",
        now - fds
    );
}
