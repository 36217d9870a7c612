//! The shared tier in Redis: answers every replica can serve, each stored with its TTL and found
//! again by its tags; invalidations delete the shared entries and are published to the other
//! replicas on one pub/sub channel.
//!
//! Keys (all under `key_prefix`, in one `{cache}` hash slot so the scripts run on a Redis Cluster
//! too): `{cache}:e:<sha1 of the cache key>` an answer, `{cache}:t:<tag>` the set of entries a tag
//! names, `{cache}:all` every entry (for a purge). The channel is `<prefix>cache-events`; a
//! message is `I <replica> <tag>…` or `P <replica>`, one field per line. Pub/sub is at most
//! once, so after every (re)subscription the subscriber sends [`RemoteEvent::Resync`] and the
//! replica drops its whole local tier.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use redis::Script;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::shared::{RemoteEvent, SharedEntry, SharedTier, TierError, TierFuture};
use super::tags::Tags;
use super::{CachedAnswer, Stored};
use crate::state::redis::{Redis, Unavailable};

/// Stores an entry: `KEYS[1]` entry, `KEYS[2]` the all-entries set, `KEYS[3..]` tag sets;
/// `ARGV[1]` the encoded answer, `ARGV[2]` its TTL in milliseconds.
const PUT: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1
";

/// Reads an entry and what is left of its TTL.
const GET: &str = r"
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
";

/// Deletes the entries of the tag sets in `KEYS`, and the sets.
const INVALIDATE: &str = r"
local n = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, key in ipairs(members) do
    n = n + redis.call('DEL', key)
  end
  redis.call('DEL', KEYS[i])
end
return n
";

/// Pause before subscribing again after the subscription broke.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// The shared tier on the process' Redis client.
#[derive(Debug)]
pub struct RedisTier {
    redis: Arc<Redis>,
    replica: String,
    put: Script,
    get: Script,
    invalidate: Script,
}

impl RedisTier {
    /// The tier on `redis`; `replica` names this process in published events.
    pub fn new(redis: Arc<Redis>, replica: &str) -> RedisTier {
        RedisTier {
            redis,
            replica: replica.to_owned(),
            put: Script::new(PUT),
            get: Script::new(GET),
            invalidate: Script::new(INVALIDATE),
        }
    }

    fn entry_key(&self, key: &str) -> String {
        let digest = sha1_smol::Sha1::from(key).digest().to_string();
        self.redis.key(&format!("{{cache}}:e:{digest}"))
    }

    fn tag_key(&self, tag: &str) -> String {
        self.redis.key(&format!("{{cache}}:t:{tag}"))
    }

    fn channel(&self) -> String {
        self.redis.key("cache-events")
    }

    /// Tells the other replicas.
    async fn publish(&self, message: String) -> Result<(), TierError> {
        let cmd = redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(message)
            .clone();
        self.redis
            .query::<i64>(&cmd)
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

fn unavailable(e: Unavailable) -> TierError {
    TierError::Unavailable(e.to_string())
}

impl SharedTier for RedisTier {
    fn get<'a>(&'a self, key: &'a str) -> TierFuture<'a, Option<SharedEntry>> {
        Box::pin(async move {
            let call = self.get.key(self.entry_key(key));
            let (value, ttl_ms): (Option<Vec<u8>>, i64) =
                self.redis.run(&call).await.map_err(unavailable)?;
            let (Some(value), Ok(ttl_left)) = (value, u64::try_from(ttl_ms)) else {
                return Ok(None);
            };
            let (answer, tags, ttl) = decode(Bytes::from(value)).map_err(TierError::Corrupt)?;
            let ttl_left = Duration::from_millis(ttl_left);
            Ok(Some(SharedEntry {
                answer,
                tags,
                age: ttl.saturating_sub(ttl_left),
                ttl_left,
            }))
        })
    }

    fn put<'a>(&'a self, key: &'a str, entry: &'a Stored) -> TierFuture<'a, ()> {
        Box::pin(async move {
            let ttl = entry.ttl_left(Instant::now());
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            if ttl_ms == 0 {
                return Ok(());
            }
            let value = encode(&entry.answer, &entry.tags, ttl + entry.age(Instant::now()));
            let mut call = self.put.key(self.entry_key(key));
            call.key(self.redis.key("{cache}:all"));
            for tag in entry.tags.iter() {
                call.key(self.tag_key(tag));
            }
            call.arg(value.as_ref()).arg(ttl_ms);
            self.redis
                .run::<i64>(&call)
                .await
                .map(drop)
                .map_err(unavailable)
        })
    }

    fn invalidate<'a>(&'a self, tags: &'a Tags) -> TierFuture<'a, ()> {
        Box::pin(async move {
            let mut call = self.invalidate.prepare_invoke();
            for tag in tags.iter() {
                call.key(self.tag_key(tag));
            }
            self.redis.run::<i64>(&call).await.map_err(unavailable)?;
            let mut message = format!("I\n{}", self.replica);
            for tag in tags.iter() {
                message.push('\n');
                message.push_str(tag);
            }
            self.publish(message).await
        })
    }

