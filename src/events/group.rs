//! A consumer group as Redis reports it (`XINFO GROUPS`): its consumers, pending entries and lag.

use super::stream_error::StreamError;

/// A consumer group as `XINFO GROUPS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// Consumers the group knows.
    pub consumers: u64,
    /// Entries delivered and not acknowledged.
    pub pending: u64,
    /// Entries not yet delivered to the group; `None` when Redis cannot tell (entries deleted
    /// from the middle of the stream).
    pub lag: Option<u64>,
}

/// Group `group` of `stream` (`XINFO GROUPS`); `None` when the stream or the group does not exist.
pub async fn group_info<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
) -> Result<Option<GroupInfo>, StreamError> {
    let reply: Result<redis::streams::StreamInfoGroupsReply, redis::RedisError> =
        redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(conn)
            .await;
    let groups = match reply {
        Ok(reply) => reply.groups,
        Err(e) if e.to_string().contains("no such key") => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(groups
        .into_iter()
        .find(|g| g.name == group)
        .map(|g| GroupInfo {
            name: g.name,
            consumers: g.consumers as u64,
            pending: g.pending as u64,
            lag: g.lag.map(|l| l as u64),
        }))
}
