//! The Redis backend: standalone, unix socket, TLS, Sentinel and Cluster.
//!
//! Standalone and Sentinel share one multiplexed connection per store, which
//! is replaced when it breaks; for Sentinel, replacing it asks the sentinels
//! for the current master, which is how a failover is followed. The Cluster
//! connection of redis-rs follows MOVED/ASK and refreshes its slot map itself.
//! Every command is bounded by `command_timeout` and every connect by
//! `connect_timeout`, whatever the client library does internally.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisConnectionInfo,
    RedisFuture, RedisResult, TlsCertificates, TlsMode,
};

use super::direct::Direct;
use super::layout::{decode_record, Stored};
use super::scripts::SCRIPTS;
use super::{Expiry, GetMode, Record, Sliding, Swap, Updated};
use crate::config::{Config, Credentials, HostPort, Topology};
use crate::error::{Error, ErrorKind, Result};

pub struct RedisBackend {
    connector: Connector,
    connect_timeout: Duration,
    command_timeout: Duration,
    direct: Option<Direct>,
}

enum Connector {
    Single(Single),
    Cluster(Cluster),
}

/// One multiplexed connection, replaced on failure. `generation` lets a
/// failed call invalidate only the connection it used, not a newer one.
struct Single {
    source: Source,
    config: AsyncConnectionConfig,
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

enum Source {
    Direct(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

struct Cluster {
    client: redis::cluster::ClusterClient,
    connection: tokio::sync::OnceCell<ClusterConnection>,
}

/// The connection one command runs on.
enum Conn {
    Single(u64, MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(_, c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(&'a mut self, p: &'a Pipeline, offset: usize, count: usize) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(_, c) => c.req_packed_commands(p, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(_, c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    // Another library in the process may have installed one already; any
    // provider will do, so the error is ignored.
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn tls_certificates(config: &Config) -> Result<Option<TlsCertificates>> {
    let Some(path) = &config.tls_ca_file else { return Ok(None) };
    let pem = std::fs::read(path)
        .map_err(|e| Error::config(format!("cannot read tls_ca_file {}: {e}", path.display())))?;
    Ok(Some(TlsCertificates { client_tls: None, root_cert: Some(pem) }))
}

fn redis_settings(db: i64, credentials: &Credentials) -> RedisConnectionInfo {
    let mut info = RedisConnectionInfo::default().set_db(db).set_lib_name("sessionkeeper", env!("CARGO_PKG_VERSION"));
    if let Some(u) = &credentials.username {
        info = info.set_username(u);
    }
    if let Some(p) = &credentials.password {
        info = info.set_password(p);
    }
    info
}

fn tcp_addr(host: &HostPort, config: &Config) -> ConnectionAddr {
    if config.tls {
        ConnectionAddr::TcpTls { host: host.host.clone(), port: host.port, insecure: config.tls_insecure, tls_params: None }
    } else {
        ConnectionAddr::Tcp(host.host.clone(), host.port)
    }
}

fn connection_info(addr: ConnectionAddr, db: i64, credentials: &Credentials) -> Result<ConnectionInfo> {
    Ok(addr.into_connection_info()?.set_redis_settings(redis_settings(db, credentials)))
}

fn direct_client(info: ConnectionInfo, certs: Option<TlsCertificates>) -> Result<Client> {
    Ok(match certs {
        Some(certs) => Client::build_with_tls(info, certs)?,
        None => Client::open(info)?,
    })
}

impl RedisBackend {
    pub fn new(config: &Config) -> Result<RedisBackend> {
        if config.tls {
            install_crypto_provider();
        }
        let certs = tls_certificates(config)?;
        let async_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout));
        let single = |source| {
            Connector::Single(Single {
                source,
                config: async_config.clone(),
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
            })
        };
        let connector = match &config.topology {
            Topology::Standalone { host, db } => {
                single(Source::Direct(direct_client(connection_info(tcp_addr(host, config), *db, &config.credentials)?, certs)?))
            }
            Topology::Unix { path, db } => {
                single(Source::Direct(direct_client(connection_info(ConnectionAddr::Unix(path.clone()), *db, &config.credentials)?, None)?))
            }
            Topology::Sentinel { sentinels, master_name, db } => {
                let addrs: Vec<ConnectionAddr> = sentinels.iter().map(|h| tcp_addr(h, config)).collect();
                let mut b = SentinelClientBuilder::new(addrs, master_name, SentinelServerType::Master)?.set_client_to_redis_db(*db);
                if let Some(u) = &config.credentials.username {
                    b = b.set_client_to_redis_username(u);
                }
                if let Some(p) = &config.credentials.password {
                    b = b.set_client_to_redis_password(p);
                }
                if let Some(u) = &config.sentinel_credentials.username {
                    b = b.set_client_to_sentinel_username(u);
                }
                if let Some(p) = &config.sentinel_credentials.password {
                    b = b.set_client_to_sentinel_password(p);
                }
                if config.tls {
                    let mode = if config.tls_insecure { TlsMode::Insecure } else { TlsMode::Secure };
                    b = b.set_client_to_redis_tls_mode(mode).set_client_to_sentinel_tls_mode(mode);
                    if let Some(c) = &certs {
                        b = b
                            .set_client_to_redis_certificates(c.clone())
                            .set_client_to_sentinel_certificates(c.clone());
                    }
                }
                single(Source::Sentinel(tokio::sync::Mutex::new(b.build()?)))
            }
            Topology::Cluster { nodes } => {
                let infos = nodes
                    .iter()
                    .map(|h| connection_info(ConnectionAddr::Tcp(h.host.clone(), h.port), 0, &config.credentials))
                    .collect::<Result<Vec<_>>>()?;
                let mut b = ClusterClientBuilder::new(infos)
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.command_timeout)
                    // Retries cover MOVED/ASK and a failover in progress; the
                    // outer command timeout still bounds the whole call.
                    .retries(6)
                    .min_retry_wait(10)
                    .max_retry_wait(250);
                if let Some(u) = &config.credentials.username {
                    b = b.username(u);
                }
                if let Some(p) = &config.credentials.password {
                    b = b.password(p);
                }
                if config.tls {
                    b = b.tls(if config.tls_insecure { TlsMode::Insecure } else { TlsMode::Secure });
                    if let Some(c) = certs {
                        b = b.certs(c);
                    }
                }
                Connector::Cluster(Cluster { client: b.build()?, connection: tokio::sync::OnceCell::new() })
            }
            Topology::Memory { .. } => return Err(Error::unexpected("memory:// reached the Redis backend")),
        };
        Ok(RedisBackend {
            connector,
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            direct: Direct::for_config(config),
        })
    }

    /// A connection for one command, and whether it was opened just now
    /// (a fresh connection that fails is not worth a retry).
    async fn connection(&self) -> Result<(Conn, bool)> {
        match &self.connector {
            Connector::Cluster(c) => {
                let mut fresh = false;
                let conn = c
                    .connection
                    .get_or_try_init(|| {
                        fresh = true;
                        bounded(self.connect_timeout, "connect", c.client.get_async_connection())
                    })
                    .await?;
                Ok((Conn::Cluster(conn.clone()), fresh))
            }
            Connector::Single(s) => {
                if let Some((g, c)) = s.cached() {
                    return Ok((Conn::Single(g, c), false));
                }
                // One task connects; the others wait for its connection.
                let _turn = s.connecting.lock().await;
                if let Some((g, c)) = s.cached() {
                    return Ok((Conn::Single(g, c), false));
                }
                let conn = bounded(self.connect_timeout, "connect", s.open()).await?;
                let generation = s.generation.fetch_add(1, Ordering::Relaxed) + 1;
                *s.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, conn.clone()));
                Ok((Conn::Single(generation, conn), true))
            }
        }
    }

    fn invalidate(&self, conn: &Conn) {
        if let (Connector::Single(s), Conn::Single(generation, _)) = (&self.connector, conn) {
            let mut current = s.current.lock().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|(g, _)| g == generation) {
                *current = None;
            }
        }
    }

    /// Runs one command (a script invocation) with the timeout, replacing a
    /// broken connection. A connection that broke while idle (server
    /// restarted, failover, idle timeout) gets one immediate retry on a new
    /// one; a timeout does not, so a stalled Redis costs one timeout, not two.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut retried = false;
        loop {
            let (conn, fresh) = self.connection().await?;
            let outcome = tokio::time::timeout(self.command_timeout, op(clone_conn(&conn))).await;
            let err = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => Error::from(e),
                Err(_) => Error::temporary(
                    ErrorKind::Timeout,
                    format!("Redis did not answer within command_timeout ({:?})", self.command_timeout),
                ),
            };
            if err.is_temporary() {
                self.invalidate(&conn);
                if err.kind() == ErrorKind::Connection && !fresh && !retried {
                    retried = true;
                    continue;
                }
            }
            return Err(err);
        }
    }

