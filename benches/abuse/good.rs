//! The well-behaved clients: `GET /v1/echo/hi` at a steady rate through hyper-util's client, each
//! request on a connection of its own (so every request also checks that the gateway still
//! accepts), each bounded by a timeout. Open loop: a slow answer does not slow the next request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// The path every good client asks for.
pub(crate) const GOOD_PATH: &str = "/v1/echo/hi";

/// How the good clients behave.
#[derive(Clone, Copy)]
pub(crate) struct Load {
    /// Requests per second, spread evenly.
    pub(crate) rate: u32,
    /// Longest wait for one answer; a request past it counts as failed, at this latency.
    pub(crate) timeout: Duration,
}

/// What the good clients saw during one window.
#[derive(Default)]
pub(crate) struct Stats {
    /// Answers by outcome: `200`, `503`, `timeout`, `error: …`.
    pub(crate) outcomes: BTreeMap<String, u64>,
    /// Latency of every request, failed ones included (a timeout at the timeout), µs, sorted.
    latencies_us: Vec<u64>,
}

impl Stats {
    pub(crate) fn requests(&self) -> u64 {
        self.outcomes.values().sum()
    }

    pub(crate) fn ok(&self) -> u64 {
        self.outcomes.get("200").copied().unwrap_or(0)
    }

    /// Share of requests answered 200, in percent (100 when none were sent).
    pub(crate) fn success_percent(&self) -> f64 {
        match self.requests() {
            0 => 100.0,
            n => self.ok() as f64 * 100.0 / n as f64,
        }
    }

    /// The `p` quantile (0..=1) of the latencies, ms.
    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }

    /// Outcomes other than 200, as `503×12, timeout×3`.
    pub(crate) fn failures(&self) -> String {
        let failed: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(outcome, _)| outcome.as_str() != "200")
            .map(|(outcome, n)| format!("{outcome}×{n}"))
            .collect();
        if failed.is_empty() {
            "none".to_owned()
        } else {
            failed.join(", ")
        }
    }
}

/// Sends `GET /v1/echo/hi` to `gateway` at `load.rate` for `window`, then waits for the answers
/// still in flight (each bounded by `load.timeout`).
pub(crate) async fn run(gateway: SocketAddr, load: Load, window: Duration) -> Stats {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let uri: http::Uri = format!("http://{gateway}{GOOD_PATH}")
        .parse()
        .expect("good-client URI");
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / load.rate.max(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = Instant::now() + window;
    let mut in_flight = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let (client, uri) = (client.clone(), uri.clone());
        in_flight.push(tokio::spawn(async move {
            let started = Instant::now();
            let outcome = tokio::time::timeout(load.timeout, async {
                let response = client.get(uri).await.map_err(|e| error_kind(&e))?;
                let status = response.status().as_u16().to_string();
                match response.into_body().collect().await {
                    Ok(_) => Ok(status),
                    Err(_) => Err("error: body cut".to_owned()),
                }
            })
            .await
            .unwrap_or_else(|_| Err("timeout".to_owned()));
            let outcome = outcome.unwrap_or_else(|e| e);
            (outcome, started.elapsed().as_micros() as u64)
        }));
    }
    let mut stats = Stats::default();
    for task in in_flight {
        if let Ok((outcome, latency)) = task.await {
            *stats.outcomes.entry(outcome).or_default() += 1;
            stats.latencies_us.push(latency);
        }
    }
    stats.latencies_us.sort_unstable();
    stats
}

/// A short name for a client error: connect failures and cut connections differ in what they say
/// about the gateway.
fn error_kind(error: &hyper_util::client::legacy::Error) -> String {
    if error.is_connect() {
        "error: connect".to_owned()
    } else {
        "error: connection closed".to_owned()
    }
}

/// `GET path` on the admin server over a fresh HTTP/1.1 connection: the status, or why not.
pub(crate) async fn admin_get(
    admin: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<u16, String> {
    tokio::time::timeout(timeout, async {
        let stream = TcpStream::connect(admin)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = Request::get(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    })
    .await
    .unwrap_or_else(|_| Err("timeout".to_owned()))
}
