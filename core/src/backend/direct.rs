//! Loads and saves for blocking callers (Ruby, Python, C) on sockets the
//! calling thread reads itself.
//!
//! Through the runtime, a blocking call costs a thread hand-off each way
//! (the caller parks, a worker drives the connection, the reply wakes the
//! caller): on a small machine that is most of a load's latency
//! (bench/README.md). A load is one `GETEX` whose reply is one bulk string,
//! and a save one `EVALSHA` whose reply is an integer, so the calling thread
//! sends them and reads the replies on a small pool of plain sockets
//! instead. Everything else (creates, listings, the rare corrections after
//! a load) stays on the runtime's connection.
//!
//! Used for standalone Redis over TCP or a unix socket without TLS; TLS,
//! Sentinel and Cluster loads go through the runtime.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::GetMode;
use crate::config::{Config, Credentials, Topology};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::Interrupt;
use crate::wire::{self, encode, Address as Target, Reply};

/// Idle sockets kept for reuse; more callers than this at once open extra
/// sockets that are closed after use.
const POOL_SIZE: usize = 64;

pub(crate) struct Direct {
    target: Target,
    /// AUTH and SELECT, sent on every new socket.
    handshake: Vec<Vec<u8>>,
    connect_timeout: Duration,
    command_timeout: Duration,
    idle: Mutex<Vec<Conn>>,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    /// What the socket's timeouts are set to.
    timeouts: Option<Duration>,
}

