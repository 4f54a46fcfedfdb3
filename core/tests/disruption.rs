//! Disruptions of a running standalone server: paused (CLIENT PAUSE) and
//! connections dropped by the server (CLIENT KILL). In their own test binary,
//! run one at a time, because both hit every client of the server.

mod common;

use std::time::Duration;

use common::{data, redis_conn, returns_within, Target};
use sessionkeeper_core::runtime::block_on;
use sessionkeeper_core::{BlockingStore, ErrorKind, Value};

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

/// The same disruptions for blocking callers, whose loads read their own
/// sockets (Ruby, Python, C).
#[test]
fn blocking_loads_time_out_on_a_paused_redis_and_recover() {
    let Some((url, _)) = Target::Standalone.url() else { return };
    let store = Target::Standalone.store(&[("command_timeout", "200ms")]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    blocking.load(&id).unwrap().unwrap();
    let mut admin = redis_conn(&url);
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(1200).arg("ALL").query(&mut admin).unwrap();
    let b2 = blocking.clone();
    let id2 = id.clone();
    let err = returns_within(Duration::from_secs(30), move || b2.load(&id2).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    let (b3, id3) = (blocking.clone(), id.clone());
    let err = returns_within(Duration::from_secs(30), move || {
        let mut baseline = sessionkeeper_core::Baseline::empty(sessionkeeper_core::Codec::Msgpack);
        b3.save(&id3, &mut baseline, &data(&[("y", 2.into())])).unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut admin).unwrap();
    let mut loaded = blocking.load(&id).unwrap().unwrap();
    assert_eq!(loaded.data.get("x"), Some(&Value::Int(1)));
    loaded.data.insert("z".into(), 3.into());
    assert!(blocking.save(&id, &mut loaded.baseline, &loaded.data).is_ok());
}

#[test]
fn blocking_loads_replace_a_socket_the_server_dropped() {
    let Some((url, _)) = Target::Standalone.url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    blocking.load(&id).unwrap().unwrap();
    let mut admin = redis_conn(&url);
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal").arg("SKIPME").arg("yes").query(&mut admin).unwrap();
    assert!(killed >= 2, "expected the runtime's connection and the pooled socket");
    assert_eq!(blocking.load(&id).unwrap().unwrap().data.get("x"), Some(&Value::Int(1)));
    assert!(store.stats().errors.iter().all(|(_, n)| *n == 0), "{:?}", store.stats().errors);
    // A server that is gone: a connection error, quickly.
    let gone = BlockingStore::new(sessionkeeper_core::Store::from_url_and_options("redis://127.0.0.1:1", [("key_prefix", "x:")]).unwrap());
    let err = gone.load(&id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.is_temporary());
}

#[test]
fn blocking_loads_over_a_unix_socket() {
    let Some(url) = std::env::var("SK_UNIX_URL").ok() else {
        assert_ne!(std::env::var("SK_REQUIRE_REDIS").as_deref(), Ok("1"), "SK_UNIX_URL is not set");
        return;
    };
    let store = sessionkeeper_core::Store::from_url_and_options(&format!("{url}?db=1"), [("key_prefix", "sktest:unix:")]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("over", "unix".into())]))).unwrap();
    let blocking = BlockingStore::new(store.clone());
    assert_eq!(blocking.load(&id).unwrap().unwrap().data.get("over"), Some(&Value::Str("unix".into())));
    // Another database of the same server holds nothing under that key.
    let db0 = BlockingStore::new(sessionkeeper_core::Store::from_url_and_options(&url, [("key_prefix", "sktest:unix:")]).unwrap());
    assert_eq!(db0.load(&id).unwrap(), None);
}