    /// A load with the store's default window is one native `GETEX`: a
    /// script costs the server several times more, and loads are most of the
    /// traffic. The rules a script would apply in the same step are applied
    /// after it, from the record just read: a session past its deadline is
    /// deleted, and a session with its own window or a deadline inside the
    /// window gets its expiry corrected by a second command. Explicit windows
    /// and peeks run the `LOAD` script.
    pub async fn load(&self, key: &str, slide: Option<Expiry>) -> Result<Option<Record>> {
        match slide {
            Some(expiry) if !expiry.explicit => self.load_sliding(key, expiry).await,
            _ => {
                let window = slide.map_or_else(|| "p".to_owned(), |e| e.window_arg());
                let window = window.as_str();
                let reply: redis::Value = self
                    .run(|mut c| async move { SCRIPTS.load.key(key).arg(window).invoke_async(&mut c).await })
                    .await?;
                let (now_ms, at, bytes): (i64, i64, Vec<u8>) = match reply {
                    redis::Value::Nil => return Ok(None),
                    redis::Value::Int(_) => return Err(Error::codec("the stored session is corrupt (not a readable record)")),
                    reply => redis::from_redis_value(reply).map_err(|e| Error::unexpected(format!("unexpected reply to a load: {e}")))?,
                };
                let fields = match decode_record(&bytes) {
                    Stored::Record(fields) => fields,
                    Stored::Foreign => return Ok(None),
                    Stored::Corrupt(why) => return Err(Error::codec(format!("the stored session is corrupt ({why})"))),
                };
                Ok(Some(Record { fields, now_ms, expires_at_ms: (at >= 0).then_some(at), stored: Some(bytes) }))
            }
        }
    }

