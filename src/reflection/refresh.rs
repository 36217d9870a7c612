//! Keeping reflected descriptors current: the first fetch before the gateway serves
//! ([`first`]), then a background task ([`run`]) that fetches again every
//! `descriptors.refresh_interval` — every [`RETRY_WHILE_FAILING`] at most while some upstream's
//! fetch fails, so a backend started after the gateway is picked up soon — and when a backend
//! answered UNIMPLEMENTED for a routed method (the gateway's wake-up). A result that differs
//! from the running snapshot's is applied by a reload (trigger `reflection`): it is built like
//! any other, so every route must still resolve, else the old snapshot keeps serving and the
//! failure is logged and counted (`tai_gateway_config_reloads_total{result="error"}`) — once:
//! the same descriptors are not tried again against the same snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::fetch::fetch;
use super::{Fetched, Reflected};
use crate::config::ConfigError;
use crate::pipeline::Gateway;
use crate::reload::{ReloadStatus, Reloader};
use crate::runtime::Runtime;

/// The longest wait between fetches while one fails.
pub const RETRY_WHILE_FAILING: Duration = Duration::from_secs(2);
/// The shortest gap between two fetches woken by UNIMPLEMENTED answers (a client calling a
/// missing method over and over must not turn into a fetch per call).
const MIN_WAKE_GAP: Duration = Duration::from_secs(1);

/// The services routed to each upstream with `reflection: true`, by upstream name.
fn wanted(runtime: &Runtime) -> BTreeMap<String, BTreeSet<String>> {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for route in &runtime.config.routes {
        let upstream = &runtime.config.upstreams[route.upstream];
        if upstream.reflection {
            let services = wanted.entry(upstream.name.clone()).or_default();
            services.extend(route.services());
        }
    }
    wanted
}

/// Asks every reflecting upstream of `runtime` for its routed services' files. A failed fetch
/// keeps the files `runtime` has for the same services: a backend that restarts, or briefly
/// stops describing a service, does not take working routes away.
async fn fetch_all(runtime: &Runtime) -> Reflected {
    let mut reflected = Reflected::default();
    for (name, services) in wanted(runtime) {
        let mut fetched = fetch(&runtime.upstreams[&name], &services).await;
        let before = runtime.reflected.upstreams.get(&name);
        match &fetched {
            Fetched::Failed { reason, .. } => {
                // Warned once per reason: a backend that stays down is retried every 2 s.
                if matches!(before, Some(Fetched::Failed { reason: was, .. }) if was == reason) {
                    tracing::debug!(upstream = %name, %reason, "descriptors by server reflection: fetch failed again");
                } else {
                    tracing::warn!(upstream = %name, %reason, "descriptors by server reflection: fetch failed");
                }
                if let Some(kept @ Fetched::Files { services: had, .. }) = before
                    && *had == services
                {
                    fetched = kept.clone();
                }
            }
            Fetched::Files { files, .. } => {
                tracing::debug!(upstream = %name, files = files.len(), "descriptors by server reflection: fetched");
            }
        }
        reflected.upstreams.insert(name, fetched);
    }
    reflected
}

/// `runtime` rebuilt with its reflecting upstreams' descriptors, fetched now; `runtime` itself
/// when none reflects, or when the rebuild fails (its problems are logged; the routes of those
/// upstreams then stay pending and the background task keeps trying).
pub async fn first(runtime: Runtime) -> Runtime {
    match first_checked(runtime).await {
        Ok(built) => built,
        Err((runtime, problems)) => {
            for problem in &problems {
                tracing::error!(%problem, "descriptors by server reflection do not fit the routes");
            }
            runtime
        }
    }
}

/// Like [`first`], the problems of a failed rebuild returned with `runtime` (the one-shot
/// commands report them).
pub async fn first_checked(runtime: Runtime) -> Result<Runtime, (Runtime, Vec<ConfigError>)> {
    if wanted(&runtime).is_empty() {
        return Ok(runtime);
    }
    let reflected = Arc::new(fetch_all(&runtime).await);
    let config = runtime.config.clone();
    match Runtime::build_reflecting(config, Vec::new(), Some(&runtime), reflected) {
        Ok(built) => Ok(built),
        Err(problems) => Err((runtime, problems)),
    }
}

/// Descriptors whose reload was rejected, and the snapshot they were rejected against (by
/// address): they are not tried again until something else changes.
#[derive(Debug, Default)]
pub struct Rejected(Option<(usize, Reflected)>);

