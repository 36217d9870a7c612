//! The `/metrics` exposition as Prometheus reads it: every family `docs/grafana-dashboard.json`
//! queries is exported, and the text is well-formed (a small checker of the text format, whose
//! messages say which line is wrong; `promtool.rs` runs Prometheus' own checker too): `# HELP` and
//! `# TYPE` before each family's samples, a family's samples together, valid names, label syntax
//! and values, and no series twice.

use std::collections::{HashMap, HashSet};

use http::StatusCode;
use serde_json::Value;

use crate::admin::admin_get;
use crate::harness::TestEnv;

/// A gateway on the default config after a few requests (so per-request families have series),
/// and its `/metrics` text.
async fn scraped_after_requests() -> (TestEnv, String) {
    let env = TestEnv::start().await;
    assert_eq!(env.get("/v1/echo/hello").await.status, StatusCode::OK);
    assert_eq!(env.get("/nowhere").await.status, StatusCode::NOT_FOUND);
    let bad = env
        .post_json("/v1/policies/propose", r#"{"policyName":"n","nope":1}"#)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let reply = admin_get(&env, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    (env, reply.body)
}

/// Every string under an `expr`, `query` or `definition` key of the dashboard (panel targets
/// and template variables).
fn queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if ["expr", "query", "definition"].contains(&key.as_str()) => {
                        out.push(s.clone());
                    }
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression mentions: identifiers starting `tai_gateway_` or
/// `process_`, with a histogram's `_bucket`/`_sum`/`_count` suffix taken off.
fn metric_names(expr: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find(|c: char| is_ident(c)) {
        let word = &rest[start..];
        let end = word.find(|c: char| !is_ident(c)).unwrap_or(word.len());
        let ident = &word[..end];
        if ident.starts_with("tai_gateway_") || ident.starts_with("process_") {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| ident.strip_suffix(s))
                .unwrap_or(ident);
            names.push(family.to_owned());
        }
        rest = &word[end..];
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.95, sum by (le) (rate(tai_gateway_request_duration_seconds_bucket{route=~"$route"}[$__rate_interval]))) / process_open_fds"#
        ),
        ["tai_gateway_request_duration_seconds", "process_open_fds"]
    );
    assert!(metric_names("sum by (upstream) (rate(x_total[5m]))").is_empty());
}

#[tokio::test]
async fn every_family_the_grafana_dashboard_queries_is_exported() {
    let (_env, text) = scraped_after_requests().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-dashboard.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("json");
    let mut exprs = Vec::new();
    queries(&dashboard, &mut exprs);
    let mut names: Vec<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() > 15, "{names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            !text
                .lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} ")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which /metrics does not export:\n{text}"
    );
}

#[tokio::test]
async fn the_exposition_is_well_formed() {
    let (_env, text) = scraped_after_requests().await;
    if let Err(e) = check_exposition(&text) {
        panic!("{e}\n{text}");
    }
    // The checker saw the families this scrape must hold, series included.
    for line in [
        "# TYPE tai_gateway_upstream_circuit_breaker_state gauge",
        "# TYPE tai_gateway_request_duration_seconds histogram",
        "# TYPE process_cpu_seconds_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[test]
fn the_checker_refuses_malformed_expositions() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} 3\n";
    assert_eq!(check_exposition(ok), Ok(()));
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a_total A.\na_total 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",x=\"2\"} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{1x=\"1\"} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"\\q\"} 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total one\n",
        "# HELP a_total A.\n# TYPE a_total counter\n# HELP b B.\n# TYPE b gauge\nb 1\na_total 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\n# HELP a_total A.\n# TYPE a_total counter\n",
        "# HELP 9a A.\n# TYPE 9a gauge\n9a 1\n",
        "# HELP a A.\n# TYPE a counter\na 1\n",
        "# HELP h A.\n# TYPE h histogram\nh_bucket 1\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1",
    ] {
        assert!(check_exposition(bad).is_err(), "accepted:\n{bad}");
    }
}

/// What the checker knows of one family: its type, and whether `# HELP` was seen.
#[derive(Default)]
struct Family {
    kind: Option<String>,
    help: bool,
}

