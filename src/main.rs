//! The `tai-gateway` command: `run` (default), `validate`, `openapi`, `certs dev`, `token`,
//! `events …`, `health`, `--version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tai_gateway::config::{ConfigError, LogFormat};
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
    Validate(ValidateArgs),
    /// Print the OpenAPI 3.1 document of a config's routes (as `GET /openapi.json` serves it,
    /// indented), without starting a server; exit non-zero when the config has problems.
    Openapi(OpenapiArgs),
    /// Make certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Print a signed JWT for local testing, made with the DEV key (never trust it in production).
    Token(TokenArgs),
    /// Read the event stream in Redis: the audit log, tail, dead letters, consumer lag.
    Events(EventsArgs),
    /// Probe a running gateway's admin endpoint (a container HEALTHCHECK without curl): exit 0
    /// on a 2xx answer, 1 otherwise.
    Health(HealthArgs),
}

#[derive(clap::Args)]
struct HealthArgs {
    /// The admin URL to GET (plain HTTP).
    #[arg(long, default_value = tai_gateway::admin::probe::DEFAULT_HEALTH_URL)]
    url: String,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = tai_gateway::config::parse_duration)]
    timeout: std::time::Duration,
}

/// `--config FILE` / `-c FILE`: the same flag on every command that reads a config.
#[derive(clap::Args)]
struct ConfigArg {
    /// The config file.
    #[arg(long, short, default_value = "gateway.yaml", global = true)]
    config: PathBuf,
}

#[derive(clap::Args)]
struct OpenapiArgs {
    #[command(flatten)]
    file: ValidateArgs,
    /// Print YAML (as `GET /openapi.yaml` serves it) instead of indented JSON.
    #[arg(long)]
    yaml: bool,
}

/// The config file of `validate` and `openapi`: `--config FILE` or positionally.
#[derive(clap::Args)]
struct ValidateArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The config file, positionally (the older form; `--config` is the same).
    #[arg(conflicts_with = "config", value_name = "FILE")]
    file: Option<PathBuf>,
}

impl ValidateArgs {
    /// The file to check: the positional one, else `--config`.
    fn path(&self) -> &std::path::Path {
        self.file.as_deref().unwrap_or(&self.config.config)
    }
}

#[derive(clap::Args)]
struct EventsArgs {
    /// The config file; its `redis:` section and the stream names of its `events:` section are read.
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Append every event to an append-only JSON-lines file (fsynced before each acknowledgement),
    /// reading in a consumer group of its own; runs until Ctrl-C or SIGTERM.
    Audit {
        /// The audit file (created if missing, appended to).
        #[arg(long)]
        out: PathBuf,
        /// The consumer group.
        #[arg(long, default_value = "audit")]
        group: String,
        /// This consumer's name in the group (default: the host name; keep it stable).
        #[arg(long)]
        consumer: Option<String>,
        /// Wait before redelivering a failed event; doubles per delivery.
        #[arg(long, default_value = "1s", value_parser = tai_gateway::config::parse_duration)]
        backoff: std::time::Duration,
        /// Failed deliveries after which an event goes to tai-events-dlq.
        #[arg(long, default_value_t = 3)]
        max_deliveries: u64,
        /// Serve `GET /metrics` (deliveries, dead letters, the group's lag) on this address.
        #[arg(long)]
        metrics_address: Option<std::net::SocketAddr>,
    },
    /// Print events as they arrive (read-only: takes nothing from any consumer group).
    Tail(TailArgs),
    /// The dead-letter stream tai-events-dlq.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The consumer lag of a group (entries not yet delivered to it) and its pending entries.
    Lag {
        /// The consumer group.
        #[arg(long, default_value = "audit")]
        group: String,
    },
}

#[derive(clap::Args)]
struct TailArgs {
    /// Only this event type (`policy.*`: every type starting with `policy.`).
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only events about this aggregate id.
    #[arg(long)]
    aggregate: Option<String>,
    /// Start with the oldest event the stream holds instead of the next one written.
    #[arg(long)]
    from_start: bool,
    /// Print each event's JSON instead of `time type aggregate event_id`.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List the dead letters: event id, type, aggregate id, deliveries, reason.
    List {
        /// The group whose lag heads the list.
        #[arg(long, default_value = "audit")]
        group: String,
    },
    /// Put dead letters back on tai-events: those named (by event id or DLQ entry id), or all.
    Replay {
        /// Event ids or DLQ entry ids; none: every dead letter.
        ids: Vec<String>,
    },
}

