//! Disruptions of a running standalone server: paused (CLIENT PAUSE) and
//! connections dropped by the server (CLIENT KILL). In their own test binary,
//! run one at a time, because both hit every client of the server.

mod common;

use std::time::Duration;

use common::{data, redis_conn, returns_within, Target};
use sessionkeeper_core::runtime::block_on;
use sessionkeeper_core::{ErrorKind, Value};

#[test]
fn a_paused_redis_is_a_timeout_and_the_store_recovers() {
    let Some((url, _)) = Target::Standalone.url() else { return };
    let store = Target::Standalone.store(&[("command_timeout", "200ms")]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    let mut admin = redis_conn(&url);
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(1200).arg("ALL").query(&mut admin).unwrap();
    let s2 = store.clone();
    let id2 = id.clone();
    let err = returns_within(Duration::from_secs(30), move || block_on(s2.load(&id2)).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut admin).unwrap();
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data.get("x"), Some(&Value::Int(1)));
}


#[test]
fn a_connection_dropped_by_the_server_is_replaced_transparently() {
    let Some((url, _)) = Target::Standalone.url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    // Drop every connection but the admin one (this binary runs one test at
    // a time, so those are the engine's), as a Redis restart, a proxy or an
    // idle timeout would. Redis 7.0 has no CLIENT SETINFO to pick ours by name.
    let mut admin = redis_conn(&url);
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal").arg("SKIPME").arg("yes").query(&mut admin).unwrap();
    assert!(killed >= 1, "no engine connection to drop");
    // The next call notices the broken connection, opens a new one and
    // retries once: the caller sees no error.
    let loaded = block_on(store.load(&id)).unwrap().expect("session still there");
    assert_eq!(loaded.data.get("x"), Some(&Value::Int(1)));
    assert!(store.stats().errors.iter().all(|(_, n)| *n == 0), "{:?}", store.stats().errors);
}

#[test]
fn unix_socket_urls_work() {
    let Some(url) = std::env::var("SK_UNIX_URL").ok() else {
        assert_ne!(std::env::var("SK_REQUIRE_REDIS").as_deref(), Ok("1"), "SK_UNIX_URL is not set");
        return;
    };
    let store = sessionkeeper_core::Store::from_url_and_options(&format!("{url}?db=1"), [("key_prefix", "sktest:unix:")]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("over", "unix".into())]))).unwrap();
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data.get("over"), Some(&Value::Str("unix".into())));
    assert!(block_on(store.destroy(&id)).unwrap());
}
