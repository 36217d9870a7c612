//! What an operator does: check a config with `tai-gateway validate`, add a service by dropping a
//! `.proto` (or a descriptor set) into the config with no Rust rebuild, and run the real binary
//! until SIGTERM.

use std::process::Command;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::backend::{self, Behaviour};
use crate::harness::{
    Reply, TempDir, TestEnv, http1_client, proto_dir, repository_config_copy, send_with,
    start_stubs,
};

/// What a finished `tai-gateway` process printed.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the real binary to completion with logging limited to errors.
fn tai_gateway(args: &[&str]) -> Finished {
    let output = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run tai-gateway");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

// ---- validate ----

#[test]
fn validate_accepts_the_repository_config() {
    // As on a fresh clone: the certs/dev files it names are made by `certs dev` first.
    let (dir, path) = repository_config_copy();
    let out = dir.path().join("certs/dev");
    let made = tai_gateway(&["certs", "dev", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let path = path.to_str().expect("utf-8 path");
    let done = tai_gateway(&["validate", path]);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(
        done.stdout,
        format!("{path}: OK (23 HTTP bindings, 2 upstreams)\n")
    );
    assert_eq!(done.stderr, "");
}

#[test]
fn validate_reports_the_missing_certificate_files_of_the_repository_config_at_their_setting() {
    // A fresh clone before `certs dev` (or `run --with-stubs`) has made certs/dev.
    let (dir, path) = repository_config_copy();
    // Where the setting is written: the first `- cert:` value.
    let text = std::fs::read_to_string(&path).expect("read");
    let (line, column) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| {
            l.find("- cert: certs/dev/server.pem")
                .map(|c| (i + 1, c + 9))
        })
        .expect("the cert setting");
    let path = path.to_str().expect("utf-8 path");
    let done = tai_gateway(&["validate", path]);
    assert_eq!(done.code, Some(1), "{}", done.stdout);
    let missing = dir.path().join("certs/dev/server.pem");
    assert_eq!(
        done.stderr,
        format!(
            "{path}:{line}:{column}: listeners[1].tls.certificates[0].cert: cannot read {}: No \
             such file or directory (os error 2)\n{path}: 1 problem(s)\n",
            missing.display()
        )
    );
}

#[test]
fn validate_reports_a_listener_key_that_does_not_fit_its_certificate_and_an_unparsable_ca() {
    let dir = TempDir::new();
    let out = dir.path().join("one");
    for folder in ["one", "two"] {
        let out = dir.path().join(folder);
        let made = tai_gateway(&["certs", "dev", "--out", out.to_str().expect("utf-8")]);
        assert_eq!(made.code, Some(0), "{}", made.stderr);
    }
    let broken_ca = dir.write("broken-ca.pem", "-----BEGIN CERTIFICATE-----\nbroken\n");
    let config = format!(
        r#"listeners:
  - name: public
    address: 127.0.0.1:0
    tls:
      certificates:
        - cert: one/server.pem
          key: two/server-key.pem
  - name: partner
    address: 127.0.0.1:0
    tls:
      certificates:
        - cert: one/server.pem
          key: one/server-key.pem
      client_auth:
        ca: broken-ca.pem
descriptors:
  proto_dirs: ["{proto}"]
upstreams:
  governor:
    address: 127.0.0.1:1
routes:
  - service: tai.Governor
    upstream: governor
"#,
        proto = proto_dir().display()
    );
    let path = dir.write("gateway.yaml", &config);
    let path = path.to_str().expect("utf-8 path");
    let done = tai_gateway(&["validate", path]);
    assert_eq!(done.code, Some(1), "{}", done.stdout);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", done.stderr);
    let key = out.with_file_name("two").join("server-key.pem");
    assert!(
        lines[0].starts_with(&format!(
            "{path}:7:16: listeners[0].tls.certificates[0].key: {}: key does not fit certificate",
            key.display()
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!(
            "{path}:15:13: listeners[1].tls.client_auth.ca: {}: ",
            broken_ca.display()
        )),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], format!("{path}: 2 problem(s)"));
}

#[test]
fn validate_lists_every_problem_with_its_line_and_key() {
    let dir = TempDir::new();
    let config = format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: [missing-protos, "{proto}"]
upstreams:
  governor:
    address: 127.0.0.1:1
    connect_timeout: 2 seconds
routes:
  - service: tai.Governor
    upstream: govenor
  - service: tai.Nope
    upstream: governor
  - methods: [tai.Governor/Nope]
    upstream: governor
    timeout: 10
  - name: rules
    methods: [tai.Governor/GetPolicy, tai.Governor/ProposePolicy, tai.Governor/ListPolicies]
    upstream: governor
    http_rules:
      - method: tai.Governor/GetPolicy
        get: /v2/policies/{{nope}}
      - method: tai.Governor/ProposePolicy
        post: /v2/policies
        body: missing
      - method: tai.Governor/ListPolicies
        get: /v2/{{unclosed
"#,
        proto = proto_dir().display()
    );
    let path = dir.write("gateway.yaml", &config);
    let file = path.to_str().expect("utf-8 path");
    let done = tai_gateway(&["validate", file]);
    assert_eq!(done.code, Some(1), "{}", done.stdout);
    assert_eq!(done.stdout, "");
    let missing = dir.path().join("missing-protos");
    let expected = [
        format!(
            "{file}:5:16: descriptors.proto_dirs[0]: `{}` is not a folder",
            missing.display()
        ),
        format!(
            "{file}:9:22: upstreams.governor.connect_timeout: `2 seconds`: unknown unit ` seconds` (use ms, s, m or h)"
        ),
        format!("{file}:12:15: routes[0].upstream: unknown upstream `govenor` (known: governor)"),
        format!(
            "{file}:13:14: routes[1].service: unknown service `tai.Nope` (known: grpc.health.v1.Health, tai.Coordinator, tai.Governor)"
        ),
        format!("{file}:15:15: routes[2].methods[0]: service `tai.Governor` has no method `Nope`"),
        format!("{file}:17:14: routes[2].timeout: `10` needs a unit (ms, s, m, h)"),
        format!(
            "{file}:23:14: routes[3].http_rules[0]: tai.Governor/GetPolicy (GET /v2/policies/{{nope}}): path variable `nope`: tai.GetPolicyRequest has no field `nope` (in `nope`)"
        ),
        format!(
            "{file}:25:15: routes[3].http_rules[1]: tai.Governor/ProposePolicy (POST /v2/policies): body field `missing` is not a field of tai.Policy"
        ),
        format!(
            "{file}:28:14: routes[3].http_rules[2]: tai.Governor/ListPolicies (GET /v2/{{unclosed): invalid path template `/v2/{{unclosed` at byte 4: variable is not closed with '}}'"
        ),
        format!("{file}: 9 problem(s)"),
    ];
    assert_eq!(done.stderr, expected.join("\n") + "\n");
}

#[test]
fn validate_reports_an_unknown_key_with_its_line_and_column() {
    let dir = TempDir::new();
    let config = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    adress: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: governor\n",
        proto_dir().display()
    );
    let path = dir.write("gateway.yaml", &config);
    let file = path.to_str().expect("utf-8 path");
    let done = tai_gateway(&["validate", file]);
    assert_eq!(done.code, Some(1));
    assert_eq!(
        done.stderr,
        format!(
            "{file}:8:5: unknown field `adress`, expected one of address, connect_timeout, max_response_bytes, endpoints, retry, circuit_breaker, health_check, resolve_interval, tls, reflection, send_compressed, send_compressed_min_size\n{file}: 1 problem(s)\n"
        )
    );
}

#[test]
fn validate_names_the_proto_file_and_line_of_a_syntax_error() {
    let dir = TempDir::new();
    let proto = dir.write(
        "protos/acme/broken.proto",
        "syntax = \"proto3\";\npackage acme;\n\nmessage Broken {\n  string name = ;\n}\n",
    );
    let config = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [protos]\nupstreams:\n  governor:\n    address: 127.0.0.1:1\nroutes:\n  - service: acme.Nothing\n    upstream: governor\n";
    let path = dir.write("gateway.yaml", config);
    let file = path.to_str().expect("utf-8 path");
    let done = tai_gateway(&["validate", file]);
    assert_eq!(done.code, Some(1));
    assert_eq!(
        done.stderr,
        format!(
            "{}:5:17: expected an integer, but found ';'\n{file}: 1 problem(s)\n",
            proto.display()
        )
    );
}

// ---- a new service with no rebuild ----

/// A service the gateway was never built with.
pub(crate) const INVENTORY_PROTO: &str = r#"syntax = "proto3";
package acme.inventory.v1;

import "google/api/annotations.proto";

service Inventory {
  rpc Echo(Item) returns (Item) {
    option (google.api.http) = { post: "/v1/items" body: "*" };
  }
  rpc Get(Item) returns (Item) {
    option (google.api.http) = { get: "/v1/items/{sku}" };
  }
}

enum Grade {
  GRADE_UNSPECIFIED = 0;
  GRADE_A = 1;
  GRADE_B = 2;
}

message Dimensions {
  int32 width = 1;
  int32 height = 2;
}

message Item {
  string sku = 1;
  int64 quantity = 2;
  repeated string tags = 3;
  Dimensions size = 4;
  Grade grade = 5;
}
"#;

/// A config exposing `acme.inventory.v1.Inventory` at `backend`, with `descriptors` as given.
fn inventory_config(descriptors: &str, backend: std::net::SocketAddr) -> String {
    format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n{descriptors}upstreams:\n  inventory:\n    address: {backend}\nroutes:\n  - service: acme.inventory.v1.Inventory\n    upstream: inventory\n"
    )
}

/// Both bindings of the Inventory service answer through the echo backend.
async fn assert_inventory_transcodes(env: &TestEnv) {
    let item = r#"{"sku":"A-1","quantity":"5","tags":["x","y"],"size":{"width":2,"height":3},"grade":"GRADE_A"}"#;
    let reply = env.post_json("/v1/items", item).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body, item);

    let reply = env
        .get("/v1/items/A-7?quantity=3&tags=a&tags=b&grade=GRADE_B&size.width=4")
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.body,
        r#"{"sku":"A-7","quantity":"3","tags":["a","b"],"size":{"width":4,"height":0},"grade":"GRADE_B"}"#
    );
}

