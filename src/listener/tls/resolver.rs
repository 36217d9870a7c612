//! SNI: picks one of the configured certificates by the name a client asks for.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Certificates by server name; clients without SNI, or with a name no certificate has, get the
/// declared default.
#[derive(Debug)]
pub(crate) struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
    exact: HashMap<String, usize>,
    /// `*.example.com` stored as `example.com`: matches exactly one more label.
    wildcard: HashMap<String, usize>,
    default: usize,
}

impl SniResolver {
    /// `certificates` pairs each key with its lower-case names; the first certificate to claim a
    /// name keeps it. `default` indexes `certificates`.
    pub(crate) fn new(certificates: Vec<(Arc<CertifiedKey>, Vec<String>)>, default: usize) -> Self {
        let mut resolver = SniResolver {
            keys: Vec::with_capacity(certificates.len()),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        };
        for (index, (key, names)) in certificates.into_iter().enumerate() {
            resolver.keys.push(key);
            for name in names {
                match name.strip_prefix("*.") {
                    Some(suffix) => resolver.wildcard.entry(suffix.to_owned()),
                    None => resolver.exact.entry(name),
                }
                .or_insert(index);
            }
        }
        resolver
    }

    /// The index of the certificate serving `name` (`None` when the name is unknown).
    pub(crate) fn lookup(&self, name: &str) -> Option<usize> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(&index) = self.exact.get(&name) {
            return Some(index);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).copied()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let index = hello
            .server_name()
            .and_then(|name| self.lookup(name))
            .unwrap_or(self.default);
        self.keys.get(index).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::sign::SigningKey;

    #[derive(Debug)]
    struct NoKey;

    impl SigningKey for NoKey {
        fn choose_scheme(
            &self,
            _: &[rustls::SignatureScheme],
        ) -> Option<Box<dyn rustls::sign::Signer>> {
            None
        }
        fn algorithm(&self) -> rustls::SignatureAlgorithm {
            rustls::SignatureAlgorithm::ECDSA
        }
    }

    fn key() -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(Vec::new(), Arc::new(NoKey)))
    }

    #[test]
    fn names_select_exact_then_wildcard_certificates() {
        let resolver = SniResolver::new(
            vec![
                (key(), vec!["a.test".to_owned()]),
                (key(), vec!["*.b.test".to_owned(), "b.test".to_owned()]),
            ],
            0,
        );
        assert_eq!(resolver.lookup("a.test"), Some(0));
        assert_eq!(resolver.lookup("A.Test."), Some(0));
        assert_eq!(resolver.lookup("b.test"), Some(1));
        assert_eq!(resolver.lookup("x.b.test"), Some(1));
        assert_eq!(resolver.lookup("y.x.b.test"), None);
        assert_eq!(resolver.lookup("c.test"), None);
    }
}
