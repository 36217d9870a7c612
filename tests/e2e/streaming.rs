//! Server streams to HTTP clients: every output format byte for byte, errors before and after
//! the first message, trailers, raw `HttpBody` streams, and cancellation on disconnect.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::harness::{Reply, TestEnv, h2c_client, http1_client};

/// Two policies with every field fixed, so events can be compared byte for byte.
const POLICIES: [&str; 2] = [
    r#"{"id":"p-1","policyType":"access","policyName":"deny-all","rules":{"k":"v"},"createdAt":"2024-05-01T10:00:00Z"}"#,
    r#"{"id":"p-2","policyType":"quota","policyName":"cap","createdAt":"2024-05-02T10:00:00Z"}"#,
];

/// Replays the two stored policies, then ends.
const WATCH: &str = "/v1/policies:watch?replay=true&maxEvents=2";

/// An environment (with `edit` applied to its config) holding [`POLICIES`], and the events
/// the watch stream replays for them, as the gateway prints them.
async fn env_with_policies(edit: impl FnOnce(String) -> String) -> (TestEnv, Vec<String>) {
    let env = TestEnv::start_with(edit).await;
    let mut events = Vec::new();
    for policy in POLICIES {
        let stored = env.post_json("/v1/policies/propose", policy).await;
        assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    }
    for id in ["p-1", "p-2"] {
        let got = env.get(&format!("/v1/policies/{id}")).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.body);
        events.push(format!(
            r#"{{"kind":"POLICY_EVENT_KIND_EXISTING","policy":{}}}"#,
            got.body
        ));
    }
    (env, events)
}

async fn watch(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> Reply {
    env.send(Method::GET, path, headers, None).await
}

#[tokio::test]
async fn streams_a_json_array_by_default() {
    let (env, events) = env_with_policies(|c| c).await;
    let reply = watch(&env, WATCH, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.body, format!("[{},{}]", events[0], events[1]));
    assert_eq!(reply.header("x-tai-attempts"), Some("1"));
}

#[tokio::test]
async fn accept_header_chooses_ndjson_and_server_sent_events() {
    let (env, events) = env_with_policies(|c| c).await;
    let ndjson = watch(&env, WATCH, &[("accept", "application/x-ndjson")]).await;
    assert_eq!(ndjson.status, StatusCode::OK, "{}", ndjson.body);
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(ndjson.body, format!("{}\n{}\n", events[0], events[1]));

    let sse = watch(&env, WATCH, &[("accept", "text/event-stream")]).await;
    assert_eq!(sse.status, StatusCode::OK, "{}", sse.body);
    assert_eq!(sse.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.header("cache-control"), Some("no-cache"));
    assert_eq!(
        sse.body,
        format!("data: {}\n\ndata: {}\n\n", events[0], events[1])
    );
}

#[tokio::test]
async fn route_stream_format_applies_when_accept_names_no_stream_type() {
    let (env, events) = env_with_policies(|c| {
        c.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    transcoding:\n      stream_format: ndjson\n",
        )
    })
    .await;
    let reply = watch(&env, WATCH, &[("accept", "*/*")]).await;
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(reply.body, format!("{}\n{}\n", events[0], events[1]));
}