#[tokio::test]
async fn new_service_from_a_dropped_proto_is_transcoded_without_rebuild() {
    let protos = TempDir::new();
    protos.write("acme/inventory/v1/inventory.proto", INVENTORY_PROTO);
    let backend = backend::start(Behaviour::Echo).await;
    let descriptors = format!(
        "  proto_dirs: [\"{}\", \"{}\"]\n",
        protos.path().display(),
        proto_dir().display()
    );
    let env = TestEnv::start_on(
        start_stubs().await,
        &inventory_config(&descriptors, backend),
    )
    .await;
    assert_inventory_transcodes(&env).await;
}

#[tokio::test]
async fn new_service_from_a_descriptor_set_file_is_transcoded() {
    let protos = TempDir::new();
    protos.write("acme/inventory/v1/inventory.proto", INVENTORY_PROTO);
    let mut compiler =
        protox::Compiler::new([protos.path().to_owned(), proto_dir()]).expect("compiler");
    compiler.include_imports(true);
    compiler
        .open_file("acme/inventory/v1/inventory.proto")
        .expect("compile inventory.proto");
    let set = protos.0.join("inventory.binpb");
    std::fs::write(&set, compiler.encode_file_descriptor_set()).expect("write set");
    let backend = backend::start(Behaviour::Echo).await;
    let descriptors = format!("  descriptor_sets: [\"{}\"]\n", set.display());
    let env = TestEnv::start_on(
        start_stubs().await,
        &inventory_config(&descriptors, backend),
    )
    .await;
    assert_inventory_transcodes(&env).await;
}

