//! Backpressure: a client that stops reading a server stream must stall the backend, not grow the
//! gateway's memory. The gateway runs as its own process (the binary `cargo bench` builds, with the dist settings) so its resident set
//! can be read from /proc; the stub streams 200 000 synthetic events (~1.1 KiB each, ~220 MiB).
//!
//! Run: `cargo bench --bench backpressure`. Phases, all bounded in time: the client reads the first
//! chunk then nothing for 3 s (RSS sampled every 250 ms), then reads the rest as fast as it can
//! (at most 60 s). Reported: the gateway's RSS before, its peak while stalled, its peak while
//! draining, and how many events the stub had sent when the client stalled.

#[path = "support/process.rs"]
mod process;
use process::{free_port, stop};

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const EVENTS: u32 = 200_000;

/// Resident set size of a process in KiB, from /proc/PID/status.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let stub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let stubs = stub_rt
        .block_on(tai_stubs::StubServers::start(any, any))
        .expect("start stubs");
    let dir = std::env::temp_dir().join(format!("tai-backpressure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (http_port, admin_port) = (free_port(), free_port());
    let config = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:{http_port}\nadmin:\n  address: 127.0.0.1:{admin_port}\n\
         descriptors:\n  proto_dirs: [\"{proto}\"]\nupstreams:\n  governor:\n    address: {gov}\n\
         routes:\n  - service: tai.Governor\n    upstream: governor\n    transcoding:\n      stream_format: ndjson\n\
         access_log:\n  enabled: false\n",
        proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto"),
        gov = stubs.governor_addr,
    );
    let config_path = dir.join("gateway.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["run", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start gateway");
    let pid = gateway.id();
    let store = stubs.store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = rt.block_on(async {
        let addr: SocketAddr = format!("127.0.0.1:{http_port}").parse().expect("addr");
        let mut stream = None;
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect(addr).await {
                stream = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stream = stream.ok_or("gateway did not listen")?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let before = rss_kib(pid);
        let request = Request::get(format!("/v1/policies:watch?syntheticEvents={EVENTS}"))
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let mut body = response.into_body();
        let first = body
            .frame()
            .await
            .ok_or("no first frame")?
            .map_err(|e| e.to_string())?;
        let mut bytes = first.data_ref().map_or(0, |d| d.len());
        // Stall: read nothing for 3 s.
        let mut stalled_peak = 0;
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            stalled_peak = stalled_peak.max(rss_kib(pid));
        }
        let sent_while_stalled = store.stream_messages_sent();
        // Drain as fast as possible, at most 60 s.
        let drain_deadline = Instant::now() + Duration::from_secs(60);
        let mut drain_peak = 0;
        let mut frames = 0u64;
        while Instant::now() < drain_deadline {
            match body.frame().await {
                Some(Ok(frame)) => {
                    bytes += frame.data_ref().map_or(0, |d| d.len());
                    frames += 1;
                    if frames.is_multiple_of(2000) {
                        drain_peak = drain_peak.max(rss_kib(pid));
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => break,
            }
        }
        Ok::<_, String>((before, stalled_peak, sent_while_stalled, drain_peak, bytes))
    });
    stop(&mut gateway);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok((before, stalled, sent, drained, bytes)) => {
            println!(
                "backpressure: GET /v1/policies:watch?syntheticEvents={EVENTS} as NDJSON over HTTP/1.1"
            );
            println!("gateway RSS before the stream:        {:>8} KiB", before);
            println!("gateway RSS peak, client stalled 3 s: {:>8} KiB", stalled);
            println!("gateway RSS peak, client draining:    {:>8} KiB", drained);
            println!("events the stub had sent when stalled: {sent} of {EVENTS}");
            println!("bytes the client read in all:          {bytes}");
        }
        Err(e) => {
            eprintln!("backpressure benchmark failed: {e}");
            std::process::exit(1);
        }
    }
    stub_rt.block_on(stubs.shutdown());
}
