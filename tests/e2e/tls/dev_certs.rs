//! `tai-gateway certs dev` and the certificates it writes.

use super::*;

// ---- certs dev ----

#[test]
fn certs_dev_writes_a_ca_and_certificates_that_parse() {
    let dir = TempDir::new();
    let out = dir.path().join("dev");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tai-gateway"))
            .args(["certs", "dev", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .expect("run tai-gateway")
    };
    let first = run(&[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for name in tai_gateway::listener::tls::dev::FILES {
        let path = out.join(name);
        let text = std::fs::read(&path).expect("file written");
        if name.ends_with("-key.pem") {
            PrivateKeyDer::from_pem_slice(&text).expect("key parses");
        } else {
            let certs = CertificateDer::pem_slice_iter(&text)
                .collect::<Result<Vec<_>, _>>()
                .expect("certificates parse");
            assert!(!certs.is_empty(), "{name}");
        }
    }
    let server = std::fs::read(out.join("server.pem")).expect("server.pem");
    let leaf = CertificateDer::pem_slice_iter(&server)
        .next()
        .expect("one")
        .expect("parses");
    assert_eq!(dns_names(&leaf), ["localhost"]);

    // Not overwritten without --force.
    let again = run(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(out.join("server.pem")).expect("kept"), server);
    assert!(run(&["--force"]).status.success());
}

#[tokio::test]
async fn dev_certificates_serve_https_for_localhost_with_client_auth() {
    let dir = TempDir::new();
    let written = tai_gateway::listener::tls::dev::write(dir.path()).expect("write dev certs");
    assert_eq!(written.len(), 6);
    let p = |name: &str| dir.path().join(name);
    let tls = format!(
        "    certificates:\n{}    client_auth:\n      ca: {}\n      mode: required\n",
        cert_entry(&p("server.pem"), &p("server-key.pem"), &[]),
        p("ca.pem").display()
    );
    let env = TestEnv::start_with(|config| with_tls(config, &tls)).await;
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(p("ca.pem")).expect("ca") {
        roots.add(der.expect("der")).expect("root");
    }
    let client_pem = std::fs::read_to_string(p("client.pem")).expect("client.pem");
    let client = Leaf {
        der: CertificateDer::from_pem_slice(client_pem.as_bytes()).expect("client cert"),
        cert_pem: client_pem,
        key_pem: std::fs::read_to_string(p("client-key.pem")).expect("client key"),
    };
    let config = client_config(roots, &[b"h2"], rustls::ALL_VERSIONS, Some(&client));
    let stream = connect(tls_addr(&env), no_sni(), config.clone())
        .await
        .expect("127.0.0.1 is in the dev certificate");
    drop(stream);
    let (status, _) = https_get(tls_addr(&env), config, "/v1/policies", &[])
        .await
        .expect("served");
    assert_eq!(status, StatusCode::OK);
}
