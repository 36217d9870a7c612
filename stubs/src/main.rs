//! `tai-stubs`: runs the in-memory Governor and Coordinator stubs until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tai_stubs::{StubServers, StubTls};

/// In-memory tai.Governor and tai.Coordinator gRPC stubs with fault injection.
#[derive(Debug, Parser)]
#[command(name = "tai-stubs", version)]
struct Args {
    /// Address the tai.Governor stub listens on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:50051")]
    governor_addr: SocketAddr,
    /// Address the tai.Coordinator stub listens on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:50052")]
    coordinator_addr: SocketAddr,
    /// Serve TLS (both stubs) with this PEM certificate chain; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates chaining to a CA in this PEM bundle (TLS only).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

impl Args {
    /// The TLS mode asked for, with its files read.
    fn tls(&self) -> std::io::Result<Option<StubTls>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut tls = StubTls::new(
            std::fs::read_to_string(cert)?,
            std::fs::read_to_string(key)?,
        );
        if let Some(ca) = &self.tls_client_ca {
            tls = tls.require_client_certs(std::fs::read_to_string(ca)?);
        }
        Ok(Some(tls))
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let servers = match args.tls()? {
        Some(tls) => {
            StubServers::start_tls(args.governor_addr, args.coordinator_addr, &tls).await?
        }
        None => StubServers::start(args.governor_addr, args.coordinator_addr).await?,
    };
    // Printed rather than traced: this binary installs no subscriber, and scripts read the
    // bound ports from here when they asked for port 0.
    println!("tai.Governor listening on {}", servers.governor_addr);
    println!("tai.Coordinator listening on {}", servers.coordinator_addr);
    stop_signal().await?;
    println!("shutting down");
    servers.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