#[derive(clap::Args)]
struct TokenArgs {
    /// `sub` claim.
    #[arg(long, default_value = "dev")]
    sub: String,
    /// Scopes (repeat or space-separate) for the `scope` claim.
    #[arg(long)]
    scope: Vec<String>,
    /// Lifetime (`exp` = now + ttl).
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// `iss` claim.
    #[arg(long, default_value = "tai-gateway-dev")]
    issuer: String,
    /// `aud` claim.
    #[arg(long, default_value = "tai-gateway")]
    audience: String,
    /// PEM private key (Ed25519, EC or RSA); the default is the committed DEV key.
    #[arg(long, default_value = "certs/dev-jwt/private.pem")]
    key: PathBuf,
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
    #[command(flatten)]
    config: ConfigArg,
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
    tai_gateway::listener::tls::install_default_provider();
    let cli = Cli::parse();
    // RUST_LOG wins; otherwise the config's `log_level` (read here, before anything logs).
    let (level, format) = match &cli.command {
        Some(Command::Run(args)) => configured_logging(&args.config.config),
        None => configured_logging(std::path::Path::new("gateway.yaml")),
        // validate, openapi, token, certs, events
        Some(_) => ("info".to_owned(), LogFormat::Text),
    };
    init_logging(&level, format);
    match cli.command {
        Some(Command::Validate(args)) => validate(args.path()),
        Some(Command::Openapi(args)) => openapi(args.file.path(), args.yaml),
        Some(Command::Token(args)) => match token(&args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Run(args)) => run_blocking(args),
        Some(Command::Events(args)) => events_blocking(args),
        Some(Command::Certs(CertsCommand::Dev { out, force })) => certs_dev(&out, force),
        Some(Command::Health(args)) => health(&args),
        None => run_blocking(RunArgs {
            config: ConfigArg {
                config: PathBuf::from("gateway.yaml"),
            },
            with_stubs: false,
            stub_governor: SocketAddr::from(([127, 0, 0, 1], 50051)),
            stub_coordinator: SocketAddr::from(([127, 0, 0, 1], 50052)),
        }),
    }
}

/// The config's `log_level`, or `info` when the config cannot be read (its errors are reported
/// once logging is up).
/// The config's `log_level` and `log_format` (the defaults when it cannot be read: the run
/// itself then reports why).
fn configured_logging(path: &std::path::Path) -> (String, LogFormat) {
    tai_gateway::config::Config::load(path)
        .map(|c| (c.ops.log_level, c.ops.log_format))
        .unwrap_or_else(|_| ("info".to_owned(), LogFormat::Text))
}

