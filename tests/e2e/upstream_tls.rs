//! TLS and mutual TLS to backends over real sockets: the stubs in their TLS mode (a rustls
//! acceptor in front of the tonic servers), certificates made in each test with rcgen into a
//! fresh folder, the gateway's `upstreams.<name>.tls`. A backend the gateway cannot trust, that
//! refuses its client certificate, or that does not speak HTTP/2 is a 502 naming the upstream.

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::json;
use tai_stubs::{ServingStatus, StubListener, StubServers, StubTls};
use tokio::net::TcpListener;

use crate::harness::{TempDir, TestEnv, proto_dir};

/// Every wait in this module is bounded by this.
const BOUND: Duration = Duration::from_secs(10);

/// A test CA that signs server and client certificates.
struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A certificate and its key, as PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("ca key");
        Ca(CertifiedIssuer::self_signed(params, key).expect("ca cert"))
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses).
    fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, |_| {})
    }

    fn leaf_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, "leaf");
        edit(&mut params);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.0).expect("sign");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// The stubs' server certificate: `localhost` and 127.0.0.1.
    fn server(&self) -> StubTls {
        let leaf = self.leaf(&["localhost", "127.0.0.1"]);
        StubTls::new(leaf.cert, leaf.key)
    }
}

/// A Governor and a Coordinator speaking TLS, each as told.
async fn tls_stubs(governor: &StubTls, coordinator: &StubTls) -> StubServers {
    let bind = || TcpListener::bind("127.0.0.1:0");
    let governor = StubListener::tls(bind().await.expect("bind"), governor).expect("tls");
    let coordinator = StubListener::tls(bind().await.expect("bind"), coordinator).expect("tls");
    StubServers::start_on(governor, coordinator).expect("start stubs")
}

/// A gateway config for both stubs; `governor_tls` and `coordinator_tls` are the `tls:` bodies
/// of the two upstreams (indented by 6).
fn config(stubs: &StubServers, governor_tls: &str, coordinator_tls: &str) -> String {
    format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{proto}"]
upstreams:
  governor:
    address: {gov}
    tls:
{governor_tls}  coordinator:
    address: {coord}
    tls:
{coordinator_tls}routes:
  - service: tai.Governor
    upstream: governor
  - service: tai.Coordinator
    upstream: coordinator
"#,
        proto = proto_dir().display(),
        gov = stubs.governor_addr,
        coord = stubs.coordinator_addr,
    )
}

/// `ca: <file>` as a `tls:` body, the CA written to `name` in `dir`.
fn ca_only(dir: &TempDir, name: &str, ca: &Ca) -> String {
    format!("      ca: {}\n", dir.write(name, &ca.pem()).display())
}

/// `ca`, `client_cert` and `client_key` as a `tls:` body.
fn with_client_cert(dir: &TempDir, ca: &Ca, client: &Leaf) -> String {
    format!(
        "{}      client_cert: {}\n      client_key: {}\n",
        ca_only(dir, "ca.pem", ca),
        dir.write("client.pem", &client.cert).display(),
        dir.write("client-key.pem", &client.key).display(),
    )
}

/// The JSON error a client gets when TLS to `upstream` at `addr` failed for `reason`.
fn tls_failure(upstream: &str, addr: SocketAddr, reason: &str) -> serde_json::Value {
    json!({
        "code": 14,
        "message": format!("TLS to upstream `{upstream}` failed: {addr}: {reason}"),
        "details": [],
    })
}

/// Stubs + gateway on `config(stubs, governor_tls, coordinator_tls)`.
async fn start(stubs: StubServers, governor_tls: &str, coordinator_tls: &str) -> TestEnv {
    let text = config(&stubs, governor_tls, coordinator_tls);
    TestEnv::start_on(stubs, &text).await
}

#[tokio::test]
async fn a_tls_backend_verified_with_its_ca_answers() {
    let (ca, dir) = (Ca::new("backend CA"), TempDir::new());
    let stubs = tls_stubs(&ca.server(), &ca.server()).await;
    let tls = ca_only(&dir, "ca.pem", &ca);
    let env = start(stubs, &tls, &tls).await;

    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({"policies": []}));
}

#[tokio::test]
async fn an_mtls_backend_takes_the_gateway_with_its_client_certificate_and_refuses_it_without() {
    let (server_ca, client_ca, dir) = (Ca::new("backend CA"), Ca::new("client CA"), TempDir::new());
    let mtls = server_ca.server().require_client_certs(client_ca.pem());
    let stubs = tls_stubs(&mtls, &mtls).await;
    let coordinator = stubs.coordinator_addr;
    let client = client_ca.leaf(&["gateway.test"]);
    let env = start(
        stubs,
        &with_client_cert(&dir, &server_ca, &client),
        &ca_only(&dir, "ca.pem", &server_ca),
    )
    .await;

    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json(), json!({"policies": []}));

    let reply = env.get("/v1/agents/a-1/actions/x-1").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(
        reply.json(),
        tls_failure(
            "coordinator",
            coordinator,
            "TLS handshake failed: received fatal alert: CertificateRequired"
        )
    );
}

