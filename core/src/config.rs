//! One `Config`, built one way: `Config::from_url_and_options(url, options)`.
//! The URL gives topology and credentials; its query string and then the
//! options map give everything else. Unknown option names are an error that
//! names them, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::codec::Codec;
use crate::error::{Error, Result};

pub const DEFAULT_KEY_PREFIX: &str = "session:";
pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_MAX_SIZE: usize = 1024 * 1024;

/// Every option name, in the order the docs list them.
pub const OPTION_NAMES: &[&str] = &[
    "key_prefix",
    "idle_ttl",
    "absolute_ttl",
    "connect_timeout",
    "command_timeout",
    "codec",
    "max_size",
    "tls_ca_file",
    "tls_insecure",
    "sentinel_username",
    "sentinel_password",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// The in-process backend. Stores opened with the same name share data.
    Memory { name: String },
    Standalone { host: HostPort, db: i64 },
    Unix { path: PathBuf, db: i64 },
    Cluster { nodes: Vec<HostPort> },
    Sentinel { sentinels: Vec<HostPort>, master_name: String, db: i64 },
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub topology: Topology,
    /// `rediss://` (and `rediss+cluster://`, `rediss+sentinel://`).
    pub tls: bool,
    /// PEM file of the CA that signed the server certificate; the system
    /// roots are used when absent.
    pub tls_ca_file: Option<PathBuf>,
    /// Skip certificate verification. Only for tests; the docs say so.
    pub tls_insecure: bool,
    pub credentials: Credentials,
    pub sentinel_credentials: Credentials,
    pub key_prefix: String,
    /// Sliding expiry: a session not loaded or saved for this long is gone.
    /// `None`: no sliding expiry.
    pub idle_ttl: Option<Duration>,
    /// Hard cap counted from creation, whatever the activity. `None`: no cap.
    pub absolute_ttl: Option<Duration>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub codec: Codec,
    /// Largest encoded session, in bytes (field names plus encoded values).
    pub max_size: usize,
}

