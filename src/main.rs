//! The `tai-gateway` command: `run` (default), `validate`, `certs dev`, `--version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tai_gateway::runtime;
use tai_gateway::server::ServerHandle;

/// Request handling allocates many small short-lived buffers across threads; mimalloc's
/// thread-local free lists cost measurably less CPU per request than glibc malloc (benches/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tai-gateway",
    version,
    about = "HTTP/JSON to gRPC edge gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with the given config (the default command).
    Run(RunArgs),
    /// Check a config and its descriptors; print every problem; exit non-zero on any.
    Validate {
        /// The config file.
        #[arg(default_value = "gateway.yaml")]
        config: PathBuf,
    },
    /// Make certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a local dev CA plus a server certificate for localhost/127.0.0.1 and a client
    /// certificate, all signed by it (ca.pem, ca-key.pem, server.pem, server-key.pem, client.pem,
    /// client-key.pem).
    Dev {
        /// The folder to write into (created if needed).
        #[arg(long, default_value = "certs/dev")]
        out: PathBuf,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The config file.
    #[arg(long, short, default_value = "gateway.yaml")]
    config: PathBuf,
    /// Also start the in-memory TAI stub backends (for local development and demos).
    #[arg(long)]
    with_stubs: bool,
    /// Where the Governor stub listens with --with-stubs.
    #[arg(long, default_value = "127.0.0.1:50051")]
    stub_governor: SocketAddr,
    /// Where the Coordinator stub listens with --with-stubs.
    #[arg(long, default_value = "127.0.0.1:50052")]
    stub_coordinator: SocketAddr,
}

fn main() -> ExitCode {
    // One crypto provider for every rustls user in the process, before any TLS config is built.
    tai_gateway::tls::install_default_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Validate { config }) => validate(&config),
        Some(Command::Run(args)) => run_blocking(args),
        Some(Command::Certs(CertsCommand::Dev { out, force })) => certs_dev(&out, force),
        None => run_blocking(RunArgs {
            config: PathBuf::from("gateway.yaml"),
            with_stubs: false,
            stub_governor: SocketAddr::from(([127, 0, 0, 1], 50051)),
            stub_coordinator: SocketAddr::from(([127, 0, 0, 1], 50052)),
        }),
    }
}

fn validate(config: &std::path::Path) -> ExitCode {
    match runtime::load(config) {
        Ok(rt) => {
            let routes = rt.router.routes().count();
            println!(
                "{}: OK ({routes} HTTP bindings, {} upstreams)",
                config.display(),
                rt.upstreams.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{}: {} problem(s)", config.display(), errors.len());
            ExitCode::FAILURE
        }
    }
}

fn certs_dev(out: &std::path::Path, force: bool) -> ExitCode {
    let existing: Vec<PathBuf> = tai_gateway::tls::dev::FILES
        .iter()
        .map(|name| out.join(name))
        .filter(|path| path.exists())
        .collect();
    if !force && !existing.is_empty() {
        eprintln!(
            "{} already exists; pass --force to replace the dev certificates",
            existing[0].display()
        );
        return ExitCode::FAILURE;
    }
    match tai_gateway::tls::dev::write(out) {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write dev certificates: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_blocking(args: RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.with_stubs {
        // Dev mode: the default gateway.yaml's HTTPS listener reads certs/dev/, made on first run.
        let dir = args
            .config
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .join("certs/dev");
        if tai_gateway::tls::dev::ensure(&dir).context("cannot create dev certificates")? {
            tracing::info!(dir = %dir.display(), "created dev certificates (trust ca.pem in clients)");
        }
    }
    let stubs = if args.with_stubs {
        let stubs = tai_stubs::StubServers::start(args.stub_governor, args.stub_coordinator)
            .await
            .context("cannot start the stub backends")?;
        tracing::info!(governor = %stubs.governor_addr, coordinator = %stubs.coordinator_addr, "stub backends started");
        Some(stubs)
    } else {
        None
    };
    let rt = runtime::load(&args.config).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid config:\n{}", text.join("\n"))
    })?;
    let handle = ServerHandle::start(rt).await?;
    if let Some(addr) = handle.http_addr {
        tracing::info!(%addr, "HTTP listener (HTTP/1.1 and h2c) ready");
    }
    if let Some(addr) = handle.tls_addr {
        tracing::info!(%addr, "HTTPS listener (HTTP/1.1 and HTTP/2 by ALPN) ready");
    }
    if let Some(addr) = handle.admin_addr {
        tracing::info!(%addr, "admin listener ready");
    }
    shutdown_signal().await;
    tracing::info!("shutting down: draining open requests");
    handle.shutdown().await;
    if let Some(stubs) = stubs {
        stubs.shutdown().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