#[tokio::test]
async fn error_before_the_first_message_is_an_ordinary_error_response() {
    let (env, _) = env_with_policies(|c| c).await;
    let reply = watch(
        &env,
        WATCH,
        &[
            ("x-stub-fail-code", "PERMISSION_DENIED"),
            ("x-stub-fail-message", "not yours"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["code"], 7);
    assert_eq!(body["message"], "not yours");
}

/// The error element every format carries for `ABORTED: boom` after one message.
const ERROR_ELEMENT: &str = r#"{"error":{"code":10,"message":"boom","details":[]}}"#;

const FAIL_AFTER_ONE: [(&str, &str); 3] = [
    ("x-stub-fail-after", "1"),
    ("x-stub-fail-code", "ABORTED"),
    ("x-stub-fail-message", "boom"),
];

#[tokio::test]
async fn error_after_the_first_message_is_the_last_element_in_every_format() {
    let (env, events) = env_with_policies(|c| c).await;
    let array = watch(&env, WATCH, &FAIL_AFTER_ONE).await;
    assert_eq!(array.status, StatusCode::OK);
    assert_eq!(array.body, format!("[{},{ERROR_ELEMENT}]", events[0]));

    let mut headers = FAIL_AFTER_ONE.to_vec();
    headers.push(("accept", "application/x-ndjson"));
    let ndjson = watch(&env, WATCH, &headers).await;
    assert_eq!(ndjson.body, format!("{}\n{ERROR_ELEMENT}\n", events[0]));

    headers.pop();
    headers.push(("accept", "text/event-stream"));
    let sse = watch(&env, WATCH, &headers).await;
    assert_eq!(
        sse.body,
        format!(
            "data: {}\n\nevent: error\ndata: {ERROR_ELEMENT}\n\n",
            events[0]
        )
    );
}

#[tokio::test]
async fn clients_accepting_trailers_get_grpc_status_trailers() {
    let (env, events) = env_with_policies(|c| c).await;
    let client = h2c_client();
    let mut request = Request::get(format!("{}{WATCH}", env.base())).header("te", "trailers");
    for (name, value) in FAIL_AFTER_ONE {
        request = request.header(name, value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::new())).expect("request"))
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let collected = response.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "10");
    assert_eq!(trailers["grpc-message"], "boom");
    let body = String::from_utf8(collected.to_bytes().to_vec()).expect("utf-8");
    assert_eq!(body, format!("[{},{ERROR_ELEMENT}]", events[0]));

    // A stream that ends well says so too.
    let request = Request::get(format!("{}{WATCH}", env.base()))
        .header("te", "trailers")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let collected = client
        .request(request)
        .await
        .expect("send")
        .into_body()
        .collect()
        .await
        .expect("body");
    assert_eq!(collected.trailers().expect("trailers")["grpc-status"], "0");
}

#[tokio::test]
async fn http_body_streams_are_sent_raw_with_the_first_content_type() {
    let (env, _) = env_with_policies(|c| c).await;
    let reply = env.get("/v1/policies:export").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let first = env.get("/v1/policies/p-1:export").await.body;
    let second = env.get("/v1/policies/p-2:export").await.body;
    assert_eq!(reply.body, format!("{first}{second}"));
}

