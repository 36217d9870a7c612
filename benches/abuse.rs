//! Abuse benchmark (issue 12, "one hostile client cannot hurt the others"): each attack runs for
//! a bounded time next to well-behaved clients, and the report says what those clients saw with
//! and without it, and how much memory the gateway took.
//!
//! Run: `cargo bench --bench abuse`. Knobs (env): ABUSE_SECONDS=10 (attack window),
//! ABUSE_BASELINE_SECONDS=5 (good clients alone first), ABUSE_RATE=20 (good requests/s),
//! ABUSE_TIMEOUT_MS=5000 (one good request's limit), ABUSE_TRICKLE_SECONDS=30 (attack 5's
//! window), ABUSE_POLICIES=60 and ABUSE_POLICY_KIB=200 (the stub store behind the large
//! answers), ABUSE_ONLY=breaker-grpc,slow-h1,… (a subset, by the names in the table).
//!
//! Each attack gets a fresh gateway process (the binary `cargo bench` builds: the dist settings, on the repository's
//! `gateway.yaml` with addresses changed: `abuse/gateway.rs`), so breaker state and peak RSS
//! (`VmHWM`) belong to that attack alone. The stubs run in this process on their own runtime.
//! Layout: `abuse/good.rs` the good clients, `abuse/attack.rs` one function per attack,
//! `abuse/raw_h2.rs` HTTP/2 as the attackers speak it, `abuse/report.rs` the tables.

#[path = "support/process.rs"]
mod process;

#[path = "abuse/attack.rs"]
mod attack;
#[path = "abuse/gateway.rs"]
mod gateway;
#[path = "abuse/good.rs"]
mod good;
#[path = "abuse/raw_h2.rs"]
mod raw_h2;
#[path = "abuse/report.rs"]
mod report;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use attack::Target;
use gateway::{Gateway, Upstreams};
use report::Outcome;

/// The knobs, from the environment.
struct Settings {
    window: Duration,
    baseline: Duration,
    trickle_window: Duration,
    load: good::Load,
    policies: usize,
    policy_kib: usize,
    only: Option<Vec<String>>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            window: Duration::from_secs(env_or("ABUSE_SECONDS", 10)),
            baseline: Duration::from_secs(env_or("ABUSE_BASELINE_SECONDS", 5)),
            trickle_window: Duration::from_secs(env_or("ABUSE_TRICKLE_SECONDS", 30)),
            load: good::Load {
                rate: env_or("ABUSE_RATE", 20),
                timeout: Duration::from_millis(env_or("ABUSE_TIMEOUT_MS", 5000)),
            },
            policies: env_or("ABUSE_POLICIES", 60),
            policy_kib: env_or("ABUSE_POLICY_KIB", 200),
            only: std::env::var("ABUSE_ONLY")
                .ok()
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect()),
        }
    }
}

/// The attacks of issue 12, in its order.
#[derive(Clone, Copy)]
enum Attack {
    /// 1: gRPC calls whose message is not protobuf (breaker poisoning).
    InvalidProtobuf { calls: u32 },
    /// 1: JSON bodies nested deep (breaker poisoning).
    DeepJson { calls: u32, depth: usize },
    /// 2: exports on one zero-window h2c connection (head-of-line blocking).
    HeadOfLine { streams: usize },
    /// 3: the large list on one zero-window h2c connection.
    SlowReadersH2 { requests: usize },
    /// 3: the large list on HTTP/1.1 sockets that never read.
    SlowReadersH1 { sockets: usize },
    /// 4: distinct 60 KB rate-limit keys.
    KeyFlood { requests: u32, header_bytes: usize },
    /// 5: a HEADERS frame one byte a second.
    HeaderTrickle { connections: usize },
    /// 6: idle connections against `ulimit -n`.
    ConnectionFlood { connections: usize, fd_limit: u32 },
}

