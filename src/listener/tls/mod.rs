//! TLS termination: the rustls server config of one HTTPS listener, built from the PEM files its
//! `tls:` names, and kept current when those files change (each listener watches its own).
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
//! The certificate, key and CA files are re-read each `reload_interval` and a new [`ServerConfig`]
//! swapped in when they change; a broken file keeps the old one (`crate::certs::Reloading`, which
//! TLS to backends uses too).

pub mod dev;
pub mod identity;
mod resolver;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::sync::watch;

use crate::certs::{Files, Reloading, certified_key, pem_roots};
pub use crate::certs::{ReloadStats, TlsError};
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

/// An HTTPS listener's TLS state: the current [`ServerConfig`] and its source files.
#[derive(Debug)]
pub struct TlsTerminator {
    name: String,
    config: TlsListenerConfig,
    certs: Arc<Reloading<ServerConfig>>,
}

impl TlsTerminator {
    /// Reads every file of listener `name` and builds the server config; the error names the
    /// first bad file.
    pub fn load(name: &str, config: TlsListenerConfig) -> Result<TlsTerminator, TlsError> {
        let settings = config.clone();
        let certs = Reloading::load(
            format!("TLS listener {name}"),
            paths(&config),
            config.reload_interval,
            move |files| build(&settings, files),
        )?;
        Ok(TlsTerminator {
            name: name.to_owned(),
            config,
            certs: Arc::new(certs),
        })
    }

    /// The name of the listener it serves.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The listener settings this was built from.
    pub fn settings(&self) -> &TlsListenerConfig {
        &self.config
    }

    /// The config new handshakes use.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.certs.current()
    }

    /// Reload counters; `changed()` on the receiver wakes after each reload attempt.
    pub fn reload_stats(&self) -> watch::Receiver<ReloadStats> {
        self.certs.reload_stats()
    }

    /// Re-reads the files every `reload_interval` until `stop` completes, swapping in a new
    /// config when their contents change (see the module docs).
    pub(crate) async fn watch_files(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        Reloading::watch(Arc::downgrade(&self.certs), stop).await;
    }
}

/// Every file the config names, in a fixed order: each certificate's cert and key, then the
/// client CA bundle.
fn paths(config: &TlsListenerConfig) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for cert in &config.certificates {
        paths.push(cert.cert.value.clone());
        paths.push(cert.key.value.clone());
    }
    if let Some(auth) = &config.client_auth {
        paths.push(auth.ca.value.clone());
    }
    paths
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
            let roots = pem_roots(path, files.get(path)?)?;
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