impl Direct {
    /// `None` when loads of this topology must go through the runtime.
    pub fn for_config(config: &Config) -> Option<Direct> {
        if config.tls {
            return None;
        }
        let (target, db) = match &config.topology {
            Topology::Standalone { host, db } => (Target::Tcp { host: host.host.clone(), port: host.port }, *db),
            Topology::Unix { path, db } => (Target::Unix(path.clone()), *db),
            _ => return None,
        };
        Some(Direct {
            target,
            handshake: handshake(&config.credentials, db),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// `GETEX key PX idle_ms` (`GET` when `idle_ms` is 0): the stored string,
    /// or `None` for a missing key or one holding another type; a plain `GET`
    /// when the server refuses the `GETEX` for now (`GetMode::ReadOnly`).
    ///
    /// With an `interrupt`, tripping it from another thread shuts the socket
    /// down, which ends the wait at once (Ruby's unblocking function).
    pub fn get(&self, key: &str, idle_ms: u64, interrupt: Option<&Interrupt>) -> Result<(Option<Vec<u8>>, GetMode)> {
        let reply = self.request(&wire::get_command(key, idle_ms), interrupt)?;
        if wire::refuses_writes(&reply) {
            return Ok((wire::get_reply(self.request(&wire::get_command(key, 0), interrupt)?)?, GetMode::ReadOnly));
        }
        Ok((wire::get_reply(reply)?, GetMode::Sliding))
    }

    /// `EVALSHA sha 1 key args...` of a script returning an integer; a
    /// server that does not have the script yet gets it with `EVAL` (which
    /// also caches it there).
    pub fn run_script(&self, sha: &str, code: &str, key: &str, args: &[Vec<u8>], interrupt: Option<&Interrupt>) -> Result<i64> {
        let mut reply = self.request(&wire::script_command(sha, None, key, args), interrupt)?;
        if wire::is_noscript(&reply) {
            reply = self.request(&wire::script_command(sha, Some(code), key, args), interrupt)?;
        }
        wire::script_reply(reply)
    }

    /// Where a caller doing its own I/O connects (`wire::Target`).
    pub fn wire_target(&self) -> wire::Target {
        wire::Target {
            address: self.target.clone(),
            handshake: self.handshake.clone(),
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
        }
    }

    /// Sends one command on a pooled socket (or a new one) and reads its
    /// reply. A socket that broke while idle gets one retry on a new one; a
    /// timeout does not.
    fn request(&self, command: &[u8], interrupt: Option<&Interrupt>) -> Result<Reply> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (mut conn, mut fresh) = match pooled {
            Some(conn) => (conn, false),
            None => (self.connect()?, true),
        };
        loop {
            if let Some(interrupt) = interrupt {
                if !interrupt.arm(conn.fd()) {
                    interrupt.disarm();
                    return Err(Interrupt::interrupted_error());
                }
            }
            let reply = conn.call(command, self.command_timeout);
            if let Some(interrupt) = interrupt {
                interrupt.disarm();
                if interrupt.is_interrupted() {
                    // The socket may be shut down: dropped, never pooled.
                    return Err(Interrupt::interrupted_error());
                }
            }
            match reply {
                Ok(reply) => {
                    self.give_back(conn);
                    return Ok(reply);
                }
                Err(e) if e.kind() == ErrorKind::Connection && !fresh => {
                    conn = self.connect()?;
                    fresh = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn give_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
    }

    fn connect(&self) -> Result<Conn> {
        let unreachable = |e: std::io::Error| Error::temporary(ErrorKind::Connection, format!("cannot reach Redis ({e})"));
        let stream = match &self.target {
            Target::Tcp { host, port } => {
                let mut last = None;
                let mut connected = None;
                for addr in (host.as_str(), *port).to_socket_addrs().map_err(unreachable)? {
                    match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                        Ok(s) => {
                            connected = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let stream = match connected {
                    Some(s) => s,
                    None if last.as_ref().is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut) => {
                        return Err(Error::temporary(
                            ErrorKind::Timeout,
                            format!("Redis connect took longer than connect_timeout ({:?})", self.connect_timeout),
                        ))
                    }
                    None => return Err(unreachable(last.unwrap_or_else(|| std::io::Error::other("no address")))),
                };
                stream.set_nodelay(true).map_err(unreachable)?;
                Stream::Tcp(stream)
            }
            Target::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(unreachable)?),
        };
        let mut conn = Conn { stream, buf: Vec::with_capacity(512), timeouts: None };
        for command in &self.handshake {
            wire::handshake_reply(conn.call(command, self.connect_timeout)?)?;
        }
        Ok(conn)
    }
}

fn handshake(credentials: &Credentials, db: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(password) = &credentials.password {
        match &credentials.username {
            Some(user) => out.push(encode(&[b"AUTH", user.as_bytes(), password.as_bytes()])),
            None => out.push(encode(&[b"AUTH", password.as_bytes()])),
        }
    }
    if db != 0 {
        out.push(encode(&[b"SELECT", db.to_string().as_bytes()]));
    }
    out
}

impl Conn {
    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match &self.stream {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Sends one command and reads its reply within `limit`. Any error
    /// leaves the socket in an unknown state: the caller drops it.
    fn call(&mut self, command: &[u8], limit: Duration) -> Result<Reply> {
        let deadline = Instant::now() + limit;
        self.buf.clear();
        self.set_timeouts(limit).map_err(io_error)?;
        self.write_all(command).map_err(io_error)?;
        let mut first_read = true;
        loop {
            if let Some((reply, _)) = wire::parse(&self.buf)? {
                return Ok(reply);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout(limit));
            }
            // A reply in one read is the common case: the timeouts already set
            // for the whole call hold; later reads get what is left.
            if !first_read {
                self.set_timeouts(left).map_err(io_error)?;
            }
            first_read = false;
            let mut chunk = [0u8; 4096];
            match self.read(&mut chunk) {
                Ok(0) => return Err(Error::temporary(ErrorKind::Connection, "Redis closed the connection")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(timeout(limit))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
    }

    /// Sets the socket's read and write timeouts, skipping the system calls
    /// when they are already `limit`.
    fn set_timeouts(&mut self, limit: Duration) -> std::io::Result<()> {
        if self.timeouts == Some(limit) {
            return Ok(());
        }
        self.timeouts = Some(limit);
        let limit = Some(limit.max(Duration::from_millis(1)));
        match &self.stream {
            Stream::Tcp(s) => {
                s.set_read_timeout(limit)?;
                s.set_write_timeout(limit)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(limit)?;
                s.set_write_timeout(limit)
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Tcp(s) => s.write_all(bytes),
            Stream::Unix(s) => s.write_all(bytes),
        }
    }

    fn read(&mut self, chunk: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.stream {
            Stream::Tcp(s) => s.read(chunk),
            Stream::Unix(s) => s.read(chunk),
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
        return Error::temporary(ErrorKind::Timeout, format!("Redis did not answer in time ({e})"));
    }
    Error::temporary(ErrorKind::Connection, format!("cannot reach Redis ({e})"))
}

fn timeout(limit: Duration) -> Error {
    wire::timeout_error(limit)
}
