//! A real `redis-server` for one test: on a free 127.0.0.1 port, in its own temporary folder, no
//! persistence; stopped (and started again on the same port) by the test, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::TempDir;

/// A running `redis-server`.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// Arguments after the common ones (a replica's `--replicaof`, a cluster node's settings).
    extra: Vec<String>,
}

/// A free 127.0.0.1 port whose cluster bus port (+10000) is free too.
pub(crate) fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair");
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    pub(crate) async fn start() -> RedisServer {
        RedisServer::start_with(&[]).await
    }

    /// Starts a server with `extra` arguments and waits until it answers `PING`.
    pub(crate) async fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            dir: TempDir::new(),
            child: None,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        server.resume().await;
        server
    }

    /// Starts a replica of `master`.
    pub(crate) async fn replica_of(master: &RedisServer) -> RedisServer {
        let port = master.port.to_string();
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]).await
    }

    /// Sends one command to this server.
    pub(crate) async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let client = redis::Client::open(self.url()).expect("client");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connection");
        cmd.query_async(&mut conn).await.expect("command")
    }

    /// `redis://127.0.0.1:port/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (as a crash would: no shutdown, nothing saved).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it answers.
    pub(crate) async fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; .ci/run installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if self.ping().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// True when the server answers `PING`.
    pub(crate) async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Sentinel (`redis-server <conf> --sentinel`) watching one master as `mymaster`, quorum 1.
pub(crate) struct Sentinel {
    pub(crate) port: u16,
    _dir: TempDir,
    child: Child,
}

/// The master's name in the sentinel's configuration.
pub(crate) const MASTER_NAME: &str = "mymaster";

impl Sentinel {
    /// Starts a sentinel watching `master` and waits until it names it.
    pub(crate) async fn start(master: &RedisServer) -> Sentinel {
        let (port, dir) = (free_port(), TempDir::new());
        let conf = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 10000\n",
            dir.path().display(),
            master.port
        );
        let path = dir.write("sentinel.conf", &conf);
        let child = Command::new("redis-server")
            .arg(&path)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        let sentinel = Sentinel {
            port,
            _dir: dir,
            child,
        };
        for _ in 0..100 {
            if sentinel.master_port().await == Some(master.port) {
                return sentinel;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sentinel on port {port} never named its master");
    }

    /// `redis://127.0.0.1:port`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port of the master the sentinel names now, if it answers.
    pub(crate) async fn master_port(&self) -> Option<u16> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let addr: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME)
            .query_async(&mut conn)
            .await
            .ok()?;
        addr.and_then(|(_, port)| port.parse().ok())
    }

    /// Sends `SENTINEL <args>`.
    pub(crate) async fn sentinel(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SENTINEL")
            .arg(args)
            .query_async(&mut conn)
            .await
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster of three masters (no replicas), each node in its own folder.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<RedisServer>,
}

impl Cluster {
    /// Starts three cluster nodes, joins them, and waits until every node says `cluster_state:ok`.
    pub(crate) async fn start() -> Cluster {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let node = RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])
            .await;
            nodes.push(node);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = Cluster { nodes };
        for _ in 0..200 {
            let mut ok = true;
            for node in &cluster.nodes {
                let info: String = node.cmd(redis::cmd("CLUSTER").arg("INFO")).await;
                ok &= info.contains("cluster_state:ok");
            }
            if ok {
                return cluster;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cluster never reached cluster_state:ok");
    }

    /// The nodes' URLs (`redis://127.0.0.1:port`).
    pub(crate) fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }
}