// ---- the real binary ----

#[test]
fn version_flag_prints_the_version() {
    let done = tai_gateway(&["--version"]);
    assert_eq!(done.code, Some(0));
    assert_eq!(
        done.stdout,
        format!("tai-gateway {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn run_with_an_invalid_config_exits_non_zero_naming_the_line() {
    let dir = TempDir::new();
    let config = format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}\"]\nupstreams:\n  governor:\n    address: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: govenor\n",
        proto_dir().display()
    );
    let path = dir.write("gateway.yaml", &config);
    let file = path.to_str().expect("utf-8 path");
    let done = tai_gateway(&["run", "--config", file]);
    assert_eq!(done.code, Some(1));
    assert_eq!(
        done.stderr,
        format!(
            "error: invalid config:\n{file}:11:15: routes[0].upstream: unknown upstream `govenor` (known: governor)\n"
        )
    );
}

/// GETs `url` with a fresh client, or `None` while nothing answers.
async fn try_get(url: &str) -> Option<Reply> {
    use http_body_util::BodyExt;
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = http1_client().request(request).await.ok()?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.ok()?.to_bytes();
    Some(Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[tokio::test]
async fn run_serves_until_sigterm_then_exits_zero() {
    let stubs = start_stubs().await;
    let dir = TempDir::new();
    let running = crate::harness::run_binary(&dir, |http_port, admin_port| {
        crate::harness::default_config(&stubs)
            .replacen("127.0.0.1:0", &format!("127.0.0.1:{http_port}"), 1)
            .replacen("127.0.0.1:0", &format!("127.0.0.1:{admin_port}"), 1)
    })
    .await;
    let (mut child, http_port, admin_port) = (running.child, running.http_port, running.admin_port);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let ready = try_get(&format!("{admin}/ready")).await;
    let ready = ready.expect("admin /ready within 10 s");
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, r#"{"status":"ready"}"#);

    let health = try_get(&format!("{admin}/healthz")).await.expect("healthz");
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert_eq!(health.body, r#"{"status":"ok"}"#);

    let client = http1_client();
    let reply = send_with(
        &client,
        Method::POST,
        &format!("http://127.0.0.1:{http_port}/v1/policies/propose"),
        &[("content-type", "application/json")],
        Some(r#"{"policyName":"n"}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        r#"{"id":"rec-1","status":"success","policyId":"pol-1"}"#
    );
    drop(client);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .expect("exit within 10 s after SIGTERM")
    .expect("join")
    .expect("wait");
    assert_eq!(status.code(), Some(0));
}
