//! Hot reload: the config file and every descriptor source it names are watched, and on a change
//! (or `SIGHUP`, or `POST /reload` on the admin server) a new [`Runtime`] is built off the request
//! path and swapped in; requests in flight finish on the snapshot they started with.
//!
//! # Why polling content hashes instead of inotify
//! The watcher reads the files every `reload.poll_interval` (default 1s) and compares a hash of
//! their paths and contents. Reading *through* the configured paths follows symlinks, so a
//! Kubernetes ConfigMap update (which swaps the `..data` symlink, never writing the file itself)
//! is seen like an in-place edit, a rename-over-save by an editor, or a file on NFS/overlayfs where
//! inotify events do not arrive. Comparing content rather than mtimes ignores `touch` and catches
//! same-second rewrites. It needs no dependency and no inotify watch budget; the cost is reading a
//! few small files once per interval.
//!
//! Debounce: a change is applied once the content has stayed the same for one further interval,
//! so a file written in several steps is not loaded half-written.
//!
//! A config that fails to build is rejected whole: the old runtime keeps serving, every problem
//! is logged with file and line and kept for the admin server's `/reload`, and
//! `tai_gateway_config_reloads_total{result="error"}` counts it. Settings that only take effect at
//! start (listener and admin addresses, the access log, the log level) are kept at their running
//! values and reported as needing a restart, never half-applied.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use crate::access_log::rfc3339;
use crate::config::{Config, ConfigError, DescriptorSources, ListenerConfig, TlsListenerConfig};
use crate::pipeline::Gateway;
use crate::reflection::Reflected;
use crate::runtime::{self, Runtime};

/// Deepest folder nesting walked under a descriptor folder (guards against symlink loops).
const MAX_DEPTH: usize = 16;

/// The result of the last reload, as shown on the admin server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// Reloads attempted so far (successful or not).
    pub attempts: u64,
    /// When the last one finished (RFC 3339), `None` before the first.
    pub time: Option<String>,
    /// What started it: `watch`, `signal`, `admin` or `reflection`.
    pub trigger: Option<&'static str>,
    /// Whether it was applied.
    pub ok: bool,
    /// Every problem, `file:line:column: key: reason`, when it was rejected.
    pub errors: Vec<String>,
    /// Changed settings that were not applied because they need a restart.
    pub restart_required: Vec<String>,
}

/// Rebuilds and swaps the gateway's runtime; one reload at a time.
#[derive(Debug)]
pub struct Reloader {
    gateway: Arc<Gateway>,
    /// Serialises reloads so two triggers never race to swap.
    running: tokio::sync::Mutex<()>,
    status: Mutex<ReloadStatus>,
    /// Fingerprint of the files the running config was built from.
    applied: Mutex<u64>,
}

impl Reloader {
    /// A reloader for `gateway`, whose current runtime is taken as the one on disk.
    pub fn new(gateway: Arc<Gateway>) -> Arc<Reloader> {
        let applied = fingerprint(&gateway.runtime().config);
        Arc::new(Reloader {
            gateway,
            running: tokio::sync::Mutex::new(()),
            status: Mutex::new(ReloadStatus {
                ok: true,
                ..ReloadStatus::default()
            }),
            applied: Mutex::new(applied),
        })
    }

    /// The last reload's result.
    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the config file again and applies it if it builds; returns the result.
    pub async fn reload(&self, trigger: &'static str) -> ReloadStatus {
        self.reload_with(trigger, None).await
    }

    /// Like [`Reloader::reload`], with descriptors newly fetched by server reflection.
    pub async fn reload_reflected(
        &self,
        trigger: &'static str,
        reflected: Arc<Reflected>,
    ) -> ReloadStatus {
        self.reload_with(trigger, Some(reflected)).await
    }

