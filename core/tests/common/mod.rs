//! Shared helpers for the integration suites: which backends exist, and a
//! store on each with a private key prefix so tests never see each other.
//!
//! The Redis URLs come from `tests/topology/redis.sh` (via `make test-core`).
//! Without them a Redis test is skipped with a message, unless
//! `SK_REQUIRE_REDIS=1` (set by `make`/CI), where a missing topology fails.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use sessionkeeper_core::{Store, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Memory,
    Standalone,
    Tls,
    Cluster,
    Sentinel,
}

impl Target {
    /// The URL and extra options of this target, or `None` when its topology
    /// is not running (and not required).
    pub fn url(self) -> Option<(String, Vec<(String, String)>)> {
        let env = |name: &str| -> Option<String> {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => Some(v),
                _ if std::env::var("SK_REQUIRE_REDIS").as_deref() == Ok("1") => {
                    panic!("{name} is not set but SK_REQUIRE_REDIS=1: start the topologies with tests/topology/redis.sh start")
                }
                _ => {
                    eprintln!("skipping: {name} not set (run `make test-core` to start Redis)");
                    None
                }
            }
        };
        Some(match self {
            Target::Memory => (format!("memory://test-{}", unique()), vec![]),
            Target::Standalone => (env("SK_REDIS_URL")?, vec![]),
            Target::Tls => (env("SK_TLS_URL")?, vec![("tls_ca_file".into(), env("SK_TLS_CA")?)]),
            Target::Cluster => (env("SK_CLUSTER_URL")?, vec![]),
            Target::Sentinel => (env("SK_SENTINEL_URL")?, vec![]),
        })
    }

    /// A store on this target with its own key prefix, plus `options`.
    pub fn store(self, options: &[(&str, &str)]) -> Option<Store> {
        self.store_with_prefix(&format!("sktest:{}:", unique()), options)
    }

    /// A store sharing `prefix` (and, for memory, the named backend) with
    /// another: a second app server on the same sessions.
    pub fn store_with_prefix(self, prefix: &str, options: &[(&str, &str)]) -> Option<Store> {
        let (mut url, mut opts) = self.url()?;
        if self == Target::Memory {
            url = format!("memory://{}", prefix.trim_end_matches(':').replace(':', "-"));
        }
        opts.push(("key_prefix".into(), prefix.into()));
        opts.extend(options.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Some(Store::from_url_and_options(&url, opts).expect("test configuration is valid"))
    }
}

pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{}-{}-{n}", std::process::id(), &sessionkeeper_core::generate_id().unwrap()[..8])
}

pub fn data(pairs: &[(&str, Value)]) -> sessionkeeper_core::SessionData {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Declares `#[test]` functions named after each test, one module per
/// backend, each calling the shared test body with its `Target`.
#[macro_export]
macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod memory { $( #[test] fn $test() { super::$test($crate::common::Target::Memory) } )* }
        mod standalone { $( #[test] fn $test() { super::$test($crate::common::Target::Standalone) } )* }
        mod tls { $( #[test] fn $test() { super::$test($crate::common::Target::Tls) } )* }
        mod cluster { $( #[test] fn $test() { super::$test($crate::common::Target::Cluster) } )* }
        mod sentinel { $( #[test] fn $test() { super::$test($crate::common::Target::Sentinel) } )* }
    };
}

/// A plain connection for commands sent behind the engine's back.
pub fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// Runs `f` on another thread; fails (instead of hanging the suite) if it
/// has not returned after `limit`. A hang guard, not a speed assertion.
pub fn returns_within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("the call hung")
}