const ATTACKS: [Attack; 9] = [
    Attack::InvalidProtobuf { calls: 20 },
    Attack::DeepJson {
        calls: 20,
        depth: 50,
    },
    Attack::HeadOfLine { streams: 3 },
    Attack::HeadOfLine { streams: 20 },
    Attack::SlowReadersH2 { requests: 90 },
    Attack::SlowReadersH1 { sockets: 90 },
    Attack::KeyFlood {
        requests: 20_000,
        header_bytes: 60_000,
    },
    Attack::HeaderTrickle { connections: 10 },
    Attack::ConnectionFlood {
        connections: 1000,
        fd_limit: 256,
    },
];

impl Attack {
    /// Short name, for ABUSE_ONLY and the tables.
    fn name(self) -> String {
        match self {
            Attack::InvalidProtobuf { .. } => "breaker-grpc".to_owned(),
            Attack::DeepJson { .. } => "breaker-json".to_owned(),
            Attack::HeadOfLine { streams } => format!("hol-{streams}"),
            Attack::SlowReadersH2 { .. } => "slow-h2".to_owned(),
            Attack::SlowReadersH1 { .. } => "slow-h1".to_owned(),
            Attack::KeyFlood { .. } => "key-flood".to_owned(),
            Attack::HeaderTrickle { .. } => "trickle".to_owned(),
            Attack::ConnectionFlood { .. } => "conn-flood".to_owned(),
        }
    }

    /// The item number.
    fn item(self) -> u8 {
        match self {
            Attack::InvalidProtobuf { .. } | Attack::DeepJson { .. } => 1,
            Attack::HeadOfLine { .. } => 2,
            Attack::SlowReadersH2 { .. } | Attack::SlowReadersH1 { .. } => 3,
            Attack::KeyFlood { .. } => 4,
            Attack::HeaderTrickle { .. } => 5,
            Attack::ConnectionFlood { .. } => 6,
        }
    }

    fn fd_limit(self) -> Option<u32> {
        match self {
            Attack::ConnectionFlood { fd_limit, .. } => Some(fd_limit),
            _ => None,
        }
    }

    fn window(self, settings: &Settings) -> Duration {
        match self {
            Attack::HeaderTrickle { .. } => settings.trickle_window,
            _ => settings.window,
        }
    }

    async fn run(self, target: &Target, pid: u32) -> Vec<String> {
        match self {
            Attack::InvalidProtobuf { calls } => attack::invalid_protobuf(target, calls).await,
            Attack::DeepJson { calls, depth } => attack::deep_json(target, calls, depth).await,
            Attack::HeadOfLine { streams } => attack::head_of_line(target, streams).await,
            Attack::SlowReadersH2 { requests } => attack::slow_readers_h2(target, requests).await,
            Attack::SlowReadersH1 { sockets } => attack::slow_readers_h1(target, sockets).await,
            Attack::KeyFlood {
                requests,
                header_bytes,
            } => attack::key_flood(target, requests, header_bytes).await,
            Attack::HeaderTrickle { connections } => {
                attack::header_trickle(target, connections).await
            }
            Attack::ConnectionFlood { connections, .. } => {
                attack::connection_flood(target, connections, pid).await
            }
        }
    }
}