/// Checks the Prometheus text format (version 0.0.4) as `promtool check metrics` would, with its
/// naming lint for counters; the error names the line.
fn check_exposition(text: &str) -> Result<(), String> {
    if !text.ends_with('\n') {
        return Err("the exposition does not end with a newline".to_owned());
    }
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut current: Option<String> = None;
    let mut finished: HashSet<String> = HashSet::new();
    let mut series: HashSet<String> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: `{line}`", n + 1);
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            let (word, name) = match words[..] {
                [word @ ("HELP" | "TYPE"), name, ..] => (word, name),
                _ => continue,
            };
            valid_metric_name(name).map_err(at)?;
            if current.as_deref() != Some(name) {
                if let Some(done) = current.replace(name.to_owned()) {
                    finished.insert(done);
                }
                if finished.contains(name) {
                    return Err(at("the family appears twice".to_owned()));
                }
            }
            let family = families.entry(name.to_owned()).or_default();
            if word == "HELP" {
                if family.help || family.kind.is_some() {
                    return Err(at("a second or late # HELP".to_owned()));
                }
                family.help = true;
            } else {
                let kind = words.get(2).copied().unwrap_or("");
                if family.kind.is_some() {
                    return Err(at("a second # TYPE".to_owned()));
                }
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(at(format!("unknown type `{kind}`")));
                }
                if kind == "counter" && !name.ends_with("_total") {
                    return Err(at("a counter's name must end in _total".to_owned()));
                }
                family.kind = Some(kind.to_owned());
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (name, labels, value) = sample(line).map_err(at)?;
        let family = current
            .as_deref()
            .filter(|f| sample_belongs(&name, f, &families))
            .ok_or_else(|| at("a sample outside its family's # TYPE block".to_owned()))?;
        let meta = &families[family];
        if !meta.help {
            return Err(at("a sample of a family without # HELP".to_owned()));
        }
        if name.ends_with("_bucket")
            && meta.kind.as_deref() == Some("histogram")
            && !labels.iter().any(|(k, _)| k == "le")
        {
            return Err(at("a histogram bucket without `le`".to_owned()));
        }
        value
            .parse::<f64>()
            .map_err(|e| at(format!("value: {e}")))?;
        let mut key = labels;
        key.sort();
        if !series.insert(format!("{name}{key:?}")) {
            return Err(at("the same series twice".to_owned()));
        }
    }
    Ok(())
}

/// Whether a sample named `name` belongs to `family` (itself, or a histogram's or summary's
/// `_bucket`, `_sum`, `_count`), which has a `# TYPE`.
fn sample_belongs(name: &str, family: &str, families: &HashMap<String, Family>) -> bool {
    let Some(kind) = families.get(family).and_then(|f| f.kind.as_deref()) else {
        return false;
    };
    if name == family {
        return kind != "histogram";
    }
    let suffixes: &[&str] = match kind {
        "histogram" => &["_bucket", "_sum", "_count"],
        "summary" => &["_sum", "_count"],
        _ => &[],
    };
    suffixes
        .iter()
        .any(|s| name.strip_suffix(s) == Some(family))
}

/// Label names and (unescaped) values of one sample, in the order written.
type LabelValues = Vec<(String, String)>;

/// A sample line split into its name, labels and value (timestamp dropped).
fn sample(line: &str) -> Result<(String, LabelValues, String), String> {
    let name_end = line.find(['{', ' ']).ok_or_else(|| "no value".to_owned())?;
    let name = &line[..name_end];
    valid_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = label_set(after, &mut labels)?;
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before the value".to_owned())?
        .split(' ');
    let value = fields.next().unwrap_or("").to_owned();
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|e| format!("timestamp: {e}"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".to_owned());
    }
    Ok((name.to_owned(), labels, value))
}

/// Reads `a="1",b="2"}` into `labels`, returning what follows the `}`.
fn label_set<'a>(mut rest: &'a str, labels: &mut LabelValues) -> Result<&'a str, String> {
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| "a label without `=`".to_owned())?;
        let label = &rest[..eq];
        let valid = label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !label.starts_with("__");
        if !valid {
            return Err(format!("invalid label name `{label}`"));
        }
        if labels.iter().any(|(k, _)| k == label) {
            return Err(format!("label `{label}` twice"));
        }
        let mut chars = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| "a label value without quotes".to_owned())?
            .char_indices();
        let mut value = String::new();
        let close = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in a label value")),
                },
                Some((_, '\n')) | None => return Err("an unterminated label value".to_owned()),
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((label.to_owned(), value));
        rest = &rest[eq + 2 + close + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_metric_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid metric name `{name}`"))
    }
}
