//! The attacks of issue 12, one function each. Every attack comes from 127.0.0.2 (the good
//! clients from 127.0.0.1), so the gateway's per-address rate limit tells them apart as it would
//! two real clients; each stops by `Target::until` and drops what it holds, and returns what it
//! saw as report lines. A refusal by the gateway (closed connection, 4xx, 503) is a result.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::gateway::{CLIENT_ID_HEADER, KEYED_ECHO};
use crate::raw_h2::{self, tally};

/// Where to attack, and until when.
pub(crate) struct Target {
    pub(crate) gateway: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) until: Instant,
}

/// The attackers' source address: another loopback address, another client to the gateway.
const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// A TCP connection from the attacker's address (from 127.0.0.1 if the system refuses that);
/// `recv_buffer` shrinks its receive buffer, as a reader that takes nothing would have.
async fn connect(to: SocketAddr, recv_buffer: Option<u32>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let _ = socket.bind(SocketAddr::from((ATTACKER, 0)));
    tokio::time::timeout(Duration::from_secs(1), socket.connect(to))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))?
}

/// Attack 1a: native gRPC calls to `/tai.Governor/Echo` whose message is not protobuf.
pub(crate) async fn invalid_protobuf(target: &Target, calls: u32) -> Vec<String> {
    let message = Bytes::from_static(b"\x00\x00\x00\x00\x03\xff\xff\xff");
    let mut outcomes = BTreeMap::<String, u32>::new();
    let mut connection = None;
    for _ in 0..calls {
        if connection.is_none() {
            connection = match connect(target.gateway, None).await {
                Ok(stream) => raw_h2::handshake(stream, None).await.ok(),
                Err(_) => None,
            };
        }
        let outcome = match &mut connection {
            Some(c) => {
                raw_h2::grpc_call(
                    &mut c.client,
                    target.gateway,
                    "/tai.Governor/Echo",
                    message.clone(),
                )
                .await
            }
            None => "no connection".to_owned(),
        };
        if outcome.starts_with("h2 error") {
            connection = None;
        }
        *outcomes.entry(outcome).or_default() += 1;
    }
    vec![format!(
        "attacker: {calls} gRPC calls /tai.Governor/Echo with message ff ff ff over h2c: {}",
        tally(&outcomes)
    )]
}

/// Attack 1b: `POST /v1/echo` with a JSON body nested `depth` objects deep, in `dynamicValue`
/// (a `google.protobuf.Value`: each JSON object is three protobuf message levels, so the
/// gateway's JSON depth limit passes what a backend's protobuf recursion limit refuses).
pub(crate) async fn deep_json(target: &Target, calls: u32, depth: usize) -> Vec<String> {
    let mut body = r#"{"leaf":true}"#.to_owned();
    for _ in 0..depth.saturating_sub(2) {
        body = format!(r#"{{"a":{body}}}"#);
    }
    let body = Bytes::from(format!(r#"{{"dynamicValue":{body}}}"#));
    let mut outcomes = BTreeMap::<String, u32>::new();
    for _ in 0..calls {
        let request = Request::post("/v1/echo")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .expect("request");
        *outcomes
            .entry(http1_once(target.gateway, request).await)
            .or_default() += 1;
    }
    vec![format!(
        "attacker: {calls} × POST /v1/echo with JSON nested {depth} deep (in dynamicValue): {}",
        tally(&outcomes)
    )]
}

/// One request on a fresh HTTP/1.1 connection from the attacker: `HTTP 400`, or what failed.
async fn http1_once(gateway: SocketAddr, request: Request<Full<Bytes>>) -> String {
    let exchange = async {
        let stream = connect(gateway, None).await.map_err(|_| "connect failed")?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| "handshake failed")?;
        tokio::spawn(conn);
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| "connection closed")?;
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        Ok::<_, &str>(format!("HTTP {status}"))
    };
    match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => e.to_owned(),
        Err(_) => "timeout".to_owned(),
    }
}

