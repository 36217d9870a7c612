//! The packaging in `deploy/` and the `Dockerfile` agree with the binary: every Kubernetes manifest
//! parses; each ConfigMap's `gateway.yaml` passes the real binary's `validate`; container ports,
//! probe paths and ports, the Service and the PodDisruptionBudget match that config and the
//! Deployment; the Dockerfile's `EXPOSE`, `HEALTHCHECK` and `USER` match the image's config;
//! `tai-gateway health` probes a running gateway; the systemd unit passes `systemd-analyze
//! verify`. No Docker daemon or cluster is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::admin::admin_get;
use crate::harness::{TempDir, TestEnv, proto_dir};

/// Where the Dockerfile puts `proto/`, and the configs of the image and the manifests name.
const IMAGE_PROTO_DIR: &str = "/usr/share/tai-gateway/proto";
/// Where the image's config is, and where the Deployment mounts its ConfigMap.
const IMAGE_CONFIG: &str = "/etc/tai-gateway/gateway.yaml";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of every manifest under `deploy/kubernetes` and `deploy/examples`, by file.
fn manifests() -> Vec<(String, Vec<Value>)> {
    let mut files = Vec::new();
    for dir in ["deploy/kubernetes", "deploy/examples"] {
        for entry in std::fs::read_dir(repo(dir)).expect(dir) {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("manifest");
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.push((path.display().to_string(), docs));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The port of an `ip:port` address in a gateway config.
fn port_of(address: &Value) -> u64 {
    let text = address.as_str().expect("address");
    text.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect(text)
}

/// A config as the image runs it, checked by the real binary's `validate` (with the image's
/// proto folder pointed at the repository's `proto/`); its (public, admin) ports.
fn validated_ports(config: &str, dir: &TempDir) -> (u64, u64) {
    assert!(config.contains(IMAGE_PROTO_DIR), "{config}");
    let local = config.replace(IMAGE_PROTO_DIR, proto_dir().to_str().expect("utf-8"));
    let path = dir.write("gateway.yaml", &local);
    let out = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .expect("validate");
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "validate failed:\n{printed}\n{config}"
    );
    let parsed: Value = serde_saphyr::from_str(config).expect("config yaml");
    (
        port_of(&parsed["listeners"]["http"]["address"]),
        port_of(&parsed["admin"]["address"]),
    )
}

/// The container port a probe or Service names (by name or number).
fn resolve_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().expect("port name");
    container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port {name}"))
}

/// Checks the gateway Deployment of `docs` against its ConfigMap; its replica count.
fn check_gateway(file: &str, docs: &[Value], dir: &TempDir) -> u64 {
    let config_map = named(docs, "ConfigMap", "tai-gateway");
    let config = config_map["data"]["gateway.yaml"].as_str().expect(file);
    let (http, admin) = validated_ports(config, dir);
    let deployment = named(docs, "Deployment", "tai-gateway");
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(
        &deployment["spec"]["selector"]["matchLabels"], labels,
        "{file}"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        admin.to_string()
    );
    let spec = &pod["spec"];
    // Non-root, whatever the image says.
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{file}");
    assert_ne!(spec["securityContext"]["runAsUser"], 0, "{file}");
    let container = &spec["containers"][0];
    check_container(file, container, (http, admin));
    check_config_volume(file, spec, container);
    // The Service sends to the public port; the PDB covers the Deployment's pods.
    let service = named(docs, "Service", "tai-gateway");
    assert_eq!(&service["spec"]["selector"], labels, "{file}");
    let target = &service["spec"]["ports"][0]["targetPort"];
    assert_eq!(resolve_port(container, target), http, "{file}");
    let pdb = named(docs, "PodDisruptionBudget", "tai-gateway");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels, "{file}");
    deployment["spec"]["replicas"].as_u64().expect("replicas")
}

/// The gateway container: its command, ports and probes against the config's (public, admin)
/// ports; read-only root filesystem, no privilege escalation, resources set.
fn check_container(file: &str, container: &Value, (http, admin): (u64, u64)) {
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args, ["run", "--config", IMAGE_CONFIG], "{file}");
    let ports: Vec<u64> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    assert_eq!(ports, [http, admin], "{file}: container ports vs config");
    for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{file} {probe}");
        assert_eq!(
            resolve_port(container, &get["port"]),
            admin,
            "{file} {probe}"
        );
    }
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true, "{file}");
    assert_eq!(security["allowPrivilegeEscalation"], false, "{file}");
    assert!(
        container["resources"]["requests"]["memory"].is_string(),
        "{file}"
    );
    assert!(
        container["resources"]["limits"]["memory"].is_string(),
        "{file}"
    );
}

/// The ConfigMap is mounted as the folder holding `--config` (no subPath: reloads follow it).
fn check_config_volume(file: &str, spec: &Value, container: &Value) {
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/etc/tai-gateway", "{file}");
    assert!(mount.get("subPath").is_none(), "{file}");
    let volume = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("config volume");
    assert_eq!(volume["configMap"]["name"], "tai-gateway", "{file}");
}

