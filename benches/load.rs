//! Load benchmark: `POST /v1/policies/propose` through the gateway (HTTP/1.1 keep-alive, JSON; in
//! cleartext and over TLS) vs. the same call as gRPC straight to the stub, in one run, so the ratios
//! hold on a noisy machine.
//!
//! Run: `cargo bench --bench load` (optional env: LOAD_CONNECTIONS=32, LOAD_SECONDS=10,
//! LOAD_MAX_REQUESTS=400000, LOAD_ACCESS_LOG=off|on, LOAD_GATEWAY_CPUS=1,
//! LOAD_WORKERS=auto|N for the gateway's `workers:`). The gateway runs as its own process (the binary `cargo bench` builds, with the dist settings) so its CPU
//! time can be read from /proc; the stubs and the load generator share this process on separate
//! runtimes. Every loop is bounded by both a request count and a wall-clock limit.

#[path = "support/process.rs"]
mod process;
use process::{free_port, stop};

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

#[path = "load/tls.rs"]
mod tls;

const POLICY_JSON: &str = r#"{"policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"}}"#;

struct Settings {
    connections: usize,
    duration: Duration,
    max_requests: u64,
    /// The access log (one JSON line per request, to /dev/null here) costs CPU too; off by default
    /// so the figure is comparable with the target, `LOAD_ACCESS_LOG=on` to include it.
    access_log: bool,
    /// `LOAD_GATEWAY_CPUS=1,3`: the gateway runs alone on these CPUs and this process (load
    /// generator and stub) on the others, in every phase, so the direct phase gets exactly the
    /// CPUs the client and backend have in the gateway phase. Unset: everything shares every CPU.
    gateway_cpus: Option<Vec<usize>>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Results of one load phase.
struct Phase {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[index]
    }
}

/// CPU time (user + system) of a process so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name and state.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    let hz = 100; // USER_HZ is 100 on Linux for every architecture we run on.
    Duration::from_micros(ticks * 1_000_000 / hz)
}

