//! Hot reload through the real gateway: config edits and a dropped `.proto` are picked up by the
//! file watcher while clients keep sending; broken configs are rejected with their place shown on
//! the admin server; start-only settings are reported as needing a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;

use crate::admin::admin_get;
use crate::backend::{self, Behaviour};
use crate::harness::{TempDir, TestEnv, default_config, http1_client, proto_dir, send_with};
use crate::operations::INVENTORY_PROTO;

/// The test config with fast polling, an extra proto folder and the access log off.
fn watched(config: String, extra_protos: &std::path::Path) -> String {
    config.replace(
        &format!("proto_dirs: [\"{}\"]", proto_dir().display()),
        &format!(
            "proto_dirs: [\"{}\", \"{}\"]",
            proto_dir().display(),
            extra_protos.display()
        ),
    ) + "reload:\n  poll_interval: 20ms\naccess_log:\n  enabled: false\n"
}

/// Polls `/reload` until `done` holds for its answer (bounded to ~10 s).
async fn wait_for_reload(env: &TestEnv, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let status = admin_get(env, "/reload").await.json();
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("reload never reached: {what}");
}

fn attempts(status: &Value) -> u64 {
    status["attempts"].as_u64().expect("attempts")
}

/// Writes the config via a temporary file and a rename, as editors and ConfigMaps do.
fn replace_config(env: &TestEnv, text: &str) {
    let tmp = env.dir.write(".gateway.yaml.tmp", text);
    std::fs::rename(tmp, env.dir.path().join("gateway.yaml")).expect("rename config");
}

#[tokio::test]
async fn config_changes_under_load_fail_no_request_and_new_routes_answer() {
    let protos = TempDir::new();
    let stubs = crate::harness::start_stubs().await;
    let inventory = backend::start(Behaviour::Echo).await;
    let base = watched(default_config(&stubs), protos.path());
    let governor_only = base.replace(
        "  - service: tai.Coordinator\n    upstream: coordinator\n",
        "",
    );
    let env = TestEnv::start_on(stubs, &governor_only).await;
    assert_eq!(
        env.post_json("/v1/actions", "{}").await.status,
        StatusCode::NOT_FOUND
    );

    // Load: four clients on a route valid under every config below, until the edits are done
    // (at most 2000 requests each).
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let url = format!("{}/v1/policies/propose", env.base());
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, sent, url) = (stop.clone(), sent.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let client = http1_client();
            let headers = [("content-type", "application/json")];
            for _ in 0..2000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let reply = send_with(
                    &client,
                    Method::POST,
                    &url,
                    &headers,
                    Some(r#"{"policyName":"n"}"#),
                )
                .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                sent.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    // 1. A route is added.
    replace_config(&env, &base);
    let status = wait_for_reload(&env, "coordinator added", |s| attempts(s) >= 1).await;
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["trigger"], "watch");
    let action = env.post_json("/v1/actions", r#"{"agentId":"a"}"#).await;
    // Routed to the coordinator stub (which answers for itself: no such policy).
    assert_eq!(
        action.header("x-stub-service"),
        Some("coordinator"),
        "{}",
        action.body
    );

    // 2. It is removed again.
    replace_config(&env, &governor_only);
    wait_for_reload(&env, "coordinator removed", |s| attempts(s) >= 2).await;
    assert_eq!(
        env.post_json("/v1/actions", "{}").await.status,
        StatusCode::NOT_FOUND
    );

    // 3. A broken file is rejected with its place; the old config keeps serving.
    let broken = governor_only.replace(
        "    upstream: governor\n",
        "    upstream: governor\n    timout: 3s\n",
    );
    let line = broken
        .lines()
        .position(|l| l.contains("timout"))
        .expect("line")
        + 1;
    replace_config(&env, &broken);
    let status = wait_for_reload(&env, "broken rejected", |s| s["ok"] == false).await;
    let file = env.dir.path().join("gateway.yaml");
    let errors = status["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{status}");
    let error = errors[0].as_str().expect("text");
    assert!(
        error.starts_with(&format!(
            "{}:{line}:5: unknown field `timout`",
            file.display()
        )),
        "{error}"
    );
    assert_eq!(env.get("/v1/policies").await.status, StatusCode::OK);
    let metrics = admin_get(&env, "/metrics").await.body;
    assert!(
        metrics.contains("tai_gateway_config_reloads_total{result=\"error\"} 1\n"),
        "{metrics}"
    );

    // 4. A new .proto adds a service, and the fixed config routes it.
    let before = attempts(&status);
    protos.write("acme/inventory/v1/inventory.proto", INVENTORY_PROTO);
    let with_inventory = format!(
        "{}  - service: acme.inventory.v1.Inventory\n    upstream: inventory\n",
        governor_only
            .replace(
                "upstreams:\n",
                &format!("upstreams:\n  inventory:\n    address: {inventory}\n"),
            )
            .split("headers:\n")
            .next()
            .expect("routes part")
    ) + &governor_only[governor_only.find("headers:\n").expect("headers")..];
    replace_config(&env, &with_inventory);
    wait_for_reload(&env, "inventory added", |s| {
        s["ok"] == true && attempts(s) > before
    })
    .await;
    let item = r#"{"sku":"A-1","quantity":"5","tags":[],"grade":"GRADE_A"}"#;
    let reply = env.post_json("/v1/items", item).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("no client saw a failure");
    }
    assert!(sent.load(Ordering::SeqCst) > 0);
    let routes = admin_get(&env, "/routes").await.json();
    assert!(
        routes
            .as_array()
            .expect("array")
            .iter()
            .any(|r| r["grpc_method"] == "acme.inventory.v1.Inventory/Echo"),
        "{routes}"
    );
}