impl Config {
    /// Parses `url`, then applies its query string, then `options`: later
    /// sources override earlier ones.
    pub fn from_url_and_options<K, V>(url: &str, options: impl IntoIterator<Item = (K, V)>) -> Result<Config>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let parsed = ParsedUrl::parse(url)?;
        let mut config = Config {
            topology: parsed.topology,
            tls: parsed.tls,
            tls_ca_file: None,
            tls_insecure: false,
            credentials: parsed.credentials,
            sentinel_credentials: Credentials { username: None, password: None },
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            idle_ttl: Some(DEFAULT_IDLE_TTL),
            absolute_ttl: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            codec: Codec::Msgpack,
            max_size: DEFAULT_MAX_SIZE,
        };
        for (k, v) in parsed.query {
            config.set(&k, &v)?;
        }
        for (k, v) in options {
            config.set(k.as_ref(), v.as_ref())?;
        }
        if matches!(config.topology, Topology::Memory { .. }) && config.tls {
            return Err(Error::config("memory:// cannot use TLS"));
        }
        Ok(config)
    }

    pub fn from_url(url: &str) -> Result<Config> {
        Config::from_url_and_options(url, std::iter::empty::<(&str, &str)>())
    }

    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let bad = |what: &str| Error::config(format!("option {name}: {what}"));
        match name {
            "key_prefix" => {
                // The prefix is used verbatim in every key; control characters
                // would make keys unreadable and break `redis-cli` scripts.
                if value.len() > 256 || value.chars().any(char::is_control) {
                    return Err(bad("must be at most 256 printable characters"));
                }
                self.key_prefix = value.to_owned();
            }
            "idle_ttl" => self.idle_ttl = parse_optional_duration(value).map_err(|e| bad(&e))?,
            "absolute_ttl" => self.absolute_ttl = parse_optional_duration(value).map_err(|e| bad(&e))?,
            "connect_timeout" => self.connect_timeout = parse_positive_duration(value).map_err(|e| bad(&e))?,
            "command_timeout" => self.command_timeout = parse_positive_duration(value).map_err(|e| bad(&e))?,
            "codec" => {
                self.codec = Codec::from_name(value).ok_or_else(|| bad("must be \"msgpack\" or \"json\""))?;
            }
            "max_size" => self.max_size = parse_size(value).map_err(|e| bad(&e))?,
            "tls_ca_file" => self.tls_ca_file = Some(PathBuf::from(value)),
            "tls_insecure" => self.tls_insecure = parse_bool(value).ok_or_else(|| bad("must be true or false"))?,
            "sentinel_username" => self.sentinel_credentials.username = Some(value.to_owned()),
            "sentinel_password" => self.sentinel_credentials.password = Some(value.to_owned()),
            _ => {
                return Err(Error::config(format!(
                    "unknown option {name:?}; known options: {}",
                    OPTION_NAMES.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// The URL with any password replaced, for messages and logs.
    pub fn redacted_target(&self) -> String {
        let scheme = |base: &str| if self.tls { base.replacen("redis", "rediss", 1) } else { base.to_owned() };
        let list = |hosts: &[HostPort]| hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        match &self.topology {
            Topology::Memory { name } => format!("memory://{name}"),
            Topology::Standalone { host, db } => format!("{}://{host}/{db}", scheme("redis")),
            Topology::Unix { path, db } => format!("unix://{}?db={db}", path.display()),
            Topology::Cluster { nodes } => format!("{}://{}", scheme("redis+cluster"), list(nodes)),
            Topology::Sentinel { sentinels, master_name, db } => {
                format!("{}://{}/{master_name}/{db}", scheme("redis+sentinel"), list(sentinels))
            }
        }
    }
}

/// `30s`, `15m`, `2h`, `1d`, `250ms`, or plain seconds (`90`, `0.5`).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let (number, unit_secs) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 86400.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (use 30s, 15m, 2h, 1d, 250ms or seconds)"))?;
    let secs = value * unit_secs;
    if !(0.0..=100.0 * 365.0 * 86400.0).contains(&secs) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration where `0`, `none` or an empty string switch the limit off.
fn parse_optional_duration(text: &str) -> std::result::Result<Option<Duration>, String> {
    if matches!(text.trim(), "" | "none" | "off") {
        return Ok(None);
    }
    let d = parse_duration(text)?;
    if d < Duration::from_millis(1) && !d.is_zero() {
        return Err(format!("{text:?} is shorter than a millisecond"));
    }
    Ok((!d.is_zero()).then_some(d))
}

fn parse_positive_duration(text: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(1) {
        return Err(format!("{text:?} must be at least 1ms"));
    }
    Ok(d)
}

/// Bytes, or with a `k`/`m` suffix (KiB, MiB).
fn parse_size(text: &str) -> std::result::Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let (n, mult) = if let Some(n) = t.strip_suffix('k') {
        (n.to_owned(), 1024)
    } else if let Some(n) = t.strip_suffix('m') {
        (n.to_owned(), 1024 * 1024)
    } else {
        (t, 1)
    };
    let n: usize = n.trim().parse().map_err(|_| format!("{text:?} is not a size in bytes (e.g. 65536, 64k, 1m)"))?;
    let size = n.checked_mul(mult).filter(|&s| s > 0).ok_or_else(|| format!("{text:?} is out of range"))?;
    Ok(size)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

struct ParsedUrl {
    topology: Topology,
    tls: bool,
    credentials: Credentials,
    query: Vec<(String, String)>,
}

impl ParsedUrl {
    fn parse(url: &str) -> Result<ParsedUrl> {
        // Messages quote the scheme only: the rest may hold a password.
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::config("the URL must start with redis://, rediss://, unix://, redis+cluster://, redis+sentinel:// or memory://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, parse_query(q)?),
            None => (rest, Vec::new()),
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (tls, kind) = match scheme {
            "redis" => (false, "standalone"),
            "rediss" => (true, "standalone"),
            "redis+cluster" => (false, "cluster"),
            "rediss+cluster" => (true, "cluster"),
            "redis+sentinel" => (false, "sentinel"),
            "rediss+sentinel" => (true, "sentinel"),
            "unix" | "redis+unix" => (false, "unix"),
            "memory" => (false, "memory"),
            other => return Err(Error::config(format!("unsupported URL scheme {other:?}"))),
        };
        let no_credentials = Credentials { username: None, password: None };
        if kind == "memory" {
            let name = rest.trim_end_matches('/');
            return Ok(ParsedUrl { topology: Topology::Memory { name: name.to_owned() }, tls, credentials: no_credentials, query });
        }
        if kind == "unix" {
            let mut db = 0;
            let mut rest_query = Vec::new();
            for (k, v) in query {
                if k == "db" {
                    db = parse_db(&v)?;
                } else {
                    rest_query.push((k, v));
                }
            }
            if rest.is_empty() || !rest.starts_with('/') {
                return Err(Error::config("unix:// URLs need an absolute socket path, e.g. unix:///run/redis.sock"));
            }
            let topology = Topology::Unix { path: PathBuf::from(percent_decode(rest)?), db };
            return Ok(ParsedUrl { topology, tls, credentials: no_credentials, query: rest_query });
        }
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => no_credentials,
            Some(u) => {
                let (user, pass) = match u.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (u, None),
                };
                Credentials {
                    username: (!user.is_empty()).then(|| percent_decode(user)).transpose()?,
                    password: pass.filter(|p| !p.is_empty()).map(percent_decode).transpose()?,
                }
            }
        };
        let (hosts, path) = match rest.split_once('/') {
            Some((h, p)) => (h, p),
            None => (rest, ""),
        };
        let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let hosts = parse_hosts(hosts, if kind == "sentinel" { 26379 } else { 6379 })?;
        let topology = match kind {
            "standalone" => {
                if hosts.len() != 1 {
                    return Err(Error::config("redis:// takes one host; use redis+cluster:// or redis+sentinel:// for several"));
                }
                let db = match path.as_slice() {
                    [] => 0,
                    [db] => parse_db(db)?,
                    _ => return Err(Error::config("redis:// URL path must be the database number, e.g. redis://host:6379/0")),
                };
                Topology::Standalone { host: hosts.into_iter().next().expect("one host"), db }
            }
            "cluster" => {
                if !path.is_empty() {
                    return Err(Error::config("redis+cluster:// URLs take no path: a Cluster has only database 0"));
                }
                Topology::Cluster { nodes: hosts }
            }
            _ => {
                let (master_name, db) = match path.as_slice() {
                    [name] => (*name, 0),
                    [name, db] => (*name, parse_db(db)?),
                    _ => {
                        return Err(Error::config(
                            "redis+sentinel:// URLs need the master name: redis+sentinel://h1:26379,h2:26379/<master-name>[/db]",
                        ))
                    }
                };
                Topology::Sentinel { sentinels: hosts, master_name: percent_decode(master_name)?, db }
            }
        };
        Ok(ParsedUrl { topology, tls, credentials, query })
    }
}

fn parse_db(text: &str) -> Result<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|db| (0..=1_000_000).contains(db))
        .ok_or_else(|| Error::config(format!("database {text:?} is not a non-negative number")))
}

fn parse_hosts(list: &str, default_port: u16) -> Result<Vec<HostPort>> {
    let mut hosts = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(Error::config("the URL names an empty host"));
        }
        let (host, port) = if let Some(v6) = item.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| Error::config(format!("bad IPv6 host {item:?}")))?;
            (h, after.strip_prefix(':'))
        } else {
            match item.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (item, None),
            }
        };
        if host.is_empty() || host.contains(['/', '@', ' ', '%']) {
            return Err(Error::config(format!("bad host {item:?}")));
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| Error::config(format!("bad port in {item:?}")))?,
        };
        hosts.push(HostPort { host: host.to_owned(), port });
    }
    Ok(hosts)
}