/// Attack 2: one h2c connection with a zero stream window opening `streams` exports, then PINGs.
pub(crate) async fn head_of_line(target: &Target, streams: usize) -> Vec<String> {
    match connect(target.gateway, None).await {
        Ok(stream) => {
            raw_h2::zero_window_streams(
                stream,
                target.gateway,
                "/v1/policies:export",
                streams,
                target.until,
            )
            .await
        }
        Err(e) => vec![format!("attacker could not connect: {e}")],
    }
}

/// Attack 3a: `requests` × `GET /v1/policies` (the large list) on one zero-window h2c connection.
pub(crate) async fn slow_readers_h2(target: &Target, requests: usize) -> Vec<String> {
    match connect(target.gateway, None).await {
        Ok(stream) => {
            raw_h2::zero_window_streams(
                stream,
                target.gateway,
                "/v1/policies",
                requests,
                target.until,
            )
            .await
        }
        Err(e) => vec![format!("attacker could not connect: {e}")],
    }
}

/// Attack 3b: `sockets` HTTP/1.1 connections that each send `GET /v1/policies` and never read
/// (receive buffer 64 KiB, so the answers wait in the gateway, not in this machine's kernel).
pub(crate) async fn slow_readers_h1(target: &Target, sockets: usize) -> Vec<String> {
    let mut held = Vec::new();
    let mut failed = 0;
    for _ in 0..sockets {
        match connect(target.gateway, Some(64 * 1024)).await {
            Ok(mut stream) => {
                let request = b"GET /v1/policies HTTP/1.1\r\nhost: localhost\r\n\r\n";
                if stream.write_all(request).await.is_ok() {
                    held.push(stream);
                } else {
                    failed += 1;
                }
            }
            Err(_) => failed += 1,
        }
    }
    tokio::time::sleep_until(target.until.into()).await;
    // What each socket holds, unread: peek at its status line.
    let mut seen = BTreeMap::<String, u32>::new();
    for stream in &held {
        let mut head = [0u8; 12];
        let outcome =
            match tokio::time::timeout(Duration::from_millis(20), stream.peek(&mut head)).await {
                Ok(Ok(0)) => "closed by the gateway".to_owned(),
                Ok(Ok(n)) => String::from_utf8_lossy(&head[..n]).trim().to_owned(),
                Ok(Err(_)) => "reset".to_owned(),
                Err(_) => "nothing received".to_owned(),
            };
        *seen.entry(outcome).or_default() += 1;
    }
    vec![format!(
        "attacker: {} sockets sent GET /v1/policies and never read ({failed} failed to send); at the end they held: {}",
        held.len(),
        tally(&seen)
    )]
}

/// Attack 4: up to `requests` requests, each with its own `header_bytes`-long `x-client-id`, on
/// a route limited by that header, over 8 keep-alive connections.
pub(crate) async fn key_flood(target: &Target, requests: u32, header_bytes: usize) -> Vec<String> {
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (next, gateway, until) = (next.clone(), target.gateway, target.until);
        workers.push(tokio::spawn(async move {
            let mut outcomes = BTreeMap::<String, u32>::new();
            let mut sender = None;
            while Instant::now() < until {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= requests {
                    break;
                }
                if sender.is_none() {
                    sender = http1_sender(gateway).await;
                }
                let outcome = match &mut sender {
                    Some(s) => keyed_request(s, n, header_bytes).await,
                    None => "connect failed".to_owned(),
                };
                if !outcome.starts_with("HTTP") {
                    sender = None;
                }
                *outcomes.entry(outcome).or_default() += 1;
            }
            outcomes
        }));
    }
    let mut outcomes = BTreeMap::<String, u32>::new();
    for worker in workers {
        for (outcome, n) in worker.await.unwrap_or_default() {
            *outcomes.entry(outcome).or_default() += n;
        }
    }
    let sent: u32 = outcomes.values().sum();
    vec![format!(
        "attacker: {sent} of {requests} requests GET {KEYED_ECHO}/x, each with a distinct {} KB {CLIENT_ID_HEADER}, in {:.1} s: {}",
        header_bytes / 1000,
        started.elapsed().as_secs_f64(),
        tally(&outcomes)
    )]
}

