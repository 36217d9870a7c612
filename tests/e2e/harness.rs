//! Test environment: real stub backends and a real gateway on 127.0.0.1 ephemeral ports, a config
//! written to a fresh folder, and a small HTTP client that returns exactly what a user would see.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tai_gateway::config::Config;
use tai_gateway::runtime::Runtime;
use tai_gateway::server::ServerHandle;
use tai_stubs::StubServers;

/// The repository's `proto/` folder.
pub(crate) fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto")
}

/// A fresh, empty folder under the system temp dir (removed when dropped).
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "tai-gateway-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the folder (creating sub-folders) and returns the path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of the repository's `gateway.yaml` in a fresh folder, as on a fresh clone: `proto` and
/// `certs/dev-jwt` linked in, and no `certs/dev` (run `tai-gateway certs dev` to make it).
pub(crate) fn repository_config_copy() -> (TempDir, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new();
    let text = std::fs::read_to_string(repo.join("gateway.yaml")).expect("read gateway.yaml");
    let path = dir.write("gateway.yaml", &text);
    std::fs::create_dir_all(dir.path().join("certs")).expect("certs folder");
    for linked in ["proto", "certs/dev-jwt"] {
        std::os::unix::fs::symlink(repo.join(linked), dir.path().join(linked)).expect("link");
    }
    (dir, path)
}

/// The default test config: both TAI services, stub addresses and proto folder filled in.
/// `{extra_governor}` lets a test add keys to the governor route.
pub(crate) fn default_config(stubs: &StubServers) -> String {
    format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
admin:
  address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{proto}"]
upstreams:
  governor:
    address: {gov}
  coordinator:
    address: {coord}
routes:
  - service: tai.Governor
    upstream: governor
  - service: tai.Coordinator
    upstream: coordinator
headers:
  request_to_metadata: [x-tenant-id, x-stub-*]
  metadata_to_response: [x-stub-service, x-stub-trailer]
"#,
        proto = proto_dir().display(),
        gov = stubs.governor_addr,
        coord = stubs.coordinator_addr,
    )
}

/// [`default_config`] with two cleartext listeners: `all` (every route) and `partner` (only the
/// route named `partner_route`).
pub(crate) fn two_listeners_config(stubs: &StubServers, partner_route: &str) -> String {
    let listeners = format!(
        "listeners:\n  - name: all\n    address: 127.0.0.1:0\n\
         \x20 - name: partner\n    address: 127.0.0.1:0\n    routes: [{partner_route}]\n"
    );
    default_config(stubs).replacen(
        "listeners:\n  http:\n    address: 127.0.0.1:0\n",
        &listeners,
        1,
    )
}

/// A running stub pair + gateway.
pub(crate) struct TestEnv {
    pub stubs: StubServers,
    pub gateway: ServerHandle,
    pub dir: TempDir,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// What a client saw.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The body parsed as JSON (panics with the body when it is not JSON).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// A response header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) async fn start_stubs() -> StubServers {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    StubServers::start(any, any).await.expect("start stubs")
}

impl TestEnv {
    /// Stubs + gateway on the default test config.
    pub(crate) async fn start() -> TestEnv {
        TestEnv::start_with(|config| config).await
    }

    /// Stubs + gateway on the default test config as changed by `edit`.
    pub(crate) async fn start_with(edit: impl FnOnce(String) -> String) -> TestEnv {
        let stubs = start_stubs().await;
        let config = edit(default_config(&stubs));
        TestEnv::start_on(stubs, &config).await
    }

    /// Stubs + gateway on exactly this config text.
    pub(crate) async fn start_on(stubs: StubServers, config: &str) -> TestEnv {
        let dir = TempDir::new();
        let path = dir.write("gateway.yaml", config);
        let gateway = start_gateway(&path, config).await;
        TestEnv {
            stubs,
            gateway,
            dir,
            client: http1_client(),
        }
    }

    /// The address of the listener named `name`.
    pub(crate) fn listener_addr(&self, name: &str) -> std::net::SocketAddr {
        let listener = self.gateway.listeners.iter().find(|l| l.name == name);
        listener.expect("listener").addr
    }