    async fn reload_with(
        &self,
        trigger: &'static str,
        reflected: Option<Arc<Reflected>>,
    ) -> ReloadStatus {
        let _one_at_a_time = self.running.lock().await;
        let current = self.gateway.runtime();
        let built = tokio::task::spawn_blocking(move || rebuild(current, reflected)).await;
        let (seen, result, current) = match built {
            Ok(parts) => parts,
            Err(e) => {
                tracing::error!(error = %e, "config reload task failed");
                return self.status();
            }
        };
        *self.applied.lock().unwrap_or_else(PoisonError::into_inner) = seen;
        let metrics = self.gateway.metrics().clone();
        let mut status = self.status();
        status.attempts += 1;
        status.time = Some(rfc3339(SystemTime::now()));
        status.trigger = Some(trigger);
        match result {
            Ok(mut next) => {
                status.restart_required = keep_start_only_settings(&current.config, &mut next);
                for setting in &status.restart_required {
                    tracing::warn!(%setting, "config change needs a restart; not applied");
                }
                let routes = next.router.routes().count();
                self.gateway.replace_runtime(next);
                metrics.record_reload("ok");
                tracing::info!(trigger, routes, "config reloaded");
                status.ok = true;
                status.errors.clear();
            }
            Err(errors) => {
                metrics.record_reload("error");
                for error in &errors {
                    tracing::error!(trigger, %error, "config reload rejected; the previous config keeps serving");
                }
                status.ok = false;
                status.errors = errors.iter().map(ToString::to_string).collect();
                status.restart_required.clear();
            }
        }
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status.clone();
        status
    }

    /// Polls the config and descriptor files until `stop` turns true, reloading on a change that
    /// has been stable for one interval.
    pub async fn watch(self: Arc<Self>, mut stop: watch::Receiver<Option<Duration>>) {
        let mut pending: Option<u64> = None;
        loop {
            let runtime = self.gateway.runtime();
            let interval = runtime.config.ops.poll_interval;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(Option::is_some) => return,
            }
            if !runtime.config.ops.watch {
                continue;
            }
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&runtime.config)).await
            else {
                continue;
            };
            let applied = *self.applied.lock().unwrap_or_else(PoisonError::into_inner);
            if now == applied {
                pending = None;
            } else if pending == Some(now) {
                pending = None;
                self.reload("watch").await;
            } else {
                pending = Some(now);
            }
        }
    }
}

/// The fingerprint of the files read and the runtime built from them (with `reflected`, else
/// the descriptors `current` was built with), next to `current`.
fn rebuild(
    current: Arc<Runtime>,
    reflected: Option<Arc<Reflected>>,
) -> (u64, Result<Runtime, Vec<ConfigError>>, Arc<Runtime>) {
    // Fingerprint first: a change made while building is seen by the next poll.
    let seen = fingerprint(&current.config);
    let reflected = reflected.unwrap_or_else(|| current.reflected.clone());
    let result = runtime::load_reflecting(&current.config.source, &current, reflected);
    (seen, result, current)
}

/// Restores the settings that only apply at start to their running values, naming each that
/// changed, so the effective config stays truthful.
fn keep_start_only_settings(running: &Config, next: &mut Runtime) -> Vec<String> {
    let mut changed = Vec::new();
    let new = &mut next.config;
    let listeners = listener_changes(&running.listeners, &new.listeners);
    if !listeners.is_empty() {
        changed.extend(listeners);
        new.listeners.clone_from(&running.listeners);
    }
    if new.admin != running.admin {
        changed.push(format!(
            "admin.address: {} -> {}",
            show(running.admin),
            show(new.admin)
        ));
        new.admin = running.admin;
    }
    if new.ops.access_log != running.ops.access_log {
        changed.push("access_log".to_owned());
        new.ops.access_log = running.ops.access_log.clone();
    }
    if new.ops.log_level != running.ops.log_level {
        changed.push("log_level".to_owned());
        new.ops.log_level = running.ops.log_level.clone();
    }
    if new.ops.tracing != running.ops.tracing {
        changed.push("tracing".to_owned());
        new.ops.tracing = running.ops.tracing.clone();
    }
    let cpus = crate::workers::available();
    let (old_threads, new_threads) = (running.workers.threads(cpus), new.workers.threads(cpus));
    if new_threads != old_threads {
        changed.push(format!("workers: {old_threads} -> {new_threads}"));
        new.workers = running.workers;
    }
    if new.limits != running.limits {
        changed.push("limits".to_owned());
        new.limits = running.limits.clone();
    }
    changed
}

