//! Keeping reflected descriptors current: the first fetch before the gateway serves
//! ([`first`]), then a background task ([`run`]) that fetches again every
//! `descriptors.refresh_interval` — every [`RETRY_WHILE_FAILING`] at most while some upstream's
//! fetch fails, so a backend started after the gateway is picked up soon — and when a backend
//! answered UNIMPLEMENTED for a routed method (the gateway's wake-up). A result that differs
//! from the running snapshot's is applied by a reload (trigger `reflection`): it is built like
//! any other, so every route must still resolve, else the old snapshot keeps serving and the
//! failure is logged and counted (`tai_gateway_config_reloads_total{result="error"}`).

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
        match &fetched {
            Fetched::Failed { reason, .. } => {
                tracing::warn!(upstream = %name, %reason, "descriptors by server reflection: fetch failed");
                if let Some(kept @ Fetched::Files { services: had, .. }) =
                    runtime.reflected.upstreams.get(&name)
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

/// One refresh: fetches and, when the result differs from the running snapshot's, reloads
/// with it; `None` when nothing reflects or nothing changed.
pub async fn refresh(gateway: &Gateway, reloader: &Reloader) -> Option<ReloadStatus> {
    let runtime = gateway.runtime();
    if wanted(&runtime).is_empty() {
        return None;
    }
    let reflected = fetch_all(&runtime).await;
    if reflected == *runtime.reflected {
        return None;
    }
    Some(
        reloader
            .reload_reflected("reflection", Arc::new(reflected))
            .await,
    )
}

/// Refreshes until `stop` turns to `Some`: on the interval, sooner while a fetch fails, and when
/// the gateway is woken by an UNIMPLEMENTED answer.
pub async fn run(
    gateway: Arc<Gateway>,
    reloader: Arc<Reloader>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let wake = gateway.reflection_wake().clone();
    loop {
        let runtime = gateway.runtime();
        let mut wait = runtime.config.descriptors.refresh_interval;
        if runtime.reflected.any_failed() || !runtime.pending.is_empty() {
            wait = wait.min(RETRY_WHILE_FAILING);
        }
        drop(runtime);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {
                tracing::info!("a backend answered UNIMPLEMENTED: fetching its descriptors again");
            }
            _ = stop.wait_for(Option::is_some) => return,
        }
        refresh(&gateway, &reloader).await;
        tokio::select! {
            () = tokio::time::sleep(MIN_WAKE_GAP) => {}
            _ = stop.wait_for(Option::is_some) => return,
        }
    }
}
