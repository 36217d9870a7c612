//! The consuming side of the event stream (issue 19) against a real `redis-server`: events are
//! written by hand with the agreed field layout ([`Event::fields`]); the audit subscriber, a
//! failing consumer and its dead letters, a consumer that dies holding entries, and the
//! `tai-gateway events …` commands as real processes.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tai_gateway::events::dead_letter::{self, DeadLetter};
use tai_gateway::events::group::group_info;
use tai_gateway::events::{
    Consumer, ConsumerOptions, DEAD_LETTERS, Delivery, Event, HandleError, STREAM,
};
use tokio::time::Instant;

use crate::harness::TempDir;
use crate::redis_server::RedisServer;
use crate::shared_state::{config_text, redis_config};

pub(crate) fn event(id: &str, event_type: &str, aggregate: &str) -> Event {
    Event {
        event_id: id.to_owned(),
        event_type: event_type.to_owned(),
        aggregate_id: aggregate.to_owned(),
        time: "2026-12-01T10:00:00.000Z".to_owned(),
        route: "governor".to_owned(),
        method: "tai.Governor/ProposePolicy".to_owned(),
        subject: Some("alice".to_owned()),
        request_id: format!("req-{id}"),
        request: serde_json::json!({ "policyName": id }),
        response: serde_json::json!({ "policyId": aggregate }),
    }
}

async fn connection(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection")
}

async fn publish(conn: &mut MultiplexedConnection, stream: &str, events: &[Event]) {
    for event in events {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream).arg("*");
        for (name, value) in event.fields() {
            cmd.arg(name).arg(value);
        }
        let _: String = cmd.query_async(conn).await.expect("XADD");
    }
}

/// Short backoff and block, so redeliveries happen within a test.
fn fast(group: &str, consumer: &str) -> ConsumerOptions {
    ConsumerOptions {
        backoff: Duration::from_millis(50),
        block: Duration::from_millis(50),
        ..ConsumerOptions::new(group, consumer)
    }
}

async fn pending(conn: &mut MultiplexedConnection, group: &str) -> u64 {
    group_info(conn, STREAM, group)
        .await
        .expect("XINFO")
        .expect("group")
        .pending
}

/// The event ids of the deliveries a handler saw, in order, with their delivery numbers.
pub(crate) type Seen = Arc<Mutex<Vec<(String, u64, Instant)>>>;

/// A handler recording each delivery and failing every delivery of `poison`.
pub(crate) fn failing_on(
    poison: &'static str,
    seen: Seen,
) -> impl FnMut(Delivery) -> std::future::Ready<Result<(), HandleError>> + Send {
    move |d: Delivery| {
        let id = d.entry.field("event_id").unwrap_or_default().to_owned();
        let failed = id == poison;
        seen.lock()
            .expect("lock")
            .push((id, d.deliveries, Instant::now()));
        std::future::ready(if failed {
            Err(HandleError::Failed("policy pol-2 is unknown".to_owned()))
        } else {
            Ok(())
        })
    }
}