async fn http1_sender(
    gateway: SocketAddr,
) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = connect(gateway, None).await.ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}

async fn keyed_request(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    n: u32,
    header_bytes: usize,
) -> String {
    let mut key = format!("{n:010}-");
    key.extend(std::iter::repeat_n(
        'k',
        header_bytes.saturating_sub(key.len()),
    ));
    let request = Request::get(format!("{KEYED_ECHO}/x"))
        .header("host", "localhost")
        .header(CLIENT_ID_HEADER, key)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| "connection closed")?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| "body cut")?;
        Ok::<_, &str>(format!("HTTP {status}"))
    };
    match tokio::time::timeout(Duration::from_secs(5), exchange).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => e.to_owned(),
        Err(_) => "timeout".to_owned(),
    }
}

/// Attack 5: `connections` h2c connections, each sending one HEADERS frame a byte a second.
pub(crate) async fn header_trickle(target: &Target, connections: usize) -> Vec<String> {
    let mut tricklers = Vec::new();
    for _ in 0..connections {
        let (gateway, until) = (target.gateway, target.until);
        tricklers.push(tokio::spawn(async move {
            match connect(gateway, None).await {
                Ok(stream) => Ok(raw_h2::trickle_headers(stream, until).await),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    let (mut closed, mut open, mut failed) = (Vec::new(), 0, 0);
    for trickler in tricklers {
        match trickler.await {
            Ok(Ok(Some(after))) => closed.push(after.as_secs_f64()),
            Ok(Ok(None)) => open += 1,
            _ => failed += 1,
        }
    }
    closed.sort_by(f64::total_cmp);
    let closed_note = match (closed.first(), closed.last()) {
        (Some(first), Some(last)) => format!(
            "{} closed by the gateway after {first:.1}–{last:.1} s",
            closed.len()
        ),
        _ => "none closed by the gateway".to_owned(),
    };
    vec![format!(
        "attacker: {connections} h2c connections, HEADERS one byte a second: {closed_note}; \
         {open} still open at the bench's limit; {failed} could not connect"
    )]
}

/// Attack 6: up to `count` idle TCP connections held to the public port (opened 100 at a time,
/// each connect bounded by 1 s: once the gateway stops accepting, the kernel's accept queue fills
/// and further connects hang), while `/healthz` on the admin port is asked once a second.
pub(crate) async fn connection_flood(target: &Target, count: usize, pid: u32) -> Vec<String> {
    let (admin, until) = (target.admin, target.until);
    let health = tokio::spawn(async move {
        let mut seen = BTreeMap::<String, u32>::new();
        let mut most_fds = 0;
        while Instant::now() < until {
            let next = Instant::now() + Duration::from_secs(1);
            let outcome = crate::good::admin_get(admin, "/healthz", Duration::from_secs(1)).await;
            let outcome = outcome.map_or_else(|e| e, |status| format!("HTTP {status}"));
            *seen.entry(outcome).or_default() += 1;
            most_fds = most_fds.max(crate::gateway::open_fds(pid));
            tokio::time::sleep_until(next.into()).await;
        }
        (seen, most_fds)
    });
    let started = Instant::now();
    let (mut held, mut failed) = (Vec::new(), 0);
    while held.len() + failed < count && Instant::now() < until {
        let batch = (count - held.len() - failed).min(100);
        let connects = (0..batch).map(|_| tokio::spawn(connect(target.gateway, None)));
        for connecting in connects.collect::<Vec<_>>() {
            match connecting.await {
                Ok(Ok(stream)) => held.push(stream),
                _ => failed += 1,
            }
        }
    }
    let (opened, opened_in) = (held.len(), started.elapsed());
    // The connections stay open until the health checks (to `until`) are done.
    let (health, most_fds) = health.await.unwrap_or_default();
    drop(held);
    vec![
        format!(
            "attacker: {opened} of {count} idle connections open after {:.1} s ({failed} connects failed or timed out)",
            opened_in.as_secs_f64()
        ),
        format!(
            "admin /healthz once a second meanwhile: {}; gateway's open fds at most {most_fds}",
            tally(&health)
        ),
    ]
}
