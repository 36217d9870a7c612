//! Issue 18, the operator's side: one config flag (`--config` / `-c`) on every command, and a
//! duplicate YAML key reported as such, with its place.

use std::process::Command;

use crate::harness::{TempDir, repository_config_copy};

/// Exit code, stdout and stderr of the real binary run to completion.
fn tai_gateway(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run tai-gateway");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Before: `tai-gateway validate -c gateway.yaml` was a usage error (exit 2) while `run` took
/// `--config`.
#[test]
fn every_command_takes_the_config_with_dash_c_and_dash_dash_config() {
    // The repository's config on a fresh clone, once `certs dev` has made the files it names.
    let (dir, path) = repository_config_copy();
    let out = dir.path().join("certs/dev");
    let (code, _, stderr) = tai_gateway(&["certs", "dev", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{stderr}");
    let path = path.to_str().expect("utf-8 path");
    let ok = format!("{path}: OK (23 HTTP bindings, 2 upstreams)\n");
    for args in [["validate", "-c", path], ["validate", "--config", path]] {
        let (code, stdout, stderr) = tai_gateway(&args);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (Some(0), ok.as_str(), "")
        );
    }
    // The older positional form still works.
    let (code, stdout, _) = tai_gateway(&["validate", path]);
    assert_eq!((code, stdout.as_str()), (Some(0), ok.as_str()));
    // `run`, `validate` and `events` list the same flag.
    for command in ["run", "validate", "events"] {
        let (code, stdout, _) = tai_gateway(&[command, "--help"]);
        assert_eq!(code, Some(0), "{command} --help");
        assert!(
            stdout.contains("-c, --config <CONFIG>"),
            "{command} --help:\n{stdout}"
        );
    }
}

/// Before: a key given twice was reported as "duplicate mapping key: address, set
/// DuplicateKeyPolicy in Options if acceptable".
#[test]
fn a_duplicate_yaml_key_is_named_with_its_place() {
    let dir = TempDir::new();
    let path = dir.write(
        "gateway.yaml",
        "listeners:\n  http:\n    address: 127.0.0.1:0\n    address: 127.0.0.1:1\n",
    );
    let file = path.to_str().expect("utf-8 path");
    let (code, stdout, stderr) = tai_gateway(&["validate", "-c", file]);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(
        stderr,
        format!("{file}:4:5: duplicate key `address`\n{file}: 1 problem(s)\n")
    );
}