    async fn load_sliding(&self, key: &str, expiry: Expiry) -> Result<Option<Record>> {
        let idle_ms = expiry.getex_ms;
        let (reply, mode) = self
            .run(|mut c| async move {
                let mut cmd = if idle_ms > 0 { redis::cmd("GETEX") } else { redis::cmd("GET") };
                cmd.arg(key);
                if idle_ms > 0 {
                    cmd.arg("PX").arg(idle_ms);
                }
                let mut mode = GetMode::Sliding;
                let mut reply = cmd.query_async(&mut c).await;
                if matches!(&reply, Err(e) if e.code().is_some_and(crate::wire::refuses_writes_code)) {
                    // No writes for now, not even the GETEX (wire::refuses_writes).
                    mode = GetMode::ReadOnly;
                    reply = redis::cmd("GET").arg(key).query_async(&mut c).await;
                }
                match reply {
                    // A hash, list, ... under our key name is no session.
                    Err(e) if e.code() == Some("WRONGTYPE") => Ok((None, mode)),
                    other => other.map(|r: Option<Vec<u8>>| (r, mode)),
                }
            })
            .await?;
        self.finish_sliding(key, mode.sliding(reply, expiry)?).await
    }

    /// The follow-up a plain load's `GETEX` left: a session past its
    /// deadline is deleted (and missing), a wrong expiry corrected.
    pub async fn finish_sliding(&self, key: &str, sliding: Sliding) -> Result<Option<Record>> {
        match sliding {
            Sliding::Missing => Ok(None),
            Sliding::PastDeadline => {
                self.delete(key).await?;
                Ok(None)
            }
            Sliding::Found { record, correction } => {
                if let Some(at) = correction {
                    self.set_expiry(key, at).await?;
                }
                Ok(Some(record))
            }
        }
    }

