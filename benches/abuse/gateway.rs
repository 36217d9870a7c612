//! The gateway under attack: the release binary `cargo bench` builds, as its own process, on a
//! config derived from the repository's `gateway.yaml` (so every limit, breaker and rate limit it
//! sets is the one measured), with only addresses, paths and the bench's extra route changed.
//! One process per attack, so its peak RSS (`VmHWM`) belongs to that attack alone.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{free_port, stop};

/// Path of the bench's own route: `tai.Governor/Echo` behind only the `header:x-client-id` limit
/// (attack 4), so the per-address limit of the default routes does not stop the flood first.
pub(crate) const KEYED_ECHO: &str = "/abuse/keyed/echo";

/// The header the keyed limit counts by.
pub(crate) const CLIENT_ID_HEADER: &str = "x-client-id";

/// Where the stub backends listen.
#[derive(Clone, Copy)]
pub(crate) struct Upstreams {
    pub(crate) governor: SocketAddr,
    pub(crate) coordinator: SocketAddr,
}

/// A running gateway process and the addresses it serves.
pub(crate) struct Gateway {
    child: Child,
    /// The public cleartext listener (HTTP/1.1 and h2c).
    pub(crate) http: SocketAddr,
    /// The admin server (`/healthz`, `/ready`).
    pub(crate) admin: SocketAddr,
    stderr_path: PathBuf,
}

impl Gateway {
    /// Writes the config into `dir` and starts the gateway on it; with `fd_limit`, under
    /// `ulimit -n fd_limit` (through `sh -c '…; exec …'`, so the PID is the gateway's).
    pub(crate) fn start(
        upstreams: Upstreams,
        dir: &Path,
        fd_limit: Option<u32>,
    ) -> Result<Gateway, String> {
        let (http_port, admin_port) = (free_port(), free_port());
        let config_path = dir.join("gateway.yaml");
        let text = config(upstreams, http_port, admin_port)?;
        std::fs::write(&config_path, text).map_err(|e| format!("write config: {e}"))?;
        let stderr_path = dir.join("gateway.stderr");
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
        let binary = env!("CARGO_BIN_EXE_tai-gateway");
        let mut command = match fd_limit {
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!(
                        "ulimit -n {limit} && exec \"$0\" run --config \"$1\""
                    ))
                    .arg(binary)
                    .arg(&config_path);
                sh
            }
            None => {
                let mut direct = Command::new(binary);
                direct.args(["run", "--config"]).arg(&config_path);
                direct
            }
        };
        let child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("start gateway: {e}"))?;
        Ok(Gateway {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            stderr_path,
        })
    }

    /// Waits (at most 30 s) until `/ready` answers 200.
    pub(crate) async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(exit) = self.exited() {
                let stderr = self.stderr_tail().unwrap_or_default();
                return Err(format!("gateway exited at start ({exit}): {stderr}"));
            }
            if crate::good::admin_get(self.admin, "/ready", Duration::from_secs(1)).await == Ok(200)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stderr = self.stderr_tail().unwrap_or_default();
        Err(format!("gateway not ready within 30 s: {stderr}"))
    }

    /// The gateway's process id (with `fd_limit` too: `sh` execs into it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set now, KiB (`VmRSS`); 0 once the process is gone.
    pub(crate) fn rss_kib(&self) -> u64 {
        status_kib(self.pid(), "VmRSS:")
    }

    /// Highest resident set since the start, KiB (`VmHWM`).
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        status_kib(self.pid(), "VmHWM:")
    }

    /// `Some(status)` once the process has exited (crashed, killed by the OOM killer, …).
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// How many lines the gateway wrote to stderr (warnings and errors) and the last one, without
    /// colour codes and cut at 300 characters, for the report; `None` when it wrote nothing.
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let last = text.lines().last()?;
        let mut plain = String::new();
        let mut in_escape = false;
        for c in last.chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (false, _) => plain.push(c),
                (true, _) => {}
            }
        }
        let plain: String = plain.chars().take(300).collect();
        Some(format!(
            "{} stderr lines; last: {plain}",
            text.lines().count()
        ))
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub(crate) fn stop(mut self) {
        stop(&mut self.child);
    }
}

/// Open file descriptors of a process (entries of `/proc/PID/fd`).
pub(crate) fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A `kB` line of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), KiB; 0 when unreadable.
pub(crate) fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The repository's `gateway.yaml` with the addresses, paths and the bench route changed, as
/// JSON (which YAML reads as it is). Comments go; every setting stays.
fn config(upstreams: Upstreams, http_port: u16, admin_port: u16) -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("gateway.yaml"))
        .map_err(|e| format!("read gateway.yaml: {e}"))?;
    let mut config: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("parse gateway.yaml: {e}"))?;
    let path = |p: &str| Value::from(root.join(p).display().to_string());
    set(
        &mut config,
        "/listeners/http/address",
        format!("127.0.0.1:{http_port}").into(),
    );
    // The TLS listener needs certificate files and is not what these attacks aim at.
    if let Some(listeners) = config
        .pointer_mut("/listeners")
        .and_then(Value::as_object_mut)
    {
        listeners.remove("tls");
    }
    set(
        &mut config,
        "/admin/address",
        format!("127.0.0.1:{admin_port}").into(),
    );
    set(
        &mut config,
        "/descriptors/proto_dirs",
        json!([path("proto")]),
    );
    set(
        &mut config,
        "/upstreams/governor/address",
        upstreams.governor.to_string().into(),
    );
    set(
        &mut config,
        "/upstreams/coordinator/address",
        upstreams.coordinator.to_string().into(),
    );
    if let Some(providers) = config
        .pointer_mut("/auth/providers")
        .and_then(Value::as_object_mut)
    {
        for provider in providers.values_mut() {
            if let Some(file) = provider.get("pem_file").and_then(Value::as_str) {
                let absolute = path(file);
                provider["pem_file"] = absolute;
            }
        }
    }
    set(
        &mut config,
        "/rate_limits/limits/per_client",
        json!({ "rate": "10/s", "burst": 20, "key": format!("header:{CLIENT_ID_HEADER}") }),
    );
    let keyed_route = json!({
        "name": "abuse-keyed",
        "methods": ["tai.Governor/Echo"],
        "upstream": "governor",
        "http_rules": [{ "method": "tai.Governor/Echo", "get": format!("{KEYED_ECHO}/{{string_value}}") }],
        "rate_limits": ["per_client"],
    });
    match config.pointer_mut("/routes").and_then(Value::as_array_mut) {
        Some(routes) => routes.push(keyed_route),
        None => return Err("gateway.yaml has no `routes` list".to_owned()),
    }
    serde_json::to_string_pretty(&config).map_err(|e| e.to_string())
}

/// Sets the value at a JSON pointer, making the objects on the way.
fn set(config: &mut Value, pointer: &str, value: Value) {
    let mut node = config;
    for key in pointer.trim_start_matches('/').split('/') {
        if !node.is_object() {
            *node = json!({});
        }
        node = node
            .as_object_mut()
            .map(|object| object.entry(key).or_insert(Value::Null))
            .expect("an object");
    }
    *node = value;
}
