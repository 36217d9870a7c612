//! What can go wrong on the consuming side of the stream: Redis, a reply of an unexpected shape,
//! a handler that cannot go on, the audit file, the config the commands read.

use std::path::PathBuf;

use crate::config::ConfigErrors;

/// A failure of a consumer, the audit log, `tail` or the dead-letter commands.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A Redis call failed (or the connection broke); a consumer reconnects and goes on.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered with something of a shape the command never returns.
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
    /// A handler cannot handle anything now (not this event's fault: a full disk, say); the
    /// consumer stops and leaves the entry pending for the next start.
    #[error("handler stopped: {0}")]
    Handler(String),
    /// The audit file cannot be opened or read.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is invalid.
    #[error("{0}")]
    Config(ConfigErrors),
    /// The config has no `redis:` section: there is no stream to read.
    #[error(
        "{}: no `redis:` section, so there is no event stream to read (events stay in the local file)",
        .0.display()
    )]
    NoRedis(PathBuf),
    /// `dlq replay` was given ids the dead-letter stream does not hold.
    #[error("not in the dead-letter stream: {}", .0.join(", "))]
    UnknownIds(Vec<String>),
}
