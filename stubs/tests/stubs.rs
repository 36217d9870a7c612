//! End-to-end tests of the stub servers over real sockets, through the generated clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prost::Message;
use tai_stubs::proto::google::rpc;
use tai_stubs::proto::grpc::health::v1::HealthCheckRequest;
use tai_stubs::proto::grpc::health::v1::health_client::HealthClient;
use tai_stubs::proto::tai::coordinator_client::CoordinatorClient;
use tai_stubs::proto::tai::governor_client::GovernorClient;
use tai_stubs::proto::tai::{
    ActionRequest, Document, EchoMessage, GetDocumentRequest, GetPolicyRequest, Policy,
    PolicyState, Receipt, RevokePolicyRequest,
};
use tai_stubs::{ServingStatus, StubServers};
use tonic::metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

async fn start() -> StubServers {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    StubServers::start(any, any).await.expect("stubs start")
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

async fn governor(stubs: &StubServers) -> GovernorClient<Channel> {
    GovernorClient::new(channel(stubs.governor_addr).await)
}

async fn coordinator(stubs: &StubServers) -> CoordinatorClient<Channel> {
    CoordinatorClient::new(channel(stubs.coordinator_addr).await)
}

/// A request carrying the given ASCII metadata.
fn with_metadata<T>(message: T, pairs: &[(&'static str, &'static str)]) -> Request<T> {
    let mut request = Request::new(message);
    for (key, value) in pairs {
        request
            .metadata_mut()
            .append(*key, AsciiMetadataValue::from_static(value));
    }
    request
}

fn named(name: &str) -> Policy {
    Policy {
        policy_name: name.to_owned(),
        ..Default::default()
    }
}

fn get(id: &str) -> GetPolicyRequest {
    GetPolicyRequest { id: id.to_owned() }
}

fn header<'a>(metadata: &'a MetadataMap, key: &str) -> Option<&'a str> {
    metadata.get(key).map(|v| v.to_str().expect("ascii"))
}

#[tokio::test]
async fn propose_assigns_first_ids_and_get_returns_the_proposed_policy() {
    let stubs = start().await;
    let mut client = governor(&stubs).await;

    let response = client
        .propose_policy(named("limits"))
        .await
        .expect("propose");
    assert_eq!(
        header(response.metadata(), "x-stub-service"),
        Some("governor")
    );
    assert_eq!(header(response.metadata(), "x-stub-trailer"), Some("done"));
    // The caller's side of the connection: an address on the loopback interface.
    let peer = header(response.metadata(), "x-stub-peer").expect("x-stub-peer");
    let peer: std::net::SocketAddr = peer.parse().expect("ip:port");
    assert!(peer.ip().is_loopback(), "{peer}");
    let receipt = response.into_inner();
    assert_eq!(
        receipt,
        Receipt {
            id: "rec-1".into(),
            status: "success".into(),
            policy_id: "pol-1".into()
        }
    );

    let policy = client
        .get_policy(get("pol-1"))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(policy.policy_name, "limits");
    assert_eq!(policy.state(), PolicyState::Proposed);
    assert_eq!(policy.version, 1);
    assert!(policy.created_at.is_some());
    assert_eq!(stubs.store().calls("tai.Governor/ProposePolicy"), 1);
    stubs.shutdown().await;
}

#[tokio::test]
async fn the_stub_trailer_arrives_in_trailers_not_headers() {
    let stubs = start().await;
    // Calling the unary method as server-streaming (same wire format) keeps tonic from
    // merging trailers into the response metadata, so each can be inspected on its own.
    let mut grpc = tonic::client::Grpc::new(channel(stubs.governor_addr).await);
    grpc.ready().await.expect("ready");
    let request = Request::new(GetDocumentRequest { path: "a/b".into() });
    let path = http::uri::PathAndQuery::from_static("/tai.Governor/GetDocument");
    let codec = tonic_prost::ProstCodec::<GetDocumentRequest, Document>::default();
    let response = grpc
        .server_streaming(request, path, codec)
        .await
        .expect("call");
    assert_eq!(
        header(response.metadata(), "x-stub-service"),
        Some("governor")
    );
    assert_eq!(header(response.metadata(), "x-stub-trailer"), None);

    let mut stream = response.into_inner();
    let document = stream.message().await.expect("message").expect("one");
    assert_eq!(document.segments, ["a", "b"]);
    assert!(stream.message().await.expect("end").is_none());
    let trailers = stream.trailers().await.expect("trailers").expect("present");
    assert_eq!(header(&trailers, "x-stub-trailer"), Some("done"));
    stubs.shutdown().await;
}