    /// `http://127.0.0.1:PORT` of the public listener.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.gateway.http_addr.expect("http listener"))
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &str) -> Reply {
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Some(body),
        )
        .await
    }

    /// Sends a request with the given headers and optional body over HTTP/1.1.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        send_with(
            &self.client,
            method,
            &format!("{}{path}", self.base()),
            headers,
            body,
        )
        .await
    }
}

/// Builds a runtime from config text and starts serving it.
pub(crate) async fn start_gateway(path: &Path, config: &str) -> ServerHandle {
    let config = Config::parse(path, config).unwrap_or_else(|e| panic!("config rejected:\n{e}"));
    let runtime = Runtime::build(config).unwrap_or_else(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("runtime rejected:\n{}", text.join("\n"))
    });
    ServerHandle::start(runtime).await.expect("start gateway")
}

pub(crate) fn http1_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) fn h2c_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub(crate) async fn send_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
    let response = client
        .request(request.body(body).expect("request"))
        .await
        .expect("send request");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("read body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The real `tai-gateway run` binary, serving a config on free ports.
pub(crate) struct RunningBinary {
    pub(crate) child: std::process::Child,
    pub(crate) http_port: u16,
    pub(crate) admin_port: u16,
    /// The config file it runs (tests edit it to drive reloads).
    pub(crate) config_path: PathBuf,
    /// The config text it was started with.
    pub(crate) config: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts `tai-gateway run` on a config made for two free ports (public, admin) and waits until
/// admin `/ready` answers. Ports are found by binding port 0 and releasing it, so a parallel test
/// can take one before the binary binds it; the binary then exits at once and is started again on
/// new ports (at most 5 times). Readiness is polled at most 100 times, 100 ms apart.
pub(crate) async fn run_binary(
    dir: &TempDir,
    config_for: impl Fn(u16, u16) -> String,
) -> RunningBinary {
    run_binary_logging(dir, config_for, None).await
}

/// [`run_binary`], with stderr appended to `log` and the config's own `log_level` (no
/// `RUST_LOG`) when a log file is given.
pub(crate) async fn run_binary_logging(
    dir: &TempDir,
    config_for: impl Fn(u16, u16) -> String,
    log: Option<&Path>,
) -> RunningBinary {
    for _ in 0..5 {
        let (http_port, admin_port) = (free_port(), free_port());
        let config = config_for(http_port, admin_port);
        let config_path = dir.write("gateway.yaml", &config);
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"));
        command
            .args(["run", "--config", config_path.to_str().expect("utf-8 path")])
            .stdout(std::process::Stdio::null());
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("log file");
                command.env_remove("RUST_LOG").stderr(file);
            }
            None => {
                command
                    .env("RUST_LOG", "error")
                    .stderr(std::process::Stdio::null());
            }
        }
        let mut child = command.spawn().expect("spawn tai-gateway");
        let client = http1_client();
        let ready_url = format!("http://127.0.0.1:{admin_port}/ready");
        for _ in 0..100 {
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            let request = Request::get(ready_url.as_str())
                .body(Full::new(Bytes::new()))
                .expect("request");
            if client.request(request).await.is_ok() {
                return RunningBinary {
                    child,
                    http_port,
                    admin_port,
                    config_path,
                    config,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("tai-gateway did not become ready on any of 5 port pairs");
}

/// Headless Chromium on `url`, bounded (a browser that hangs fails the test instead of holding
/// CI), given `budget_ms` of virtual time for the page's scripts and `extra` arguments; its
/// standard output.
pub(crate) async fn chromium(url: String, budget_ms: u32, extra: Vec<String>) -> String {
    let run = move || {
        std::process::Command::new("timeout")
            .args([
                "60",
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
            ])
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .args(extra)
            .arg(url)
            .output()
            .expect("chromium (Debian package chromium; .ci/run installs it)")
    };
    let output = tokio::task::spawn_blocking(run)
        .await
        .expect("chromium ran");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