#[test]
fn the_kubernetes_manifests_match_the_binary() {
    let dir = TempDir::new();
    let files = manifests();
    let mut all = Vec::new();
    for (file, docs) in &files {
        for doc in docs {
            assert!(
                doc["apiVersion"].is_string() && doc["kind"].is_string(),
                "{file}: {doc}"
            );
        }
        all.extend(docs.iter().cloned());
    }
    let base: Vec<Value> = files
        .iter()
        .filter(|(f, _)| f.contains("deploy/kubernetes/"))
        .flat_map(|(_, d)| d.iter().cloned())
        .collect();
    let kinds = ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"];
    for kind in kinds {
        assert_eq!(
            of_kind(&base, kind).len(),
            1,
            "deploy/kubernetes: one {kind}"
        );
    }
    check_gateway("deploy/kubernetes", &base, &dir);
    let (file, example) = files
        .iter()
        .find(|(f, _)| f.ends_with("deploy/examples/two-replicas-redis.yaml"))
        .expect("the Redis example");
    assert_eq!(check_gateway(file, example, &dir), 2, "{file}: replicas");
    // The config's Redis URL names the example's Redis Service and port.
    let config = named(example, "ConfigMap", "tai-gateway")["data"]["gateway.yaml"]
        .as_str()
        .expect("config");
    let parsed: Value = serde_saphyr::from_str(config).expect("config yaml");
    let redis = named(example, "Service", "redis");
    let port = redis["spec"]["ports"][0]["port"].as_u64().expect("port");
    assert_eq!(parsed["redis"]["url"], format!("redis://redis:{port}/0"));
    assert_eq!(
        redis["spec"]["selector"],
        named(example, "Deployment", "redis")["spec"]["template"]["metadata"]["labels"]
    );
}

/// The Dockerfile's instructions as (keyword, arguments): continuation lines joined, comments
/// and blank lines dropped.
fn dockerfile_instructions() -> Vec<(String, String)> {
    read("Dockerfile")
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (keyword, rest) = l.split_once(' ').unwrap_or((l, ""));
            (keyword.to_owned(), rest.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_dockerfile_builds_for_production_and_checks_health_on_the_admin_port() {
    let dir = TempDir::new();
    let (http, admin) = validated_ports(&read("deploy/docker/gateway.yaml"), &dir);
    let all = dockerfile_instructions();
    let instruction = |name: &str| -> Vec<&str> {
        all.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    assert_eq!(instruction("FROM").len(), 2, "multi-stage: {all:?}");
    let build = instruction("RUN").concat();
    for flag in ["--locked", "--profile dist", "--no-default-features"] {
        assert!(build.contains(flag), "{build}");
    }
    assert_eq!(instruction("EXPOSE"), [format!("{http} {admin}")]);
    let user = instruction("USER");
    assert_eq!(user.len(), 1);
    let uid = user[0].split(':').next().unwrap_or("");
    assert!(!["root", "0"].contains(&uid), "{user:?}");
    let health = instruction("HEALTHCHECK").concat();
    let probe = format!(
        r#"CMD ["/usr/local/bin/tai-gateway", "health", "--url", "http://127.0.0.1:{admin}/healthz""#
    );
    assert!(health.contains(&probe), "{health}");
    let copies = instruction("COPY");
    for copy in [
        format!("proto {IMAGE_PROTO_DIR}"),
        format!("deploy/docker/gateway.yaml {IMAGE_CONFIG}"),
    ] {
        assert!(copies.contains(&copy.as_str()), "{copies:?}");
    }
    let cmd = format!(r#"["run", "--config", "{IMAGE_CONFIG}"]"#);
    assert_eq!(instruction("CMD"), [cmd]);
}

#[test]
fn the_docker_build_context_keeps_what_cargo_reads() {
    // Cargo reads every target the manifest names (benches, tests); target/ is left out.
    let ignore = read(".dockerignore");
    let ignored: Vec<&str> = ignore.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(ignored.contains(&"target"));
    for kept in ["benches", "tests", "stubs", "proto", "src", "deploy"] {
        assert!(!ignored.contains(&kept), "{kept} is needed by the build");
    }
}

/// `tai-gateway health --url URL`: its exit status and what it printed.
fn health(url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
        .args(["health", "--url", url])
        .output()
        .expect("tai-gateway health");
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), printed)
}

#[tokio::test]
async fn the_health_command_probes_a_running_gateway() {
    let env = TestEnv::start().await;
    assert_eq!(
        admin_get(&env, "/healthz").await.status,
        http::StatusCode::OK
    );
    let admin = env.gateway.admin_addr.expect("admin listener");
    let url = format!("http://{admin}/healthz");
    let (ok, printed) = tokio::task::spawn_blocking(move || health(&url))
        .await
        .expect("join");
    assert_eq!(
        (ok, printed.as_str()),
        (
            true,
            format!("http://{admin}/healthz answered 200\n").as_str()
        )
    );
    let url = format!("http://{admin}/no-such-endpoint");
    let (ok, printed) = tokio::task::spawn_blocking(move || health(&url))
        .await
        .expect("join");
    assert_eq!(
        (ok, printed.as_str()),
        (
            false,
            format!("error: http://{admin}/no-such-endpoint answered 404\n").as_str()
        )
    );
}

#[test]
fn the_systemd_unit_is_hardened_and_passes_systemd_analyze_verify() {
    let unit = read("deploy/systemd/tai-gateway.service");
    for setting in [
        "ExecStart=/usr/local/bin/tai-gateway run --config /etc/tai-gateway/gateway.yaml",
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(unit.lines().any(|l| l == setting), "no `{setting}` line");
    }
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian package systemd)");
        return;
    };
    // verify needs ExecStart's binary to exist: a copy of the unit runs the binary under test.
    let dir = TempDir::new();
    let copy = unit.replace(
        "ExecStart=/usr/local/bin/tai-gateway",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_tai-gateway")),
    );
    let path = dir.write("tai-gateway.service", &copy);
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        (out.status.success(), printed.as_str()),
        (true, ""),
        "systemd-analyze verify"
    );
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