fn parse_query(q: &str) -> Result<Vec<(String, String)>> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| Error::config("bad %-escape in the URL"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::config("the URL is not UTF-8 after %-decoding"))
}

/// Options as the bindings hand them over: a string map.
pub type Options = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> Config {
        Config::from_url(url).unwrap()
    }

    fn err(url: &str, opts: &[(&str, &str)]) -> String {
        let e = Config::from_url_and_options(url, opts.iter().copied()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        e.message().to_owned()
    }

    #[test]
    fn standalone_urls() {
        let c = cfg("redis://user:p%40ss@db.example:6380/3");
        assert_eq!(c.topology, Topology::Standalone { host: HostPort { host: "db.example".into(), port: 6380 }, db: 3 });
        assert_eq!(c.credentials.username.as_deref(), Some("user"));
        assert_eq!(c.credentials.password.as_deref(), Some("p@ss"));
        assert!(!c.tls);
        let c = cfg("rediss://:secret@[::1]");
        assert!(c.tls);
        assert_eq!(c.credentials.username, None);
        assert_eq!(c.topology, Topology::Standalone { host: HostPort { host: "::1".into(), port: 6379 }, db: 0 });
        assert_eq!(cfg("unix:///run/redis.sock?db=2").topology, Topology::Unix { path: "/run/redis.sock".into(), db: 2 });
    }

    #[test]
    fn cluster_sentinel_memory_urls() {
        let c = cfg("redis+cluster://a:7000,b:7001,c");
        let Topology::Cluster { nodes } = c.topology else { panic!() };
        assert_eq!(nodes.iter().map(ToString::to_string).collect::<Vec<_>>(), ["a:7000", "b:7001", "c:6379"]);
        let c = cfg("redis+sentinel://s1:26380,s2/mymaster/4");
        assert_eq!(
            c.topology,
            Topology::Sentinel {
                sentinels: vec![HostPort { host: "s1".into(), port: 26380 }, HostPort { host: "s2".into(), port: 26379 }],
                master_name: "mymaster".into(),
                db: 4
            }
        );
        assert_eq!(cfg("memory://").topology, Topology::Memory { name: String::new() });
        assert_eq!(cfg("memory://tests").topology, Topology::Memory { name: "tests".into() });
    }

    #[test]
    fn defaults() {
        let c = cfg("redis://localhost");
        assert_eq!(c.key_prefix, "session:");
        assert_eq!(c.idle_ttl, Some(DEFAULT_IDLE_TTL));
        assert_eq!(c.absolute_ttl, None);
        assert_eq!(c.codec, Codec::Msgpack);
        assert_eq!(c.max_size, DEFAULT_MAX_SIZE);
        // The documented values (docs/configuration.md), not just the constants.
        assert_eq!((c.connect_timeout, c.command_timeout), (Duration::from_secs(2), Duration::from_secs(1)));
        assert_eq!(c.idle_ttl, Some(Duration::from_secs(14 * 24 * 3600)));
        assert_eq!(c.max_size, 1024 * 1024);
    }

    #[test]
    fn options_from_query_and_map_with_map_winning() {
        let c = Config::from_url_and_options(
            "redis://h/0?key_prefix=q:&idle_ttl=15m&codec=json",
            [("key_prefix", "app:"), ("absolute_ttl", "2h"), ("command_timeout", "250ms"), ("max_size", "64k")],
        )
        .unwrap();
        assert_eq!(c.key_prefix, "app:");
        assert_eq!(c.idle_ttl, Some(Duration::from_secs(900)));
        assert_eq!(c.absolute_ttl, Some(Duration::from_secs(7200)));
        assert_eq!(c.command_timeout, Duration::from_millis(250));
        assert_eq!(c.codec, Codec::Json);
        assert_eq!(c.max_size, 65536);
        let c = Config::from_url_and_options("redis://h", [("idle_ttl", "0"), ("connect_timeout", "30")]).unwrap();
        assert_eq!(c.idle_ttl, None);
        assert_eq!(c.connect_timeout, Duration::from_secs(30));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "s", "-1s", "1w", "abc", "1e400", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_input_is_a_config_error_naming_the_problem() {
        assert!(err("redis://h", &[("key_prefx", "x")]).contains("unknown option \"key_prefx\""));
        assert!(err("redis://h?ttl=5", &[]).contains("unknown option \"ttl\""));
        assert!(err("redis://h", &[("idle_ttl", "soon")]).contains("idle_ttl"));
        assert!(err("redis://h", &[("command_timeout", "0")]).contains("command_timeout"));
        assert!(err("redis://h", &[("codec", "marshal")]).contains("codec"));
        assert!(err("redis://h", &[("max_size", "0")]).contains("max_size"));
        assert!(err("redis://h", &[("key_prefix", "a\r\nb")]).contains("key_prefix"));
        assert!(err("http://h", &[]).contains("unsupported URL scheme"));
        assert!(err("localhost:6379", &[]).contains("must start with"));
        assert!(err("redis://h:notaport", &[]).contains("bad port"));
        assert!(err("redis://h:0", &[]).contains("bad port"));
        assert!(err("redis://h/x", &[]).contains("database"));
        assert!(err("redis://a,b", &[]).contains("one host"));
        assert!(err("redis+sentinel://s1,s2", &[]).contains("master name"));
        assert!(err("redis+cluster://a/1", &[]).contains("no path"));
        assert!(err("redis://h%zz", &[]).contains("bad host"));
        assert!(err("redis://u:%zz@h", &[]).contains("%-escape"));
        assert!(err("unix://relative", &[]).contains("absolute"));
    }

    #[test]
    fn password_never_shows() {
        let c = cfg("redis://u:hunter2@h:1/0");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!c.redacted_target().contains("hunter2"));
        let e = Config::from_url("redis://u:hunter2@h:x/0").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
