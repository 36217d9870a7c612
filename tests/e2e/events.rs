//! The TAI event stream, producer side (issue 19): successful writes emit one event each,
//! through the fsync'ed outbox, to a real `redis-server` stream or, without `redis:`, to the
//! local JSON-lines file; nothing is lost while Redis is down or when the gateway is killed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use redis::streams::StreamRangeReply;

use crate::harness::{TempDir, TestEnv, default_config, run_binary, send_with, start_stubs};
use crate::redis_server::RedisServer;

/// The governor route of the test config, with events for ProposePolicy and RevokePolicy.
pub(crate) const ROUTE_EVENTS: &str = "  - service: tai.Governor
    upstream: governor
    events:
      drop_fields: [request.rules]
      methods:
        ProposePolicy: { type: policy.proposed, aggregate_id: response.policyId }
        RevokePolicy: { type: policy.revoked, aggregate_id: path.id }
";

/// The test config with events on the governor route, plus `extra` top-level keys.
pub(crate) fn with_events(config: String, extra: &str) -> String {
    let route = "  - service: tai.Governor\n    upstream: governor\n";
    assert!(config.contains(route));
    format!("{}{extra}", config.replacen(route, ROUTE_EVENTS, 1))
}

async fn propose(env: &TestEnv, name: &str, request_id: &str) -> crate::harness::Reply {
    let body = format!(r#"{{"policyName":"{name}","rules":{{"secret":"s3cr3t"}}}}"#);
    let headers = [
        ("content-type", "application/json"),
        ("x-request-id", request_id),
    ];
    env.send(Method::POST, "/v1/policies/propose", &headers, Some(&body))
        .await
}

/// The lines of the events file, once it has `n` (waits at most 10 s).
async fn file_events(path: &Path, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never had {n} events", path.display());
}

/// Every entry of `stream`, as (entry fields: event_id, request_id from the payload).
async fn stream_entries(url: &str, stream: &str) -> Vec<(String, serde_json::Value)> {
    let client = redis::Client::open(url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    reply
        .ids
        .iter()
        .map(|entry| {
            let id: String = entry.get("event_id").expect("event_id field");
            let payload: String = entry.get("payload").expect("payload field");
            (id, serde_json::from_str(&payload).expect("payload JSON"))
        })
        .collect()
}

/// Waits (at most `secs`) until `check` holds for the stream's entries.
async fn until_stream(
    url: &str,
    secs: u64,
    check: impl Fn(&[(String, serde_json::Value)]) -> bool,
) -> Vec<(String, serde_json::Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let entries = stream_entries(url, "tai-events").await;
        if check(&entries) {
            return entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream never got there: {} entries",
            entries.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_redis_writes_go_to_the_local_file_and_failed_writes_emit_nothing() {
    let env = TestEnv::start_with(|c| with_events(c, "")).await;
    let first = propose(&env, "deny-external", "req-a").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let policy = first.json()["policyId"].as_str().expect("id").to_owned();
    // A read and a failed write (an empty name is INVALID_ARGUMENT) emit nothing.
    assert_eq!(
        env.get(&format!("/v1/policies/{policy}")).await.status,
        StatusCode::OK
    );
    let failed = propose(&env, "", "req-failed").await;
    assert_eq!(failed.status, StatusCode::BAD_REQUEST);
    let revoked = env
        .send(
            Method::DELETE,
            &format!("/v1/policies/{policy}?reason=old"),
            &[("x-request-id", "req-b")],
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let events = file_events(&env.dir.path().join("events.jsonl"), 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let (proposed, revoked) = (&events[0], &events[1]);
    assert_eq!(proposed["event_type"], "policy.proposed");
    assert_eq!(proposed["aggregate_id"], policy.as_str());
    assert_eq!(proposed["method"], "tai.Governor/ProposePolicy");
    assert_eq!(proposed["route"], "tai.Governor");
    assert_eq!(proposed["request_id"], "req-a");
    assert_eq!(proposed["request"]["policyName"], "deny-external");
    assert!(
        proposed["request"].get("rules").is_none(),
        "dropped field: {proposed}"
    );
    assert_eq!(proposed["response"]["policyId"], policy.as_str());
    assert_eq!(revoked["event_type"], "policy.revoked");
    assert_eq!(revoked["aggregate_id"], policy.as_str());
    assert!(proposed["event_id"].as_str() < revoked["event_id"].as_str());
    // The file is fsync'ed before the spool lets go of its records: wait for the backlog to empty.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = env_admin_get(&env, "/ready").await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
        if ready.json()["events"]["backlog_entries"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "backlog never emptied: {}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = env_admin_get(&env, "/metrics").await.body;
    assert!(
        metrics.contains("tai_gateway_events_published_total{event_type=\"policy.proposed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tai_gateway_events_spool_entries 0"),
        "{metrics}"
    );
}

async fn env_admin_get(env: &TestEnv, path: &str) -> crate::harness::Reply {
    let admin = env.gateway.admin_addr.expect("admin listener");
    let client = crate::harness::http1_client();
    send_with(
        &client,
        Method::GET,
        &format!("http://{admin}{path}"),
        &[],
        None,
    )
    .await
}

#[tokio::test]
async fn a_full_spool_answers_503_before_the_backend_is_called_and_ready_fails() {
    // Redis that never answers: nothing leaves the spool, which holds about one reservation.
    let dead = RedisServer::start().await;
    let url = dead.url();
    let mut dead = dead;
    dead.kill();
    let extra = format!(
        "redis:\n  url: {url}\nevents:\n  max_spool_bytes: 16KiB\n  max_event_bytes: 8KiB\n"
    );
    let env = TestEnv::start_with(|c| with_events(c, &extra)).await;
    let mut statuses = Vec::new();
    for i in 0..100 {
        let reply = propose(&env, &format!("p{i}"), &format!("full-{i}")).await;
        statuses.push(reply.status);
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.header("retry-after"), Some("1"));
            assert!(reply.body.contains("event spool is full"), "{}", reply.body);
            break;
        }
    }
    let accepted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert!(accepted > 3, "{statuses:?}");
    // The refused write never reached the backend: it holds exactly the accepted policies.
    let list = env.get("/v1/policies").await.json();
    assert_eq!(list["policies"].as_array().expect("list").len(), accepted);
    let ready = env_admin_get(&env, "/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "event spool full");
    assert_eq!(ready.json()["events"]["backlog_entries"], accepted);
}

#[tokio::test]
async fn a_thousand_writes_with_redis_killed_half_way_all_reach_the_stream() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let extra = format!("redis:\n  url: {url}\n  timeout: 250ms\n");
    let env = Arc::new(TestEnv::start_with(|c| with_events(c, &extra)).await);
    let writes = |range: std::ops::Range<usize>| {
        let env = env.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for chunk in range.collect::<Vec<_>>().chunks(25) {
                for &i in chunk {
                    let env = env.clone();
                    tasks.spawn(async move {
                        let reply = propose(&env, &format!("p{i}"), &format!("w-{i}")).await;
                        assert_eq!(reply.status, StatusCode::OK, "write {i}: {}", reply.body);
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done.expect("write task");
                }
            }
        }
    };
    writes(0..500).await;
    // Redis keeps nothing across a kill here: read what reached it, then kill it.
    let before = until_stream(&url, 60, |e| e.len() >= 500).await;
    redis.kill();
    writes(500..1000).await;
    let metrics = env_admin_get(&env, "/metrics").await.body;
    assert!(
        metrics.contains("tai_gateway_events_publish_failures_total{publisher=\"redis\""),
        "{metrics}"
    );
    redis.resume().await;
    let after = until_stream(&url, 60, |e| e.len() >= 500).await;
    let mut request_ids = HashSet::new();
    let mut event_ids = HashSet::new();
    for (event_id, payload) in before.iter().chain(after.iter()) {
        assert_eq!(
            payload["event_id"],
            event_id.as_str(),
            "the field matches the payload"
        );
        request_ids.insert(
            payload["request_id"]
                .as_str()
                .expect("request id")
                .to_owned(),
        );
        event_ids.insert(event_id.clone());
    }
    let expected: HashSet<String> = (0..1000).map(|i| format!("w-{i}")).collect();
    let missing: Vec<&String> = expected.difference(&request_ids).collect();
    assert!(missing.is_empty(), "missing events of {missing:?}");
    assert_eq!(
        event_ids.len(),
        1000,
        "one event id per write (duplicates share theirs)"
    );
}

#[tokio::test]
async fn retention_trims_entries_older_than_it() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    // One entry per stream node, so `MINID ~` trims exactly (by default Redis drops only whole
    // nodes of 100 entries).
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("stream-node-max-entries")
        .arg(1)
        .query_async(&mut conn)
        .await
        .expect("CONFIG SET");
    let extra = format!("redis:\n  url: {url}\n  timeout: 250ms\nevents:\n  retention: 2s\n");
    let env = TestEnv::start_with(|c| with_events(c, &extra)).await;
    for i in 0..3 {
        assert_eq!(
            propose(&env, &format!("old{i}"), &format!("old-{i}"))
                .await
                .status,
            StatusCode::OK
        );
    }
    until_stream(&url, 10, |e| e.len() == 3).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(propose(&env, "new", "new-0").await.status, StatusCode::OK);
    let entries = until_stream(&url, 10, |e| {
        e.iter().any(|(_, p)| p["request_id"] == "new-0")
    })
    .await;
    let left: Vec<&str> = entries
        .iter()
        .filter_map(|(_, p)| p["request_id"].as_str())
        .collect();
    assert_eq!(
        left,
        ["new-0"],
        "entries older than the retention are trimmed"
    );
}

/// A gateway binary on `stubs` with events to the Redis at `url`.
fn binary_config(stubs: &tai_stubs::StubServers, url: &str, http: u16, admin: u16) -> String {
    let config = default_config(stubs)
        .replace("127.0.0.1:0\nadmin:", &format!("127.0.0.1:{http}\nadmin:"))
        .replacen(
            "address: 127.0.0.1:0\ndescriptors",
            &format!("address: 127.0.0.1:{admin}\ndescriptors"),
            1,
        );
    with_events(
        config,
        &format!("redis:\n  url: {url}\n  timeout: 250ms\naccess_log:\n  enabled: false\n"),
    )
}

#[tokio::test]
async fn a_gateway_killed_right_after_answering_publishes_the_event_after_restart() {
    let stubs = start_stubs().await;
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    // Redis is down while the write is answered: the event can only be in the spool.
    redis.kill();
    let dir = TempDir::new();
    let mut first = run_binary(&dir, |http, admin| binary_config(&stubs, &url, http, admin)).await;
    let client = crate::harness::http1_client();
    let reply = send_with(
        &client,
        Method::POST,
        &format!("http://127.0.0.1:{}/v1/policies/propose", first.http_port),
        &[
            ("content-type", "application/json"),
            ("x-request-id", "killed-1"),
        ],
        Some(r#"{"policyName":"survives"}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    redis.resume().await;
    let mut second = run_binary(&dir, |http, admin| binary_config(&stubs, &url, http, admin)).await;
    let entries = until_stream(&url, 20, |e| !e.is_empty()).await;
    let _ = second.child.kill();
    let _ = second.child.wait();
    assert_eq!(entries[0].1["request_id"], "killed-1");
    assert_eq!(entries[0].1["event_type"], "policy.proposed");
    assert_eq!(entries[0].1["aggregate_id"], reply.json()["policyId"]);
}

/// `CONFIG SET` / `REPLICAOF` on the test's Redis.
async fn redis_admin(url: &str, args: &[&str]) {
    let client = redis::Client::open(url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let _: redis::Value = redis::cmd(args[0])
        .arg(&args[1..])
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

/// Waits (at most 10 s) until the gateway has counted a publish failure for `reason`.
async fn until_publish_failure(env: &TestEnv, reason: &str) {
    let wanted = format!(
        "tai_gateway_events_publish_failures_total{{publisher=\"redis\",reason=\"{reason}\"}}"
    );
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = env_admin_get(env, "/metrics").await.body;
        if metrics.contains(&wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tai_gateway_events_publish_failures_total"))
        .collect();
    panic!("no publish failure counted as {reason}: {failures:?}");
}

#[tokio::test]
async fn redis_refusing_writes_out_of_memory_or_read_only_delays_events_but_loses_none() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let extra = format!("redis:\n  url: {url}\n  timeout: 250ms\n");
    let env = TestEnv::start_with(|c| with_events(c, &extra)).await;
    // Out of memory: every XADD is refused with `-OOM …`; the writes are still answered.
    redis_admin(&url, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).await;
    redis_admin(&url, &["CONFIG", "SET", "maxmemory", "1"]).await;
    for i in 0..3 {
        let reply = propose(&env, &format!("oom{i}"), &format!("oom-{i}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    until_publish_failure(&env, "oom").await;
    assert!(stream_entries(&url, "tai-events").await.is_empty());
    redis_admin(&url, &["CONFIG", "SET", "maxmemory", "0"]).await;
    until_stream(&url, 20, |e| e.len() == 3).await;
    // A read-only replica (of a master that is not there): `-READONLY …` until it is promoted.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
        .to_string();
    redis_admin(&url, &["REPLICAOF", "127.0.0.1", &nowhere]).await;
    for i in 0..2 {
        let reply = propose(&env, &format!("ro{i}"), &format!("ro-{i}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    until_publish_failure(&env, "read_only").await;
    redis_admin(&url, &["REPLICAOF", "NO", "ONE"]).await;
    let entries = until_stream(&url, 20, |e| e.len() == 5).await;
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|(_, p)| p["request_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["oom-0", "oom-1", "oom-2", "ro-0", "ro-1"],
        "in order, none lost"
    );
}

#[tokio::test]
async fn a_torn_spool_record_is_moved_aside_and_the_good_ones_are_published() {
    let stubs = start_stubs().await;
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    redis.kill();
    let dir = TempDir::new();
    let mut first = run_binary(&dir, |http, admin| binary_config(&stubs, &url, http, admin)).await;
    let client = crate::harness::http1_client();
    for i in 0..2 {
        let reply = send_with(
            &client,
            Method::POST,
            &format!("http://127.0.0.1:{}/v1/policies/propose", first.http_port),
            &[
                ("content-type", "application/json"),
                ("x-request-id", &format!("torn-{i}")),
            ],
            Some(&format!(r#"{{"policyName":"torn{i}"}}"#)),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reaped");
    // A crash in the middle of a third append: a length prefix and half a record.
    let spool = dir.path().join("events-spool");
    let segment = std::fs::read_dir(&spool)
        .expect("spool folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .expect("a segment file");
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("segment");
    std::io::Write::write_all(&mut torn, &[0, 0, 1, 0, 0xde, 0xad, b'{', b'"']).expect("torn tail");
    drop(torn);
    redis.resume().await;
    let mut second = run_binary(&dir, |http, admin| binary_config(&stubs, &url, http, admin)).await;
    let entries = until_stream(&url, 20, |e| e.len() >= 2).await;
    let metrics = send_with(
        &client,
        Method::GET,
        &format!("http://127.0.0.1:{}/metrics", second.admin_port),
        &[],
        None,
    )
    .await
    .body;
    let _ = second.child.kill();
    let _ = second.child.wait();
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|(_, p)| p["request_id"].as_str())
        .collect();
    assert_eq!(ids, ["torn-0", "torn-1"]);
    assert!(
        metrics.contains("tai_gateway_events_spool_corrupt_records_total 1"),
        "{metrics}"
    );
    let aside: Vec<String> = std::fs::read_dir(&spool)
        .expect("spool folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".log.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the torn tail is kept aside: {aside:?}");
}
