//! The certificate, key and CA files both TLS sides read — the HTTPS listener
//! (`listener::tls`) and TLS to backends (`upstream::tls`): PEM parsing with errors that name
//! the file, and [`Reloading`], a TLS config rebuilt when its files change.
//!
//! # Reload
//! One task re-reads every file each interval and compares the bytes with the last ones seen. On
//! a change it builds a complete new config and swaps it in: new handshakes use it, open
//! connections keep the one they were made with. If any file is missing or broken, the old config
//! stays in service and the problem is logged, naming the file; the next change is tried again.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a TLS config could not be built. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A file holds no usable PEM item of the expected kind, or a malformed one.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `default_certificate` names no certificate (checked once the files' names are known).
    #[error("default_certificate `{name}` is not a name of any certificate")]
    UnknownDefault {
        /// The configured name.
        name: String,
    },
    /// rustls refused the certificate/key pair or the CA bundle.
    #[error("{}: {reason}", path.display())]
    Rejected {
        /// The file (the key for key problems, the CA bundle for CA problems).
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

impl TlsError {
    /// The file at fault, when one is.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TlsError::Read { path, .. }
            | TlsError::Pem { path, .. }
            | TlsError::Rejected { path, .. } => Some(path),
            TlsError::UnknownDefault { .. } => None,
        }
    }
}

/// What a reload task has done so far (tests and operators can wait on changes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Changes that were applied.
    pub applied: u64,
    /// Changes that were refused (old config kept).
    pub failed: u64,
}

/// One file's bytes, or the reason it could not be read.
type FileContent = Result<Vec<u8>, String>;

/// The contents of some files, in the order they were named.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Files(Vec<(PathBuf, FileContent)>);

impl Files {
    /// Reads every file now (a failure is kept as its reason, not returned).
    pub(crate) fn read(paths: &[PathBuf]) -> Files {
        Files(
            paths
                .iter()
                .map(|p| (p.clone(), std::fs::read(p).map_err(|e| e.to_string())))
                .collect(),
        )
    }

    /// The bytes of `path`, or why there are none.
    pub(crate) fn get(&self, path: &Path) -> Result<&[u8], TlsError> {
        match self.0.iter().find(|(p, _)| p == path) {
            Some((_, Ok(bytes))) => Ok(bytes),
            Some((_, Err(reason))) => Err(TlsError::Read {
                path: path.to_owned(),
                reason: reason.clone(),
            }),
            None => Err(TlsError::Read {
                path: path.to_owned(),
                reason: "not read".to_owned(),
            }),
        }
    }
}

/// Every certificate in a PEM file (at least one).
pub(crate) fn pem_certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("malformed PEM: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block found".to_owned(),
        });
    }
    Ok(chain)
}

/// A PEM CA bundle as a root store.
pub(crate) fn pem_roots(path: &Path, pem: &[u8]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in pem_certificates(path, pem)? {
        roots.add(der).map_err(|e| TlsError::Rejected {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The chain + key, checked to belong together, and the DNS names of the leaf's SAN.
pub(crate) fn certified_key(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, Vec<String>), TlsError> {
    let chain = pem_certificates(cert_path, cert_pem)?;
    let names = san_dns_names(&chain[0]).ok_or_else(|| TlsError::Pem {
        path: cert_path.to_owned(),
        reason: "the first certificate is not a valid X.509 certificate".to_owned(),
    })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        path: key_path.to_owned(),
        reason: format!("no usable private key (PKCS#8, SEC1 or PKCS#1 PEM): {e}"),
    })?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Rejected {
        path: key_path.to_owned(),
        reason: format!("key does not fit certificate {}: {e}", cert_path.display()),
    })?;
    Ok((key, names))
}

fn san_dns_names(der: &CertificateDer<'_>) -> Option<Vec<String>> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            if let GeneralName::DNSName(n) = name {
                names.push(n.to_ascii_lowercase());
            }
        }
    }
    Some(names)
}

/// Builds a config from the files' contents.
type Build<T> = Box<dyn Fn(&Files) -> Result<T, TlsError> + Send + Sync>;

/// A TLS config (`T`: rustls' server or client config) built from files, and rebuilt when they
/// change (see the module docs).
pub struct Reloading<T> {
    /// What the config is for, in logs (`TLS listener`, `upstream governor`).
    what: String,
    /// Every file the config is built from.
    paths: Vec<PathBuf>,
    /// How often the files are read again.
    interval: Duration,
    build: Build<T>,
    /// The files' contents the last build was tried with.
    seen: Mutex<Files>,
    current: ArcSwap<T>,
    stats: watch::Sender<ReloadStats>,
}

impl<T> fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .field("interval", &self.interval)
            .field("stats", &*self.stats.borrow())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Reloading<T> {
    /// Reads `paths` and builds the first config; the error names the first bad file.
    pub(crate) fn load(
        what: String,
        paths: Vec<PathBuf>,
        interval: Duration,
        build: impl Fn(&Files) -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Reloading<T>, TlsError> {
        let files = Files::read(&paths);
        let first = build(&files)?;
        let (stats, _) = watch::channel(ReloadStats::default());
        Ok(Reloading {
            what,
            paths,
            interval,
            build: Box::new(build),
            seen: Mutex::new(files),
            current: ArcSwap::from_pointee(first),
            stats,
        })
    }

    /// The config new handshakes use.
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Reload counters; `changed()` on the receiver wakes after each reload attempt.
    pub fn reload_stats(&self) -> watch::Receiver<ReloadStats> {
        self.stats.subscribe()
    }

    /// Re-reads the files every interval until `stop` completes or `this` is dropped, swapping
    /// in a new config when their contents change.
    pub(crate) async fn watch(this: Weak<Self>, stop: impl Future<Output = ()>) {
        let Some(interval) = this.upgrade().map(|r| r.interval) else {
            return;
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut stop => return,
            }
            let Some(this) = this.upgrade() else { return };
            this.check();
        }
    }

    /// Reads the files once; rebuilds when they changed since the last build.
    fn check(&self) {
        let files = Files::read(&self.paths);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if files == *seen {
            return;
        }
        match (self.build)(&files) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                self.stats.send_modify(|s| s.applied += 1);
                tracing::info!(what = %self.what, "TLS certificates reloaded");
            }
            Err(e) => {
                self.stats.send_modify(|s| s.failed += 1);
                tracing::warn!(what = %self.what, error = %e, "TLS certificate reload failed; the previous certificates stay in service");
            }
        }
        *seen = files;
    }
}