#[tokio::test]
async fn empty_policy_name_is_invalid_argument_with_a_bad_request_detail() {
    let stubs = start().await;
    let status = governor(&stubs)
        .await
        .propose_policy(named(""))
        .await
        .expect_err("empty name");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "policy_name must not be empty");

    let details = rpc::Status::decode(status.details()).expect("google.rpc.Status");
    assert_eq!(details.code, Code::InvalidArgument as i32);
    assert_eq!(details.message, "policy_name must not be empty");
    assert_eq!(details.details.len(), 1);
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.BadRequest"
    );
    let bad_request =
        rpc::BadRequest::decode(details.details[0].value.as_slice()).expect("BadRequest");
    assert_eq!(bad_request.field_violations.len(), 1);
    assert_eq!(bad_request.field_violations[0].field, "policy_name");
    assert_eq!(
        bad_request.field_violations[0].description,
        "must not be empty"
    );
    stubs.shutdown().await;
}

#[tokio::test]
async fn unknown_policy_is_not_found() {
    let stubs = start().await;
    let status = governor(&stubs)
        .await
        .get_policy(get("pol-404"))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "policy pol-404 not found");
    assert_eq!(
        header(status.metadata(), "x-stub-service"),
        Some("governor")
    );
    stubs.shutdown().await;
}

#[tokio::test]
async fn actions_are_accepted_until_their_policy_is_revoked() {
    let stubs = start().await;
    let mut governor = governor(&stubs).await;
    let mut coordinator = coordinator(&stubs).await;
    governor.propose_policy(named("p")).await.expect("propose");
    let action = ActionRequest {
        agent_id: "agent-7".into(),
        action: "deploy".into(),
        policy_id: "pol-1".into(),
        ..Default::default()
    };

    let accepted = coordinator
        .request_action(action.clone())
        .await
        .expect("accepted");
    assert_eq!(
        header(accepted.metadata(), "x-stub-service"),
        Some("coordinator")
    );
    assert_eq!(
        accepted.into_inner(),
        Receipt {
            id: "rec-2".into(),
            status: "accepted".into(),
            policy_id: "pol-1".into()
        }
    );

    let revoke = RevokePolicyRequest {
        id: "pol-1".into(),
        reason: "test".into(),
    };
    let revoked = governor.revoke_policy(revoke).await.expect("revoke");
    assert_eq!(revoked.into_inner().id, "rec-3");

    let status = coordinator
        .request_action(action)
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "policy pol-1 is revoked");
    stubs.shutdown().await;
}

#[tokio::test]
async fn delay_header_holds_the_reply_back() {
    let stubs = start().await;
    let mut client = governor(&stubs).await;
    let started = Instant::now();
    let request = with_metadata(named("slow"), &[("x-stub-delay-ms", "200")]);
    client.propose_policy(request).await.expect("propose");
    assert!(started.elapsed() >= Duration::from_millis(200));
    stubs.shutdown().await;
}

#[tokio::test]
async fn a_call_abandoned_during_its_delay_never_reaches_the_fault_counter() {
    let stubs = start().await;
    let mut client = governor(&stubs).await;
    let fail_once = [("x-stub-fail-first", "1"), ("x-stub-fail-key", "abandoned")];

    // The client gives up after 50 ms; the stub would have slept 300 ms, then counted the key.
    let mut slow = fail_once.to_vec();
    slow.push(("x-stub-delay-ms", "300"));
    let abandoned = client.get_policy(with_metadata(get("x"), &slow));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), abandoned)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Had the abandoned call run on, it would have used up the one failure.
    let status = client
        .get_policy(with_metadata(get("x"), &fail_once))
        .await
        .expect_err("first counted call fails");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(stubs.store().calls("tai.Governor/GetPolicy"), 2);
    stubs.shutdown().await;
}

#[tokio::test]
async fn fail_code_header_fails_with_the_code_given_by_number_or_name() {
    let stubs = start().await;
    let mut client = governor(&stubs).await;

    let by_number = with_metadata(get("x"), &[("x-stub-fail-code", "14")]);
    let status = client.get_policy(by_number).await.expect_err("injected");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "injected failure");

    let by_name = with_metadata(
        get("x"),
        &[
            ("x-stub-fail-code", "resource_exhausted"),
            ("x-stub-fail-message", "slow down"),
        ],
    );
    let status = client.get_policy(by_name).await.expect_err("injected");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "slow down");

    let bogus = with_metadata(get("x"), &[("x-stub-fail-code", "SOMETIMES")]);
    let status = client.get_policy(bogus).await.expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "invalid x-stub-fail-code header: \"SOMETIMES\""
    );

    assert_eq!(stubs.store().calls("tai.Governor/GetPolicy"), 3);
    stubs.shutdown().await;
}

