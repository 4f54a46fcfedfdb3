//! A master dies: operations fail for the seconds the failover takes, then
//! resume on the promoted replica without a new store or a restart. These
//! tests kill real redis-server processes (by the pid the topology script
//! recorded) and restart them afterwards; run them last, one at a time.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{data, Target};
use sessionkeeper_core::runtime::block_on;
use sessionkeeper_core::{SaveOutcome, Store, Value};

fn redis_dir() -> PathBuf {
    PathBuf::from(std::env::var("SK_REDIS_DIR").expect("SK_REDIS_DIR is set by the topology script"))
}

fn conn(addr: &str) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}")).unwrap().get_connection().unwrap()
}

fn kill(topology: &str, port: u16) {
    let pidfile = redis_dir().join(topology).join(format!("{port}.pid"));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // SAFETY: signalling a redis-server this suite's topology script started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
}

fn restart(port: u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/topology/redis.sh");
    let status = Command::new("bash").arg(script).arg("restart-node").arg(port.to_string()).status().unwrap();
    assert!(status.success(), "restart-node {port}");
}

/// Retries `op` until it succeeds, for at most `limit`; returns how many
/// attempts failed. Failing past the limit means the store never recovered.
fn until_ok<T>(limit: Duration, mut op: impl FnMut() -> sessionkeeper_core::Result<T>) -> (T, u32) {
    let deadline = Instant::now() + limit;
    let mut failures = 0;
    loop {
        match op() {
            Ok(v) => return (v, failures),
            Err(e) => {
                assert!(e.is_temporary(), "a failover error must be temporary: {e}");
                failures += 1;
                assert!(Instant::now() < deadline, "still failing after {limit:?}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Blocks until the master at `addr` has a replica that acknowledged every
/// write so far. Replication is asynchronous; without this the replica
/// promoted by the failover may miss the last writes, or (right after an
/// earlier failover test) not be replicating yet at all.
fn wait_replicated(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let acked: i64 = redis::cmd("WAIT").arg(1).arg(1000).query(&mut conn(addr)).unwrap();
        if acked >= 1 {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} has no replica in sync");
    }
}

fn create_many(store: &Store, n: i64) -> Vec<String> {
    (0..n).map(|i| block_on(store.create(&data(&[("i", Value::Int(i))]))).unwrap().0).collect()
}

fn check_all(store: &Store, ids: &[String]) {
    for (i, id) in ids.iter().enumerate() {
        let loaded = block_on(store.load(id)).unwrap().unwrap_or_else(|| panic!("session {i} lost"));
        assert_eq!(loaded.data.get("i"), Some(&Value::Int(i as i64)));
    }
}

#[test]
fn cluster_master_killed_mid_run() {
    let Some(store) = Target::Cluster.store(&[("command_timeout", "500ms")]) else { return };
    let ids = create_many(&store, 40);
    let seed = std::env::var("SK_CLUSTER_URL").unwrap();
    let first = seed.trim_start_matches("redis+cluster://").split(',').next().unwrap().to_string();
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn(&first)).unwrap();
    // The master serving slot 0..: any master will do; take the first one.
    let victim_line = nodes.lines().find(|l| l.contains("master") && !l.contains("fail")).unwrap();
    let victim_addr = victim_line.split_whitespace().nth(1).unwrap().split('@').next().unwrap().to_string();
    let victim_port: u16 = victim_addr.rsplit(':').next().unwrap().parse().unwrap();
    // Make sure the replica has every write before the master dies
    // (replication is asynchronous; WAIT makes this test deterministic).
    wait_replicated(&victim_addr);
    kill("cluster", victim_port);

    // Operations keep being attempted through the failover and resume.
    let (_, failed) = until_ok(Duration::from_secs(30), || {
        ids.iter().try_for_each(|id| block_on(store.load(id)).map(|_| ()))
    });
    let ((new_id, _), _) = until_ok(Duration::from_secs(30), || block_on(store.create(&data(&[("after", true.into())]))));
    eprintln!("cluster failover: {failed} failed attempts before recovery");
    check_all(&store, &ids);
    let mut l = block_on(store.load(&new_id)).unwrap().unwrap();
    l.data.insert("x".into(), 1.into());
    assert!(matches!(block_on(store.save(&new_id, &mut l.baseline, &l.data)).unwrap(), SaveOutcome::Saved { .. }));

    restart(victim_port);
}

#[test]
fn sentinel_failover_is_followed() {
    let Some(store) = Target::Sentinel.store(&[("command_timeout", "500ms"), ("connect_timeout", "500ms")]) else { return };
    let ids = create_many(&store, 20);
    let url = std::env::var("SK_SENTINEL_URL").unwrap();
    let sentinel = url.trim_start_matches("redis+sentinel://").split(',').next().unwrap().to_string();
    let (host, port): (String, u16) =
        redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg("skmaster").query(&mut conn(&sentinel)).unwrap();
    let master = format!("{host}:{port}");
    wait_replicated(&master);
    kill("sentinel", port);

    let (_, failed) = until_ok(Duration::from_secs(40), || {
        ids.iter().try_for_each(|id| block_on(store.load(id)).map(|_| ()))
    });
    // Writes work too: the store talks to the promoted master, not a replica.
    let ((new_id, _), _) = until_ok(Duration::from_secs(40), || block_on(store.create(&data(&[("after", true.into())]))));
    eprintln!("sentinel failover: {failed} failed attempts before recovery");
    check_all(&store, &ids);
    assert!(block_on(store.exists(&new_id)).unwrap());
    let (_, new_port): (String, u16) =
        redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg("skmaster").query(&mut conn(&sentinel)).unwrap();
    assert_ne!(new_port, port, "sentinel did not promote the replica");

    restart(port);
}
