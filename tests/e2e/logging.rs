//! What the gateway writes to stderr (issue 15): JSON lines for log shippers with
//! `log_format: json`; text without terminal escape codes when stderr is not a terminal; the
//! trace id on every line about a request.

use http::{Method, StatusCode};

use crate::harness::{TempDir, default_config, run_binary_logging, send_with, start_stubs};

/// The default test config on two fixed ports, plus `extra` top-level keys.
fn config_on(stubs: &tai_stubs::StubServers, http: u16, admin: u16, extra: &str) -> String {
    let config = default_config(stubs)
        .replace("127.0.0.1:0\nadmin:", &format!("127.0.0.1:{http}\nadmin:"))
        .replacen(
            "address: 127.0.0.1:0\ndescriptors",
            &format!("address: 127.0.0.1:{admin}\ndescriptors"),
            1,
        );
    format!("{config}access_log:\n  enabled: false\n{extra}")
}

/// Runs the binary with `extra`, sends one request that fails at the backend (logged at warn),
/// stops it, and returns what it wrote to stderr.
async fn stderr_of(extra: &str) -> String {
    let stubs = start_stubs().await;
    let dir = TempDir::new();
    let log = dir.path().join("stderr.log");
    let mut gateway =
        run_binary_logging(&dir, |h, a| config_on(&stubs, h, a, extra), Some(&log)).await;
    let client = crate::harness::http1_client();
    let url = format!("http://127.0.0.1:{}/v1/echo/x", gateway.http_port);
    let reply = send_with(
        &client,
        Method::GET,
        &url,
        &[("x-stub-fail-code", "UNAVAILABLE")],
        None,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    let _ = gateway.child.kill();
    let _ = gateway.child.wait();
    std::fs::read_to_string(&log).expect("stderr")
}

#[tokio::test]
async fn json_log_lines_carry_time_level_target_and_message() {
    let text = stderr_of("log_format: json\n").await;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "no `{key}` in {line}");
        }
    }
    let failed = lines
        .iter()
        .find(|l| l["level"] == "WARN" && l["message"] == "request failed")
        .unwrap_or_else(|| panic!("no `request failed` line in {text}"));
    // The line about the request carries its trace id, from the request's span.
    let trace_id = failed["span"]["trace_id"].as_str().expect("trace_id");
    assert!(is_trace_id(trace_id), "{failed}");
}

fn is_trace_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

#[tokio::test]
async fn text_logs_to_a_file_have_no_terminal_escape_codes() {
    let text = stderr_of("").await;
    let failed = text
        .lines()
        .find(|l| l.contains("request failed"))
        .unwrap_or_else(|| panic!("no `request failed` line in {text}"));
    let trace_id = failed
        .split("request{trace_id=")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .unwrap_or_else(|| panic!("no trace id in {failed}"));
    assert!(is_trace_id(trace_id), "{failed}");
    assert!(!text.contains('\u{1b}'), "escape codes in: {text:?}");
}