/// Waits (at most [`BOUND`], polling) until `condition` holds.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let give_up = tokio::time::Instant::now() + BOUND;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn health_checks_use_the_same_tls_setup() {
    let (server_ca, client_ca, dir) = (Ca::new("backend CA"), Ca::new("client CA"), TempDir::new());
    let mtls = server_ca.server().require_client_certs(client_ca.pem());
    let stubs = tls_stubs(&mtls, &mtls).await;
    let client = client_ca.leaf(&["gateway.test"]);
    let checks = "    health_check: {interval: 20ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1}\n";
    let env = start(
        stubs,
        &format!("{}{checks}", with_client_cert(&dir, &server_ca, &client)),
        &format!("{}{checks}", ca_only(&dir, "ca.pem", &server_ca)),
    )
    .await;
    let runtime = env.gateway.gateway.runtime();
    let (governor, coordinator) = (
        &runtime.upstreams["governor"],
        &runtime.upstreams["coordinator"],
    );

    // Without a client certificate the checks fail at TLS, and the endpoint leaves rotation.
    wait_until("the coordinator is ejected", || {
        coordinator.stats().endpoints_unhealthy == 1
    })
    .await;
    // With one they reach the backend and read its answer.
    env.stubs.health().set("", ServingStatus::NotServing);
    wait_until("the governor is ejected", || {
        governor.stats().endpoints_unhealthy == 1
    })
    .await;
    env.stubs.health().set("", ServingStatus::Serving);
    wait_until("the governor is restored", || {
        governor.stats().endpoints_unhealthy == 0
    })
    .await;
    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn a_backend_certificate_for_another_name_or_expired_is_refused_at_the_handshake() {
    let (ca, dir) = (Ca::new("backend CA"), TempDir::new());
    let expired = ca.leaf_with(&["localhost", "127.0.0.1"], |params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let stubs = tls_stubs(&ca.server(), &StubTls::new(expired.cert, expired.key)).await;
    let (governor, coordinator) = (stubs.governor_addr, stubs.coordinator_addr);
    let other_name = format!(
        "{}      server_name: other.test\n",
        ca_only(&dir, "ca.pem", &ca)
    );
    let env = start(stubs, &other_name, &ca_only(&dir, "ca.pem", &ca)).await;

    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(
        reply.json(),
        tls_failure(
            "governor",
            governor,
            "TLS handshake failed: invalid peer certificate: certificate not valid for name \"other.test\"; certificate is only valid for DnsName(\"localhost\") or IpAddress(127.0.0.1)"
        )
    );
    // rustls names the verification time: the message is only known up to it.
    let reply = env.get("/v1/agents/a-1/actions/x-1").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    let body = reply.json();
    assert_eq!((&body["code"], &body["details"]), (&json!(14), &json!([])));
    let message = body["message"].as_str().unwrap_or_default();
    let (head, tail) = message
        .split_once(" (UNIX), ")
        .expect("a verification time");
    assert!(
        head.starts_with(&format!(
            "TLS to upstream `coordinator` failed: {coordinator}: TLS handshake failed: invalid peer certificate: certificate expired: verification time "
        )),
        "{message}"
    );
    assert!(
        tail.starts_with("but certificate is not valid after 1609459200 ("),
        "{message}"
    );
    // The gateway keeps serving, and says the same while the endpoint's reconnect backoff runs.
    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_backend_that_does_not_negotiate_h2_is_a_502() {
    let (ca, dir) = (Ca::new("backend CA"), TempDir::new());
    let http1_only = ca.server().alpn(&[b"http/1.1"]);
    let no_alpn = ca.server().alpn(&[]);
    let stubs = tls_stubs(&http1_only, &no_alpn).await;
    let (governor, coordinator) = (stubs.governor_addr, stubs.coordinator_addr);
    let tls = ca_only(&dir, "ca.pem", &ca);
    let env = start(stubs, &tls, &tls).await;

    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(
        reply.json(),
        tls_failure(
            "governor",
            governor,
            "TLS handshake failed: received fatal alert: NoApplicationProtocol"
        )
    );
    let reply = env.get("/v1/agents/a-1/actions/x-1").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(
        reply.json(),
        tls_failure(
            "coordinator",
            coordinator,
            "the backend did not negotiate HTTP/2 (no ALPN `h2`)"
        )
    );
}

#[tokio::test]
async fn a_rotated_ca_file_is_picked_up_and_a_broken_one_keeps_the_last_good() {
    let (ca, other, dir) = (Ca::new("backend CA"), Ca::new("other CA"), TempDir::new());
    let stubs = tls_stubs(&ca.server(), &ca.server()).await;
    let governor = stubs.governor_addr;
    let tls = format!(
        "{}      reload_interval: 20ms\n",
        ca_only(&dir, "ca.pem", &other)
    );
    let env = start(stubs, &tls, &ca_only(&dir, "coordinator-ca.pem", &ca)).await;
    let upstream = env.gateway.gateway.runtime().upstreams["governor"].clone();
    let mut stats = upstream.tls().expect("tls").reload_stats();

    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(
        reply.json(),
        tls_failure(
            "governor",
            governor,
            "TLS handshake failed: invalid peer certificate: UnknownIssuer"
        )
    );

    dir.write("ca.pem", &ca.pem());
    tokio::time::timeout(BOUND, stats.wait_for(|s| s.applied >= 1))
        .await
        .expect("reload within bound")
        .expect("stats");
    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\nbroken\n");
    tokio::time::timeout(BOUND, stats.wait_for(|s| s.failed >= 1))
        .await
        .expect("reload attempt within bound")
        .expect("stats");
    assert_eq!(stats.borrow().applied, 1, "the broken file was not applied");
    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn a_rotated_ca_ends_the_reconnect_backoff_of_failed_dials() {
    let (ca, other, dir) = (Ca::new("backend CA"), Ca::new("other CA"), TempDir::new());
    let stubs = tls_stubs(&ca.server(), &ca.server()).await;
    // No retries and a breaker that stays closed: each request is one dial (or one refusal).
    let governor = format!(
        "{}      reload_interval: 20ms\n    retry:\n      max_retries: 0\n\
         \x20   circuit_breaker:\n      consecutive_failures: 100\n",
        ca_only(&dir, "ca.pem", &other)
    );
    let env = start(stubs, &governor, &ca_only(&dir, "coordinator-ca.pem", &ca)).await;
    let upstream = env.gateway.gateway.runtime().upstreams["governor"].clone();
    let mut stats = upstream.tls().expect("tls").reload_stats();
    // Failed dials, each once the last one's backoff (50, 100, 200 ms) has passed: the backoff
    // is then 400 ms, far longer than the reload below takes.
    for pause in [0, 60, 110, 210] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let reply = env.get("/v1/policies").await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    }
    dir.write("ca.pem", &ca.pem());
    tokio::time::timeout(BOUND, stats.wait_for(|s| s.applied >= 1))
        .await
        .expect("reload within bound")
        .expect("stats");
    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn validate_reports_unreadable_and_mismatched_tls_files_at_their_settings() {
    let (ca, dir) = (Ca::new("backend CA"), TempDir::new());
    let (one, two) = (ca.leaf(&["gateway.test"]), ca.leaf(&["gateway.test"]));
    let cert = dir.write("client.pem", &one.cert);
    let key = dir.write("client-key.pem", &two.key);
    let missing = dir.path().join("missing-ca.pem");
    let text = format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{proto}"]
upstreams:
  governor:
    address: 127.0.0.1:1
    tls:
      ca: {missing}
  coordinator:
    address: 127.0.0.1:2
    tls:
      client_cert: {cert}
      client_key: {key}
routes:
  - service: tai.Governor
    upstream: governor
  - service: tai.Coordinator
    upstream: coordinator
"#,
        proto = proto_dir().display(),
        missing = missing.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let path = dir.write("gateway.yaml", &text);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["validate", path.to_str().expect("utf-8 path")])
        .output()
        .expect("run validate");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let path = path.display();
    assert_eq!(
        lines,
        [
            format!(
                "{path}:10:11: upstreams.governor.tls.ca: cannot read {}: No such file or directory (os error 2)",
                missing.display()
            ),
            format!(
                "{path}:15:19: upstreams.coordinator.tls.client_key: {}: key does not fit certificate {}: keys may not be consistent: KeyMismatch",
                key.display(),
                cert.display()
            ),
            format!("{path}: 2 problem(s)"),
        ]
    );
}

#[tokio::test]
async fn tls_failures_count_for_the_circuit_breaker_like_connection_failures() {
    let (ca, other, dir) = (Ca::new("backend CA"), Ca::new("other CA"), TempDir::new());
    let stubs = tls_stubs(&ca.server(), &ca.server()).await;
    let governor = stubs.governor_addr;
    let untrusted = format!(
        "{}    circuit_breaker: {{consecutive_failures: 1, open_for: 1h}}\n",
        ca_only(&dir, "other-ca.pem", &other)
    );
    let env = start(stubs, &untrusted, &ca_only(&dir, "ca.pem", &ca)).await;

    let reply = env.get("/v1/policies").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.body);
    assert_eq!(
        reply.json(),
        tls_failure(
            "governor",
            governor,
            "TLS handshake failed: invalid peer certificate: UnknownIssuer"
        )
    );
    // One failed handshake opened the endpoint's breaker: the next call is refused at once.
    let reply = env.get("/v1/policies").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    // The wait left (an hour, less the time since the failure) is in the header and the message.
    let wait: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((3500..=3600).contains(&wait), "{wait}");
    assert_eq!(
        reply.json(),
        json!({
            "code": 14,
            "message": format!("upstream `governor` is unavailable: every endpoint's circuit breaker is open (next probe in {wait}s)"),
            "details": [],
        })
    );
}