/// Logs to stderr: `RUST_LOG` or `level`; JSON lines, or text coloured only on a terminal (log
/// files and shippers get no escape codes).
fn init_logging(level: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// `rt` with the descriptors of its reflecting upstreams (`reflection: true`) fetched now, for
/// the one-shot commands; services whose backend cannot be asked are named on stderr.
fn reflected(rt: runtime::Runtime) -> Result<runtime::Runtime, Vec<ConfigError>> {
    if !rt.config.upstreams.iter().any(|u| u.reflection) {
        return Ok(rt);
    }
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let rt = match tokio {
        Ok(tokio) => tokio
            .block_on(tai_gateway::reflection::refresh::first_checked(rt))
            .map_err(|(_, problems)| problems)?,
        Err(e) => {
            eprintln!("cannot start the async runtime to ask backends by reflection: {e}");
            rt
        }
    };
    let mut pending: Vec<_> = rt.pending.iter().collect();
    pending.sort_by_key(|(name, _)| *name);
    for (service, why) in pending {
        eprintln!("note: service `{service}` is left out: {}", why.reason);
    }
    Ok(rt)
}

fn validate(config: &std::path::Path) -> ExitCode {
    match runtime::load(config).and_then(reflected) {
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

/// `tai-gateway openapi`: the document on stdout, or the config's problems on stderr.
fn openapi(config: &std::path::Path, yaml: bool) -> ExitCode {
    let rt = match runtime::load(config).and_then(reflected) {
        Ok(rt) => rt,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{}: {} problem(s)", config.display(), errors.len());
            return ExitCode::FAILURE;
        }
    };
    let document = tai_gateway::openapi::document(&rt);
    let text = if yaml {
        serde_saphyr::to_string(&document).map_err(|e| e.to_string())
    } else {
        serde_json::to_string_pretty(&document).map_err(|e| e.to_string())
    };
    let written = text.and_then(|mut text| {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        use std::io::Write as _;
        match std::io::stdout().lock().write_all(text.as_bytes()) {
            // A reader that stops early (`| head`) is not a failure of ours.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
            _ => Ok(()),
        }
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot print the document: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A token for the DEV key: EdDSA, ES256 or RS256 by the key's type.
fn token(args: &TokenArgs) -> anyhow::Result<String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let pem =
        std::fs::read(&args.key).with_context(|| format!("cannot read {}", args.key.display()))?;
    let (alg, key) = if let Ok(k) = EncodingKey::from_ed_pem(&pem) {
        (Algorithm::EdDSA, k)
    } else if let Ok(k) = EncodingKey::from_ec_pem(&pem) {
        (Algorithm::ES256, k)
    } else {
        let k = EncodingKey::from_rsa_pem(&pem).with_context(|| {
            format!(
                "{}: not an Ed25519, EC or RSA private key",
                args.key.display()
            )
        })?;
        (Algorithm::RS256, k)
    };
    let ttl = tai_gateway::config::parse_duration(&args.ttl).map_err(anyhow::Error::msg)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = serde_json::json!({
        "iss": args.issuer,
        "aud": args.audience,
        "sub": args.sub,
        "scope": args.scope.join(" "),
        "iat": now,
        "exp": now + ttl.as_secs(),
    });
    Ok(jsonwebtoken::encode(&Header::new(alg), &claims, &key)?)
}

fn certs_dev(out: &std::path::Path, force: bool) -> ExitCode {
    let existing: Vec<PathBuf> = tai_gateway::listener::tls::dev::FILES
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
    match tai_gateway::listener::tls::dev::write(out) {
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

/// `health`: one GET of the admin URL; the outcome printed, the exit code saying it.
fn health(args: &HealthArgs) -> ExitCode {
    use tai_gateway::admin::probe::probe;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    block_on(runtime, async {
        let status = probe(&args.url, args.timeout).await?;
        println!("{} answered {status}", args.url);
        Ok(())
    })
}

fn events_blocking(args: EventsArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    block_on(runtime, events(args))
}

/// Runs `work` on `runtime`; its error (or the runtime's) is printed and the exit code says so.
fn block_on(
    runtime: std::io::Result<tokio::runtime::Runtime>,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `events …`: the work is in `tai_gateway::events`; this only picks it and prints.
async fn events(args: EventsArgs) -> anyhow::Result<()> {
    use tai_gateway::events::commands;
    let streams = commands::streams_of(&args.config.config)?;
    match args.command {
        EventsCommand::Audit {
            out,
            group,
            consumer,
            backoff,
            max_deliveries,
            metrics_address,
        } => {
            let consumer = consumer.unwrap_or_else(commands::default_consumer_name);
            let mut options = tai_gateway::events::ConsumerOptions::new(&group, &consumer);
            options.stream.clone_from(&streams.events);
            options.dead_letters.clone_from(&streams.dead_letters);
            options.backoff = backoff;
            options.max_deliveries = max_deliveries;
            tracing::info!(out = %out.display(), %group, %consumer, stream = %streams.events, "auditing");
            let metrics = match metrics_address {
                Some(address) => Some(tokio::net::TcpListener::bind(address).await?),
                None => None,
            };
            let redis = &streams.redis;
            tai_gateway::events::audit::audit(redis, &out, options, metrics, shutdown_signal())
                .await?;
        }
        EventsCommand::Tail(args) => events_tail(&streams, args).await?,
        EventsCommand::Dlq(DlqCommand::List { group }) => {
            print!("{}", commands::dead_letters_report(&streams, &group).await?);
        }
        EventsCommand::Dlq(DlqCommand::Replay { ids }) => {
            print!("{}", commands::replay_report(&streams, &ids).await?);
        }
        EventsCommand::Lag { group } => print!("{}", commands::lag_report(&streams, &group).await?),
    }
    Ok(())
}

/// `events tail`: one line per event, until Ctrl-C or SIGTERM.
async fn events_tail(
    streams: &tai_gateway::events::commands::Streams,
    args: TailArgs,
) -> anyhow::Result<()> {
    use tai_gateway::events::tail;
    let filter = tail::Filter {
        event_type: args.event_type,
        aggregate: args.aggregate,
    };
    let start = if args.from_start {
        tail::Start::Oldest
    } else {
        tail::Start::Now
    };
    let format = if args.json {
        tail::Format::Json
    } else {
        tail::Format::Line
    };
    let following = tail::follow(&streams.redis, &streams.events, start, &filter, |e| {
        println!("{}", format.render(e));
    });
    tokio::select! {
        result = following => result?,
        () = shutdown_signal() => {}
    }
    Ok(())
}

fn run_blocking(args: RunArgs) -> ExitCode {
    // The control runtime: accept loops, admin server, reloads, health checks, JWKS refresh.
    // Requests are served on the worker threads (`workers:` in the config), not here.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tai-control")
        .enable_all()
        .build();
    block_on(runtime, run(args))
}

/// Logs each public listener as ready.
fn announce(handle: &ServerHandle) {
    for listener in &handle.listeners {
        let (name, addr) = (&listener.name, listener.addr);
        match listener.tls {
            None => tracing::info!(%addr, %name, "HTTP listener (HTTP/1.1 and h2c) ready"),
            Some(_) => {
                tracing::info!(%addr, %name, "HTTPS listener (HTTP/1.1 and HTTP/2 by ALPN) ready");
            }
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let stubs = if args.with_stubs {
        Some(start_stubs(&args).await?)
    } else {
        None
    };
    if args.with_stubs {
        // Dev mode: the default gateway.yaml's HTTPS listener reads certs/dev/, made on first run.
        let dir = args
            .config
            .config
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .join("certs/dev");
        if tai_gateway::listener::tls::dev::ensure(&dir)
            .context("cannot create dev certificates")?
        {
            tracing::info!(dir = %dir.display(), "created dev certificates (trust ca.pem in clients)");
        }
    }
    let rt = runtime::load(&args.config.config).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid config:\n{}", text.join("\n"))
    })?;
    // Listen for SIGHUP before /ready can answer, so an early one never hits the default action.
    #[cfg(unix)]
    let hangup_signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let handle = ServerHandle::start(rt).await?;
    announce(&handle);
    if let Some(addr) = handle.admin_addr {
        tracing::info!(%addr, "admin listener ready");
    }
    #[cfg(unix)]
    let hangups = tokio::spawn(reload_on_sighup(hangup_signal, handle.reloader.clone()));
    shutdown_signal().await;
    tracing::info!("shutting down: draining open requests");
    #[cfg(unix)]
    hangups.abort();
    handle.shutdown().await;
    if let Some(stubs) = stubs {
        stubs.shutdown().await;
    }
    Ok(())
}

/// The in-memory stub backends of `--with-stubs`.
#[cfg(feature = "stubs")]
async fn start_stubs(args: &RunArgs) -> anyhow::Result<tai_stubs::StubServers> {
    let stubs = tai_stubs::StubServers::start(args.stub_governor, args.stub_coordinator)
        .await
        .context("cannot start the stub backends")?;
    tracing::info!(governor = %stubs.governor_addr, coordinator = %stubs.coordinator_addr, "stub backends started");
    Ok(stubs)
}

/// A build without the `stubs` feature has no stub backends to start.
#[cfg(not(feature = "stubs"))]
async fn start_stubs(_: &RunArgs) -> anyhow::Result<NoStubs> {
    anyhow::bail!(
        "--with-stubs: this tai-gateway was built without the `stubs` cargo feature, so it has no \
         stub backends; build with default features (`cargo run --release -- run --with-stubs`) \
         or run `cargo run --release -p tai-stubs` beside it"
    )
}

/// Stands in for the stub servers in a build without them.
#[cfg(not(feature = "stubs"))]
struct NoStubs;

#[cfg(not(feature = "stubs"))]
impl NoStubs {
    async fn shutdown(self) {}
}

/// Reloads the config on every `SIGHUP`.
#[cfg(unix)]
async fn reload_on_sighup(
    hangups: std::io::Result<tokio::signal::unix::Signal>,
    reloader: std::sync::Arc<tai_gateway::reload::Reloader>,
) {
    let mut hangups = match hangups {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by file change or POST /reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        reloader.reload("signal").await;
    }
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