/// Opens `GET /v1/policies:watch?replay=true` as NDJSON (200) and returns its body, unread.
async fn watch_with_replay(env: &TestEnv) -> hyper::body::Incoming {
    let request = Request::get(format!("{}/v1/policies:watch?replay=true", env.base()))
        .header("accept", "application/x-ndjson")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = http1_client().request(request).await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

#[tokio::test]
async fn client_disconnect_cancels_the_backend_stream() {
    let (env, events) = env_with_policies(|c| c).await;
    // Replay, then wait for live events that never come.
    let mut body = watch_with_replay(&env).await;
    let mut seen = Vec::new();
    while seen.len() < format!("{}\n{}\n", events[0], events[1]).len() {
        let frame = body.frame().await.expect("frame").expect("data");
        seen.extend_from_slice(frame.data_ref().expect("data"));
    }
    assert_eq!(env.stubs.store().cancelled_streams(), 0);
    drop(body);
    let store = env.stubs.store();
    tokio::time::timeout(Duration::from_secs(10), async {
        while store.cancelled_streams() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the backend saw the cancellation");
    // The request is recorded when the stream ends: here, cancelled by the client.
    let cancelled = r#"tai_gateway_requests_total{route="tai.Governor",response_code="200",grpc_response_status="1",listener="http"} 1"#;
    assert!(
        governor_request_lines(&env)
            .await
            .iter()
            .any(|l| l == cancelled),
        "{:?}",
        governor_request_lines(&env).await
    );
}

#[tokio::test]
async fn the_deadline_bounds_the_wait_for_the_first_message() {
    let (env, _) = env_with_policies(|c| {
        c.replace(
            "  - service: tai.Governor\n    upstream: governor\n",
            "  - service: tai.Governor\n    upstream: governor\n    timeout: 200ms\n",
        )
    })
    .await;
    let late = watch(&env, WATCH, &[("x-stub-delay-ms", "5000")]).await;
    assert_eq!(late.status, StatusCode::GATEWAY_TIMEOUT, "{}", late.body);
    assert_eq!(late.json()["code"], 4);
    // Once the first message is out, the stream outlives the deadline: this one waits for
    // live events well past 200ms and is still open until the client leaves (see the
    // disconnect test); here a replay that ends on its own is complete.
    assert_eq!(watch(&env, WATCH, &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_the_backend_back() {
    let env = TestEnv::start().await;
    const TOTAL: u64 = 100_000; // 1 KiB each: ~100 MiB if nothing pushed back
    let request = Request::get(format!(
        "{}/v1/policies:watch?syntheticEvents={TOTAL}",
        env.base()
    ))
    .header("accept", "application/x-ndjson")
    .body(Full::new(Bytes::new()))
    .expect("request");
    let client = http1_client();
    let response = client.request(request).await.expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    body.frame().await.expect("frame").expect("first chunk");
    // Now read nothing more: the backend must stall once the flow-control windows and socket
    // buffers between it and this client are full.
    let store = env.stubs.store();
    let settled = tokio::time::timeout(Duration::from_secs(20), async {
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let sent = store.stream_messages_sent();
            if sent == last || sent == TOTAL {
                return sent;
            }
            last = sent;
        }
    })
    .await
    .expect("the backend stream settles");
    eprintln!(
        "messages the backend could send to a client that stopped reading: {settled} of {TOTAL}"
    );
    assert!(settled < TOTAL / 4, "{settled} of {TOTAL} sent");
    drop(body);
    tokio::time::timeout(Duration::from_secs(10), async {
        while store.cancelled_streams() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the backend saw the cancellation");
}

/// The `/metrics` lines of the requests counter for the governor route.
async fn governor_request_lines(env: &TestEnv) -> Vec<String> {
    let text = crate::admin::admin_get(env, "/metrics").await.body;
    text.lines()
        .filter(|l| l.starts_with("tai_gateway_requests_total{route=\"tai.Governor\""))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_stream_is_recorded_with_the_status_it_ended_with() {
    let (env, _events) = env_with_policies(|c| c).await;
    let before = governor_request_lines(&env).await;
    let failed = watch(&env, WATCH, &FAIL_AFTER_ONE).await;
    assert_eq!(failed.status, StatusCode::OK);
    assert!(
        failed.body.ends_with(&format!("{ERROR_ELEMENT}]")),
        "{}",
        failed.body
    );
    // The body has ended when the client has read it; the record is written as it ends.
    let after = governor_request_lines(&env).await;
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert_eq!(
        new,
        [&r#"tai_gateway_requests_total{route="tai.Governor",response_code="200",grpc_response_status="10",listener="http"} 1"#.to_owned()],
        "{after:?}"
    );
}

/// Messages already at the gateway are written together (issue 14), but none waits for
/// another: each live event reaches the open stream on its own, while the stream stays open.
#[tokio::test]
async fn each_live_event_reaches_the_open_stream_as_it_happens() {
    let (env, events) = env_with_policies(|c| c).await;
    let mut body = watch_with_replay(&env).await;
    let mut seen = String::new();
    let mut expected = format!("{}\n{}\n", events[0], events[1]);
    for id in ["p-3", "p-4"] {
        read_up_to(&mut body, &mut seen, expected.len()).await;
        assert_eq!(seen, expected);
        let policy = format!(r#"{{"id":"{id}","policyType":"access","policyName":"{id}"}}"#);
        let stored = env.post_json("/v1/policies/propose", &policy).await;
        assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
        let got = env.get(&format!("/v1/policies/{id}")).await;
        expected.push_str(&format!(
            "{{\"kind\":\"POLICY_EVENT_KIND_PROPOSED\",\"policy\":{}}}\n",
            got.body
        ));
    }
    read_up_to(&mut body, &mut seen, expected.len()).await;
    assert_eq!(seen, expected);
}

/// Reads the stream's body into `seen` until it holds `len` bytes (each frame within 10 s).
async fn read_up_to(body: &mut hyper::body::Incoming, seen: &mut String, len: usize) {
    while seen.len() < len {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame()).await;
        let frame = frame.expect("an event within 10 s").expect("frame");
        let data = frame.expect("data").into_data().expect("data frame");
        seen.push_str(std::str::from_utf8(&data).expect("UTF-8"));
    }
}