/// What differs between the running and the new public listeners, by name: one entry per
/// listener added, removed, moved, or with other TLS settings or routes. Places in the file are
/// not compared, so moving lines around changes nothing.
fn listener_changes(running: &[ListenerConfig], new: &[ListenerConfig]) -> Vec<String> {
    let mut changed = Vec::new();
    for old in running {
        let Some(next) = new.iter().find(|l| l.name == old.name) else {
            changed.push(format!("listeners.{}: removed", old.name));
            continue;
        };
        if next.address != old.address {
            let (a, b) = (old.address, next.address);
            changed.push(format!("listeners.{}.address: {a} -> {b}", old.name));
        }
        if tls_summary(next.tls.as_ref()) != tls_summary(old.tls.as_ref()) {
            changed.push(format!("listeners.{}.tls", old.name));
        }
        if next.routes != old.routes {
            changed.push(format!("listeners.{}.routes", old.name));
        }
    }
    for next in new {
        if !running.iter().any(|l| l.name == next.name) {
            changed.push(format!("listeners.{}: added", next.name));
        }
    }
    changed
}

/// A listener's TLS settings without the places they were written at.
fn tls_summary(tls: Option<&TlsListenerConfig>) -> Option<String> {
    let tls = tls?;
    let certificates: Vec<_> = tls
        .certificates
        .iter()
        .map(|c| (&c.cert.value, &c.key.value, &c.server_names))
        .collect();
    let client_auth = tls.client_auth.as_ref().map(|a| (&a.ca.value, a.mode));
    Some(format!(
        "{certificates:?} {:?} {client_auth:?} {:?} {:?}",
        tls.default_certificate, tls.handshake_timeout, tls.reload_interval
    ))
}

fn show(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "none".to_owned(), |a| a.to_string())
}

/// A hash of the config file and every descriptor file it names (`.proto` files under the
/// folders, descriptor sets; paths and contents, read
/// through symlinks). Unreadable files hash as missing, so they change the fingerprint too.
pub fn fingerprint(config: &Config) -> u64 {
    let mut hasher = DefaultHasher::new();
    hash_file(&config.source, &mut hasher);
    let DescriptorSources {
        proto_dirs,
        proto_files,
        include_paths,
        descriptor_sets,
        refresh_interval: _,
    } = &config.descriptors;
    for dir in proto_dirs.iter().chain(include_paths) {
        hash_tree(&dir.value, &mut hasher, 0);
    }
    for file in proto_files {
        file.value.hash(&mut hasher);
    }
    for set in descriptor_sets {
        hash_file(&set.value, &mut hasher);
    }
    hasher.finish()
}

fn hash_file(path: &Path, hasher: &mut DefaultHasher) {
    path.hash(hasher);
    match std::fs::read(path) {
        Ok(bytes) => bytes.hash(hasher),
        Err(e) => e.kind().to_string().hash(hasher),
    }
}

