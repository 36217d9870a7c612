//! What the `tai-gateway events …` commands do, as library functions returning the text they
//! print, so `main.rs` only parses arguments. Every command reads the `redis:` section of the
//! config and the streams its `events:` section names (`tai-events` and `tai-events-dlq`).

use std::path::Path;
use std::time::Duration;

use std::fmt::Write as _;

use super::dead_letter::{self, DeadLetter};
use super::group::{GroupInfo, group_info};
use super::stream_error::StreamError;
use crate::config::{Config, RedisConfig};
use crate::state::Dedicated;

/// Bound of one reply to a command (nothing here blocks).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the `events` commands work: a Redis and the two streams on it.
#[derive(Debug, Clone)]
pub struct Streams {
    /// The `redis:` section.
    pub redis: RedisConfig,
    /// The stream events are published to (`events.stream`).
    pub events: String,
    /// The dead-letter stream (`events.dead_letter_stream`).
    pub dead_letters: String,
}

/// The Redis and streams of the config at `path`; an error naming the file when it has no
/// `redis:` section.
pub fn streams_of(path: &Path) -> Result<Streams, StreamError> {
    let config = Config::load(path).map_err(StreamError::Config)?;
    let redis = config
        .redis
        .ok_or_else(|| StreamError::NoRedis(path.to_owned()))?;
    Ok(Streams {
        redis,
        events: config.events.stream,
        dead_letters: config.events.dead_letter_stream,
    })
}

/// A consumer name that stays the same across restarts on one host: the host's name.
pub fn default_consumer_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "consumer".to_owned())
}

/// `events dlq list`: the lag line of `group`, then the dead letters as a table.
pub async fn dead_letters_report(streams: &Streams, group: &str) -> Result<String, StreamError> {
    let mut conn = Dedicated::open(&streams.redis, REPLY_TIMEOUT).await?;
    let info = group_info(&mut conn, &streams.events, group).await?;
    let letters: Vec<DeadLetter> = dead_letter::list(&mut conn, &streams.dead_letters)
        .await?
        .iter()
        .map(DeadLetter::from_entry)
        .collect();
    let mut out = lag_line(&streams.events, group, info.as_ref());
    let _ = writeln!(out, "{}: {} event(s)", streams.dead_letters, letters.len());
    out.push_str(&dead_letter::table(&letters));
    Ok(out)
}

/// `events dlq replay [ID…]`: puts the dead letters named (all without ids) back on the stream;
/// one line per event replayed.
pub async fn replay_report(streams: &Streams, ids: &[String]) -> Result<String, StreamError> {
    let mut conn = Dedicated::open(&streams.redis, REPLY_TIMEOUT).await?;
    let route = (streams.dead_letters.as_str(), streams.events.as_str());
    let replayed = dead_letter::replay(&mut conn, route, ids).await?;
    let mut out = String::new();
    for (letter, new_id) in &replayed {
        let _ = writeln!(
            out,
            "replayed {} ({}) to {} as {new_id}",
            letter.event_id, letter.event_type, streams.events
        );
    }
    let _ = writeln!(out, "{} event(s) replayed", replayed.len());
    Ok(out)
}

/// `events lag`: the consumer lag of `group`.
pub async fn lag_report(streams: &Streams, group: &str) -> Result<String, StreamError> {
    let mut conn = Dedicated::open(&streams.redis, REPLY_TIMEOUT).await?;
    let info = group_info(&mut conn, &streams.events, group).await?;
    Ok(lag_line(&streams.events, group, info.as_ref()))
}

/// `group audit on tai-events: lag 0, pending 0, 1 consumer(s)`.
fn lag_line(stream: &str, group: &str, info: Option<&GroupInfo>) -> String {
    match info {
        None => format!("group {group} on {stream}: does not exist\n"),
        Some(info) => {
            let lag = info
                .lag
                .map_or_else(|| "unknown".to_owned(), |l| l.to_string());
            format!(
                "group {group} on {stream}: lag {lag}, pending {}, {} consumer(s)\n",
                info.pending, info.consumers
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_line_says_when_redis_cannot_tell() {
        let info = GroupInfo {
            name: "audit".into(),
            consumers: 1,
            pending: 2,
            lag: None,
        };
        assert_eq!(
            lag_line("tai-events", "audit", Some(&info)),
            "group audit on tai-events: lag unknown, pending 2, 1 consumer(s)\n"
        );
        assert_eq!(
            lag_line("tai-events", "x", None),
            "group x on tai-events: does not exist\n"
        );
    }
}
