//! Making connections to the configured Redis deployment: a standalone server (or proxy), the
//! master a set of Sentinels names, or a Redis Cluster; with `AUTH` and TLS (`rediss://`, or a
//! `tls:` section with its own CA) from the config.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    Client, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, TlsCertificates, Value,
};

use crate::config::{RedisConfig, RedisTarget};

/// Bound of making one connection; calls never wait for it (they fail fast meanwhile).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How connections to the deployment are made.
#[derive(Clone)]
pub(crate) enum Connector {
    /// A standalone server.
    Standalone(Client),
    /// Sentinels that name the master; each connection asks them first.
    Sentinel(std::sync::Arc<tokio::sync::Mutex<SentinelClient>>),
    /// Cluster seed nodes.
    Cluster(Box<redis::cluster::ClusterClient>, Client),
}

/// A connection commands are sent on (cheap to clone: all are multiplexed handles).
#[derive(Clone)]
pub(crate) enum Handle {
    /// A standalone server's connection manager (reconnects by itself).
    Managed(ConnectionManager),
    /// A Redis Cluster connection (routes each key to its node).
    Cluster(ClusterConnection),
    /// A multiplexed connection to the Sentinel-named master.
    Direct(MultiplexedConnection),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Managed(c) => c.req_packed_command(cmd),
            Handle::Cluster(c) => c.req_packed_command(cmd),
            Handle::Direct(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Managed(c) => c.req_packed_commands(cmd, offset, count),
            Handle::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Handle::Direct(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Managed(c) => c.get_db(),
            Handle::Cluster(c) => c.get_db(),
            Handle::Direct(c) => c.get_db(),
        }
    }
}

/// How to connect to `config`'s deployment (nothing is connected yet).
pub(crate) fn connector(config: &RedisConfig) -> Result<Connector, String> {
    let certs = certificates(config)?;
    let fail = |e: RedisError| format!("redis: {e}");
    match &config.target {
        RedisTarget::Standalone(url) => client(config, url, certs.as_ref())
            .map(Connector::Standalone)
            .map_err(fail),
        RedisTarget::Sentinel { master, nodes, db } => {
            let mut settings = redis::RedisConnectionInfo::default();
            if let Some(user) = &config.username {
                settings = settings.set_username(user);
            }
            if let Some(password) = &config.password {
                settings = settings.set_password(password.expose());
            }
            let mut node = SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(settings.set_db(*db));
            if config.tls.is_some() || nodes.iter().any(|n| n.starts_with("rediss://")) {
                node = node.set_tls_mode(redis::TlsMode::Secure);
            }
            let client = SentinelClient::build(
                nodes.clone(),
                master.clone(),
                Some(node),
                SentinelServerType::Master,
            )
            .map_err(fail)?;
            Ok(Connector::Sentinel(std::sync::Arc::new(
                tokio::sync::Mutex::new(client),
            )))
        }
        RedisTarget::Cluster(nodes) => {
            let mut builder = ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .retries(1);
            if let Some(user) = &config.username {
                builder = builder.username(user);
            }
            if let Some(password) = &config.password {
                builder = builder.password(password.expose());
            }
            if let Some(certs) = certs.clone() {
                builder = builder.tls(redis::TlsMode::Secure).certs(certs);
            }
            let cluster = builder.build().map_err(fail)?;
            // Pub/sub goes to one node: a cluster forwards PUBLISH to every node.
            let first = client(config, &nodes[0], certs.as_ref()).map_err(fail)?;
            Ok(Connector::Cluster(Box::new(cluster), first))
        }
    }
}

/// A client for one server URL, with the configured credentials and CA.
fn client(config: &RedisConfig, url: &str, certs: Option<&TlsCertificates>) -> RedisResult<Client> {
    let mut info: ConnectionInfo = url.into_connection_info()?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &config.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password.expose());
    }
    info = info.set_redis_settings(settings);
    match certs {
        Some(certs) => Client::build_with_tls(info, certs.clone()),
        None => Client::open(info),
    }
}

