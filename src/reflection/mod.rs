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

#[cfg(test)]
mod tests {
    use prost_reflect::{DescriptorPool, Value};

    use super::*;
    use crate::descriptors::add_reflected;
    use crate::reflection::wire::RawFileSet;

    const PROTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

    /// `tai/governor.proto` and its imports, as a backend's reflection gives them: raw bytes by name.
    fn reflected_governor() -> Reflected {
        let mut compiler = protox::Compiler::new([PROTO]).expect("compiler");
        compiler
            .include_imports(true)
            .open_files(["tai/governor.proto"])
            .expect("compiles");
        let set: RawFileSet =
            prost::Message::decode(compiler.encode_file_descriptor_set().as_slice()).expect("set");
        let files = set
            .file
            .into_iter()
            .map(|bytes| {
                let header: wire::FileHeader =
                    prost::Message::decode(bytes.clone()).expect("header");
                (header.name, bytes)
            })
            .collect();
        let services = BTreeSet::from(["tai.Governor".to_owned()]);
        Reflected {
            upstreams: BTreeMap::from([("gov".to_owned(), Fetched::Files { services, files })]),
        }
    }

    /// The `get` template of `tai.Governor.GetPolicy` in `pool`.
    fn get_policy_template(pool: &DescriptorPool) -> String {
        let service = pool.get_service_by_name("tai.Governor").expect("service");
        let method = service
            .methods()
            .find(|m| m.name() == "GetPolicy")
            .expect("GetPolicy");
        let http = pool.get_extension_by_name("google.api.http").expect("ext");
        let options = method.options();
        let Value::Message(rule) = options.get_extension(&http).into_owned() else {
            panic!("no rule")
        };
        let get = rule.get_field_by_name("get").expect("get");
        get.as_str().expect("text").to_owned()
    }

    #[test]
    fn reflected_files_keep_their_http_rules_and_a_local_file_of_the_same_name_wins() {
        let reflected = reflected_governor();
        let mut pool = DescriptorPool::new();
        assert!(add_reflected(&mut pool, &reflected).is_empty());
        assert_eq!(get_policy_template(&pool), "/v1/policies/{id}");

        let dir = std::env::temp_dir().join(format!("tai-reflect-local-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tai")).expect("mkdir");
        let local = std::fs::read_to_string(format!("{PROTO}/tai/governor.proto"))
            .expect("read")
            .replace(
                "get: \"/v1/policies/{id}\"",
                "get: \"/local/policies/{id}\"",
            );
        std::fs::write(dir.join("tai/governor.proto"), local).expect("write");
        let mut compiler =
            protox::Compiler::new([dir.as_path(), std::path::Path::new(PROTO)]).expect("compiler");
        compiler
            .include_imports(true)
            .open_files(["tai/governor.proto"])
            .expect("compiles");
        let mut pool =
            DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).expect("pool");
        assert!(add_reflected(&mut pool, &reflected).is_empty());
        assert_eq!(get_policy_template(&pool), "/local/policies/{id}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_that_do_not_form_a_pool_are_reported_for_their_upstream() {
        let mut reflected = reflected_governor();
        if let Some(Fetched::Files { files, .. }) = reflected.upstreams.get_mut("gov") {
            files.retain(|name, _| name == "tai/governor.proto");
        }
        let mut pool = DescriptorPool::new();
        let failed = add_reflected(&mut pool, &reflected);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "gov");
        assert!(
            failed[0]
                .1
                .starts_with("the descriptors reflected by upstream `gov` are not usable: "),
            "{}",
            failed[0].1
        );
        assert!(pool.get_service_by_name("tai.Governor").is_none());
    }

    #[test]
    fn a_service_is_pending_until_a_fetch_that_asked_for_it_succeeded() {
        let mut reflected = reflected_governor();
        assert_eq!(reflected.pending_reason("gov", "tai.Governor"), None);
        assert_eq!(
            reflected.pending_reason("gov", "tai.Other").as_deref(),
            Some("its descriptors have not been fetched from upstream `gov` yet")
        );
        assert!(!reflected.any_failed());
        reflected.upstreams.insert(
            "gov".to_owned(),
            Fetched::Failed {
                services: BTreeSet::from(["tai.Governor".to_owned()]),
                reason: "down".to_owned(),
            },
        );
        assert_eq!(
            reflected.pending_reason("gov", "tai.Governor").as_deref(),
            Some("down")
        );
        assert!(reflected.any_failed());
    }
}
