//! `tai-stubs`: runs the in-memory Governor and Coordinator stubs until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use tai_stubs::StubServers;

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
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let servers = StubServers::start(args.governor_addr, args.coordinator_addr).await?;
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