/// The CA a `tls:` section names, read now so a missing file is a start-up error.
fn certificates(config: &RedisConfig) -> Result<Option<TlsCertificates>, String> {
    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    let root_cert = match &tls.ca {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("redis.tls.ca: cannot read `{}`: {e}", path.display()))?,
        ),
        None => None,
    };
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert,
    }))
}

/// A connection for a Sentinel or Cluster deployment (a standalone server uses its manager).
pub(crate) async fn direct(connector: &Connector) -> RedisResult<Handle> {
    match connector {
        Connector::Standalone(client) => client
            .get_multiplexed_async_connection()
            .await
            .map(Handle::Direct),
        Connector::Sentinel(sentinel) => {
            let master = sentinel.lock().await.async_get_client().await?;
            master
                .get_multiplexed_async_connection()
                .await
                .map(Handle::Direct)
        }
        Connector::Cluster(cluster, _) => cluster.get_async_connection().await.map(Handle::Cluster),
    }
}

/// A dedicated pub/sub connection.
pub(crate) async fn pubsub(connector: &Connector) -> RedisResult<redis::aio::PubSub> {
    match connector {
        Connector::Standalone(client) | Connector::Cluster(_, client) => {
            client.get_async_pubsub().await
        }
        Connector::Sentinel(sentinel) => {
            let master = sentinel.lock().await.async_get_client().await?;
            master.get_async_pubsub().await
        }
    }
}

/// True when the error means the connection must be made again: it is gone, or it reaches a
/// server that is no longer the master (`READONLY`: a Sentinel failover demoted it while the
/// connection survived; a new connection asks the Sentinels for the new master).
pub(crate) fn is_connection_lost(error: &RedisError) -> bool {
    error.is_connection_dropped()
        || error.is_io_error()
        || error.is_connection_refusal()
        || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// A connection of its own, outside the shared client's breaker and `redis.timeout`: for a
/// consumer's blocking stream reads (`XREADGROUP … BLOCK`), which would hold up every other
/// command on the shared multiplexed connection and outlast its 25 ms bound.
///
/// It does not reconnect by itself: its owner makes a new one when a call fails.
#[derive(Clone)]
pub struct Dedicated(Handle);

impl std::fmt::Debug for Dedicated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dedicated")
    }
}

impl Dedicated {
    /// Connects to `config`'s deployment; a reply may take up to `response_timeout` (longer than
    /// the longest `BLOCK` sent on it, so a dead peer still ends a call).
    pub async fn open(config: &RedisConfig, response_timeout: Duration) -> RedisResult<Dedicated> {
        let connector = connector(config)
            .map_err(|e| RedisError::from((redis::ErrorKind::InvalidClientConfig, "config", e)))?;
        let settings = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        let handle = match &connector {
            Connector::Standalone(client) => client
                .get_multiplexed_async_connection_with_config(&settings)
                .await
                .map(Handle::Direct)?,
            Connector::Sentinel(sentinel) => {
                let master = sentinel.lock().await.async_get_client().await?;
                master
                    .get_multiplexed_async_connection_with_config(&settings)
                    .await
                    .map(Handle::Direct)?
            }
            Connector::Cluster(cluster, _) => {
                let settings = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(response_timeout);
                cluster
                    .get_async_connection_with_config(settings)
                    .await
                    .map(Handle::Cluster)?
            }
        };
        Ok(Dedicated(handle))
    }
}

impl ConnectionLike for Dedicated {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.0.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

#[cfg(test)]
mod tests {
    use redis::{ErrorKind, RedisError, ServerErrorKind};

    use super::is_connection_lost;

    #[test]
    fn a_demoted_master_is_connected_again_and_a_script_error_is_not() {
        let readonly =
            RedisError::from((ErrorKind::Server(ServerErrorKind::ReadOnly), "read-only"));
        assert!(is_connection_lost(&readonly));
        let script =
            RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "script"));
        assert!(!is_connection_lost(&script));
    }
}
