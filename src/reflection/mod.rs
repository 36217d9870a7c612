//! gRPC server reflection, both ways:
//! - [`fetch`]: the descriptors of the services routed to an upstream with `reflection: true`,
//!   asked from the backend (v1, else v1alpha) and kept as the raw file bytes it sent;
//! - [`refresh`]: the background task that fetches them again (every
//!   `descriptors.refresh_interval`, sooner while a fetch fails, and when a backend answers
//!   UNIMPLEMENTED) and applies a changed schema through the hot-reload path;
//! - [`serve`]: the answers the gateway gives native gRPC clients asking it, from the live pool,
//!   limited to the services its routes expose.
//!
//! Layout: [`wire`] (the messages) and this file's data types come first; `fetch` and `serve`
//! use only them (and the upstream / descriptor types); `refresh` uses `fetch` and the reloader.

pub mod fetch;
pub mod refresh;
pub mod serve;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

/// What server reflection gave, per upstream with `reflection: true` (by upstream name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reflected {
    /// Each reflecting upstream's last fetch.
    pub upstreams: BTreeMap<String, Fetched>,
}

/// The result of one fetch from one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The files describing `services` (each file by name, with the dependencies the backend had).
    Files {
        /// The services asked for.
        services: BTreeSet<String>,
        /// Raw `FileDescriptorProto` bytes by file name.
        files: BTreeMap<String, Bytes>,
    },
    /// The backend could not be asked, or did not describe a service.
    Failed {
        /// The services asked for.
        services: BTreeSet<String>,
        /// What went wrong, for the 503 answer and the log.
        reason: String,
    },
}

impl Reflected {
    /// Why `service` of `upstream` has no descriptors yet, or `None` when they were fetched.
    pub fn pending_reason(&self, upstream: &str, service: &str) -> Option<String> {
        match self.upstreams.get(upstream) {
            Some(Fetched::Files { services, .. }) if services.contains(service) => None,
            Some(Fetched::Failed { services, reason }) if services.contains(service) => {
                Some(reason.clone())
            }
            _ => Some(format!(
                "its descriptors have not been fetched from upstream `{upstream}` yet"
            )),
        }
    }

    /// Whether any upstream's last fetch failed (the refresh then tries again sooner).
    pub fn any_failed(&self) -> bool {
        self.upstreams
            .values()
            .any(|f| matches!(f, Fetched::Failed { .. }))
    }
}
