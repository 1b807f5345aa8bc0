//! Two peers on 127.0.0.1 connected offer → answer, exercised through the byte stream.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{config, pair, pattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webtorrent_rtc::{MAX_MESSAGE_SIZE, Rtc};

const BOUND: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_mib_both_ways() {
    let rtc = Rtc::new(config());
    let (a, b) = pair(&rtc).await;
    let len = 6 << 20;
    let to_b = pattern(1, len);
    let to_a = pattern(2, len);

    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let send_a = {
        let data = to_b.clone();
        tokio::spawn(async move { a_write.write_all(&data).await.map(|()| a_write) })
    };
    let send_b = {
        let data = to_a.clone();
        tokio::spawn(async move { b_write.write_all(&data).await.map(|()| b_write) })
    };
    let recv_b = tokio::spawn(async move {
        let mut got = vec![0u8; len];
        b_read.read_exact(&mut got).await.map(|_| got)
    });
    let recv_a = tokio::spawn(async move {
        let mut got = vec![0u8; len];
        a_read.read_exact(&mut got).await.map(|_| got)
    });
    let all = async {
        let (x, y, got_b, got_a) = tokio::join!(send_a, send_b, recv_b, recv_a);
        x.expect("task").expect("a writes");
        y.expect("task").expect("b writes");
        (
            got_b.expect("task").expect("b reads"),
            got_a.expect("task").expect("a reads"),
        )
    };
    let (got_b, got_a) = tokio::time::timeout(BOUND, all).await.expect("in time");
    assert!(got_b == to_b, "bytes a → b differ");
    assert!(got_a == to_a, "bytes b → a differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_write_is_split_into_messages_and_reassembled() {
    let rtc = Rtc::new(config());
    let (mut a, mut b) = pair(&rtc).await;
    let data = pattern(3, 1 << 20);

    // One write call takes at most one message's worth.
    let first = a.write(&data).await.expect("write");
    assert_eq!(first, MAX_MESSAGE_SIZE);

    let writer = tokio::spawn(async move {
        a.write_all(&data[first..]).await.expect("write rest");
        a.flush().await.expect("flush");
        (a, data)
    });
    // Every read returns at most the rest of one message: no message exceeds 16 KiB.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    while got.len() < 1 << 20 {
        let n = tokio::time::timeout(BOUND, b.read(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        assert!(n > 0, "early EOF after {} bytes", got.len());
        assert!(n <= MAX_MESSAGE_SIZE, "read of {n} bytes");
        got.extend_from_slice(&buf[..n]);
    }
    let (_a, data) = writer.await.expect("writer");
    assert!(got == data, "reassembled bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_both_directions() {
    let rtc = Rtc::new(config());
    let (mut a, mut b) = pair(&rtc).await;
    let data = pattern(4, 300_000);
    a.write_all(&data).await.expect("write");
    a.shutdown().await.expect("shutdown");
    a.shutdown().await.expect("a second shutdown is a no-op");

    // Writing after shutdown fails at once.
    let err = a.write(b"late").await.expect_err("write after shutdown");
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);

    // The remote gets everything sent before the close, then EOF.
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, b.read_to_end(&mut got))
        .await
        .expect("EOF in time")
        .expect("read");
    assert!(got == data, "got {} of {} bytes", got.len(), data.len());

    // The remote can no longer write: there is no half-close on a data channel.
    let err = b
        .write_all(b"reply")
        .await
        .expect_err("write after remote close");
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);

    // The closing side reads EOF too.
    let mut rest = Vec::new();
    tokio::time::timeout(BOUND, a.read_to_end(&mut rest))
        .await
        .expect("EOF in time")
        .expect("read");
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_gives_the_remote_eof() {
    let rtc = Rtc::new(config());
    let (mut a, mut b) = pair(&rtc).await;
    a.write_all(b"last words").await.expect("write");
    a.flush().await.expect("flush");
    // Let the message leave before the connection goes away.
    let mut buf = [0u8; 10];
    tokio::time::timeout(BOUND, b.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&buf, b"last words");
    drop(a);
    let mut rest = Vec::new();
    let n = tokio::time::timeout(BOUND, b.read_to_end(&mut rest))
        .await
        .expect("EOF in time")
        .expect("read");
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_makes_the_writer_wait() {
    let rtc = Rtc::new(config());
    let (mut a, mut b) = pair(&rtc).await;
    let total = 48 << 20;
    let data = Arc::new(pattern(5, total));
    let written = Arc::new(AtomicUsize::new(0));

    let writer = {
        let data = data.clone();
        let written = written.clone();
        tokio::spawn(async move {
            let mut at = 0;
            while at < data.len() {
                let n = a.write(&data[at..]).await.expect("write");
                at += n;
                written.store(at, Ordering::Release);
            }
            a.flush().await.expect("flush");
            a
        })
    };

    // b reads nothing. Wait until the writer is stuck (no progress for a second), or done.
    let mut last = usize::MAX;
    let mut still = 0;
    let deadline = tokio::time::Instant::now() + BOUND;
    while still < 10 && !writer.is_finished() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = written.load(Ordering::Acquire);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    let stuck_at = written.load(Ordering::Acquire);
    assert!(
        !writer.is_finished(),
        "the writer finished {total} bytes with nobody reading"
    );
    // Everything in flight: our read queue (64 messages), the stack's event queue (256
    // messages), the SCTP receive window and our send high-water mark; a few MiB, far
    // below the 48 MiB offered.
    assert!(
        stuck_at <= 12 << 20,
        "{stuck_at} bytes accepted with nobody reading"
    );

    // Reading again releases the writer and every byte arrives intact.
    let mut got = vec![0u8; total];
    tokio::time::timeout(BOUND, b.read_exact(&mut got))
        .await
        .expect("in time")
        .expect("read");
    let _a = tokio::time::timeout(BOUND, writer)
        .await
        .expect("writer done in time")
        .expect("writer");
    assert!(got[..] == data[..], "bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_receive_queue_does_not_stall_our_writes() {
    let rtc = Rtc::new(config());
    let (a, b) = pair(&rtc).await;
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);

    // b floods a, and a reads nothing yet: a's receive queue fills and b's writer stalls.
    let flood = pattern(6, 16 << 20);
    let b_writer = {
        let flood = flood.clone();
        tokio::spawn(async move { b_write.write_all(&flood).await.map(|()| b_write) })
    };

    // a's own writes still go through: its low-water events queue behind the unread
    // messages, so the writer must not depend on them alone.
    let data = pattern(7, 4 << 20);
    let b_reader = tokio::spawn(async move {
        let mut got = vec![0u8; 4 << 20];
        b_read.read_exact(&mut got).await.map(|_| got)
    });
    tokio::time::timeout(BOUND, a_write.write_all(&data))
        .await
        .expect("a's writes finish while its receive queue is full")
        .expect("write");
    let got = tokio::time::timeout(BOUND, b_reader)
        .await
        .expect("in time")
        .expect("task")
        .expect("read");
    assert!(got == data, "a → b bytes differ");

    // Now a drains the flood.
    let mut received = vec![0u8; flood.len()];
    tokio::time::timeout(BOUND, a_read.read_exact(&mut received))
        .await
        .expect("in time")
        .expect("read");
    assert!(received == flood, "b → a bytes differ");
    tokio::time::timeout(BOUND, b_writer)
        .await
        .expect("in time")
        .expect("task")
        .expect("b writes");
}

/// A write that returned is delivered without a flush or any further use of the stream, as
/// on TCP: each small message is read by the peer while the writer only waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_delivered_without_a_flush() {
    let rtc = Rtc::new(config());
    let (mut a, mut b) = pair(&rtc).await;
    let exchange = async {
        for round in 0u32..200 {
            let message = round.to_be_bytes();
            let (writer, reader) = if round % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            writer.write_all(&message).await.expect("write");
            let mut got = [0u8; 4];
            reader.read_exact(&mut got).await.expect("read");
            assert_eq!(got, message);
        }
    };
    tokio::time::timeout(BOUND, exchange)
        .await
        .expect("every message delivered without a flush");
}
