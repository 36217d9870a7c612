//! gRPC server reflection through the real gateway and real backends over sockets: routes built
//! from descriptors the backend describes (no local proto), a backend started after the gateway
//! (503, then its routes), a changed schema picked up after an UNIMPLEMENTED answer, a local
//! proto winning over the reflected file of the same name, and the gateway's own reflection
//! service asked by tonic's reflection client (v1 and v1alpha), per listener.

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use serde_json::Value as Json;
use tai_stubs::proto::tai::GetPolicyRequest;
use tai_stubs::proto::tai::governor_client::GovernorClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::admin_get;
use crate::harness::{TempDir, TestEnv, proto_dir, start_stubs, two_listeners_config};

/// A gateway config whose one upstream `up` (at `addr`) describes its services by reflection;
/// `routes` and `descriptors` are YAML bodies of those sections.
fn reflecting_config(addr: SocketAddr, descriptors: &str, routes: &str) -> String {
    format!(
        "listeners:\n  http:\n    address: 127.0.0.1:0\nadmin:\n  address: 127.0.0.1:0\n\
         descriptors:\n{descriptors}\nupstreams:\n  up:\n    address: {addr}\n    reflection: true\n\
         routes:\n{routes}\naccess_log:\n  enabled: false\n"
    )
}

/// The gateway in front of the stubs with the `tai.Governor` route and no local proto: its
/// descriptors come by reflection alone.
async fn governor_by_reflection() -> TestEnv {
    let stubs = start_stubs().await;
    let config = reflecting_config(
        stubs.governor_addr,
        "  refresh_interval: 1h",
        "  - service: tai.Governor\n    upstream: up",
    );
    TestEnv::start_on(stubs, &config).await
}

/// A free local address (bound, then released) for a backend started later.
async fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// `echo.proto` (package `echo`, service `Echo`, one `Say` method at `GET {template}`) compiled
/// by protox into an encoded `FileDescriptorSet` (imports included, options kept).
fn echo_set(dir: &TempDir, template: &str) -> Vec<u8> {
    dir.write("echo.proto", &echo_proto(template));
    let mut compiler =
        protox::Compiler::new([dir.path(), proto_dir().as_path()]).expect("compiler");
    compiler
        .include_imports(true)
        .open_files(["echo.proto"])
        .expect("echo.proto compiles");
    compiler.encode_file_descriptor_set()
}

fn echo_proto(template: &str) -> String {
    format!(
        "syntax = \"proto3\";\npackage echo;\nimport \"google/api/annotations.proto\";\n\
         service Echo {{\n  rpc Say(SayRequest) returns (SayReply) {{\n    \
         option (google.api.http) = {{ get: \"{template}\" }};\n  }}\n}}\n\
         message SayRequest {{ string name = 1; }}\nmessage SayReply {{ string text = 1; }}\n"
    )
}

/// A backend that serves only reflection of a set a test chose (every other call: UNIMPLEMENTED).
struct ReflectionBackend {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl ReflectionBackend {
    async fn start(addr: SocketAddr, set: Vec<u8>) -> ReflectionBackend {
        let listener = TcpListener::bind(addr).await.expect("bind backend");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            tai_stubs::serve_reflection(listener, &set, shutdown).await
        });
        ReflectionBackend { stop, task }
    }

    /// Stops it and waits (at most 10 s) until its connections are closed.
    async fn stop(self) {
        let _ = self.stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(stopped.is_ok(), "the reflection backend did not stop");
    }
}

