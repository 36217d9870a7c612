//! Routes that come from the config rather than the proto annotations: `http_rules` replacing a
//! method's rule, `auto_mapping`, and the refusal of two rules claiming the same method + template.

use http::StatusCode;

use crate::harness::{TempDir, TestEnv, proto_dir};
use crate::routing::assert_json_reply;
use crate::routing_precedence::start_with_proto;

/// Builds the runtime for `config` (written as `gateway.yaml` in `dir`) and returns its errors.
fn runtime_errors(dir: &TempDir, config: &str) -> String {
    let path = dir.write("gateway.yaml", config);
    let config = tai_gateway::config::Config::parse(&path, config)
        .unwrap_or_else(|e| panic!("config rejected before the runtime build:\n{e}"));
    match tai_gateway::runtime::Runtime::build(config) {
        Ok(_) => panic!("runtime accepted a config with colliding rules"),
        Err(errors) => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

const CLASH_PROTO: &str = r#"syntax = "proto3";
package routing.test;

import "google/api/annotations.proto";

service Clash {
  rpc First(Req) returns (Req) {
    option (google.api.http) = { get: "/c/{id}" };
  }
  rpc Second(Req) returns (Req) {
    option (google.api.http) = { get: "/c/{name}" };
  }
}

message Req {
  string id = 1;
  string name = 2;
}
"#;

#[tokio::test]
async fn two_proto_rules_with_the_same_method_and_template_are_refused() {
    let dir = TempDir::new();
    dir.write("protos/routing/clash.proto", CLASH_PROTO);
    let config = format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{protos}"]
upstreams:
  echo:
    address: 127.0.0.1:1
routes:
  - service: routing.test.Clash
    upstream: echo
"#,
        protos = dir.path().join("protos").display()
    );
    let errors = runtime_errors(&dir, &config);
    let file = dir.path().join("gateway.yaml");
    assert_eq!(
        errors,
        format!(
            "{}:10:14: routes[0]: routing.test.Clash/Second: route `GET /c/{{name}}` (routing/clash.proto:10:3) \
             conflicts with `GET /c/{{id}}` of routing.test.Clash/First (routing/clash.proto:7:3): \
             both match the paths `/c/*`",
            file.display()
        )
    );
}

#[tokio::test]
async fn config_rule_colliding_with_a_proto_rule_is_refused() {
    let dir = TempDir::new();
    let config = format!(
        r#"listeners:
  http:
    address: 127.0.0.1:0
descriptors:
  proto_dirs: ["{proto}"]
upstreams:
  governor:
    address: 127.0.0.1:1
routes:
  - service: tai.Governor
    upstream: governor
    http_rules:
      - method: ExportPolicy
        get: /v1/policies/{{id}}/rules
"#,
        proto = proto_dir().display()
    );
    let errors = runtime_errors(&dir, &config);
    let file = dir.path().join("gateway.yaml");
    assert_eq!(
        errors,
        format!(
            "{}:14:14: routes[0].http_rules[0]: tai.Governor/ExportPolicy: route `GET /v1/policies/{{id}}/rules` \
             conflicts with `GET /v1/policies/{{id}}/rules` of tai.Governor/GetPolicyRules (tai/governor.proto:58:3): \
             both match the paths `/v1/policies/*/rules`",
            file.display()
        )
    );
}

#[tokio::test]
async fn config_http_rule_replaces_the_proto_rule_of_its_method() {
    let env = TestEnv::start_with(|config| {
        config.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    http_rules:\n      - method: GetDocument\n        get: /v2/docs/{path=**}\n",
        )
    })
    .await;
    assert_json_reply(
        &env.get("/v2/docs/a/b").await,
        StatusCode::OK,
        r#"{"path":"a/b","segments":["a","b"]}"#,
    );
    assert_json_reply(
        &env.get("/v1/documents/a/b").await,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"no route for /v1/documents/a/b","details":[]}"#,
    );
}

const PLAIN_PROTO: &str = r#"syntax = "proto3";
package routing.test;

import "google/api/annotations.proto";

service Routes {
  rpc Ping(PingCall) returns (PingCall);
  rpc Mapped(PingCall) returns (PingCall) {
    option (google.api.http) = { get: "/ping/{note}" };
  }
}

message PingCall {
  string note = 1;
  int64 count = 2;
}
"#;

#[tokio::test]
async fn auto_mapping_exposes_a_method_without_rules_as_post_of_its_grpc_path() {
    let (env, _protos) = start_with_proto(PLAIN_PROTO, "    auto_mapping: true\n").await;
    let reply = env
        .post_json("/routing.test.Routes/Ping", r#"{"note":"hi","count":3}"#)
        .await;
    assert_json_reply(&reply, StatusCode::OK, r#"{"note":"hi","count":"3"}"#);
    assert_json_reply(
        &env.get("/ping/x").await,
        StatusCode::OK,
        r#"{"note":"x","count":"0"}"#,
    );
}

#[tokio::test]
async fn method_without_rules_is_not_routed_without_auto_mapping() {
    let (env, _protos) = start_with_proto(PLAIN_PROTO, "").await;
    let reply = env
        .post_json("/routing.test.Routes/Ping", r#"{"note":"hi"}"#)
        .await;
    assert_json_reply(
        &reply,
        StatusCode::NOT_FOUND,
        r#"{"code":5,"message":"no route for /routing.test.Routes/Ping","details":[]}"#,
    );
}
