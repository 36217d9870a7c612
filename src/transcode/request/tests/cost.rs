//! Instruction-count harness for the JSON → protobuf → JSON cycle of a `tai.Policy`, run under
//! callgrind (wall clock is useless on the shared build machines):
//!
//! ```text
//! CYCLES=0     valgrind --tool=callgrind <lib test binary> --ignored --exact \
//!     transcode::request::tests::cost::policy_cycle_for_callgrind
//! CYCLES=10000 valgrind ... (same)
//! ```
//! (difference of the two totals) / 10000 = instructions per cycle. `CYCLE_PATH=old` measures
//! `build_request` + `encode_message` instead of `encode_request`.

use std::hint::black_box;

use super::super::{
    BodyRule, QueryOptions, RequestParts, build_request, encode_message, encode_request,
};
use crate::transcode::json::DecodeOptions;
use crate::transcode::json::test_pool::message;
use crate::transcode::response::decode_and_encode;

const POLICY_JSON: &str = r#"{"id":"pol-42","policyType":"access","policyName":"deny-external","rules":{"effect":"deny","scope":"external"},"version":"3","createdAt":"2026-11-26T10:00:00Z","state":"POLICY_STATE_ACTIVE"}"#;

#[test]
#[ignore = "a measurement harness for callgrind, not a check"]
fn policy_cycle_for_callgrind() {
    let cycles: usize = std::env::var("CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let desc = message("tai.Policy");
    let (decode, query) = (DecodeOptions::default(), QueryOptions::default());
    let encode = crate::transcode::json::EncodeOptions::default();
    let parts = RequestParts {
        path_bindings: &[],
        query: None,
        body: POLICY_JSON.as_bytes(),
        content_type: None,
    };
    let old = std::env::var("CYCLE_PATH").is_ok_and(|v| v == "old");
    for _ in 0..cycles {
        let parts = black_box(parts);
        let bytes = if old {
            let msg =
                build_request(&desc, &BodyRule::Whole, &parts, &decode, &query).expect("builds");
            encode_message(&msg)
        } else {
            encode_request(&desc, &BodyRule::Whole, &parts, &decode, &query).expect("encodes")
        };
        black_box(decode_and_encode(&desc, &bytes, None, &encode).expect("prints"));
    }
}
