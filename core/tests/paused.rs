//! A paused Redis (CLIENT PAUSE) must cost a timeout error, not a hang, and
//! the store must work again afterwards. In its own test binary because the
//! pause stops every client of the server, including other tests.

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

