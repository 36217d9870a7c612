//! `tai-gateway health`: one plain-HTTP GET of an admin endpoint (`/healthz` by default), so a
//! container image without curl can still run a `HEALTHCHECK`. The probe is healthy only on a 2xx
//! answer within the timeout.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where `tai-gateway health` looks when given no `--url`: the default admin address.
pub const DEFAULT_HEALTH_URL: &str = "http://127.0.0.1:9901/healthz";

/// Why a probe did not find the gateway healthy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// The URL is not `http://host:port/path` (the admin server speaks plain HTTP only).
    #[error("`{0}` is not an http://host[:port]/path URL")]
    BadUrl(String),
    /// No answer: connection refused, reset, or the HTTP exchange failed.
    #[error("no answer from {url}: {reason}")]
    Unreachable {
        /// The URL probed.
        url: String,
        /// What failed.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("no answer from {0} within the timeout")]
    Timeout(String),
    /// An answer that is not 2xx (e.g. 503 while shutting down).
    #[error("{url} answered {status}")]
    Unhealthy {
        /// The URL probed.
        url: String,
        /// Its status code.
        status: u16,
    },
}

/// GETs `url` and returns its status when it is 2xx.
pub async fn probe(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ProbeError::BadUrl(url.to_owned()))?;
    let (Some("http"), Some(authority)) = (uri.scheme_str(), uri.authority().cloned()) else {
        return Err(ProbeError::BadUrl(url.to_owned()));
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let status = tokio::time::timeout(timeout, get(&authority, &path))
        .await
        .map_err(|_| ProbeError::Timeout(url.to_owned()))?
        .map_err(|reason| ProbeError::Unreachable {
            url: url.to_owned(),
            reason,
        })?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(ProbeError::Unhealthy {
            url: url.to_owned(),
            status,
        })
    }
}

/// One HTTP/1.1 GET of `path` on `authority` (port 80 when it names none); the status.
async fn get(authority: &http::uri::Authority, path: &str) -> Result<u16, String> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let tcp = TcpStream::connect((host, authority.port_u16().unwrap_or(80)))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    // Drives the connection; ends when `sender` is dropped.
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-connection server answering every request with `status_line`; its address.
    async fn answering(status_line: &'static str) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let reply = format!("HTTP/1.1 {status_line}\r\ncontent-length: 0\r\n\r\n");
            let _ = socket.write_all(reply.as_bytes()).await;
        });
        addr
    }

    #[tokio::test]
    async fn a_2xx_answer_is_healthy_and_anything_else_is_not() {
        let ok = answering("200 OK").await;
        assert_eq!(
            probe(&format!("http://{ok}/healthz"), Duration::from_secs(5)).await,
            Ok(200)
        );
        let down = answering("503 Service Unavailable").await;
        let url = format!("http://{down}/ready");
        assert_eq!(
            probe(&url, Duration::from_secs(5)).await,
            Err(ProbeError::Unhealthy { url, status: 503 })
        );
    }

    #[tokio::test]
    async fn refused_connections_and_non_http_urls_are_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let refused = probe(&format!("http://{addr}/healthz"), Duration::from_secs(5)).await;
        assert!(
            matches!(refused, Err(ProbeError::Unreachable { .. })),
            "{refused:?}"
        );
        for bad in [
            "https://127.0.0.1:9901/healthz",
            "127.0.0.1:9901",
            "http:///x",
        ] {
            assert_eq!(
                probe(bad, Duration::from_secs(5)).await,
                Err(ProbeError::BadUrl(bad.to_owned()))
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out() {
        // Accepts but never answers; the paused clock jumps to the timeout.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/healthz", listener.local_addr().expect("addr"));
        assert_eq!(
            probe(&url, Duration::from_secs(3)).await,
            Err(ProbeError::Timeout(url))
        );
        drop(listener);
    }
}
