//! DNS re-resolution of endpoints given as host names.
//!
//! An endpoint written as `ip:port` is one endpoint for good. One written as `name:port` starts as
//! one endpoint that dials the name (so calls work before the first resolution), and a task per
//! upstream resolves every such name at once and then every `resolve_interval`: each address the
//! name resolves to becomes an endpoint of its own (own HTTP/2 connection, own breaker, own health
//! checks). Addresses that disappear are removed from the list — calls in flight on them finish
//! (they hold the endpoint), then its connection closes with the last reference: that is the
//! drain. New addresses are added. A failed or empty resolution changes nothing (a DNS outage
//! must not take a working upstream down).
//!
//! The task holds only a `Weak` reference: it ends when a reload drops the upstream. Whoever
//! starts it says what happens to the endpoints it adds (health checks start on them).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::time::MissedTickBehavior;

use super::backend::Upstream;
use super::endpoint::Endpoint;

/// What to do with one host name's endpoints after a resolution.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Positions (in the name's current endpoints) that stay.
    pub keep: Vec<usize>,
    /// Positions that leave (drained: no new calls, in-flight ones finish).
    pub remove: Vec<usize>,
    /// Addresses that become new endpoints.
    pub add: Vec<SocketAddr>,
}

/// Compares a name's current endpoints (their resolved address; `None` for the endpoint that
/// still dials the name itself) with a fresh resolution. An empty resolution keeps everything.
pub fn plan(current: &[Option<SocketAddr>], resolved: &[SocketAddr]) -> Plan {
    if resolved.is_empty() {
        return Plan {
            keep: (0..current.len()).collect(),
            ..Plan::default()
        };
    }
    let mut plan = Plan::default();
    for (i, address) in current.iter().enumerate() {
        match address {
            Some(a) if resolved.contains(a) => plan.keep.push(i),
            _ => plan.remove.push(i),
        }
    }
    for address in resolved {
        if !current.contains(&Some(*address)) && !plan.add.contains(address) {
            plan.add.push(*address);
        }
    }
    plan
}

/// Whether a configured `host:port` names a host (rather than an IP address).
pub fn is_host_name(authority: &str) -> bool {
    authority.parse::<SocketAddr>().is_err()
}

/// What to do with an endpoint a resolution added.
pub(super) type OnAdded = fn(&Arc<Upstream>, &Arc<Endpoint>);

/// Starts the re-resolution task of `upstream` if some endpoint is a host name (once); each
/// endpoint it adds is given to `on_added`.
pub(super) fn start(upstream: &Arc<Upstream>, on_added: OnAdded) {
    if !upstream.config.endpoints.iter().any(|e| is_host_name(e)) {
        return;
    }
    if upstream.resolve_started.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(resolve_loop(
        Arc::downgrade(upstream),
        upstream.config.resolve_interval,
        on_added,
    ));
}

async fn resolve_loop(upstream: Weak<Upstream>, interval: std::time::Duration, on_added: OnAdded) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(names) = upstream.upgrade().map(|u| {
            u.config
                .endpoints
                .iter()
                .filter(|e| is_host_name(e))
                .cloned()
                .collect::<Vec<_>>()
        }) else {
            return;
        };
        let mut resolved = Vec::new();
        for name in names {
            let addresses = match tokio::net::lookup_host(name.as_str()).await {
                Ok(found) => found.collect::<Vec<_>>(),
                Err(e) => {
                    tracing::warn!(endpoint = %name, error = %e, "cannot resolve endpoint; keeping its current addresses");
                    Vec::new()
                }
            };
            resolved.push((name, addresses));
        }
        let Some(upstream) = upstream.upgrade() else {
            return;
        };
        for endpoint in apply(&upstream, &resolved) {
            on_added(&upstream, &endpoint);
        }
    }
}