/// GETs `path` until its status is `want` (at most 500 tries, 20 ms apart), GETting `poke` first
/// each time when given; returns the last reply's body.
async fn poll_status(env: &TestEnv, path: &str, want: StatusCode, poke: Option<&str>) -> String {
    let mut last = None;
    for _ in 0..500 {
        if let Some(poke) = poke {
            env.get(poke).await;
        }
        let reply = env.get(path).await;
        if reply.status == want {
            return reply.body;
        }
        last = Some((reply.status, reply.body));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never answered {want}; last: {last:?}");
}

fn openapi_paths(env_doc: &Json) -> Vec<String> {
    let mut paths: Vec<String> = env_doc["paths"]
        .as_object()
        .map(|paths| paths.keys().cloned().collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

#[tokio::test]
async fn routes_built_from_reflection_alone_transcode_end_to_end() {
    let env = governor_by_reflection().await;
    let proposed = env
        .post_json(
            "/v1/policies/propose",
            r#"{"id":"p-1","policyType":"access","policyName":"n"}"#,
        )
        .await;
    assert_eq!(proposed.status, StatusCode::OK, "{}", proposed.body);
    assert_eq!(
        proposed.body,
        r#"{"id":"rec-1","status":"success","policyId":"p-1"}"#
    );
    let policy = env.get("/v1/policies/p-1").await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.body);
    let body = policy.json();
    assert_eq!(body["id"], "p-1");
    assert_eq!(body["policyName"], "n");
    assert_eq!(body["version"], "1");
    // The stub also serves tai.Coordinator: no route names it, so nothing of it is exposed.
    assert_eq!(
        env.post_json("/v1/actions", "{}").await.status,
        StatusCode::NOT_FOUND
    );
    let document = env.get("/openapi.json").await.json();
    let paths = openapi_paths(&document);
    assert!(paths.contains(&"/v1/policies/{id}".to_owned()), "{paths:?}");
    assert!(
        paths.iter().all(|p| !p.starts_with("/v1/actions")),
        "{paths:?}"
    );
    // The stub's files carry their comments: they document the operations as local files do.
    let enforce = &document["paths"]["/v1/policies/{id}:enforce"]["post"];
    assert_eq!(
        enforce["description"], "Custom verb on a single-segment variable.",
        "{enforce}"
    );
    let config = admin_get(&env, "/config").await.json();
    assert_eq!(config["upstreams"][0]["reflection"], true);
    assert_eq!(config["descriptors"]["refresh_interval"], "3600s");
}

#[tokio::test]
async fn a_backend_started_after_the_gateway_is_picked_up() {
    let addr = free_addr().await;
    let config = reflecting_config(
        addr,
        "  refresh_interval: 100ms",
        "  - service: tai.Governor\n    upstream: up",
    );
    let dir = TempDir::new();
    let path = dir.write("gateway.yaml", &config);
    let gateway = crate::harness::start_gateway(&path, &config).await;
    let base = format!("http://{}", gateway.http_addr.expect("http"));
    let client = crate::harness::http1_client();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let client = client.clone();
        async move { crate::harness::send_with(&client, http::Method::GET, &url, &[], None).await }
    };

    let pending = get("/v1/policies/p-1").await;
    assert_eq!(
        pending.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        pending.body
    );
    assert_eq!(pending.header("content-type"), Some("application/json"));
    let body = pending.json();
    assert_eq!(body["code"], 14);
    let message = body["message"].as_str().expect("message");
    let expected = "service `tai.Governor` not available yet: no descriptors by server reflection \
                    (upstream `up` is unreachable: ";
    assert!(message.starts_with(expected), "{message}");
    let document: Json = serde_json::from_str(&get("/openapi.json").await.body).expect("json");
    assert_eq!(openapi_paths(&document), Vec::<String>::new());
    // A native gRPC client of the pending service gets the same answer as a gRPC status.
    let channel = tonic::transport::Channel::from_shared(base.clone())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut governor = GovernorClient::new(channel);
    let status = governor
        .get_policy(GetPolicyRequest { id: "p-1".into() })
        .await
        .expect_err("pending");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        status.message().starts_with(expected),
        "{}",
        status.message()
    );

    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let stubs = tai_stubs::StubServers::start(addr, any)
        .await
        .expect("stubs");
    let mut last = None;
    for _ in 0..500 {
        let url = format!("{base}/v1/policies/propose");
        let headers = [("content-type", "application/json")];
        let body = Some(r#"{"id":"p-1","policyName":"n"}"#);
        let reply =
            crate::harness::send_with(&client, http::Method::POST, &url, &headers, body).await;
        if reply.status == StatusCode::OK {
            last = None;
            assert_eq!(
                reply.body,
                r#"{"id":"rec-1","status":"success","policyId":"p-1"}"#
            );
            break;
        }
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        last = Some(reply.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last, None, "the schema was never picked up");
    let document: Json = serde_json::from_str(&get("/openapi.json").await.body).expect("json");
    assert!(openapi_paths(&document).contains(&"/v1/policies/{id}".to_owned()));
    drop(stubs);
}

#[tokio::test]
async fn a_changed_schema_is_picked_up_after_an_unimplemented_answer() {
    let sets = TempDir::new();
    let first = echo_set(&sets, "/v1/echo/{name}");
    let second = echo_set(&sets, "/v2/echo/{name}");
    let addr = free_addr().await;
    let backend = ReflectionBackend::start(addr, first).await;
    // A long interval: only the UNIMPLEMENTED answer below can start the refresh.
    let config = reflecting_config(
        addr,
        "  refresh_interval: 1h",
        "  - service: echo.Echo\n    upstream: up",
    );
    let env = TestEnv::start_on(start_stubs().await, &config).await;
    // The backend describes Echo but does not implement it.
    let unimplemented = env.get("/v1/echo/a").await;
    assert_eq!(
        unimplemented.status,
        StatusCode::NOT_IMPLEMENTED,
        "{}",
        unimplemented.body
    );
    assert_eq!(env.get("/v2/echo/a").await.status, StatusCode::NOT_FOUND);
    let before = admin_get(&env, "/reload").await.json();

    backend.stop().await;
    let backend = ReflectionBackend::start(addr, second).await;
    // Calls of the old rule reach the new backend, which answers UNIMPLEMENTED: that starts a
    // refresh, and the new schema's rule appears.
    poll_status(
        &env,
        "/v2/echo/a",
        StatusCode::NOT_IMPLEMENTED,
        Some("/v1/echo/a"),
    )
    .await;
    assert_eq!(env.get("/v1/echo/a").await.status, StatusCode::NOT_FOUND);
    let status = admin_get(&env, "/reload").await.json();
    assert_eq!(status["trigger"], "reflection", "{status}");
    assert_eq!(status["ok"], true, "{status}");
    assert!(
        status["attempts"].as_u64() > before["attempts"].as_u64(),
        "{before} -> {status}"
    );
    let metrics = admin_get(&env, "/metrics").await.body;
    assert!(
        metrics.contains("tai_gateway_config_reloads_total{result=\"ok\"}"),
        "{metrics}"
    );
    let document = env.get("/openapi.json").await.json();
    assert_eq!(openapi_paths(&document), ["/v2/echo/{name}"]);
    backend.stop().await;
}

#[tokio::test]
async fn a_schema_whose_routes_no_longer_resolve_is_rejected_and_the_old_one_serves() {
    let sets = TempDir::new();
    let first = echo_set(&sets, "/v1/echo/{name}");
    // The same service, its one method renamed: the route's `methods:` entry no longer resolves.
    let renamed = echo_proto("/v1/echo/{name}").replace("rpc Say(", "rpc Speak(");
    sets.write("echo.proto", &renamed);
    let mut compiler =
        protox::Compiler::new([sets.path(), proto_dir().as_path()]).expect("compiler");
    compiler
        .include_imports(true)
        .open_files(["echo.proto"])
        .expect("compiles");
    let second = compiler.encode_file_descriptor_set();
    let addr = free_addr().await;
    let backend = ReflectionBackend::start(addr, first).await;
    let config = reflecting_config(
        addr,
        "  refresh_interval: 1h",
        "  - methods: [echo.Echo/Say]\n    upstream: up",
    );
    let env = TestEnv::start_on(start_stubs().await, &config).await;
    assert_eq!(
        env.get("/v1/echo/a").await.status,
        StatusCode::NOT_IMPLEMENTED
    );
    backend.stop().await;
    let backend = ReflectionBackend::start(addr, second).await;
    let mut status = Json::Null;
    for _ in 0..500 {
        env.get("/v1/echo/a").await;
        status = admin_get(&env, "/reload").await.json();
        if status["ok"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status["trigger"], "reflection", "{status}");
    assert_eq!(status["ok"], false, "{status}");
    let errors = status["errors"].as_array().expect("errors");
    let error = errors[0].as_str().expect("error");
    assert!(
        error.ends_with("routes[0].methods[0]: service `echo.Echo` has no method `Say`"),
        "{error}"
    );
    // The old schema keeps serving.
    assert_eq!(
        env.get("/v1/echo/a").await.status,
        StatusCode::NOT_IMPLEMENTED
    );
    let metrics = admin_get(&env, "/metrics").await.body;
    assert!(
        metrics.contains("tai_gateway_config_reloads_total{result=\"error\"} 1\n"),
        "{metrics}"
    );
    backend.stop().await;
}

#[tokio::test]
async fn a_local_proto_wins_over_the_reflected_file_of_the_same_name() {
    let sets = TempDir::new();
    let reflected = echo_set(&sets, "/reflected/echo/{name}");
    let local = TempDir::new();
    local.write("echo.proto", &echo_proto("/local/echo/{name}"));
    let addr = free_addr().await;
    let backend = ReflectionBackend::start(addr, reflected).await;
    let descriptors = format!(
        "  proto_dirs: [\"{}\"]\n  include_paths: [\"{}\"]",
        local.path().display(),
        proto_dir().display()
    );
    let config = reflecting_config(
        addr,
        &descriptors,
        "  - service: echo.Echo\n    upstream: up",
    );
    let env = TestEnv::start_on(start_stubs().await, &config).await;
    assert_eq!(
        env.get("/local/echo/a").await.status,
        StatusCode::NOT_IMPLEMENTED
    );
    assert_eq!(
        env.get("/reflected/echo/a").await.status,
        StatusCode::NOT_FOUND
    );
    backend.stop().await;
}

/// One question for the gateway's reflection service, and what came back.
#[derive(Debug, Clone)]
enum Asked {
    List,
    Symbol(&'static str),
    File(&'static str),
}

#[derive(Debug)]
enum Answered {
    Services(Vec<String>),
    Files(Vec<Vec<u8>>),
    Error(i32),
}

/// A function asking the gateway at an address each question on ONE reflection stream of the
/// given version (`v1`, `v1alpha`) with tonic's reflection client, in order.
macro_rules! reflection_client {
    ($name:ident, $version:ident) => {
        async fn $name(addr: SocketAddr, asked: &[Asked]) -> Vec<Answered> {
            use tonic_reflection::pb::$version::ServerReflectionRequest;
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
            let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .expect("uri")
                .connect()
                .await
                .expect("connect");
            let requests: Vec<ServerReflectionRequest> = asked
                .iter()
                .map(|a| ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(match a {
                        Asked::List => MessageRequest::ListServices(String::new()),
                        Asked::Symbol(s) => MessageRequest::FileContainingSymbol((*s).to_owned()),
                        Asked::File(f) => MessageRequest::FileByFilename((*f).to_owned()),
                    }),
                })
                .collect();
            let mut client = ServerReflectionClient::new(channel);
            let mut stream = client
                .server_reflection_info(tokio_stream::iter(requests))
                .await
                .expect("reflection call")
                .into_inner();
            let mut answers = Vec::new();
            while let Some(response) = stream.message().await.expect("answer") {
                answers.push(match response.message_response.expect("an answer") {
                    MessageResponse::ListServicesResponse(list) => {
                        Answered::Services(list.service.into_iter().map(|s| s.name).collect())
                    }
                    MessageResponse::FileDescriptorResponse(files) => {
                        Answered::Files(files.file_descriptor_proto)
                    }
                    MessageResponse::ErrorResponse(e) => Answered::Error(e.error_code),
                    other => panic!("unexpected answer {other:?}"),
                });
            }
            answers
        }
    };
}

reflection_client!(ask_v1, v1);
reflection_client!(ask_v1alpha, v1alpha);

/// The files of a reflection answer in one pool (raw bytes, as a client would decode them).
fn pool_of(files: &[Vec<u8>]) -> DescriptorPool {
    let mut set = Vec::new();
    for file in files {
        prost::encoding::bytes::encode(1, file, &mut set);
    }
    let mut pool = DescriptorPool::new();
    pool.decode_file_descriptor_set(set.as_slice())
        .expect("the files form a pool");
    pool
}

/// The `google.api.http` GET template of `method` in `pool`.
fn http_get(pool: &DescriptorPool, method: &str) -> String {
    let (service, name) = method.rsplit_once('.').expect("pkg.Service.Method");
    let method = pool
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == name))
        .expect("method");
    let http = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http");
    let options = method.options();
    let rule = options.get_extension(&http);
    let Value::Message(rule) = rule.as_ref() else {
        panic!("no http rule: {rule:?}")
    };
    let get = DynamicMessage::get_field_by_name(rule, "get").expect("get");
    get.as_str().expect("string").to_owned()
}

fn assert_governor_reflection(answers: &[Answered]) {
    let [services, governor, coordinator, by_name, hidden_file] = answers else {
        panic!("five answers expected: {answers:?}");
    };
    let Answered::Services(services) = services else {
        panic!("{services:?}")
    };
    assert_eq!(services, &["tai.Governor"]);
    let Answered::Files(files) = governor else {
        panic!("{governor:?}")
    };
    let pool = pool_of(files);
    assert_eq!(
        pool.files().next().map(|f| f.name().to_owned()).as_deref(),
        Some("tai/governor.proto")
    );
    assert_eq!(
        http_get(&pool, "tai.Governor.GetPolicy"),
        "/v1/policies/{id}"
    );
    assert!(matches!(coordinator, Answered::Error(5)), "{coordinator:?}");
    let Answered::Files(by_name) = by_name else {
        panic!("{by_name:?}")
    };
    assert!(!by_name.is_empty());
    assert!(matches!(hidden_file, Answered::Error(5)), "{hidden_file:?}");
}

const QUESTIONS: [Asked; 5] = [
    Asked::List,
    Asked::Symbol("tai.Governor"),
    Asked::Symbol("tai.Coordinator"),
    Asked::File("google/protobuf/timestamp.proto"),
    Asked::File("tai/coordinator.proto"),
];

#[tokio::test]
async fn the_gateway_serves_reflection_of_its_routed_services_only_v1_and_v1alpha() {
    // Routes only tai.Governor; the stub behind it serves tai.Coordinator too.
    let env = TestEnv::start_with(|config| {
        config.replace(
            "  - service: tai.Coordinator\n    upstream: coordinator\n",
            "",
        )
    })
    .await;
    let addr = env.gateway.http_addr.expect("http");
    assert_governor_reflection(&ask_v1(addr, &QUESTIONS).await);
    assert_governor_reflection(&ask_v1alpha(addr, &QUESTIONS).await);
}

#[tokio::test]
async fn the_gateway_serves_reflection_of_reflected_schemas() {
    let env = governor_by_reflection().await;
    let addr = env.gateway.http_addr.expect("http");
    assert_governor_reflection(&ask_v1(addr, &QUESTIONS).await);
}

#[tokio::test]
async fn a_listener_serving_some_routes_reflects_their_services_only() {
    let stubs = start_stubs().await;
    let config = two_listeners_config(&stubs, "tai.Governor");
    let env = TestEnv::start_on(stubs, &config).await;
    let addr = |name: &str| env.listener_addr(name);
    let on_all = ask_v1(addr("all"), &[Asked::List]).await;
    let [Answered::Services(services)] = &on_all[..] else {
        panic!("{on_all:?}")
    };
    assert_eq!(services, &["tai.Coordinator", "tai.Governor"]);
    // The partner listener serves tai.Governor only: the coordinator's service and its file are
    // not shown there (governor.proto does not import coordinator.proto).
    let on_partner = ask_v1alpha(addr("partner"), &QUESTIONS).await;
    assert_governor_reflection(&on_partner);
}

/// Runs `tai-gateway <args>` to its end (off the test's runtime thread, so stubs keep serving).
async fn run_command(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
            .args(&args)
            .env("RUST_LOG", "off")
            .output()
            .expect("run tai-gateway")
    })
    .await
    .expect("command task")
}