/// One refresh: fetches and, when the result differs from the running snapshot's (and was not
/// just rejected against it), reloads with it; `None` when nothing reflects or nothing changed.
pub async fn refresh(
    gateway: &Gateway,
    reloader: &Reloader,
    rejected: &mut Rejected,
) -> Option<ReloadStatus> {
    let runtime = gateway.runtime();
    if wanted(&runtime).is_empty() {
        return None;
    }
    let reflected = fetch_all(&runtime).await;
    let running = Arc::as_ptr(&runtime) as usize;
    let same_rejection = matches!(&rejected.0, Some((at, r)) if *at == running && *r == reflected);
    if reflected == *runtime.reflected || same_rejection {
        return None;
    }
    drop(runtime);
    let status = reloader
        .reload_reflected("reflection", Arc::new(reflected.clone()))
        .await;
    let now = Arc::as_ptr(&gateway.runtime()) as usize;
    rejected.0 = (!status.ok).then_some((now, reflected));
    Some(status)
}

/// How long to wait before the next fetch: the interval, shortened while some fetch fails or
/// some routed service has no descriptors.
fn next_wait(runtime: &Runtime) -> Duration {
    let wait = runtime.config.descriptors.refresh_interval;
    if runtime.reflected.any_failed() || !runtime.pending.is_empty() {
        wait.min(RETRY_WHILE_FAILING)
    } else {
        wait
    }
}

/// Refreshes until `stop` turns to `Some`: on the interval, sooner while a fetch fails, and when
/// the gateway is woken by an UNIMPLEMENTED answer.
pub async fn run(
    gateway: Arc<Gateway>,
    reloader: Arc<Reloader>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let wake = gateway.reflection_wake().clone();
    let mut rejected = Rejected::default();
    loop {
        let wait = next_wait(&gateway.runtime());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {
                tracing::info!("a backend answered UNIMPLEMENTED: fetching its descriptors again");
            }
            _ = stop.wait_for(Option::is_some) => return,
        }
        refresh(&gateway, &reloader, &mut rejected).await;
        tokio::select! {
            () = tokio::time::sleep(MIN_WAKE_GAP) => {}
            _ = stop.wait_for(Option::is_some) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn runtime(descriptors: &str, reflection: bool) -> Runtime {
        let text = format!(
            "listeners:\n  http:\n    address: 127.0.0.1:0\ndescriptors:\n  proto_dirs: [\"{}/proto\"]\n{descriptors}upstreams:\n  gov:\n    address: 127.0.0.1:1\n    reflection: {reflection}\n  other:\n    address: 127.0.0.1:2\nroutes:\n  - service: tai.Governor\n    upstream: gov\n  - methods: [tai.Coordinator/RequestAction]\n    upstream: other\n",
            env!("CARGO_MANIFEST_DIR")
        );
        let config = Config::parse(Path::new("g.yaml"), &text).expect("valid");
        Runtime::build(config).expect("runtime")
    }

    #[test]
    fn only_the_services_routed_to_reflecting_upstreams_are_asked_for() {
        let asked = wanted(&runtime("", true));
        let expected = BTreeMap::from([(
            "gov".to_owned(),
            BTreeSet::from(["tai.Governor".to_owned()]),
        )]);
        assert_eq!(asked, expected);
        assert!(wanted(&runtime("", false)).is_empty());
    }

    #[test]
    fn a_local_service_is_not_pending_and_the_interval_holds() {
        // tai.Governor is in the local protos: routed at once, nothing waits for the backend.
        let local = runtime("  refresh_interval: 30s\n", true);
        assert!(local.pending.is_empty());
        assert_eq!(next_wait(&local), Duration::from_secs(30));
    }

    #[test]
    fn a_service_without_local_descriptors_waits_for_its_backend() {
        let text = "listeners:\n  http:\n    address: 127.0.0.1:0\nupstreams:\n  gov:\n    address: 127.0.0.1:1\n    reflection: true\nroutes:\n  - service: tai.Governor\n    upstream: gov\n";
        let config = Config::parse(Path::new("g.yaml"), text).expect("valid");
        let runtime = Runtime::build(config).expect("a pending route is no error");
        let pending = &runtime.pending["tai.Governor"];
        assert_eq!(pending.upstream, "gov");
        assert_eq!(
            pending.reason,
            "its descriptors have not been fetched from upstream `gov` yet"
        );
        assert_eq!(runtime.router.routes().count(), 0);
        assert!(runtime.grpc_methods.is_empty());
        assert_eq!(next_wait(&runtime), RETRY_WHILE_FAILING);
    }

    #[test]
    fn the_wait_is_short_while_a_fetch_failed() {
        let mut runtime = runtime("  refresh_interval: 30s\n", true);
        let services = BTreeSet::from(["tai.Governor".to_owned()]);
        let failed = Fetched::Failed {
            services,
            reason: "down".to_owned(),
        };
        runtime.reflected = Arc::new(Reflected {
            upstreams: BTreeMap::from([("gov".to_owned(), failed)]),
        });
        assert_eq!(next_wait(&runtime), RETRY_WHILE_FAILING);
        let mut quick = runtime;
        quick.config.descriptors.refresh_interval = Duration::from_millis(500);
        assert_eq!(next_wait(&quick), Duration::from_millis(500));
    }
}