/// Hashes every `.proto` file under `dir`, in name order.
fn hash_tree(dir: &Path, hasher: &mut DefaultHasher, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        dir.hash(hasher);
        "unreadable".hash(hasher);
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if depth < MAX_DEPTH {
                hash_tree(&path, hasher, depth + 1);
            }
        } else if path.extension().is_some_and(|e| e == "proto") {
            // Only `.proto` files are compiled: editor swap files and notes never trigger a reload.
            hash_file(&path, hasher);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tai-reload-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("protos")).expect("mkdir");
        dir
    }

    fn config_in(dir: &Path) -> Config {
        let text = "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [protos]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: s.A\n    upstream: a\n";
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, text).expect("write");
        Config::parse(&path, text).expect("valid")
    }

    #[test]
    fn fingerprint_changes_with_config_and_proto_content_only() {
        let dir = temp_dir("content");
        let config = config_in(&dir);
        std::fs::write(dir.join("protos/a.proto"), "syntax = \"proto3\";").expect("write");
        let first = fingerprint(&config);
        assert_eq!(fingerprint(&config), first, "stable when nothing changes");
        std::fs::write(dir.join("protos/a.proto"), "syntax = \"proto3\";").expect("rewrite");
        assert_eq!(
            fingerprint(&config),
            first,
            "same content, same fingerprint"
        );
        std::fs::create_dir_all(dir.join("protos/nested")).expect("mkdir");
        std::fs::write(dir.join("protos/nested/notes.txt"), "x").expect("write");
        assert_eq!(
            fingerprint(&config),
            first,
            "files other than .proto are ignored"
        );
        std::fs::write(dir.join("protos/nested/b.proto"), "x").expect("write");
        let second = fingerprint(&config);
        assert_ne!(second, first, "a new proto in a sub-folder is a change");
        let text = std::fs::read_to_string(&config.source).expect("read");
        std::fs::write(&config.source, text.replace("1:1", "1:2")).expect("write");
        assert_ne!(fingerprint(&config), second, "a config edit is a change");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn fingerprint_sees_a_configmap_style_symlink_swap() {
        use std::os::unix::fs::symlink;
        let dir = temp_dir("symlink");
        let config = config_in(&dir);
        // ConfigMap layout: protos/a.proto -> ..data/a.proto, ..data -> ..v1 (then ..v2).
        let protos = dir.join("protos");
        for (version, text) in [("..v1", "one"), ("..v2", "two")] {
            std::fs::create_dir_all(protos.join(version)).expect("mkdir");
            std::fs::write(protos.join(version).join("a.proto"), text).expect("write");
        }
        symlink("..v1", protos.join("..data")).expect("symlink");
        symlink("..data/a.proto", protos.join("a.proto")).expect("symlink");
        let before = fingerprint(&config);
        // Kubelet swaps only the `..data` link: every file path stays the same.
        std::fs::remove_file(protos.join("..data")).expect("rm");
        symlink("..v2", protos.join("..data")).expect("swap");
        assert_ne!(fingerprint(&config), before);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn governor_config(dir: &Path, timeout: &str) -> Config {
        let text = format!(
            "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}/proto\"]\nupstreams:\n  a:\n    address: 127.0.0.1:1\nroutes:\n  - service: tai.Governor\n    upstream: a\n    timeout: {timeout}\nreload:\n  poll_interval: 100ms\naccess_log:\n  enabled: false\n",
            env!("CARGO_MANIFEST_DIR")
        );
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, &text).expect("write");
        Config::parse(&path, &text).expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn watcher_applies_a_change_once_it_is_stable_for_one_interval() {
        let dir = temp_dir("debounce");
        let runtime = Runtime::build(governor_config(&dir, "10s")).expect("runtime");
        let gateway = Arc::new(Gateway::new(runtime));
        let reloader = Reloader::new(gateway.clone());
        let (stop, stopped) = watch::channel(None);
        let watcher = tokio::spawn(reloader.clone().watch(stopped));

        governor_config(&dir, "3s");
        // First poll (100 ms) sees the change and waits; nothing is applied yet.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(reloader.status().attempts, 0);
        // Second poll (200 ms) sees the same content and reloads.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = reloader.status();
        assert_eq!(status.attempts, 1);
        assert!(status.ok, "{status:?}");
        assert_eq!(status.trigger, Some("watch"));
        assert_eq!(
            gateway.runtime().config.routes[0].timeout,
            Duration::from_secs(3)
        );
        assert_eq!(gateway.metrics().reloads("ok"), 1);
        // Nothing changes afterwards: no more reloads.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(reloader.status().attempts, 1);

        let _ = stop.send(Some(Duration::ZERO));
        watcher.await.expect("watcher stops");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_config_is_rejected_and_the_old_runtime_keeps_serving() {
        let dir = temp_dir("broken");
        let runtime = Runtime::build(governor_config(&dir, "10s")).expect("runtime");
        let gateway = Arc::new(Gateway::new(runtime));
        let before = gateway.runtime();
        let reloader = Reloader::new(gateway.clone());
        let text = std::fs::read_to_string(&before.config.source).expect("read");
        std::fs::write(
            &before.config.source,
            text.replace("upstream: a", "upstream: b"),
        )
        .expect("write");
        let status = reloader.reload("signal").await;
        assert!(!status.ok);
        let file = before.config.source.display();
        assert_eq!(
            status.errors,
            [format!(
                "{file}:11:15: routes[0].upstream: unknown upstream `b` (known: a)"
            )]
        );
        assert!(Arc::ptr_eq(&before, &gateway.runtime()));
        assert_eq!(gateway.metrics().reloads("error"), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