fn main() {
    let settings = Settings::from_env();
    let stub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("stubs")
        .enable_all()
        .build()
        .expect("stub runtime");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let stubs = stub_rt
        .block_on(tai_stubs::StubServers::start(any, any))
        .expect("start stubs");
    let upstreams = Upstreams {
        governor: stubs.governor_addr,
        coordinator: stubs.coordinator_addr,
    };
    let list_bytes = match stub_rt.block_on(seed(upstreams.governor, &settings)) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("abuse benchmark: seeding the stub store failed: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "abuse: good clients GET {} at {}/s (timeout {:?}), {:?} alone then {:?} next to each attack; \
         stub store: {} policies, ListPolicies answer {:.1} MB as protobuf",
        good::GOOD_PATH,
        settings.load.rate,
        settings.load.timeout,
        settings.baseline,
        settings.window,
        settings.policies,
        list_bytes as f64 / 1e6
    );
    let dir = std::env::temp_dir().join(format!("tai-abuse-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("bench runtime");
    let mut outcomes = Vec::new();
    for attack in ATTACKS {
        let name = attack.name();
        if settings
            .only
            .as_ref()
            .is_some_and(|only| !only.contains(&name))
        {
            continue;
        }
        let phase_dir = dir.join(&name);
        let _ = std::fs::create_dir_all(&phase_dir);
        let outcome = rt.block_on(run_phase(attack, upstreams, &settings, &phase_dir));
        report::print_phase(&outcome);
        outcomes.push(outcome);
    }
    report::print_summary(&outcomes);
    let _ = std::fs::remove_dir_all(&dir);
    drop(rt);
    stub_rt.block_on(stubs.shutdown());
}

/// One attack against a fresh gateway: good clients alone, then good clients next to the attack.
async fn run_phase(
    attack: Attack,
    upstreams: Upstreams,
    settings: &Settings,
    dir: &Path,
) -> Outcome {
    let mut outcome = Outcome::new(attack.name(), attack.item(), attack.window(settings));
    let mut gateway = match Gateway::start(upstreams, dir, attack.fd_limit()) {
        Ok(gateway) => gateway,
        Err(e) => {
            outcome.notes.push(format!("not run: {e}"));
            return outcome;
        }
    };
    if let Err(e) = gateway.wait_ready().await {
        outcome.notes.push(format!("not run: {e}"));
        gateway.stop();
        return outcome;
    }
    outcome.calm = Some(good::run(gateway.http, settings.load, settings.baseline).await);
    outcome.rss_before_kib = gateway.rss_kib();
    let window = attack.window(settings);
    let target = Target {
        gateway: gateway.http,
        admin: gateway.admin,
        until: Instant::now() + window,
    };
    let pid = gateway.pid();
    let sampler = tokio::spawn(sample_rss(pid, target.until));
    let attack_run =
        tokio::time::timeout(window + Duration::from_secs(20), attack.run(&target, pid));
    let (notes, under_attack) =
        tokio::join!(attack_run, good::run(gateway.http, settings.load, window));
    outcome.notes = notes.unwrap_or_else(|_| vec!["attacker did not finish in time".to_owned()]);
    outcome.attacked = Some(under_attack);
    outcome.rss_sampled_peak_kib = sampler.await.unwrap_or(0);
    outcome.rss_after_kib = gateway.rss_kib();
    outcome.rss_hwm_kib = gateway.peak_rss_kib();
    if let Some(exit) = gateway.exited() {
        outcome
            .notes
            .push(format!("GATEWAY EXITED during the attack: {exit}"));
    }
    if let Some(stderr) = gateway.stderr_tail() {
        outcome.notes.push(format!("gateway: {stderr}"));
    }
    gateway.stop();
    outcome
}

/// Highest `VmRSS` of `pid` sampled every 100 ms until `until`, KiB.
async fn sample_rss(pid: u32, until: Instant) -> u64 {
    let mut peak = 0;
    while Instant::now() < until {
        peak = peak.max(gateway::status_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak
}

/// Fills the stub store with `policies` policies of about `policy_kib` KiB each (straight to the
/// stub over gRPC), and returns the size of the ListPolicies answer in protobuf bytes.
async fn seed(governor: SocketAddr, settings: &Settings) -> Result<usize, String> {
    use prost::Message;
    use tai_stubs::proto::tai::{ListPoliciesRequest, Policy, governor_client::GovernorClient};
    let channel = tonic::transport::Channel::from_shared(format!("http://{governor}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    // The list answer is larger than tonic's default 4 MiB decoding limit.
    let mut client = GovernorClient::new(channel).max_decoding_message_size(usize::MAX);
    let value = "v".repeat(1000);
    for n in 0..settings.policies {
        let rules = (0..settings.policy_kib)
            .map(|r| (format!("rule-{r:05}"), value.clone()))
            .collect();
        let policy = Policy {
            policy_type: "bulk".to_owned(),
            policy_name: format!("bulk-{n}"),
            rules,
            ..Default::default()
        };
        client
            .propose_policy(policy)
            .await
            .map_err(|e| e.to_string())?;
    }
    let list = client
        .list_policies(ListPoliciesRequest::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(list.into_inner().encoded_len())
}