fn main() {
    let settings = Settings {
        connections: env_or("LOAD_CONNECTIONS", 32),
        duration: Duration::from_secs(env_or("LOAD_SECONDS", 10)),
        max_requests: env_or("LOAD_MAX_REQUESTS", 400_000),
        access_log: std::env::var("LOAD_ACCESS_LOG").is_ok_and(|v| v == "on"),
        gateway_cpus: std::env::var("LOAD_GATEWAY_CPUS").ok().map(|v| {
            v.split(',')
                .map(|n| {
                    n.trim()
                        .parse()
                        .expect("LOAD_GATEWAY_CPUS: CPU numbers, e.g. 1 or 1,3")
                })
                .collect()
        }),
    };
    // Pin this process before it starts any thread: every later thread inherits the mask.
    if let Some(cpus) = &settings.gateway_cpus {
        pin_self_away_from(cpus);
    }
    // Stubs on their own runtime/threads, so they are not starved by the load generator.
    let stub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("stub runtime");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let stubs = stub_rt
        .block_on(tai_stubs::StubServers::start(any, any))
        .expect("start stubs");

    let dir = std::env::temp_dir().join(format!("tai-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let http_port = free_port();
    let admin_port = free_port();
    let tls_port = free_port();
    tai_gateway::listener::tls::install_default_provider();
    tai_gateway::listener::tls::dev::write(&dir.join("certs")).expect("write dev certificates");
    let config = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:{http_port}\n  \
         tls:\n    address: 127.0.0.1:{tls_port}\n    certificates:\n      - cert: certs/server.pem\n        key: certs/server-key.pem\n\
         admin:\n  address: 127.0.0.1:{admin_port}\n\
         descriptors:\n  proto_dirs: [\"{proto}\"]\nupstreams:\n  governor:\n    address: {gov}\n  coordinator:\n    address: {coord}\n\
         routes:\n  - service: tai.Governor\n    upstream: governor\n  - service: tai.Coordinator\n    upstream: coordinator\n  \
         - name: governor-jwt\n    methods: [tai.Governor/ProposePolicy]\n    upstream: governor\n    \
         http_rules:\n      - method: tai.Governor/ProposePolicy\n        post: /bench/jwt/propose\n        body: \"*\"\n    \
         auth:\n      mode: required\n      providers: [dev]\n      require_scopes: [policy:write]\n\
         auth:\n  providers:\n    dev:\n      issuer: tai-gateway-dev\n      audiences: [tai-gateway]\n      algorithms: [EdDSA]\n      pem_file: \"{jwt_public}\"\n\
         access_log:\n  enabled: {access_log}\nworkers: {workers}\n",
        workers = std::env::var("LOAD_WORKERS").unwrap_or_else(|_| "auto".to_owned()),
        jwt_public = concat!(env!("CARGO_MANIFEST_DIR"), "/certs/dev-jwt/public.pem"),
        access_log = settings.access_log,
        proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto"),
        gov = stubs.governor_addr,
        coord = stubs.coordinator_addr,
    );
    let config_path = dir.join("gateway.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let mut gateway = match &settings.gateway_cpus {
        Some(cpus) => {
            let list: Vec<String> = cpus.iter().map(ToString::to_string).collect();
            let mut command = Command::new("taskset");
            command
                .args(["-c", &list.join(",")])
                .arg(env!("CARGO_BIN_EXE_tai-gateway"));
            command
        }
        None => Command::new(env!("CARGO_BIN_EXE_tai-gateway")),
    };
    let mut gateway = gateway
        .args(["run", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start gateway");

    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    let result = load_rt.block_on(async {
        wait_ready(admin_port).await?;
        let gateway_addr: SocketAddr = format!("127.0.0.1:{http_port}").parse().expect("addr");
        // Warm-up: connections, pools, allocator.
        let warm = Settings {
            connections: settings.connections,
            duration: Duration::from_secs(1),
            max_requests: 20_000,
            access_log: settings.access_log,
            gateway_cpus: None,
        };
        run_http(gateway_addr, &warm).await;
        let cpu_before = cpu_time(gateway.id());
        let through_gateway = run_http(gateway_addr, &settings).await;
        let gateway_cpu = cpu_time(gateway.id()).saturating_sub(cpu_before);
        let tls_addr: SocketAddr = format!("127.0.0.1:{tls_port}").parse().expect("addr");
        let tls_client = tls::client(&dir.join("certs/ca.pem"));
        tls::run_https(tls_addr, tls_client.clone(), &warm, PROPOSE, None).await;
        let cpu_before = cpu_time(gateway.id());
        let over_tls = tls::run_https(tls_addr, tls_client.clone(), &settings, PROPOSE, None).await;
        let tls_cpu = cpu_time(gateway.id()).saturating_sub(cpu_before);
        // The same over TLS with a JWT verified on every request (EdDSA dev key, scope check).
        let token = mint_dev_token()?;
        tls::run_https(
            tls_addr,
            tls_client.clone(),
            &warm,
            JWT_PROPOSE,
            Some(token.clone()),
        )
        .await;
        let cpu_before = cpu_time(gateway.id());
        let with_jwt =
            tls::run_https(tls_addr, tls_client, &settings, JWT_PROPOSE, Some(token)).await;
        let jwt_cpu = cpu_time(gateway.id()).saturating_sub(cpu_before);
        run_grpc(stubs.governor_addr, &warm).await;
        let direct = run_grpc(stubs.governor_addr, &settings).await;
        Ok::<_, String>((
            through_gateway,
            gateway_cpu,
            (over_tls, tls_cpu),
            (with_jwt, jwt_cpu),
            direct,
        ))
    });
    stop(&mut gateway);
    let _ = std::fs::remove_dir_all(&dir);
    let (through_gateway, gateway_cpu, (over_tls, tls_cpu), (with_jwt, jwt_cpu), direct) =
        match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("load benchmark failed: {e}");
                std::process::exit(1);
            }
        };
    report(&settings, &through_gateway, gateway_cpu, &direct);
    report_tls(&through_gateway, gateway_cpu, &over_tls, tls_cpu);
    report_jwt(&over_tls, tls_cpu, &with_jwt, jwt_cpu);
    stub_rt.block_on(stubs.shutdown());
}

fn report(settings: &Settings, gw: &Phase, cpu: Duration, direct: &Phase) {
    println!(
        "load: POST /v1/policies/propose, {} connections, up to {:?} / {} requests per phase, access log {}",
        settings.connections,
        settings.duration,
        settings.max_requests,
        if settings.access_log { "on" } else { "off" }
    );
    match &settings.gateway_cpus {
        Some(cpus) => println!(
            "CPUs: gateway alone on {cpus:?}; load generator and stub on the others, in every phase"
        ),
        None => println!("CPUs: load generator, stub and gateway share every CPU"),
    }
    println!(
        "{:<28} {:>10} {:>8} {:>9} {:>9} {:>8}",
        "phase", "req/s", "errors", "p50 µs", "p99 µs", "count"
    );
    for (name, phase) in [("gateway HTTP/1.1 JSON", gw), ("direct gRPC (h2c)", direct)] {
        println!(
            "{:<28} {:>10.0} {:>8} {:>9} {:>9} {:>8}",
            name,
            phase.rate(),
            phase.errors,
            phase.percentile(0.5),
            phase.percentile(0.99),
            phase.requests
        );
    }
    let cpu_per_request = cpu.as_secs_f64() * 1e6 / gw.requests.max(1) as f64;
    println!(
        "gateway CPU per request: {cpu_per_request:.1} µs ({:?} CPU for {} requests)",
        cpu, gw.requests
    );
    println!(
        "throughput ratio gateway/direct: {:.2}",
        gw.rate() / direct.rate()
    );
    println!(
        "p50 ratio gateway/direct: {:.2}",
        gw.percentile(0.5) as f64 / direct.percentile(0.5).max(1) as f64
    );
}

fn report_tls(plain: &Phase, plain_cpu: Duration, tls: &Phase, tls_cpu: Duration) {
    println!(
        "{:<28} {:>10.0} {:>8} {:>9} {:>9} {:>8}",
        "gateway HTTPS HTTP/1.1 JSON",
        tls.rate(),
        tls.errors,
        tls.percentile(0.5),
        tls.percentile(0.99),
        tls.requests
    );
    let per = |cpu: Duration, phase: &Phase| cpu.as_secs_f64() * 1e6 / phase.requests.max(1) as f64;
    let (plain_us, tls_us) = (per(plain_cpu, plain), per(tls_cpu, tls));
    println!(
        "gateway CPU per request over TLS: {tls_us:.1} µs ({:?} CPU for {} requests); TLS adds {:.1} µs",
        tls_cpu,
        tls.requests,
        tls_us - plain_us
    );
}

fn report_jwt(tls: &Phase, tls_cpu: Duration, jwt: &Phase, jwt_cpu: Duration) {
    println!(
        "{:<28} {:>10.0} {:>8} {:>9} {:>9} {:>8}",
        "gateway HTTPS + JWT",
        jwt.rate(),
        jwt.errors,
        jwt.percentile(0.5),
        jwt.percentile(0.99),
        jwt.requests
    );
    let per = |cpu: Duration, phase: &Phase| cpu.as_secs_f64() * 1e6 / phase.requests.max(1) as f64;
    let (tls_us, jwt_us) = (per(tls_cpu, tls), per(jwt_cpu, jwt));
    println!(
        "gateway CPU per request over TLS with JWT: {jwt_us:.1} µs ({:?} CPU for {} requests); JWT verification adds {:.1} µs",
        jwt_cpu,
        jwt.requests,
        jwt_us - tls_us
    );
}

/// Moves this process (every thread it has) off `gateway_cpus`, onto the machine's other CPUs.
fn pin_self_away_from(gateway_cpus: &[usize]) {
    let all = std::thread::available_parallelism().map_or(1, usize::from);
    let others: Vec<String> = (0..all)
        .filter(|cpu| !gateway_cpus.contains(cpu))
        .map(|cpu| cpu.to_string())
        .collect();
    assert!(
        !others.is_empty(),
        "LOAD_GATEWAY_CPUS leaves no CPU for the load generator"
    );
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &others.join(",")])
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .status()
        .expect("run taskset");
    assert!(status.success(), "taskset failed: {status}");
}