/// Replaces the endpoints of each resolved name by the plan's result; other endpoints stay.
/// Returns the endpoints added.
pub(super) fn apply(
    upstream: &Upstream,
    resolved: &[(String, Vec<SocketAddr>)],
) -> Vec<Arc<Endpoint>> {
    let current = upstream.endpoints();
    let mut next: Vec<Arc<Endpoint>> = current
        .iter()
        .filter(|e| !resolved.iter().any(|(name, _)| *name == e.target))
        .cloned()
        .collect();
    let mut added = Vec::new();
    for (name, addresses) in resolved {
        let mine: Vec<&Arc<Endpoint>> = current.iter().filter(|e| e.target == *name).collect();
        let addresses_now: Vec<Option<SocketAddr>> = mine.iter().map(|e| e.address).collect();
        let plan = plan(&addresses_now, addresses);
        next.extend(plan.keep.iter().map(|&i| mine[i].clone()));
        for &i in &plan.remove {
            if let Some(address) = mine[i].address {
                tracing::info!(upstream = %upstream.name, endpoint = %name, %address, in_flight = mine[i].in_flight(), "address no longer resolved: endpoint drained and removed");
            }
        }
        for address in plan.add {
            tracing::info!(upstream = %upstream.name, endpoint = %name, %address, "address resolved: endpoint added");
            let endpoint = Arc::new(Endpoint::resolved(
                &upstream.config,
                name,
                address,
                upstream.tls.as_ref(),
            ));
            next.push(endpoint.clone());
            added.push(endpoint);
        }
    }
    let changed = next.len() != current.len()
        || next
            .iter()
            .zip(current.iter())
            .any(|(a, b)| !Arc::ptr_eq(a, b));
    if !changed {
        return Vec::new();
    }
    upstream.endpoints.store(Arc::new(next));
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BreakerConfig, RetryConfig, UpstreamConfig};
    use std::time::Duration;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("address")
    }

    #[test]
    fn unchanged_addresses_stay_new_ones_are_added_and_gone_ones_removed() {
        let a = addr("10.0.0.1:80");
        let b = addr("10.0.0.2:80");
        let c = addr("[::1]:80");
        let p = plan(&[Some(a), Some(b)], &[b, c, c]);
        assert_eq!(
            p,
            Plan {
                keep: vec![1],
                remove: vec![0],
                add: vec![c],
            }
        );
    }

    #[test]
    fn the_name_endpoint_is_replaced_by_the_first_resolution() {
        let a = addr("127.0.0.1:80");
        let c = addr("[::1]:80");
        let p = plan(&[None], &[a, c]);
        assert_eq!(p.keep, Vec::<usize>::new());
        assert_eq!(p.remove, vec![0]);
        assert_eq!(p.add, vec![a, c]);
    }

    #[test]
    fn an_empty_resolution_changes_nothing() {
        let a = addr("127.0.0.1:80");
        let p = plan(&[Some(a), None], &[]);
        assert_eq!(p.keep, vec![0, 1]);
        assert!(p.remove.is_empty() && p.add.is_empty());
    }

    #[test]
    fn ip_literals_are_not_resolved() {
        assert!(!is_host_name("127.0.0.1:80"));
        assert!(!is_host_name("[::1]:80"));
        assert!(is_host_name("localhost:80"));
        assert!(is_host_name("governor.tai.svc:50051"));
    }

    fn upstream() -> Arc<Upstream> {
        Arc::new(
            Upstream::new(&UpstreamConfig {
                name: "u".to_owned(),
                authority: "backend:80".to_owned(),
                connect_timeout: Duration::from_secs(1),
                max_response_bytes: 1024,
                endpoints: vec!["backend:80".to_owned(), "127.0.0.1:81".to_owned()],
                retry: RetryConfig::default(),
                circuit_breaker: BreakerConfig::default(),
                health_check: None,
                resolve_interval: Duration::from_secs(30),
                send_gzip_from: None,
                tls: None,
                reflection: false,
            })
            .expect("upstream"),
        )
    }

    fn names(u: &Upstream) -> Vec<String> {
        u.endpoints().iter().map(|e| e.authority.clone()).collect()
    }

    #[test]
    fn applying_resolutions_keeps_surviving_endpoints_and_their_state() {
        let u = upstream();
        assert_eq!(names(&u), ["backend:80", "127.0.0.1:81"]);
        let (a, b, c) = (
            addr("10.0.0.1:80"),
            addr("10.0.0.2:80"),
            addr("10.0.0.3:80"),
        );
        apply(&u, &[("backend:80".to_owned(), vec![a, b])]);
        assert_eq!(names(&u), ["127.0.0.1:81", "10.0.0.1:80", "10.0.0.2:80"]);
        let kept = u.endpoints()[2].clone();
        assert_eq!(kept.target, "backend:80");
        apply(&u, &[("backend:80".to_owned(), vec![b, c])]);
        assert_eq!(names(&u), ["127.0.0.1:81", "10.0.0.2:80", "10.0.0.3:80"]);
        assert!(Arc::ptr_eq(&u.endpoints()[1], &kept), "b kept its endpoint");
        let before = u.endpoints();
        apply(&u, &[("backend:80".to_owned(), vec![c, b])]);
        assert!(
            Arc::ptr_eq(&before, &u.endpoints()),
            "same set: list untouched"
        );
        apply(&u, &[("backend:80".to_owned(), Vec::new())]);
        assert_eq!(names(&u), ["127.0.0.1:81", "10.0.0.2:80", "10.0.0.3:80"]);
    }
}