#[tokio::test]
async fn unchanged_upstreams_keep_their_connection_across_a_reload() {
    let env =
        TestEnv::start_with(|c| c + "reload:\n  watch: false\naccess_log:\n  enabled: false\n")
            .await;
    assert_eq!(env.get("/v1/policies").await.status, StatusCode::OK);
    let before = env.gateway.gateway.runtime();
    let config = std::fs::read_to_string(env.dir.path().join("gateway.yaml")).expect("read");
    let moved = config.replace(
        &env.stubs.coordinator_addr.to_string(),
        &format!("localhost:{}", env.stubs.coordinator_addr.port()),
    );
    replace_config(&env, &moved);
    let status = env.gateway.reload("test").await;
    assert!(status.ok, "{status:?}");
    let after = env.gateway.gateway.runtime();
    assert!(Arc::ptr_eq(
        &before.upstreams["governor"],
        &after.upstreams["governor"]
    ));
    assert!(!Arc::ptr_eq(
        &before.upstreams["coordinator"],
        &after.upstreams["coordinator"]
    ));
    assert_eq!(env.get("/v1/policies").await.status, StatusCode::OK);
}

#[tokio::test]
async fn listener_address_changes_are_reported_as_needing_a_restart() {
    let env =
        TestEnv::start_with(|c| c + "reload:\n  watch: false\naccess_log:\n  enabled: false\n")
            .await;
    let config = std::fs::read_to_string(env.dir.path().join("gateway.yaml")).expect("read");
    replace_config(&env, &config.replacen("127.0.0.1:0", "127.0.0.1:1", 1));
    let addr = env.gateway.admin_addr.expect("admin");
    let reply = send_with(
        &http1_client(),
        Method::POST,
        &format!("http://{addr}/reload"),
        &[],
        None,
    )
    .await;
    let status = reply.json();
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["trigger"], "admin");
    assert_eq!(
        status["restart_required"],
        serde_json::json!(["listeners.http.address: 127.0.0.1:0 -> 127.0.0.1:1"])
    );
    assert_eq!(
        admin_get(&env, "/config").await.json()["listeners"][0]["address"],
        "127.0.0.1:0"
    );
    assert_eq!(env.get("/v1/policies").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_listener_set_change_is_reported_as_needing_a_restart_and_not_applied() {
    let two = "listeners:\n  - name: public\n    address: 127.0.0.1:0\n\
               \x20 - name: partner\n    address: 127.0.0.1:0\n    routes: [tai.Coordinator]\n";
    let env = TestEnv::start_with(|c| {
        c.replacen("listeners:\n  http:\n    address: 127.0.0.1:0\n", two, 1)
            + "reload:\n  watch: false\naccess_log:\n  enabled: false\n"
    })
    .await;
    let config = std::fs::read_to_string(env.dir.path().join("gateway.yaml")).expect("read");
    let changed = config.replacen(
        "    routes: [tai.Coordinator]\n",
        "    routes: [tai.Governor]\n  - name: extra\n    address: 127.0.0.1:0\n",
        1,
    );
    // A comment moves every line: places alone are no change.
    replace_config(&env, &format!("# moved\n{changed}"));
    let status = env.gateway.reload("test").await;
    assert!(status.ok, "{status:?}");
    assert_eq!(
        status.restart_required,
        ["listeners.partner.routes", "listeners.extra: added"]
    );
    let listeners = admin_get(&env, "/config").await.json()["listeners"].clone();
    assert_eq!(
        listeners[1]["routes"],
        serde_json::json!(["tai.Coordinator"])
    );
    assert_eq!(listeners.as_array().map(Vec::len), Some(2));
    replace_config(&env, &format!("# moved\n{config}"));
    let status = env.gateway.reload("test").await;
    assert!(status.ok, "{status:?}");
    assert!(status.restart_required.is_empty(), "{status:?}");
}

#[tokio::test]
async fn a_worker_count_change_is_reported_as_needing_a_restart() {
    let env = TestEnv::start_with(|c| {
        c + "reload:\n  watch: false\naccess_log:\n  enabled: false\nworkers: 2\n"
    })
    .await;
    let config = std::fs::read_to_string(env.dir.path().join("gateway.yaml")).expect("read");
    replace_config(&env, &config.replace("workers: 2", "workers: 3"));
    let status = env.gateway.reload("test").await;
    assert!(status.ok, "{status:?}");
    assert_eq!(status.restart_required, ["workers: 2 -> 3"]);
    assert_eq!(admin_get(&env, "/config").await.json()["workers"], 2);
    assert_eq!(env.get("/v1/policies").await.status, StatusCode::OK);
}