#[test]
fn an_interrupt_ends_a_blocking_load_waiting_on_its_own_socket() {
    use sessionkeeper_core::runtime::Interrupt;
    let Some((url, _)) = Target::Standalone.url() else { return };
    // Redis stays paused for 60 s and the command timeout is 120 s: only the
    // interrupt can end the wait before the 30 s hang guard trips.
    let store = Target::Standalone.store(&[("command_timeout", "120s")]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    blocking.load(&id).unwrap().unwrap();
    let mut admin = redis_conn(&url);
    // WRITE (GETEX is one) so that the UNPAUSE below is not held too.
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(60_000).arg("WRITE").query(&mut admin).unwrap();
    let interrupt = Interrupt::new();
    let remote = interrupt.clone();
    let trip = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        remote.interrupt();
    });
    let (b2, id2) = (blocking.clone(), id.clone());
    let err = returns_within(Duration::from_secs(30), move || b2.load_interruptible(&id2, &interrupt).unwrap_err());
    trip.join().unwrap();
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut admin).unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("interrupted"), "{err}");
    // The shut-down socket was not pooled: the next load works.
    assert_eq!(blocking.load(&id).unwrap().unwrap().data.get("x"), Some(&Value::Int(1)));
    // A save waiting on a paused server is cut short the same way.
    let mut loaded = blocking.load(&id).unwrap().unwrap();
    loaded.data.insert("during".into(), 1.into());
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(60_000).arg("WRITE").query(&mut admin).unwrap();
    let interrupt = Interrupt::new();
    let remote = interrupt.clone();
    let trip = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        remote.interrupt();
    });
    let (b3, id3) = (blocking.clone(), id.clone());
    let err = returns_within(Duration::from_secs(30), move || {
        b3.save_interruptible(&id3, &mut loaded.baseline, &loaded.data, &interrupt).unwrap_err()
    });
    trip.join().unwrap();
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut admin).unwrap();
    assert!(err.message().contains("interrupted"), "{err}");
    // An interrupt tripped before the call: it returns at once.
    let tripped = Interrupt::new();
    tripped.interrupt();
    assert_eq!(blocking.load_interruptible(&id, &tripped).unwrap_err().kind(), ErrorKind::Timeout);
    assert!(blocking.load_interruptible(&id, &Interrupt::new()).unwrap().is_some());
}

#[test]
fn a_blocking_save_on_a_server_that_lost_its_scripts_sends_the_script() {
    // A restarted server, or SCRIPT FLUSH: NOSCRIPT, then EVAL with the body.
    let Some((url, _)) = Target::Standalone.url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    let mut loaded = blocking.load(&id).unwrap().unwrap();
    let mut admin = redis_conn(&url);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut admin).unwrap();
    loaded.data.insert("y".into(), 2.into());
    assert!(matches!(blocking.save(&id, &mut loaded.baseline, &loaded.data).unwrap(), sessionkeeper_core::SaveOutcome::Saved { .. }));
    assert_eq!(blocking.load(&id).unwrap().unwrap().data.get("y"), Some(&Value::Int(2)));
}

/// A server that cannot take writes for now: too few replicas under
/// `min-replicas-to-write` (which refuses even a load's GETEX) or out of
/// memory under `noeviction`. Writes are temporary connection errors for
/// async and blocking callers alike, so fail-open adapters treat them as
/// Redis being down; loads still read the session (a plain GET when the
/// GETEX is refused), so nobody is logged out; the store works again once
/// the condition passes.
#[test]
fn a_server_taking_no_writes_fails_writes_temporarily_and_still_serves_loads() {
    let Some((url, _)) = Target::Standalone.url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    let mut admin = redis_conn(&url);
    let passing = |err: sessionkeeper_core::Error, what: &str| {
        assert_eq!(err.kind(), ErrorKind::Connection, "{what}: {err}");
        assert!(err.is_temporary(), "{what}: {err}");
    };
    for (step, (setting, refused, normal)) in
        [("min-replicas-to-write", "1", "0"), ("maxmemory", "1", "0")].into_iter().enumerate()
    {
        let mut loaded = blocking.load(&id).unwrap().unwrap();
        let _: () = redis::cmd("CONFIG").arg("SET").arg(setting).arg(refused).query(&mut admin).unwrap();
        // Put back even when an assertion fails, or every later test fails too.
        let _normal_again = ConfigReset { url: url.clone(), setting, value: normal };
        for (how, read) in [("blocking", blocking.load(&id)), ("async", block_on(store.load(&id)))] {
            let read = read.unwrap_or_else(|e| panic!("{setting}: {how} load: {e}"));
            assert_eq!(read.map(|l| l.data), Some(loaded.data.clone()), "{setting}: {how} load reads the session");
        }
        loaded.data.insert("step".into(), (step as i64).into());
        let mut baseline = loaded.baseline.clone();
        passing(blocking.save(&id, &mut baseline, &loaded.data).unwrap_err(), &format!("{setting}: blocking save"));
        passing(block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap_err(), &format!("{setting}: save"));
        passing(block_on(store.create(&data(&[("n", 1.into())]))).unwrap_err(), &format!("{setting}: create"));
        drop(_normal_again);
        assert!(matches!(blocking.save(&id, &mut baseline, &loaded.data), Ok(sessionkeeper_core::SaveOutcome::Saved { .. })));
    }
    assert_eq!(blocking.load(&id).unwrap().unwrap().data.get("step"), Some(&Value::Int(1)));
}

struct ConfigReset {
    url: String,
    setting: &'static str,
    value: &'static str,
}

impl Drop for ConfigReset {
    fn drop(&mut self) {
        let _: redis::RedisResult<()> =
            redis::cmd("CONFIG").arg("SET").arg(self.setting).arg(self.value).query(&mut redis_conn(&self.url));
    }
}