#[tokio::test]
async fn the_openapi_command_asks_the_backend_and_names_what_it_could_not_describe() {
    let stubs = start_stubs().await;
    let dir = TempDir::new();
    let routes = "  - service: tai.Governor\n    upstream: up";
    let up = dir.write(
        "up.yaml",
        &reflecting_config(stubs.governor_addr, "  {}", routes),
    );
    let down = dir.write(
        "down.yaml",
        &reflecting_config(free_addr().await, "  {}", routes),
    );
    let path = |p: &std::path::PathBuf| p.to_str().expect("utf-8").to_owned();

    let output = run_command(vec!["openapi".into(), path(&up)]).await;
    assert!(output.status.success(), "{output:?}");
    let document: Json = serde_json::from_slice(&output.stdout).expect("json");
    let paths = openapi_paths(&document);
    assert!(paths.contains(&"/v1/policies/{id}".to_owned()), "{paths:?}");
    assert!(
        paths.iter().all(|p| !p.starts_with("/v1/actions")),
        "{paths:?}"
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");

    let output = run_command(vec!["openapi".into(), path(&down)]).await;
    assert!(output.status.success(), "{output:?}");
    let document: Json = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(openapi_paths(&document), Vec::<String>::new());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let note = "note: service `tai.Governor` is left out: upstream `up` is unreachable: ";
    assert!(stderr.starts_with(note), "{stderr}");
    drop(stubs);
}
