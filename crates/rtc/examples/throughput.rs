//! Throughput of one data channel between two of our peers on loopback, with the system's
//! default UDP buffers and with 4 MiB buffers.
//!
//! `cargo run --release -p webtorrent-rtc --example throughput -- [MiB] [runs]`
//!
//! `RTC_HIGH_KIB` and `RTC_LOW_KIB` override the send high- and low-water marks.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webtorrent_rtc::{DataStream, Rtc, RtcConfig};

async fn pair(rtc: &Rtc) -> Result<(DataStream, DataStream), webtorrent_rtc::Error> {
    let offer = rtc.create_offer().await?;
    let answer = rtc.accept_offer(offer.sdp()).await?;
    let answer_sdp = answer.sdp().to_owned();
    tokio::try_join!(offer.accept_answer(&answer_sdp), answer.connect())
}

/// A size in KiB from the environment, to try other flow-control marks.
fn env_kib(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

/// Sends `len` bytes one way and returns MB/s (10^6 bytes per second).
async fn measure(buffers: Option<usize>, len: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let mut config = RtcConfig::loopback();
    config.udp_buffer_size = buffers;
    if let Some(kib) = env_kib("RTC_HIGH_KIB") {
        config.send_high_water = kib << 10;
    }
    if let Some(kib) = env_kib("RTC_LOW_KIB") {
        config.send_low_water = kib << 10;
    }
    let rtc = Rtc::new(config);
    let (mut a, mut b) = pair(&rtc).await?;
    let data = vec![0x5a_u8; 1 << 20];
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut left = len;
        while left > 0 {
            let n = left.min(data.len());
            a.write_all(&data[..n]).await?;
            left -= n;
        }
        a.shutdown().await?;
        Ok::<_, std::io::Error>(())
    });
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), b.read(&mut buf)).await??;
        if n == 0 {
            break;
        }
        got += n;
    }
    writer.await??;
    let secs = start.elapsed().as_secs_f64();
    if got != len {
        return Err(format!("received {got} of {len} bytes").into());
    }
    Ok(len as f64 / secs / 1e6)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(Ok(128), |a| a.parse())?;
    let runs: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    for (name, buffers) in [("default buffers", None), ("4 MiB buffers", Some(4 << 20))] {
        let mut results = Vec::new();
        for _ in 0..runs {
            results.push(measure(buffers, mib << 20).await?);
        }
        let shown: Vec<String> = results.iter().map(|r| format!("{r:.1}")).collect();
        println!("{name}: {} MB/s ({mib} MiB per run)", shown.join(", "));
    }
    Ok(())
}