/// Path of the unauthenticated propose route, and of the same method behind a required JWT.
const PROPOSE: &str = "/v1/policies/propose";
const JWT_PROPOSE: &str = "/bench/jwt/propose";

/// `Bearer <token>` for the committed dev key, minted by the gateway binary's `token` command.
fn mint_dev_token() -> Result<http::HeaderValue, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args([
            "token",
            "--sub",
            "bench",
            "--scope",
            "policy:write",
            "--ttl",
            "1h",
            "--key",
        ])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/certs/dev-jwt/private.pem"
        ))
        .output()
        .map_err(|e| format!("cannot run tai-gateway token: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tai-gateway token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())
}

async fn wait_ready(admin_port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ready_once(admin_port).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("gateway did not become ready within 30 s".to_owned())
}

async fn ready_once(admin_port: u16) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", admin_port)).await else {
        return false;
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(conn);
    let Ok(request) = Request::get("/ready")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
    else {
        return false;
    };
    matches!(sender.send_request(request).await, Ok(response) if response.status() == StatusCode::OK)
}

/// Shared budget of one phase: stops every worker at the request count or the deadline.
struct Budget {
    issued: AtomicU64,
    max: u64,
    deadline: Instant,
}

impl Budget {
    fn new(settings: &Settings) -> Budget {
        Budget {
            issued: AtomicU64::new(0),
            max: settings.max_requests,
            deadline: Instant::now() + settings.duration,
        }
    }