#[tokio::test]
async fn fail_first_fails_only_the_first_calls_of_each_key() {
    let stubs = start().await;
    let mut client = coordinator(&stubs).await;
    let call = |key: &'static str| {
        let status = tai_stubs::proto::tai::GetActionStatusRequest {
            name: "agents/a/actions/1".into(),
        };
        with_metadata(
            status,
            &[("x-stub-fail-first", "2"), ("x-stub-fail-key", key)],
        )
    };

    for _ in 0..2 {
        let status = client
            .get_action_status(call("k1"))
            .await
            .expect_err("first two");
        assert_eq!(status.code(), Code::Unavailable);
    }
    // A different key has its own counter.
    let status = client
        .get_action_status(call("k2"))
        .await
        .expect_err("k2 first");
    assert_eq!(status.code(), Code::Unavailable);

    let receipt = client
        .get_action_status(call("k1"))
        .await
        .expect("third k1");
    assert_eq!(
        receipt.into_inner(),
        Receipt {
            id: "agents/a/actions/1".into(),
            status: "pending".into(),
            policy_id: String::new()
        }
    );
    assert_eq!(stubs.store().calls("tai.Coordinator/GetActionStatus"), 4);
    stubs.shutdown().await;
}

#[tokio::test]
async fn reply_header_adds_response_headers_from_repeats_and_commas() {
    let stubs = start().await;
    let request = with_metadata(
        get("x"),
        &[
            ("x-stub-reply-header", "x-one=1, x-two=2"),
            ("x-stub-reply-header", "x-three=3"),
        ],
    );
    let status = governor(&stubs)
        .await
        .get_policy(request)
        .await
        .expect_err("unknown policy");
    // Reply headers go on errors too.
    assert_eq!(header(status.metadata(), "x-one"), Some("1"));
    assert_eq!(header(status.metadata(), "x-two"), Some("2"));
    assert_eq!(header(status.metadata(), "x-three"), Some("3"));
    stubs.shutdown().await;
}

#[tokio::test]
async fn echo_returns_ascii_request_metadata_without_binary_keys() {
    let stubs = start().await;
    let message = EchoMessage {
        string_value: "hi".into(),
        ..Default::default()
    };
    let mut request = with_metadata(message, &[("x-custom", "Value")]);
    request
        .metadata_mut()
        .insert_bin("x-blob-bin", BinaryMetadataValue::from_bytes(b"\x00\x01"));
    let echoed = governor(&stubs)
        .await
        .echo(request)
        .await
        .expect("echo")
        .into_inner();
    assert_eq!(echoed.string_value, "hi");
    assert_eq!(
        echoed.received_metadata.get("x-custom").map(String::as_str),
        Some("Value")
    );
    assert!(!echoed.received_metadata.contains_key("x-blob-bin"));
    stubs.shutdown().await;
}

#[tokio::test]
async fn health_check_reports_serving_until_told_otherwise() {
    let stubs = start().await;
    let mut health = HealthClient::new(channel(stubs.coordinator_addr).await);
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };

    for service in ["", "tai.Governor", "tai.Coordinator"] {
        let reply = health
            .check(check(service))
            .await
            .expect("check")
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }
    let status = health.check(check("tai.Nope")).await.expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);

    let mut watch = health
        .watch(check("tai.Coordinator"))
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("stream").expect("first");
    assert_eq!(first.status(), ServingStatus::Serving);

    stubs
        .health()
        .set("tai.Coordinator", ServingStatus::NotServing);
    let reply = health
        .check(check("tai.Coordinator"))
        .await
        .expect("check")
        .into_inner();
    assert_eq!(reply.status(), ServingStatus::NotServing);
    let next = watch.message().await.expect("stream").expect("update");
    assert_eq!(next.status(), ServingStatus::NotServing);

    // Shutting down ends the open stream instead of waiting for it.
    let stopped = tokio::time::timeout(Duration::from_secs(5), stubs.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown waited for the Watch stream");
    assert!(watch.message().await.expect("clean end").is_none());
}

#[tokio::test]
async fn shutdown_closes_both_listeners() {
    let stubs = start().await;
    let addrs = [stubs.governor_addr, stubs.coordinator_addr];
    stubs.shutdown().await;
    for addr in addrs {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr}"
        );
    }
}