    /// `PEXPIREAT key at`, or `PERSIST key` for `None`.
    pub async fn set_expiry(&self, key: &str, at: Option<i64>) -> Result<()> {
        self.run(|mut c| async move {
            let cmd = match at {
                Some(at) => redis::cmd("PEXPIREAT").arg(key).arg(at).clone(),
                None => redis::cmd("PERSIST").arg(key).clone(),
            };
            cmd.query_async::<i64>(&mut c).await
        })
        .await?;
        Ok(())
    }

    /// The plain-socket path for blocking callers, when the topology has one.
    pub fn direct(&self) -> Option<&Direct> {
        self.direct.as_ref()
    }

    pub async fn update(
        &self,
        key: &str,
        expiry: Expiry,
        set: &[(String, Vec<u8>)],
        remove: &[String],
        swap: Option<&Swap>,
    ) -> Result<Updated> {
        let args = update_args(expiry, set, remove, swap);
        let args = &args;
        let n: i64 = self
            .run(|mut c| async move {
                let mut inv = SCRIPTS.update.key(key);
                for arg in args {
                    inv.arg(arg.as_slice());
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(Updated::from_script(n))
    }

    pub async fn insert(&self, key: &str, expiry: Expiry, fields: &[(String, Vec<u8>)], replace_foreign: bool) -> Result<bool> {
        let n: i64 = self
            .run(|mut c| async move {
                let mut inv = SCRIPTS.insert.key(key);
                inv.arg(expiry.window_arg()).arg(expiry.absolute_ms).arg(if replace_foreign { "1" } else { "0" });
                for (f, v) in fields {
                    inv.arg(f).arg(v);
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(n == 1)
    }

    /// SCANs every node that holds data (one server, or each Cluster master),
    /// one bounded call per SCAN step.
    pub async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let nodes: Vec<Option<(String, u16)>> = match &self.connector {
            Connector::Single(_) => vec![None],
            Connector::Cluster(_) => self.cluster_masters().await?.into_iter().map(Some).collect(),
        };
        let mut keys = Vec::new();
        for node in &nodes {
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = self
                    .run(|c| {
                        let mut cmd = redis::cmd("SCAN");
                        cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000).arg("TYPE").arg("string");
                        let node = node.clone();
                        async move { route(c, cmd, node).await }
                    })
                    .await?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(keys)
    }

    /// The addresses of the Cluster's masters that serve slots.
    async fn cluster_masters(&self) -> Result<Vec<(String, u16)>> {
        let nodes: String = self.run(|c| route(c, redis::cmd("CLUSTER").arg("NODES").clone(), None)).await?;
        let masters: Vec<(String, u16)> = nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let flags = *fields.get(2)?;
                let serves_slots = fields.len() > 8;
                if !flags.split(',').any(|f| f == "master") || flags.contains("fail") || !serves_slots {
                    return None;
                }
                let addr = fields.get(1)?.split('@').next()?;
                let (host, port) = addr.rsplit_once(':')?;
                Some((host.to_owned(), port.parse().ok()?))
            })
            .collect();
        if masters.is_empty() {
            return Err(Error::temporary(ErrorKind::Connection, "the Cluster reports no master serving slots"));
        }
        Ok(masters)
    }

    pub async fn foreign_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.run(|mut c| async move { SCRIPTS.foreign_get.key(key).invoke_async(&mut c).await }).await
    }

    pub async fn foreign_delete(&self, key: &str) -> Result<bool> {
        let n: i64 = self.run(|mut c| async move { SCRIPTS.foreign_delete.key(key).invoke_async(&mut c).await }).await?;
        Ok(n == 1)
    }

    pub async fn delete(&self, key: &str) -> Result<bool> {
        let n: i64 = self.run(|mut c| async move { redis::cmd("DEL").arg(key).query_async(&mut c).await }).await?;
        Ok(n > 0)
    }

    pub async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        let n: i64 = self
            .run(|mut c| async move { SCRIPTS.touch.key(key).arg(expiry.window_arg()).invoke_async(&mut c).await })
            .await?;
        Ok(n == 1)
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        let n: i64 = self.run(|mut c| async move { SCRIPTS.exists.key(key).invoke_async(&mut c).await }).await?;
        Ok(n == 1)
    }
}

/// Sends `cmd` on `conn`; on a Cluster, to the node at `node` (or any node).
async fn route<T: redis::FromRedisValue>(conn: Conn, cmd: redis::Cmd, node: Option<(String, u16)>) -> RedisResult<T> {
    use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
    match conn {
        Conn::Single(_, mut c) => cmd.query_async(&mut c).await,
        Conn::Cluster(mut c) => {
            let target = match node {
                Some((host, port)) => SingleNodeRoutingInfo::ByAddress { host, port },
                None => SingleNodeRoutingInfo::Random,
            };
            let value = c.route_command(cmd, RoutingInfo::SingleNode(target)).await?;
            Ok(redis::from_redis_value(value)?)
        }
    }
}

fn clone_conn(conn: &Conn) -> Conn {
    match conn {
        Conn::Single(g, c) => Conn::Single(*g, c.clone()),
        Conn::Cluster(c) => Conn::Cluster(c.clone()),
    }
}

impl Single {
    fn cached(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn open(&self) -> RedisResult<MultiplexedConnection> {
        match &self.source {
            Source::Direct(client) => client.get_multiplexed_async_connection_with_config(&self.config).await,
            Source::Sentinel(sentinel) => {
                // Asks the sentinels for the current master every time, so a
                // promoted replica is found after a failover.
                let client = sentinel.lock().await.async_get_client().await?;
                client.get_multiplexed_async_connection_with_config(&self.config).await
            }
        }
    }
}

async fn bounded<T>(limit: Duration, what: &str, fut: impl Future<Output = RedisResult<T>>) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::temporary(ErrorKind::Timeout, format!("Redis {what} took longer than connect_timeout ({limit:?})"))),
    }
}

/// The update script's ARGV (see `scripts::UPDATE`).
pub(crate) fn update_args(expiry: Expiry, set: &[(String, Vec<u8>)], remove: &[String], swap: Option<&Swap>) -> Vec<Vec<u8>> {
    let mut args = Vec::with_capacity(5 + 2 * set.len() + remove.len());
    args.push(expiry.window_arg().into_bytes());
    match swap.and_then(|s| Some((s, s.ttl_ms(super::wall_clock_ms())?))) {
        Some((s, ttl)) => {
            args.push(s.old.clone());
            args.push(s.new.clone());
            args.push(ttl.map_or(Vec::new(), |ms| ms.to_string().into_bytes()));
        }
        None => args.extend([Vec::new(), Vec::new(), Vec::new()]),
    }
    args.push(set.len().to_string().into_bytes());
    for (f, v) in set {
        args.push(f.clone().into_bytes());
        args.push(v.clone());
    }
    args.extend(remove.iter().map(|f| f.clone().into_bytes()));
    args
}
