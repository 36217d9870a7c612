//! Route precedence through the real gateway: literal beats `*` beats `**`, with backtracking out
//! of a literal subtree that leads nowhere. A test-only proto, served by the echo backend, gives
//! each rule its own request type with its own field names, so the echoed JSON shows which rule
//! matched and what it bound.

use http::StatusCode;

use crate::backend::{self, Behaviour};
use crate::harness::{Reply, TempDir, TestEnv};

/// One method per rule; request and response types are the same, so the echo answers with the
/// bindings. Field names differ per method.
const ROUTES_PROTO: &str = r#"syntax = "proto3";
package routing.test;

import "google/api/annotations.proto";

service Routes {
  rpc Me(MeCall) returns (MeCall) { option (google.api.http) = { get: "/r/users/me" }; }
  rpc User(UserCall) returns (UserCall) { option (google.api.http) = { get: "/r/users/{user_id}" }; }
  rpc Item(ItemCall) returns (ItemCall) { option (google.api.http) = { get: "/r/items/{item_id=*}" }; }
  rpc Rest(RestCall) returns (RestCall) { option (google.api.http) = { get: "/r/{rest=**}" }; }
  rpc Axc(AxcCall) returns (AxcCall) { option (google.api.http) = { get: "/a/{x}/c" }; }
  rpc Abd(AbdCall) returns (AbdCall) { option (google.api.http) = { get: "/a/b/d" }; }
}

message MeCall { string me_tag = 1; }
message UserCall { string user_id = 1; }
message ItemCall { string item_id = 1; }
message RestCall { string rest = 1; }
message AxcCall { string x = 1; }
message AbdCall { string abd_tag = 1; }
"#;

/// The default config plus the test proto folder, an `echo` upstream and a route to it.
pub(crate) async fn start_with_proto(proto: &str, route_extra: &str) -> (TestEnv, TempDir) {
    let protos = TempDir::new();
    protos.write("routing/test.proto", proto);
    let echo = backend::start(Behaviour::Echo).await;
    let dir = protos.path().display().to_string();
    let env = TestEnv::start_with(|config| {
        config
            .replace("proto_dirs: [", &format!("proto_dirs: [\"{dir}\", "))
            .replace(
                "upstreams:\n",
                &format!("upstreams:\n  echo:\n    address: {echo}\n"),
            )
            .replace(
                "routes:\n",
                &format!(
                    "routes:\n  - service: routing.test.Routes\n    upstream: echo\n{route_extra}"
                ),
            )
    })
    .await;
    (env, protos)
}

fn assert_echo(reply: &Reply, body: &str) {
    assert_eq!(
        (
            reply.status,
            reply.header("content-type"),
            reply.body.as_str()
        ),
        (StatusCode::OK, Some("application/json"), body)
    );
}

#[tokio::test]
async fn literal_segment_beats_single_variable() {
    let (env, _protos) = start_with_proto(ROUTES_PROTO, "").await;
    assert_echo(&env.get("/r/users/me").await, r#"{"meTag":""}"#);
    assert_echo(&env.get("/r/users/42").await, r#"{"userId":"42"}"#);
}

#[tokio::test]
async fn single_wildcard_variable_binds_exactly_one_segment() {
    let (env, _protos) = start_with_proto(ROUTES_PROTO, "").await;
    assert_echo(&env.get("/r/items/i1").await, r#"{"itemId":"i1"}"#);
}

#[tokio::test]
async fn single_variable_beats_double_wildcard_which_takes_the_rest() {
    let (env, _protos) = start_with_proto(ROUTES_PROTO, "").await;
    assert_echo(
        &env.get("/r/items/i1/extra").await,
        r#"{"rest":"items/i1/extra"}"#,
    );
    assert_echo(&env.get("/r/users/42/x").await, r#"{"rest":"users/42/x"}"#);
    assert_echo(&env.get("/r/users").await, r#"{"rest":"users"}"#);
    assert_echo(&env.get("/r").await, r#"{"rest":""}"#);
}

#[tokio::test]
async fn literal_subtree_that_fails_backtracks_to_the_variable() {
    let (env, _protos) = start_with_proto(ROUTES_PROTO, "").await;
    assert_echo(&env.get("/a/b/d").await, r#"{"abdTag":""}"#);
    assert_echo(&env.get("/a/b/c").await, r#"{"x":"b"}"#);
    assert_echo(&env.get("/a/z/c").await, r#"{"x":"z"}"#);
}

#[tokio::test]
async fn path_that_no_branch_completes_is_404() {
    let (env, _protos) = start_with_proto(ROUTES_PROTO, "").await;
    let reply = env.get("/a/b/e").await;
    assert_eq!(
        (
            reply.status,
            reply.header("content-type"),
            reply.body.as_str()
        ),
        (
            StatusCode::NOT_FOUND,
            Some("application/json"),
            r#"{"code":5,"message":"no route for /a/b/e","details":[]}"#
        )
    );
}
