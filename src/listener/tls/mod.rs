//! TLS termination: the rustls server config of the HTTPS listener, built from the PEM files
//! `listeners.tls` names, and kept current when those files change.
//!
//! # Layout
//! - this file: [`TlsTerminator`] (load, reload, the current [`ServerConfig`]) and [`TlsError`].
//! - `resolver`: SNI → certificate, with a default for clients without SNI.
//! - [`identity`]: the verified client certificate's subject/SAN as request headers.
//! - [`dev`]: a local CA + server/client certificates for development.
//!
//! # Policy
//! TLS 1.2 and 1.3 only, with rustls' default (aws-lc-rs) cipher suites; ALPN `h2` and
//! `http/1.1` (a client offering only other protocols is refused with `no_application_protocol`;
//! a client offering none gets HTTP/1.1 or HTTP/2 by what it sends).
//!
//! # Reload
//! One task re-reads every certificate, key and CA file each `reload_interval` and compares the
//! bytes with the last ones seen. On a change it builds a complete new [`ServerConfig`] and swaps
//! it in: new handshakes use it, open connections keep the one they were made with. If any file
//! is missing or broken, the old config stays in service and the problem is logged, naming the
//! file; the next change is tried again.

pub mod dev;
pub mod identity;
mod resolver;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{ClientAuthMode, TlsListenerConfig};
use resolver::SniResolver;

/// ALPN protocols offered, in server preference order.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Installs aws-lc-rs as the process-wide rustls provider; harmless when one is already set.
///
/// The gateway itself always builds configs with an explicit provider; this is for other rustls
/// users in the process (and clients in tests), which fail when several providers are compiled in
/// and none is installed.
pub fn install_default_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

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
    /// rustls refused the certificate/key pair or the client CA bundle.
    #[error("{}: {reason}", path.display())]
    Rejected {
        /// The file (the key for key problems, the CA bundle for client-auth problems).
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

/// What the reload task has done so far (tests and operators can wait on changes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Changes that were applied.
    pub applied: u64,
    /// Changes that were refused (old config kept).
    pub failed: u64,
}

/// The HTTPS listener's TLS state: the current [`ServerConfig`] and its source files.
#[derive(Debug)]
pub struct TlsTerminator {
    config: TlsListenerConfig,
    current: ArcSwap<ServerConfig>,
    stats: watch::Sender<ReloadStats>,
}

impl TlsTerminator {
    /// Reads every file and builds the server config; the error names the first bad file.
    pub fn load(config: TlsListenerConfig) -> Result<TlsTerminator, TlsError> {
        let files = read_files(&config);
        let server = build(&config, &files)?;
        let (stats, _) = watch::channel(ReloadStats::default());
        Ok(TlsTerminator {
            config,
            current: ArcSwap::from_pointee(server),
            stats,
        })
    }

    /// The listener settings this was built from.
    pub fn settings(&self) -> &TlsListenerConfig {
        &self.config
    }

    /// The config new handshakes use.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Reload counters; `changed()` on the receiver wakes after each reload attempt.
    pub fn reload_stats(&self) -> watch::Receiver<ReloadStats> {
        self.stats.subscribe()
    }

    /// Re-reads the files every `reload_interval` until `stop` completes, swapping in a new
    /// config when their contents change (see the module docs).
    pub(crate) async fn watch_files(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let mut seen = read_files(&self.config);
        let mut tick = tokio::time::interval(self.config.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut stop => return,
            }
            let files = read_files(&self.config);
            if files == seen {
                continue;
            }
            match build(&self.config, &files) {
                Ok(server) => {
                    self.current.store(Arc::new(server));
                    self.stats.send_modify(|s| s.applied += 1);
                    tracing::info!("TLS certificates reloaded");
                }
                Err(e) => {
                    self.stats.send_modify(|s| s.failed += 1);
                    tracing::warn!(error = %e, "TLS certificate reload failed; the previous certificates stay in service");
                }
            }
            seen = files;
        }
    }
}

/// One file's bytes, or the reason it could not be read.
type FileContent = Result<Vec<u8>, String>;

/// The contents of every file the config names, in a fixed order: each certificate's cert and
/// key, then the client CA bundle.
#[derive(Debug, PartialEq, Eq)]
struct Files(Vec<(PathBuf, FileContent)>);

impl Files {
    fn get(&self, path: &Path) -> Result<&[u8], TlsError> {
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

fn read_files(config: &TlsListenerConfig) -> Files {
    let mut paths: Vec<&Path> = Vec::new();
    for cert in &config.certificates {
        paths.push(&cert.cert.value);
        paths.push(&cert.key.value);
    }
    if let Some(auth) = &config.client_auth {
        paths.push(&auth.ca.value);
    }
    Files(
        paths
            .into_iter()
            .map(|p| (p.to_owned(), std::fs::read(p).map_err(|e| e.to_string())))
            .collect(),
    )
}

fn build(config: &TlsListenerConfig, files: &Files) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut certificates = Vec::with_capacity(config.certificates.len());
    for cert in &config.certificates {
        let (key, mut names) = certified_key(
            &cert.cert.value,
            files.get(&cert.cert.value)?,
            &cert.key.value,
            files.get(&cert.key.value)?,
            &provider,
        )?;
        if !cert.server_names.is_empty() {
            names.clone_from(&cert.server_names);
        }
        certificates.push((Arc::new(key), names));
    }
    let default = match &config.default_certificate {
        None => 0,
        Some(name) => certificates
            .iter()
            .position(|(_, names)| names.contains(name))
            .ok_or_else(|| TlsError::UnknownDefault { name: name.clone() })?,
    };
    let resolver = SniResolver::new(certificates, default);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rejected {
            path: config.certificates[0].cert.value.clone(),
            reason: e.to_string(),
        })?;
    let builder = match &config.client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let path = &auth.ca.value;
            let mut roots = RootCertStore::empty();
            for der in pem_certificates(path, files.get(path)?)? {
                roots.add(der).map_err(|e| TlsError::Rejected {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match auth.mode {
                ClientAuthMode::Required => verifier,
                ClientAuthMode::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier.build().map_err(|e| TlsError::Rejected {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(server)
}

fn pem_certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

/// The chain + key, checked to belong together, and the DNS names of the leaf's SAN.
fn certified_key(
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
