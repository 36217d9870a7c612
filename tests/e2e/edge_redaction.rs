//! Issue 18, item 8: a URL from the config is shown one way everywhere — `/config`, log lines,
//! config errors — without its user info and query (`config::redact_url`). Runs the real binary
//! and reads what it prints.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use crate::auth::{JwksServer, config, jwks};
use crate::harness::{TempDir, http1_client, send_with, start_stubs};

const SECRET_URL_PARTS: [&str; 2] = ["hunter2", "k-live-123"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Reproduction (before the fix): with `jwks_url: http://admin:hunter2@HOST/jwks.json?api_key=…`
/// answering 500, `/config` showed `http://HOST/jwks.json` but stderr had
/// `WARN … url=http://admin:hunter2@HOST/jwks.json?api_key=k-live-123 … JWKS refresh failed`.
#[tokio::test]
async fn the_jwks_refresh_warning_and_config_show_the_url_redacted() {
    let server = JwksServer::start(jwks(&["k1"])).await;
    server.set(500, "down".to_owned());
    let host = server
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/jwks.json");
    let url = format!("http://admin:hunter2@{host}/jwks.json?api_key=k-live-123");
    let stubs = start_stubs().await;
    let (http_port, admin_port) = (free_port(), free_port());
    let remote = format!(
        "    remote:\n      issuer: remote-issuer\n      algorithms: [EdDSA]\n      jwks_url: \"{url}\"\n"
    );
    let text = config(&stubs, &remote).replace(
        "listeners:\n  http:\n    address: 127.0.0.1:0\n",
        &format!(
            "listeners:\n  http:\n    address: 127.0.0.1:{http_port}\nadmin:\n  address: 127.0.0.1:{admin_port}\n"
        ),
    );
    let dir = TempDir::new();
    let path = dir.write("gateway.yaml", &text);
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["run", "--config", path.to_str().expect("utf-8")])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn tai-gateway");
    // The maintenance task fetches a never-fetched JWKS at once; the server answers 500.
    let started = Instant::now();
    let printed = loop {
        let printed = std::fs::read_to_string(&log).unwrap_or_default();
        if printed.contains("JWKS refresh failed") || started.elapsed() > Duration::from_secs(15) {
            break printed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let shown = format!("http://<redacted>@{host}/jwks.json?<redacted>");
    let config_page = send_with(
        &http1_client(),
        Method::GET,
        &format!("http://127.0.0.1:{admin_port}/config"),
        &[],
        None,
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(printed.contains("JWKS refresh failed"), "{printed}");
    assert!(printed.contains(&format!("url={shown}")), "{printed}");
    assert_eq!(config_page.status, StatusCode::OK);
    let providers = config_page.json()["auth"]["providers"].clone();
    let provider = providers
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "remote"))
        .expect("the remote provider");
    assert_eq!(provider["keys"]["jwks_url"], shown.as_str());
    for secret in SECRET_URL_PARTS {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        assert!(!config_page.body.contains(secret), "{}", config_page.body);
    }
}

/// Reproduction (before the fix): `redis: { url: "http://admin:hunter2@…?password=…" }` (a
/// wrong scheme) was refused with the whole URL, password included, in the error printed.
#[test]
fn a_config_error_shows_the_url_redacted() {
    let dir = TempDir::new();
    let text = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: governor\nredis:\n  url: \"http://admin:hunter2@redis.internal:6379/0?password=k-live-123\"\n",
        crate::harness::proto_dir().display()
    );
    let path = dir.write("gateway.yaml", &text);
    let output = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["run", "--config", path.to_str().expect("utf-8")])
        .env("RUST_LOG", "error")
        .output()
        .expect("run tai-gateway");
    assert!(!output.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.contains(
            "redis.url: `http://<redacted>@redis.internal:6379/0?<redacted>`: use redis://host:port/db"
        ),
        "{printed}"
    );
    for secret in SECRET_URL_PARTS {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
}