    fn take(&self) -> bool {
        Instant::now() < self.deadline && self.issued.fetch_add(1, Ordering::Relaxed) < self.max
    }
}

async fn run_http(addr: SocketAddr, settings: &Settings) -> Phase {
    let budget = Arc::new(Budget::new(settings));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..settings.connections {
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(stream) = TcpStream::connect(addr).await else {
                return (Vec::new(), 1);
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                return (Vec::new(), 1);
            };
            tokio::spawn(conn);
            propose_until_spent(&mut sender, &budget, PROPOSE, None).await
        }));
    }
    collect(tasks, started).await
}

/// `POST path` with the Policy JSON on one keep-alive HTTP/1.1 connection while `budget` lasts,
/// with `authorization` on every request when given: the latencies of the answered requests and
/// the error count (the first failure ends the connection). The cleartext and HTTPS phases
/// share it.
async fn propose_until_spent(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    budget: &Budget,
    path: &str,
    authorization: Option<&http::HeaderValue>,
) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    while budget.take() {
        let mut request = Request::post(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(POLICY_JSON.as_bytes())))
            .expect("request");
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value.clone());
        }
        let t0 = Instant::now();
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.is_ok() && status == StatusCode::OK
            }
            Err(_) => false,
        };
        if !ok {
            return (latencies, 1);
        }
        latencies.push(t0.elapsed().as_micros() as u32);
    }
    (latencies, 0)
}

/// The Policy message as protobuf, framed for gRPC.
fn grpc_policy_frame() -> Bytes {
    // policy_type = 2, policy_name = 3, rules = 4 (map entries: key = 1, value = 2)
    let mut message = BytesMut::new();
    let string_field = |buf: &mut BytesMut, tag: u8, text: &str| {
        buf.put_u8(tag);
        buf.put_u8(text.len() as u8);
        buf.put_slice(text.as_bytes());
    };
    string_field(&mut message, 0x12, "access");
    string_field(&mut message, 0x1a, "deny-external");
    for (k, v) in [("effect", "deny"), ("scope", "external")] {
        let mut entry = BytesMut::new();
        string_field(&mut entry, 0x0a, k);
        string_field(&mut entry, 0x12, v);
        message.put_u8(0x22);
        message.put_u8(entry.len() as u8);
        message.put_slice(&entry);
    }
    let mut framed = BytesMut::new();
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(&message);
    framed.freeze()
}

async fn run_grpc(addr: SocketAddr, settings: &Settings) -> Phase {
    let budget = Arc::new(Budget::new(settings));
    let frame = grpc_policy_frame();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..settings.connections {
        let budget = budget.clone();
        let frame = frame.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let Ok(stream) = TcpStream::connect(addr).await else {
                return (latencies, 1);
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, conn)) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
            else {
                return (latencies, 1);
            };
            tokio::spawn(conn);
            while budget.take() {
                let request = Request::post(format!("http://{addr}/tai.Governor/ProposePolicy"))
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(Full::new(frame.clone()))
                    .expect("request");
                let t0 = Instant::now();
                let ok = match sender.send_request(request).await {
                    Ok(response) => match response.into_body().collect().await {
                        Ok(collected) => collected
                            .trailers()
                            .and_then(|t| t.get("grpc-status"))
                            .is_some_and(|s| s == "0"),
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t0.elapsed().as_micros() as u32);
                } else {
                    errors += 1;
                    break;
                }
            }
            (latencies, errors)
        }));
    }
    collect(tasks, started).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<(Vec<u32>, u64)>>, started: Instant) -> Phase {
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies_us.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Phase {
        requests: latencies_us.len() as u64,
        errors,
        elapsed,
        latencies_us,
    }
}
