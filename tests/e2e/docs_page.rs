//! The docs page (`GET /docs`) end to end: its answers' headers over sockets (type, `ETag` and
//! 304, a Content-Security-Policy allowing this origin only), moved with `openapi.docs_path` and
//! off with the document; then a real headless Chromium: the page loads with no failed
//! request, lists the TAI operations, and a deep link that runs "try it" on
//! `GET /v1/policies/{id}` shows the JSON answer. A screenshot is saved for people to look at.

use std::path::{Path, PathBuf};

use http::{Method, StatusCode};

use crate::harness::{TestEnv, chromium};

/// Virtual time the docs page's scripts get in the browser (loading the document, running "try it").
const PAGE_TIME_MS: u32 = 15_000;

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served_with_a_strict_policy_and_tags() {
    let env = TestEnv::start().await;
    for (path, kind) in [
        ("/docs", "text/html; charset=utf-8"),
        ("/docs/app.js", "text/javascript; charset=utf-8"),
        ("/docs/style.css", "text/css; charset=utf-8"),
    ] {
        let reply = env.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some(kind), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        let policy = reply.header("content-security-policy").expect("policy");
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("http"));
        let etag = reply.header("etag").expect("etag").to_owned();
        assert!(etag.starts_with('"'), "{etag}");
        let again = env
            .send(Method::GET, path, &[("if-none-match", &etag)], None)
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
    }
    let page = env.get("/docs").await.body;
    assert!(page.contains(r#"<script src="/docs/app.js" defer></script>"#));
    assert!(page.contains(r#"data-openapi="/openapi.json""#));
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert_eq!(env.get("/docs/other").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_docs_page_can_be_moved_and_goes_with_the_document() {
    let moved =
        TestEnv::start_with(|c| c + "openapi:\n  path: /api/spec.json\n  docs_path: /api/docs\n")
            .await;
    assert_eq!(moved.get("/docs").await.status, StatusCode::NOT_FOUND);
    let page = moved.get("/api/docs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"src="/api/docs/app.js""#));
    assert!(page.body.contains(r#"data-openapi="/api/spec.json""#));
    assert_eq!(
        moved.get("/api/docs/style.css").await.status,
        StatusCode::OK
    );
    let off = TestEnv::start_with(|c| c + "openapi:\n  enabled: false\n").await;
    assert_eq!(off.get("/docs").await.status, StatusCode::NOT_FOUND);
    assert_eq!(off.get("/docs/app.js").await.status, StatusCode::NOT_FOUND);
}

/// Where this test's screenshot goes: the test output folder under Cargo's target dir (kept
/// after the run, unlike the test's temporary folder).
fn screenshot_path() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs_page");
    std::fs::create_dir_all(&dir).expect("output folder");
    dir.join("docs-try-get-policy.png")
}

#[tokio::test]
async fn a_real_browser_lists_the_operations_and_tries_get_policy_from_a_deep_link() {
    let env = TestEnv::start().await;
    let proposed = env
        .post_json(
            "/v1/policies/propose",
            r#"{"policyType":"access","policyName":"docs-page","rules":{"effect":"deny"}}"#,
        )
        .await;
    assert_eq!(proposed.status, StatusCode::OK, "{}", proposed.body);
    let gateway = env.gateway.http_addr.expect("http listener");
    let url = format!("http://{gateway}/docs#op=tai.Governor.GetPolicy&id=pol-1&run=1");
    let dom = chromium(url.clone(), PAGE_TIME_MS, vec!["--dump-dom".to_owned()]).await;
    // Loaded: the script ran, the document was read, nothing failed or was blocked.
    assert!(dom.contains(r#"data-state="ready""#), "{dom}");
    assert!(
        dom.contains(r#"<ul id="problems" aria-label="Problems loading this page"></ul>"#),
        "{dom}"
    );
    // Operations grouped by service, with their methods and paths.
    for shown in [
        r#"id="service-tai.Governor""#,
        r#"id="service-tai.Coordinator""#,
        "tai.Governor.ListPolicies",
        "tai.Governor.ProposePolicy",
        "/v1/policies/{id}:enforce",
        "/v1/policies:watch",
        "<code>policyName</code>",
    ] {
        assert!(dom.contains(shown), "{shown} not shown: {dom}");
    }
    // "Try it" ran from the link: the status and the JSON answer are on the page.
    let result = dom
        .split(r#"id="result-tai.Governor.GetPolicy""#)
        .nth(1)
        .expect("the GetPolicy result");
    assert!(result.contains("GET /v1/policies/pol-1"), "{result}");
    assert!(result.contains("200 OK"), "{result}");
    assert!(result.contains(r#""id": "pol-1""#), "{result}");
    assert!(result.contains(r#""policyName": "docs-page""#), "{result}");
    assert!(result.contains("x-request-id"), "{result}");
    let screenshot = screenshot_path();
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        url,
        PAGE_TIME_MS,
        vec![
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2000".to_owned(),
            "--hide-scrollbars".to_owned(),
        ],
    )
    .await;
    let size = std::fs::metadata(&screenshot).map_or(0, |m| m.len());
    assert!(size > 0, "no screenshot at {}", screenshot.display());
    println!("docs page screenshot: {}", screenshot.display());
}
