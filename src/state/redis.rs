//! The process' one Redis client: a multiplexed connection (standalone through a connection
//! manager that reconnects by itself; Sentinel and Cluster connected on demand), every call bounded
//! by `redis.timeout`, and a breaker that stops calling a Redis that keeps failing and probes it
//! again later. Callers get `Err(Unavailable)` at once instead of waiting: Redis failing is never
//! a client-visible error or a slow request; each caller falls back (local limits, the local cache).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, ScriptInvocation};
use tokio::sync::watch;
use tokio::time::Instant;

use super::breaker::{Breaker, BreakerState, Verdict};
use super::connect::{self, Connector, Handle};
use crate::config::RedisConfig;

/// Why a Redis call did not happen or did not succeed; the caller falls back.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Unavailable {
    /// The breaker is open: Redis failed repeatedly and is not called until the next probe.
    #[error("redis is not called: its breaker is open")]
    Open,
    /// No connection yet (one is being made).
    #[error("redis is not connected yet")]
    NotConnected,
    /// The call took longer than `redis.timeout`.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error, or the connection broke.
    #[error("redis call failed: {0}")]
    Failed(String),
}

/// Counters read at scrape time.
#[derive(Debug, Default)]
pub struct RedisStats {
    /// Calls that succeeded.
    pub ok: AtomicU64,
    /// Calls that failed or timed out.
    pub failed: AtomicU64,
    /// Calls not made because the breaker was open or no connection was ready.
    pub skipped: AtomicU64,
    /// Total microseconds spent in calls made.
    pub micros: AtomicU64,
}

/// The shared Redis client.
pub struct Redis {
    config: RedisConfig,
    connector: Connector,
    handle: Arc<ArcSwapOption<Handle>>,
    /// A connection is being made in the background.
    connecting: Arc<AtomicBool>,
    breaker: Mutex<Breaker>,
    /// Bumped each time Redis is reachable again after being unreachable: whoever relies on
    /// Redis to tell it about changes (cache invalidations) knows it may have missed some.
    recoveries: watch::Sender<u64>,
    stats: RedisStats,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("target", &self.config.target)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A client for `config`. Never fails on an unreachable Redis: the connection is made in the
    /// background (a standalone server's connection manager is lazy), and calls fail fast until
    /// it is up. `Err` only for settings the redis crate refuses (a malformed URL, a CA file).
    pub fn new(config: &RedisConfig) -> Result<Arc<Redis>, String> {
        let connector = connect::connector(config)?;
        let handle = match &connector {
            Connector::Standalone(client) => {
                let settings = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect::CONNECT_TIMEOUT))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_secs(1));
                let manager = ConnectionManager::new_lazy_with_config(client.clone(), settings)
                    .map_err(|e| format!("redis: {e}"))?;
                Some(Arc::new(Handle::Managed(manager)))
            }
            _ => None,
        };
        let (recoveries, _) = watch::channel(0);
        Ok(Arc::new(Redis {
            config: config.clone(),
            connector,
            handle: Arc::new(ArcSwapOption::new(handle)),
            connecting: Arc::new(AtomicBool::new(false)),
            breaker: Mutex::new(Breaker::default()),
            recoveries,
            stats: RedisStats::default(),
        }))
    }

    /// `key_prefix` + `name`: every key the gateway writes.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.config.key_prefix)
    }

    /// The breaker's state now.
    pub fn state(&self) -> BreakerState {
        self.breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state()
    }

    /// The call counters.
    pub fn stats(&self) -> &RedisStats {
        &self.stats
    }

    /// Notified each time Redis is reachable again after a failure.
    pub fn recoveries(&self) -> watch::Receiver<u64> {
        self.recoveries.subscribe()
    }

    /// A dedicated connection for `SUBSCRIBE` (pub/sub needs its own), to the standalone server,
    /// the Sentinel-resolved master, or the first cluster node (`PUBLISH` reaches every node).
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, Unavailable> {
        let connecting = connect::pubsub(&self.connector);
        match tokio::time::timeout(connect::CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(e)) => Err(Unavailable::Failed(e.to_string())),
            Err(_) => Err(Unavailable::Timeout(connect::CONNECT_TIMEOUT)),
        }
    }

    /// Sends one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Unavailable> {
        self.call(|mut handle| async move { cmd.query_async(&mut handle).await })
            .await
    }

    /// Runs a Lua script (by its SHA, loading it on `NOSCRIPT`).
    pub async fn run<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, Unavailable> {
        self.call(|mut handle| async move { invocation.invoke_async(&mut handle).await })
            .await
    }

    /// The call path every command takes: breaker, connection, timeout, verdict.
    async fn call<T, F, Fut>(&self, send: F) -> Result<T, Unavailable>
    where
        F: FnOnce(Handle) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let allowed = self
            .breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(Instant::now());
        if !allowed {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Err(Unavailable::Open);
        }
        let Some(handle) = self.handle.load_full() else {
            self.connect_in_background();
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            self.record(Err(Unavailable::NotConnected));
            return Err(Unavailable::NotConnected);
        };
        let started = Instant::now();
        let result = match tokio::time::timeout(self.config.timeout, send((*handle).clone())).await
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if connect::is_connection_lost(&e) && !matches!(*handle, Handle::Managed(_)) {
                    // Sentinel (a failover) and Cluster connections are made again.
                    self.handle.store(None);
                }
                Err(Unavailable::Failed(e.to_string()))
            }
            Err(_) => Err(Unavailable::Timeout(self.config.timeout)),
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stats.micros.fetch_add(micros, Ordering::Relaxed);
        let counter = if result.is_ok() {
            &self.stats.ok
        } else {
            &self.stats.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.record(result.as_ref().map(|_| ()).map_err(Clone::clone));
        result
    }

    /// Feeds a call's outcome to the breaker; logs a change of state once.
    fn record(&self, result: Result<(), Unavailable>) {
        let verdict = self
            .breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(result.is_ok(), Instant::now());
        match verdict {
            Verdict::Opened(retry_in) => {
                let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(error = %error, retry_in_ms = retry_in.as_millis() as u64, "redis unreachable: falling back to local state");
            }
            Verdict::Closed => {
                tracing::info!("redis reachable again");
                self.recoveries.send_modify(|n| *n += 1);
            }
            Verdict::Same => {}
        }
    }

    /// Starts making a Sentinel or Cluster connection, unless one is being made.
    fn connect_in_background(&self) {
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (connector, slot) = (self.connector.clone(), self.handle.clone());
        let connecting = self.connecting.clone();
        tokio::spawn(async move {
            let made = tokio::time::timeout(connect::CONNECT_TIMEOUT, connect::direct(&connector));
            match made.await {
                Ok(Ok(handle)) => slot.store(Some(Arc::new(handle))),
                Ok(Err(e)) => tracing::debug!(error = %e, "redis connection failed"),
                Err(_) => tracing::debug!("redis connection timed out"),
            }
            connecting.store(false, Ordering::Release);
        });
    }
}