    fn purge_all(&self) -> TierFuture<'_, ()> {
        Box::pin(async move {
            let call = self.invalidate.key(self.redis.key("{cache}:all"));
            self.redis.run::<i64>(&call).await.map_err(unavailable)?;
            self.publish(format!("P\n{}", self.replica)).await
        })
    }

    fn subscribe(&self) -> mpsc::Receiver<RemoteEvent> {
        let (sender, receiver) = mpsc::channel(1024);
        let (redis, channel, me) = (self.redis.clone(), self.channel(), self.replica.clone());
        tokio::spawn(async move {
            while !sender.is_closed() {
                if let Ok(mut pubsub) = redis.pubsub().await
                    && pubsub.subscribe(&channel).await.is_ok()
                {
                    // Whatever was published while no subscription stood is lost.
                    if sender.send(RemoteEvent::Resync).await.is_err() {
                        return;
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                        let Some(event) = parse_event(&payload, &me) else {
                            continue;
                        };
                        if sender.send(event).await.is_err() {
                            return;
                        }
                    }
                    tracing::warn!("cache invalidation subscription lost; subscribing again");
                }
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        });
        receiver
    }
}

/// Another replica's event; `None` for this replica's own, or an unreadable message.
fn parse_event(payload: &[u8], me: &str) -> Option<RemoteEvent> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut lines = text.split('\n');
    let (kind, from) = (lines.next()?, lines.next()?);
    if from == me {
        return None;
    }
    match kind {
        "I" => Some(RemoteEvent::Invalidated(lines.map(Arc::from).collect())),
        "P" => Some(RemoteEvent::PurgedAll),
        _ => None,
    }
}

/// The stored form: TTL (ms, u64), headers (count, then name and value lengths and bytes), tags
/// (count, then each), then the body.
fn encode(answer: &CachedAnswer, tags: &Tags, ttl: Duration) -> Bytes {
    let mut out = BytesMut::with_capacity(answer.body.len() + 256);
    out.put_u64(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    out.put_u32(answer.headers.len() as u32);
    for (name, value) in &answer.headers {
        put_field(&mut out, name.as_str().as_bytes());
        put_field(&mut out, value.as_bytes());
    }
    out.put_u32(tags.len() as u32);
    for tag in tags.iter() {
        put_field(&mut out, tag.as_bytes());
    }
    out.put_slice(&answer.body);
    out.freeze()
}

fn put_field(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32(bytes.len() as u32);
    out.put_slice(bytes);
}

/// Reads what [`encode`] wrote: the answer, its tags and its whole TTL.
fn decode(mut data: Bytes) -> Result<(CachedAnswer, Tags, Duration), String> {
    let need = |data: &Bytes, n: usize| {
        (data.remaining() >= n)
            .then_some(())
            .ok_or_else(|| "truncated entry".to_owned())
    };
    need(&data, 12)?;
    let ttl = Duration::from_millis(data.get_u64());
    let mut headers = HeaderMap::new();
    for _ in 0..data.get_u32() {
        let name = field(&mut data)?;
        let value = field(&mut data)?;
        let name = HeaderName::from_bytes(&name).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_maybe_shared(value).map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    need(&data, 4)?;
    let mut tags = Vec::new();
    for _ in 0..data.get_u32() {
        let tag = field(&mut data)?;
        tags.push(Arc::from(String::from_utf8_lossy(&tag).as_ref()));
    }
    Ok((
        CachedAnswer {
            headers,
            body: data,
        },
        tags.into(),
        ttl,
    ))
}

fn field(data: &mut Bytes) -> Result<Bytes, String> {
    if data.remaining() < 4 {
        return Err("truncated entry".to_owned());
    }
    let len = data.get_u32() as usize;
    if data.remaining() < len {
        return Err("truncated entry".to_owned());
    }
    Ok(data.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_back_as_it_was_stored() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-stub-service", HeaderValue::from_static("governor"));
        let answer = CachedAnswer {
            headers,
            body: Bytes::from_static(br#"{"id":"pol-1"}"#),
        };
        let tags: Tags = vec![Arc::from("v1/policies"), Arc::from("v1/policies/pol-1")].into();
        let (back, back_tags, ttl) =
            decode(encode(&answer, &tags, Duration::from_secs(300))).expect("decodes");
        assert_eq!(back.headers, answer.headers);
        assert_eq!(back.body, answer.body);
        assert_eq!(back_tags, tags);
        assert_eq!(ttl, Duration::from_secs(300));
        assert!(decode(Bytes::from_static(b"\x00\x01")).is_err());
    }

    #[test]
    fn a_replica_ignores_its_own_events() {
        assert!(parse_event(b"I\nme\nv1/policies", "me").is_none());
        let Some(RemoteEvent::Invalidated(tags)) = parse_event(b"I\nother\nv1/policies\nv1", "me")
        else {
            panic!("an invalidation");
        };
        assert_eq!(tags.len(), 2);
        assert!(matches!(
            parse_event(b"P\nother", "me"),
            Some(RemoteEvent::PurgedAll)
        ));
    }
}