#[tokio::test]
async fn the_audit_log_holds_each_event_once_and_nothing_stays_pending() {
    let server = RedisServer::start().await;
    let mut conn = connection(&server).await;
    let events = [
        event("e1", "policy.proposed", "pol-1"),
        event("e2", "policy.enforced", "pol-1"),
        event("e3", "policy.revoked", "pol-1"),
    ];
    publish(&mut conn, STREAM, &events).await;
    let dir = TempDir::new();
    let out = dir.path().join("audit.jsonl");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scrape = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let scrape_addr = scrape.local_addr().expect("address");
    let audit = tokio::spawn({
        let (config, out) = (redis_config(&server.url()), out.clone());
        async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let options = fast("audit", "a");
            tai_gateway::events::audit::audit(&config, &out, options, Some(scrape), shutdown).await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.lines().count() >= 3 {
            break text;
        }
        assert!(Instant::now() < deadline, "audit wrote: {text:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let audited: Vec<Event> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event per line"))
        .collect();
    assert_eq!(audited, events, "each event once, in order");
    while pending(&mut conn, "audit").await != 0 {
        assert!(Instant::now() < deadline, "acknowledged after writing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The audit process' own scrape endpoint.
    let client = crate::harness::http1_client();
    let url = format!("http://{scrape_addr}/metrics");
    let metrics = crate::harness::send_with(&client, http::Method::GET, &url, &[], None).await;
    assert_eq!(metrics.status, http::StatusCode::OK);
    assert!(
        metrics
            .body
            .contains("tai_gateway_event_deliveries_total{group=\"audit\",result=\"handled\"} 3"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("# TYPE tai_gateway_event_group_lag gauge")
    );
    let _ = stop.send(());
    audit.await.expect("task").expect("audit ends cleanly");
}

#[tokio::test]
async fn an_audit_log_reopened_does_not_write_an_event_it_holds_again() {
    use tai_gateway::events::Handler;
    use tai_gateway::events::audit::AuditLog;
    use tai_gateway::events::entry::Entry;
    let dir = TempDir::new();
    let path = dir.path().join("audit.jsonl");
    let e1 = event("e1", "policy.proposed", "pol-1");
    // A crash after the write, before the acknowledgement, and a last line cut short.
    let whole = serde_json::to_string(&e1).expect("json");
    std::fs::write(&path, format!("{whole}\n{{\"event_id\":\"torn")).expect("write");
    let delivery = |e: &Event| Delivery {
        entry: Entry {
            id: "1-0".to_owned(),
            fields: e
                .fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        },
        deliveries: 2,
    };
    let mut log = AuditLog::open(&path).await.expect("open");
    log.handle(&delivery(&e1))
        .await
        .expect("a duplicate is fine");
    let e2 = event("e2", "policy.enforced", "pol-1");
    log.handle(&delivery(&e2)).await.expect("written");
    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], whole);
    assert_eq!(lines[1], "{\"event_id\":\"torn", "the torn line ended");
    assert_eq!(lines[2], serde_json::to_string(&e2).expect("json"));
}

#[tokio::test]
async fn a_failing_event_is_retried_with_backoff_then_dead_lettered_and_replayed() {
    let server = RedisServer::start().await;
    let mut conn = connection(&server).await;
    let events = [
        event("e1", "policy.proposed", "pol-1"),
        event("e2", "action.requested", "pol-2"),
        event("e3", "policy.proposed", "pol-3"),
    ];
    publish(&mut conn, STREAM, &events).await;
    let seen: Seen = Arc::default();
    let mut handler = failing_on("e2", seen.clone());
    // A long BLOCK: a redelivery coming due must cut the wait for new entries short.
    let options = ConsumerOptions {
        block: Duration::from_secs(1),
        ..fast("svc", "c1")
    };
    let mut consumer = Consumer::connect(&redis_config(&server.url()), options)
        .await
        .expect("consumer");
    let stats = consumer.stats();
    let deadline = Instant::now() + Duration::from_secs(10);
    while dead_letter::list(&mut conn, DEAD_LETTERS)
        .await
        .expect("XRANGE")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "never dead-lettered");
        consumer.step(&mut handler).await.expect("step");
    }
    let seen = seen.lock().expect("lock").clone();
    let poison: Vec<&(String, u64, Instant)> = seen.iter().filter(|s| s.0 == "e2").collect();
    let numbers: Vec<u64> = poison.iter().map(|s| s.1).collect();
    assert_eq!(numbers, [1, 2, 3], "three deliveries, counted by Redis");
    assert!(poison[1].2 - poison[0].2 >= Duration::from_millis(50));
    assert!(
        poison[2].2 - poison[1].2 >= Duration::from_millis(100),
        "doubled"
    );
    assert!(
        poison[2].2 - poison[0].2 < Duration::from_millis(700),
        "no delivery waited for the BLOCK to run out"
    );
    let others: Vec<&str> = seen
        .iter()
        .filter(|s| s.0 != "e2")
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(others, ["e1", "e3"], "the others were handled once");
    let letters = dead_letter::list(&mut conn, DEAD_LETTERS)
        .await
        .expect("XRANGE");
    let letter = DeadLetter::from_entry(&letters[0]);
    assert_eq!(
        (letter.event_id.as_str(), letter.deliveries),
        ("e2", 3),
        "{letter:?}"
    );
    assert_eq!(letter.reason, "policy pol-2 is unknown");
    assert_eq!(letters[0].event().expect("payload kept"), events[1]);
    assert_eq!(
        pending(&mut conn, "svc").await,
        0,
        "acked on the main stream"
    );
    let stats = (
        stats.handled.load(std::sync::atomic::Ordering::Relaxed),
        stats.failed.load(std::sync::atomic::Ordering::Relaxed),
        stats
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!(stats, (2, 3, 1));

    let replayed = dead_letter::replay(&mut conn, (DEAD_LETTERS, STREAM), &[])
        .await
        .expect("replay");
    assert_eq!(replayed.len(), 1);
    assert!(
        dead_letter::list(&mut conn, DEAD_LETTERS)
            .await
            .expect("XRANGE")
            .is_empty()
    );
    let back = dead_letter::list(&mut conn, STREAM).await.expect("XRANGE");
    assert_eq!(back.len(), 4);
    assert_eq!(back[3].id, replayed[0].1);
    assert_eq!(
        back[3].fields,
        letters[0].fields[..5],
        "original fields only"
    );
}

#[tokio::test]
async fn a_consumer_dropped_mid_batch_leaves_its_entries_to_another() {
    let server = RedisServer::start().await;
    let mut conn = connection(&server).await;
    let events = [
        event("e1", "policy.proposed", "pol-1"),
        event("e2", "policy.proposed", "pol-2"),
        event("e3", "policy.proposed", "pol-3"),
    ];
    publish(&mut conn, STREAM, &events).await;
    let config = redis_config(&server.url());
    let mut first = Consumer::connect(&config, fast("svc", "dies"))
        .await
        .expect("consumer");
    // Handles e1, then hangs on e2 until dropped: e2 and e3 were read, never acknowledged.
    let mut hangs = |d: Delivery| async move {
        if d.entry.field("event_id") != Some("e1") {
            std::future::pending::<()>().await;
        }
        Ok(())
    };
    let stuck = tokio::time::timeout(Duration::from_millis(300), first.step(&mut hangs)).await;
    assert!(stuck.is_err(), "the first consumer was stopped mid-batch");
    drop(first);
    assert_eq!(pending(&mut conn, "svc").await, 2);

    let seen: Seen = Arc::default();
    let mut handler = failing_on("none", seen.clone());
    let mut second = Consumer::connect(&config, fast("svc", "lives"))
        .await
        .expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().expect("lock").len() < 2 {
        assert!(Instant::now() < deadline, "the entries never moved");
        second.step(&mut handler).await.expect("step");
    }
    let got: Vec<(String, u64)> = seen
        .lock()
        .expect("lock")
        .iter()
        .map(|s| (s.0.clone(), s.1))
        .collect();
    assert_eq!(got, [("e2".to_owned(), 2), ("e3".to_owned(), 2)]);
    assert_eq!(pending(&mut conn, "svc").await, 0);
}

fn gateway(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(args)
        .output()
        .expect("run tai-gateway")
}

#[tokio::test]
async fn the_dlq_commands_list_and_replay_dead_letters() {
    let server = RedisServer::start().await;
    let mut conn = connection(&server).await;
    publish(
        &mut conn,
        STREAM,
        &[
            event("e1", "policy.proposed", "pol-1"),
            event("e2", "action.requested", "pol-2"),
        ],
    )
    .await;
    let options = ConsumerOptions {
        max_deliveries: 1,
        ..fast("audit", "c")
    };
    let mut consumer = Consumer::connect(&redis_config(&server.url()), options)
        .await
        .expect("consumer");
    let mut handler = failing_on("e2", Arc::default());
    consumer.step(&mut handler).await.expect("step");
    let dir = TempDir::new();
    let config = dir.write("gateway.yaml", &config_text(Some(&server.url())));
    let config = config.to_str().expect("utf-8 path");

    let list = gateway(&["events", "dlq", "list", "--config", config]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{list:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "group audit on tai-events: lag 0, pending 0, 1 consumer(s)"
    );
    assert_eq!(lines[1], "tai-events-dlq: 1 event(s)");
    assert!(lines[2].starts_with("EVENT ID  TYPE"), "{text}");
    let row: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(row[..4], ["e2", "action.requested", "pol-2", "1"], "{text}");
    assert!(lines[3].ends_with("policy pol-2 is unknown"), "{text}");

    let replay = gateway(&["events", "dlq", "replay", "e2", "--config", config]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{replay:?}");
    assert!(text.ends_with("1 event(s) replayed\n"), "{text}");
    let again = gateway(&["events", "dlq", "replay", "e2", "--config", config]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not in the dead-letter stream: e2"));
    let lag = gateway(&["events", "lag", "--config", config]);
    assert_eq!(
        String::from_utf8_lossy(&lag.stdout),
        "group audit on tai-events: lag 1, pending 0, 1 consumer(s)\n",
        "the replayed event waits for the group"
    );
}

#[tokio::test]
async fn an_events_command_needs_a_redis_section() {
    let dir = TempDir::new();
    let config = dir.write("gateway.yaml", &config_text(None));
    let out = gateway(&[
        "events",
        "dlq",
        "list",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no `redis:` section"), "{stderr}");
}

#[tokio::test]
async fn tail_prints_the_events_of_a_type() {
    let server = RedisServer::start().await;
    let mut conn = connection(&server).await;
    publish(
        &mut conn,
        STREAM,
        &[
            event("e1", "policy.proposed", "pol-1"),
            event("e2", "action.requested", "pol-1"),
            event("e3", "policy.revoked", "pol-1"),
        ],
    )
    .await;
    let dir = TempDir::new();
    let config = dir.write("gateway.yaml", &config_text(Some(&server.url())));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args([
            "events",
            "tail",
            "--type",
            "policy.*",
            "--from-start",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let mut published = false;
    while got.len() < 3 {
        match seen.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => got.push(line),
            Err(e) => panic!("tail printed {got:?}, then {e}"),
        }
        if got.len() == 2 && !published {
            // Followed as it arrives, after the history.
            publish(
                &mut conn,
                STREAM,
                &[
                    event("e4", "action.requested", "pol-2"),
                    event("e5", "policy.enforced", "pol-2"),
                ],
            )
            .await;
            published = true;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        got,
        [
            "2026-12-01T10:00:00.000Z  policy.proposed  pol-1  e1",
            "2026-12-01T10:00:00.000Z  policy.revoked  pol-1  e3",
            "2026-12-01T10:00:00.000Z  policy.enforced  pol-2  e5",
        ]
    );
}

#[tokio::test]
async fn a_running_consumer_rejoins_a_redis_that_restarted_empty() {
    let mut server = RedisServer::start().await;
    let config = redis_config(&server.url());
    let consumer = Consumer::connect(&config, fast("svc", "c"))
        .await
        .expect("consumer");
    let seen: Seen = Arc::default();
    let mut handler = failing_on("none", seen.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        consumer.run(&mut handler, shutdown).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.resume().await;
    let mut conn = connection(&server).await;
    // The restarted server lost the group: the consumer makes it again when it reconnects.
    let deadline = Instant::now() + Duration::from_secs(15);
    while group_info(&mut conn, STREAM, "svc")
        .await
        .ok()
        .flatten()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the consumer never rejoined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publish(
        &mut conn,
        STREAM,
        &[event("e1", "policy.proposed", "pol-1")],
    )
    .await;
    while seen.lock().expect("lock").is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    running.await.expect("task").expect("stops cleanly");
}
