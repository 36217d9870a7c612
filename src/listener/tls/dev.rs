//! Development certificates: a local CA, a server certificate for `localhost` / `127.0.0.1` and a
//! client certificate (for trying mutual TLS), all signed by that CA. For local use only: the CA
//! key is written next to the certificates.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// File names written by [`write`], in the order written.
pub const FILES: [&str; 6] = [
    "ca.pem",
    "ca-key.pem",
    "server.pem",
    "server-key.pem",
    "client.pem",
    "client-key.pem",
];

/// A dev CA and the certificates it signed, as PEM text.
#[derive(Debug)]
pub struct DevCertificates {
    /// The CA certificate (trust it in clients: `curl --cacert ca.pem`).
    pub ca_cert: String,
    /// The CA's private key.
    pub ca_key: String,
    /// Server certificate chain (leaf, then the CA) for `localhost` and `127.0.0.1`.
    pub server_cert: String,
    /// The server's private key (PKCS#8).
    pub server_key: String,
    /// Client certificate (CN `dev-client`, SAN `dev-client.localhost`).
    pub client_cert: String,
    /// The client's private key (PKCS#8).
    pub client_key: String,
}

/// Creates a fresh CA, server and client certificate (ECDSA P-256, valid for about ten years).
pub fn generate() -> Result<DevCertificates, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let ca_key_pem = ca_key.serialize_pem();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tai-gateway dev CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let ca_cert = ca.pem();

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &ca)?;

    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(vec!["dev-client.localhost".to_owned()])?;
    client
        .distinguished_name
        .push(DnType::CommonName, "dev-client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &ca)?;

    Ok(DevCertificates {
        server_cert: format!("{}{}", server_cert.pem(), ca_cert),
        server_key: server_key.serialize_pem(),
        client_cert: format!("{}{}", client_cert.pem(), ca_cert),
        client_key: client_key.serialize_pem(),
        ca_cert,
        ca_key: ca_key_pem,
    })
}

/// Generates a dev set and writes it into `dir` (created if needed) as [`FILES`]; keys are
/// readable by the owner only. Returns the paths written.
pub fn write(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let certs = generate().map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let contents = [
        &certs.ca_cert,
        &certs.ca_key,
        &certs.server_cert,
        &certs.server_key,
        &certs.client_cert,
        &certs.client_key,
    ];
    let mut written = Vec::new();
    for (name, text) in FILES.iter().zip(contents) {
        let path = dir.join(name);
        write_file(&path, text, name.ends_with("-key.pem"))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes the dev set into `dir` unless its server certificate and key already exist there.
/// Returns whether files were written.
pub fn ensure(dir: &Path) -> std::io::Result<bool> {
    if dir.join("server.pem").exists() && dir.join("server-key.pem").exists() {
        return Ok(false);
    }
    write(dir)?;
    Ok(true)
}

fn write_file(path: &Path, text: &str, secret: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
}
