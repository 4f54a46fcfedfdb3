//! What only a real Redis can show: the commands that actually reach the
//! server (MONITOR), the stored layout as `redis-cli` sees it, corruption
//! written behind the engine's back, and a server that is down, paused or
//! refuses the credentials.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{data, redis_conn, returns_within, Target};
use sessionkeeper_core::runtime::block_on;
use sessionkeeper_core::{storage_key, ErrorKind, SaveOutcome, Store, Value};


fn standalone_url() -> Option<String> {
    Target::Standalone.url().map(|(u, _)| u)
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("redis://").trim_end_matches('/').to_string()
}

/// A raw MONITOR stream: every command the server executes, one per line.
struct Monitor {
    lines: mpsc::Receiver<String>,
}

impl Monitor {
    fn start(url: &str) -> Monitor {
        let mut stream = TcpStream::connect(host_port(url)).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "+OK");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Monitor { lines: rx }
    }

    /// Lines seen until one contains `marker` (a command sent afterwards to
    /// mark the end of the interesting part).
    fn until(&self, marker: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                let done = line.contains(marker);
                seen.push(line);
                if done {
                    return seen;
                }
            }
        }
        panic!("MONITOR never showed the marker {marker}");
    }
}

fn malformed_ids() -> Vec<String> {
    vec![
        String::new(),
        "a".repeat(31),
        "a".repeat(129),
        format!("{}*", "a".repeat(32)),
        format!("{}\r\nFLUSHALL\r\n", "a".repeat(32)),
        format!("2::{}", "c".repeat(64)),
        format!("session:{}", "d".repeat(40)),
    ]
}

#[test]
fn malformed_ids_never_reach_redis() {
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let prefix = store.config().key_prefix.clone();
    let monitor = Monitor::start(&url);
    for id in malformed_ids() {
        assert_eq!(block_on(store.load(&id)).unwrap(), None);
        assert!(!block_on(store.exists(&id)).unwrap());
        assert!(!block_on(store.destroy(&id)).unwrap());
        assert!(!block_on(store.touch(&id)).unwrap());
        assert_eq!(block_on(store.renew(&id)).unwrap(), None);
        assert_eq!(block_on(store.insert(&id, &data(&[]))).unwrap_err().kind(), ErrorKind::InvalidId);
    }
    // A valid id marks the end of the sequence in the MONITOR stream.
    let marker_id = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker_id)).unwrap();
    let marker_key = storage_key(&prefix, &marker_id).unwrap();
    let lines = monitor.until(&marker_key);
    let ours: Vec<&String> = lines.iter().filter(|l| l.contains(&prefix)).collect();
    assert_eq!(ours.len(), 1, "only the marker's EXISTS script may appear: {ours:#?}");
    for line in &lines {
        assert!(!line.contains("FLUSHALL"), "{line}");
        assert!(!line.contains(&"c".repeat(64)), "{line}");
        assert!(!line.contains(&"d".repeat(40)), "{line}");
    }
}

/// Client commands (not the ones a script runs, which MONITOR tags "lua")
/// that mention `key`.
fn client_commands<'a>(lines: &'a [String], key: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(key) && !l.contains(" lua]")).collect()
}

#[test]
fn one_round_trip_per_request_and_none_for_an_unchanged_save() {
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("user_id", 42.into())]))).unwrap();
    let key = storage_key(&store.config().key_prefix, &id).unwrap();
    // Warm the server's script cache: the first use of each script costs a
    // SCRIPT LOAD and a retried EVALSHA, once per server.
    let mut warm = block_on(store.load(&id)).unwrap().unwrap();
    warm.data.insert("warm".into(), true.into());
    block_on(store.save(&id, &mut warm.baseline, &warm.data)).unwrap();
    let monitor = Monitor::start(&url);

    // A read-only request: load, then save of the unchanged data.
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap(), SaveOutcome::Unchanged);
    // A writing request: load, then save of one changed key.
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    loaded.data.insert("counter".into(), 1.into());
    assert!(matches!(block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap(), SaveOutcome::Saved { .. }));

    let marker = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker)).unwrap();
    let lines = monitor.until(&storage_key(&store.config().key_prefix, &marker).unwrap());
    let sent = client_commands(&lines, &key);
    assert_eq!(sent.len(), 3, "expected load, load, save: {sent:#?}");
    // Loads are one native GETEX, the save one script.
    assert!(sent[..2].iter().all(|l| l.contains("\"GETEX\"")), "{sent:#?}");
    assert!(sent[2].contains("\"EVALSHA\"") || sent[2].contains("\"evalsha\""), "{sent:#?}");
    // The save carried only the changed field.
    assert!(sent[2].contains("\"a:counter\"") && !sent[2].contains("\"a:user_id\"") && !sent[2].contains("\"a:warm\""), "{}", sent[2]);
}

#[test]
fn stored_layout_is_readable_with_redis_cli() {
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[("codec", "json"), ("idle_ttl", "30m"), ("absolute_ttl", "2h")]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("user_id", 42.into()), ("name", "Ada".into())]))).unwrap();
    let key = storage_key(&store.config().key_prefix, &id).unwrap();
    assert!(key.starts_with(&format!("{}2::", store.config().key_prefix)));
    let mut conn = redis_conn(&url);
    let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
    assert_eq!(kind, "string");
    let stored: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    let fields = read_record(&stored);
    assert_eq!(fields["a:user_id"], "42");
    assert_eq!(fields["a:name"], "\"Ada\"");
    assert_eq!(fields["m:codec"], "json");
    let created: i64 = fields["m:created"].parse().unwrap();
    let deadline: i64 = fields["m:deadline"].parse().unwrap();
    assert_eq!(deadline - created, 2 * 3600 * 1000);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(ttl > 29 * 60 * 1000 && ttl <= 30 * 60 * 1000, "{ttl}");
    assert_eq!(fields.len(), 5, "{fields:?}");
    // The public id appears nowhere in Redis.
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("*{id}*")).query(&mut conn).unwrap();
    assert!(keys.is_empty());
}

#[test]
fn a_msgpack_record_leaves_its_codec_unnamed_and_one_that_names_it_still_reads() {
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let mut conn = redis_conn(&url);
    let (id, _) = block_on(store.create(&data(&[("user_id", 42.into())]))).unwrap();
    let key = storage_key(&store.config().key_prefix, &id).unwrap();
    let stored: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    let fields = read_record(&stored);
    assert!(!fields.contains_key("m:codec"), "{fields:?}");
    assert_eq!(fields["a:user_id"].as_bytes(), b"\x2a");

    // A record that names msgpack (as every record did before) loads and saves alike.
    let named = write_record(&[("m:codec", b"msgpack"), ("m:created", b"1000"), ("a:n", b"\x01")]);
    let _: () = redis::cmd("SET").arg(&key).arg(&named).query(&mut conn).unwrap();
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(loaded.data.get("n"), Some(&1.into()));
    loaded.data.insert("n".into(), 2.into());
    assert!(matches!(block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap(), SaveOutcome::Saved { .. }));
    let stored: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    let fields = read_record(&stored);
    assert_eq!(fields["m:codec"], "msgpack");
    assert_eq!(fields["a:n"].as_bytes(), b"\x02");
}

#[test]
fn a_corrupt_value_is_reported_and_removed() {
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("ok", 1.into())]))).unwrap();
    let key = storage_key(&store.config().key_prefix, &id).unwrap();
    let mut conn = redis_conn(&url);
    // A readable record whose value for "broken" is not MessagePack.
    let record = write_record(&[("m:codec", b"msgpack"), ("a:ok", &[1]), ("a:broken", &[0xc1, 0xff])]);
    let _: () = redis::cmd("SET").arg(&key).arg(&record).query(&mut conn).unwrap();
    let err = block_on(store.load(&id)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Codec);
    assert!(!err.is_temporary());
    assert!(err.message().contains("broken") && err.message().contains("removed"), "{}", err.message());
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
    assert_eq!(exists, 0, "the corrupt session was kept");
    assert_eq!(block_on(store.load(&id)).unwrap(), None);
    assert_eq!(store.stats().errors.iter().find(|(k, _)| *k == "codec").unwrap().1, 1);

    // A record that is not even a readable map: removed by every path that
    // reads it, and reported by both loads (a plain one and a per-request
    // window's script); a save finds the session gone, a listing's peek skips it.
    for (n, path) in ["load", "explicit window", "save", "peek"].into_iter().enumerate() {
        let (id, _) = block_on(store.create(&data(&[("ok", 1.into())]))).unwrap();
        let key = storage_key(&store.config().key_prefix, &id).unwrap();
        let _: () = redis::cmd("SET").arg(&key).arg(&b"SKv1\x82\xa4a:ok"[..]).query(&mut conn).unwrap();
        match n {
            0 => assert_eq!(block_on(store.load(&id)).unwrap_err().kind(), ErrorKind::Codec),
            1 => {
                let err = block_on(store.with_idle_ttl(Some(Duration::from_secs(60))).load(&id)).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Codec, "{err}");
                assert!(err.to_string().contains("removed"), "{err}");
            }
            3 => {
                let handle = key.strip_prefix(store.config().key_prefix.as_str()).unwrap();
                assert!(block_on(store.peek_handle(handle)).unwrap().is_none());
            }
            _ => {
                let mut baseline = sessionkeeper_core::Baseline::empty(sessionkeeper_core::Codec::Msgpack);
                let outcome = block_on(store.save(&id, &mut baseline, &data(&[("x", 1.into())]))).unwrap();
                assert_eq!(outcome, SaveOutcome::Gone);
            }
        }
        let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
        assert_eq!(exists, 0, "{path}: the corrupt record was kept");
    }

    // The merge splices the record with its own reading of names and values:
    // a truncated name, a value longer than the record, trailing bytes.
    let shapes: [&[u8]; 3] = [b"SKv1\x81\xa6a:o", b"SKv1\x81\xa4a:ok\xc4\x05ab", b"SKv1\x81\xa4a:ok\xc4\x01\x01\x00"];
    for shape in shapes {
        let (id, _) = block_on(store.create(&data(&[("ok", 1.into())]))).unwrap();
        let key = storage_key(&store.config().key_prefix, &id).unwrap();
        let _: () = redis::cmd("SET").arg(&key).arg(shape).query(&mut conn).unwrap();
        let mut baseline = sessionkeeper_core::Baseline::empty(sessionkeeper_core::Codec::Msgpack);
        let outcome = block_on(store.save(&id, &mut baseline, &data(&[("x", 1.into())]))).unwrap();
        assert_eq!(outcome, SaveOutcome::Gone, "{shape:?}");
        let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
        assert_eq!(exists, 0, "{shape:?}: the corrupt record was kept");
    }
}

/// A record as the scripts write it: `SKv1`, a map of str name -> bin value.
fn write_record(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"SKv1".to_vec();
    rmp::encode::write_map_len(&mut out, fields.len() as u32).unwrap();
    for (name, value) in fields {
        rmp::encode::write_str(&mut out, name).unwrap();
        rmp::encode::write_bin(&mut out, value).unwrap();
    }
    out
}

/// The fields of a stored record, read with a stock MessagePack reader.
fn read_record(stored: &[u8]) -> std::collections::HashMap<String, String> {
    let mut rd = stored.strip_prefix(b"SKv1").expect("the record starts with the magic");
    let n = rmp::decode::read_map_len(&mut rd).unwrap();
    let mut fields = std::collections::HashMap::new();
    for _ in 0..n {
        let len = rmp::decode::read_str_len(&mut rd).unwrap() as usize;
        let (name, rest) = rd.split_at(len);
        rd = rest;
        let len = rmp::decode::read_bin_len(&mut rd).unwrap() as usize;
        let (value, rest) = rd.split_at(len);
        rd = rest;
        fields.insert(String::from_utf8(name.to_vec()).unwrap(), String::from_utf8_lossy(value).into_owned());
    }
    assert!(rd.is_empty());
    fields
}

#[test]
fn a_non_session_value_under_the_key_is_no_session() {
    // E.g. a peer store's string value under the same key name.
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let id = sessionkeeper_core::generate_id().unwrap();
    let key = storage_key(&store.config().key_prefix, &id).unwrap();
    let mut conn = redis_conn(&url);
    let _: () = redis::cmd("SET").arg(&key).arg("\x04\x08{\x00").query(&mut conn).unwrap();
    assert_eq!(block_on(store.load(&id)).unwrap(), None);
    assert!(!block_on(store.exists(&id)).unwrap());
    assert!(!block_on(store.touch(&id)).unwrap());
    let mut baseline = sessionkeeper_core::Baseline::empty(sessionkeeper_core::Codec::Msgpack);
    assert_eq!(block_on(store.save(&id, &mut baseline, &data(&[("x", 1.into())]))).unwrap(), SaveOutcome::Gone);
    assert!(block_on(store.insert(&id, &data(&[]))).unwrap().is_none(), "overwrote a foreign value");
    // legacy_delete removes a peer's string under our key name ...
    let sources = [sessionkeeper_core::LegacyKey::PrivateId(store.config().key_prefix.clone())];
    block_on(store.legacy_delete(&id, &sources)).unwrap();
    let left: i64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
    assert_eq!(left, 0);
    // ... but never a session of ours.
    assert!(block_on(store.insert(&id, &data(&[("mine", true.into())]))).unwrap().is_some());
    block_on(store.legacy_delete(&id, &sources)).unwrap();
    assert!(block_on(store.exists(&id)).unwrap());
}

#[test]
fn redis_down_is_a_temporary_connection_error_without_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let store = Store::from_url_and_options("redis://user:s3cretpw@127.0.0.1:1/0", [("connect_timeout", "500ms")]).unwrap();
    let id = sessionkeeper_core::generate_id().unwrap();
    let err = returns_within(Duration::from_secs(30), move || block_on(store.load(&id)).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.is_temporary());
    assert!(!err.to_string().contains("s3cretpw"), "{err}");
}

#[test]
fn a_server_that_never_answers_is_bounded_by_the_timeouts() {
    // Accepts connections and never replies: a hung server or a black-holed
    // address behind a load balancer.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let store = Store::from_url_and_options(
        &format!("redis://127.0.0.1:{port}"),
        [("connect_timeout", "300ms"), ("command_timeout", "300ms")],
    )
    .unwrap();
    let id = sessionkeeper_core::generate_id().unwrap();
    let err = returns_within(Duration::from_secs(30), move || block_on(store.load(&id)).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
}

#[test]
fn wrong_credentials_and_missing_permissions_are_auth_errors() {
    let Some(url) = standalone_url() else { return };
    let mut admin = redis_conn(&url);
    let user = format!("sk_{}", &sessionkeeper_core::generate_id().unwrap()[..8]);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(">right-password")
        .arg("~*")
        .arg("+@all")
        .arg("-evalsha")
        .arg("-eval")
        .arg("-getex")
        .query(&mut admin)
        .unwrap();
    let hp = host_port(&url);
    let wrong = Store::from_url_and_options(&format!("redis://{user}:wrong-password@{hp}"), [("key_prefix", "sktest:auth:")]).unwrap();
    let id = sessionkeeper_core::generate_id().unwrap();
    let err = block_on(wrong.load(&id)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.to_string().contains("wrong-password"));
    let limited = Store::from_url_and_options(&format!("redis://{user}:right-password@{hp}"), [("key_prefix", "sktest:auth:")]).unwrap();
    let err = block_on(limited.load(&id)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let _: () = redis::cmd("ACL").arg("DELUSER").arg(&user).query(&mut admin).unwrap();
}

#[test]
fn cluster_spreads_sessions_over_every_master() {
    let Some((url, _)) = Target::Cluster.url() else { return };
    let store = Target::Cluster.store(&[]).unwrap();
    let ids: Vec<String> = (0..60).map(|i| block_on(store.create(&data(&[("i", Value::Int(i))]))).unwrap().0).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(block_on(store.load(id)).unwrap().unwrap().data.get("i"), Some(&Value::Int(i as i64)));
    }
    // Every master holds some of them: the keys are not pinned to one slot.
    let first = url.trim_start_matches("redis+cluster://").split(',').next().unwrap().to_string();
    let mut conn = redis_conn(&format!("redis://{first}"));
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
    let masters = nodes.lines().filter(|l| l.contains("master") && !l.contains("fail")).count();
    let prefix = store.config().key_prefix.clone();
    let mut per_master = 0;
    for line in nodes.lines().filter(|l| l.contains("master") && !l.contains("fail")) {
        let addr = line.split_whitespace().nth(1).unwrap().split('@').next().unwrap();
        let mut c = redis_conn(&format!("redis://{addr}"));
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut c).unwrap();
        assert!(!keys.is_empty(), "master {addr} holds none of 60 sessions");
        per_master += keys.len();
    }
    assert_eq!(masters, 3);
    assert_eq!(per_master, 60);
}

/// Migration from a peer store, with its key written the way the peer
/// writes it: connect-redis / Flask-Session style `prefix + id`. `raw` runs
/// one command on the topology behind the engine's back.
fn migrates_a_plain_peer_key(t: Target, raw: &mut dyn FnMut(&mut redis::Cmd) -> redis::Value) {
    use sessionkeeper_core::LegacyKey;
    let store = t.store(&[]).unwrap();
    let id = "sid_from_express_session_0123456789abcd".to_string();
    let peer_prefix = format!("sess:{}:", common::unique());
    let sources = [LegacyKey::PrivateId("nowhere:".into()), LegacyKey::Plain(peer_prefix.clone())];
    let peer_key = format!("{peer_prefix}{id}");
    raw(redis::cmd("SET").arg(&peer_key).arg(r#"{"cookie":{},"user":"ada"}"#));

    assert_eq!(block_on(store.load(&id)).unwrap(), None);
    let found = block_on(store.legacy_read(&id, &sources)).unwrap().expect("peer value found");
    assert_eq!(found.source, 1);
    assert_eq!(found.bytes, br#"{"cookie":{},"user":"ada"}"#);
    // The adapter decodes the peer's format (JSON here) and hands the data over.
    let migrated = data(&[("user", "ada".into())]);
    assert!(block_on(store.legacy_migrate(&id, &sources, &migrated)).unwrap().is_some());
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data, migrated);
    assert_eq!(raw(redis::cmd("EXISTS").arg(&peer_key)), redis::Value::Int(0), "the peer's key was kept");
    // A second migration (a concurrent request) does not overwrite.
    assert!(block_on(store.legacy_migrate(&id, &sources, &data(&[]))).unwrap().is_none());
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data, migrated);
    block_on(store.destroy(&id)).unwrap();
}

#[test]
fn migration_from_a_plain_peer_key_standalone() {
    let Some(url) = standalone_url() else { return };
    let mut conn = redis_conn(&url);
    migrates_a_plain_peer_key(Target::Standalone, &mut |cmd| cmd.query(&mut conn).unwrap());
}

#[test]
fn migration_from_a_plain_peer_key_cluster() {
    let Some((url, _)) = Target::Cluster.url() else { return };
    let nodes: Vec<String> =
        url.trim_start_matches("redis+cluster://").split(',').map(|n| format!("redis://{n}")).collect();
    let client = redis::cluster::ClusterClient::new(nodes).unwrap();
    let mut conn = block_on(client.get_async_connection()).unwrap();
    migrates_a_plain_peer_key(Target::Cluster, &mut |cmd| block_on(cmd.query_async(&mut conn)).unwrap());
}

#[test]
fn migration_replaces_a_peer_value_under_our_own_key_name() {
    // redis-session-store 0.11.6 with key_prefix "app:" writes a Marshal
    // string at exactly the key we use for the same prefix.
    use sessionkeeper_core::LegacyKey;
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let prefix = store.config().key_prefix.clone();
    let id = sessionkeeper_core::generate_id().unwrap();
    let key = storage_key(&prefix, &id).unwrap();
    let marshal = b"\x04\x08{\x06I\"\x0ccounter\x06:\x06ETi\x08".to_vec();
    let mut conn = redis_conn(&url);
    let _: () = redis::cmd("SET").arg(&key).arg(&marshal).query(&mut conn).unwrap();
    let sources = [LegacyKey::PrivateId(prefix.clone())];

    assert_eq!(block_on(store.load(&id)).unwrap(), None);
    assert_eq!(block_on(store.legacy_read(&id, &sources)).unwrap().unwrap().bytes, marshal);
    let migrated = data(&[("counter", 3.into())]);
    assert!(block_on(store.legacy_migrate(&id, &sources, &migrated)).unwrap().is_some());
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data, migrated);
    let stored: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    assert!(stored.starts_with(b"SKv1"));
    // Our own record is never mistaken for a peer value.
    assert_eq!(block_on(store.legacy_read(&id, &sources)).unwrap(), None);
}

#[test]
fn legacy_lookups_of_malformed_ids_send_nothing() {
    use sessionkeeper_core::LegacyKey;
    let Some(store) = Target::Standalone.store(&[]) else { return };
    let trips = store.stats().round_trips.count;
    for id in malformed_ids() {
        assert_eq!(block_on(store.legacy_read(&id, &[LegacyKey::Plain("sess:".into())])).unwrap(), None);
        block_on(store.legacy_delete(&id, &[LegacyKey::Plain("sess:".into())])).unwrap();
    }
    assert_eq!(store.stats().round_trips.count, trips);
}

#[test]
fn a_plain_load_leaves_the_ttl_where_the_rules_put_it() {
    // The GETEX slides by the store's window; the deadline and a session's
    // own window are applied right after it, before load returns.
    let Some(url) = standalone_url() else { return };
    let mut conn = redis_conn(&url);
    let pttl = |conn: &mut redis::Connection, store: &Store, id: &str| -> i64 {
        redis::cmd("PTTL").arg(storage_key(&store.config().key_prefix, id).unwrap()).query(conn).unwrap()
    };
    let capped = Target::Standalone.store(&[("idle_ttl", "1h"), ("absolute_ttl", "20s")]).unwrap();
    let (id, _) = block_on(capped.create(&data(&[]))).unwrap();
    block_on(capped.load(&id)).unwrap().unwrap();
    let ttl = pttl(&mut conn, &capped, &id);
    assert!(ttl > 0 && ttl <= 20_000, "the deadline did not cap the slide: {ttl}");

    let store = Target::Standalone.store(&[("idle_ttl", "1h")]).unwrap();
    let (id, _) = block_on(store.with_idle_ttl(Some(Duration::from_secs(30))).create(&data(&[]))).unwrap();
    block_on(store.load(&id)).unwrap().unwrap();
    let ttl = pttl(&mut conn, &store, &id);
    assert!(ttl > 0 && ttl <= 30_000, "the session's own window was not kept: {ttl}");
    let (id, _) = block_on(store.with_idle_ttl(None).create(&data(&[]))).unwrap();
    block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(pttl(&mut conn, &store, &id), -1, "a session without sliding expiry got one");

    // The common case costs the GETEX alone.
    let (id, _) = block_on(store.create(&data(&[]))).unwrap();
    let before = store.stats().round_trips.count;
    block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(store.stats().round_trips.count - before, 1);
    let ttl = pttl(&mut conn, &store, &id);
    assert!(ttl > 3_590_000, "{ttl}");
}

#[test]
fn blocking_loads_use_their_own_socket_with_the_same_rules() {
    use sessionkeeper_core::BlockingStore;
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[("idle_ttl", "1h")]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("user_id", 42.into())]))).unwrap();
    let (b, a) = (blocking.load(&id).unwrap().unwrap(), block_on(store.load(&id)).unwrap().unwrap());
    assert_eq!((&b.data, &b.baseline, b.meta.created_at_ms, b.meta.deadline_ms), (&a.data, &a.baseline, a.meta.created_at_ms, a.meta.deadline_ms));
    assert!((b.meta.expires_at_ms.unwrap() - a.meta.expires_at_ms.unwrap()).abs() < 5_000);
    assert_eq!(blocking.load(&sessionkeeper_core::generate_id().unwrap()).unwrap(), None);
    assert_eq!(blocking.load("not a valid id").unwrap(), None);

    // One GETEX, on a socket other than the runtime's connection.
    block_on(store.touch(&id)).unwrap(); // the script's first use loads it
    let monitor = Monitor::start(&url);
    blocking.load(&id).unwrap().unwrap();
    block_on(store.touch(&id)).unwrap();
    let marker = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker)).unwrap();
    let lines = monitor.until(&storage_key(&store.config().key_prefix, &marker).unwrap());
    let key = storage_key(&store.config().key_prefix, &id).unwrap();
    let sent = client_commands(&lines, &key);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(sent[0].contains("\"GETEX\""), "{sent:#?}");
    let client = |line: &str| line.split(['[', ']']).nth(1).unwrap_or_default().to_string();
    assert_ne!(client(sent[0]), client(sent[1]), "the blocking load went through the runtime's connection");

    // The deadline and a session's own window are applied as by `load`.
    let mut conn = redis_conn(&url);
    let capped = BlockingStore::new(Target::Standalone.store(&[("idle_ttl", "1h"), ("absolute_ttl", "20s")]).unwrap());
    let (cid, _) = block_on(capped.store().create(&data(&[]))).unwrap();
    capped.load(&cid).unwrap().unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(storage_key(&capped.store().config().key_prefix, &cid).unwrap()).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 20_000, "{ttl}");
    let (own, _) = block_on(store.with_idle_ttl(Some(Duration::from_secs(30))).create(&data(&[]))).unwrap();
    blocking.load(&own).unwrap().unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(storage_key(&store.config().key_prefix, &own).unwrap()).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 30_000, "{ttl}");

    // A corrupt record: reported and removed.
    let record = write_record(&[("m:codec", b"msgpack"), ("a:broken", &[0xc1])]);
    let _: () = redis::cmd("SET").arg(&key).arg(&record).query(&mut conn).unwrap();
    let err = blocking.load(&id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Codec);
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
    assert_eq!(exists, 0);
    // A peer's value under our key: no session, left alone.
    let _: () = redis::cmd("SET").arg(&key).arg("\x04\x08{\x00").query(&mut conn).unwrap();
    assert_eq!(blocking.load(&id).unwrap(), None);
    let _: () = redis::cmd("DEL").arg(&key).query(&mut conn).unwrap();
    let _: () = redis::cmd("HSET").arg(&key).arg("f").arg("v").query(&mut conn).unwrap();
    assert_eq!(blocking.load(&id).unwrap(), None, "a hash under our key is no session");
}

#[test]
fn blocking_loads_authenticate_and_select_the_database() {
    use sessionkeeper_core::BlockingStore;
    let Some(url) = standalone_url() else { return };
    let mut admin = redis_conn(&url);
    let user = format!("sk_{}", &sessionkeeper_core::generate_id().unwrap()[..8]);
    let _: () = redis::cmd("ACL").arg("SETUSER").arg(&user).arg("on").arg(">pw-direct").arg("~*").arg("+@all").query(&mut admin).unwrap();
    let hp = host_port(&url);
    let store = Store::from_url_and_options(&format!("redis://{user}:pw-direct@{hp}/3"), [("key_prefix", "sktest:direct:")]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("db", 3.into())]))).unwrap();
    assert_eq!(blocking.load(&id).unwrap().unwrap().data.get("db"), Some(&Value::Int(3)));
    let wrong = BlockingStore::new(Store::from_url_and_options(&format!("redis://{user}:nope@{hp}/3"), [("key_prefix", "sktest:direct:")]).unwrap());
    let err = wrong.load(&id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(!err.to_string().contains("nope"));
    let _: () = redis::cmd("ACL").arg("DELUSER").arg(&user).query(&mut admin).unwrap();
}

#[test]
fn a_save_swaps_an_unchanged_record_and_merges_a_changed_one() {
    // The script GETs the record once, to compare it with the client's copy
    // and, when another request changed it meanwhile, to merge into it
    // (MONITOR tags the script's own commands "lua").
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let (id, _) = block_on(store.create(&data(&[("a", 0.into()), ("b", 0.into())]))).unwrap();
    let mut warm = block_on(store.load(&id)).unwrap().unwrap();
    warm.data.insert("warm".into(), true.into());
    block_on(store.save(&id, &mut warm.baseline, &warm.data)).unwrap();
    let key = storage_key(&store.config().key_prefix, &id).unwrap();
    let monitor = Monitor::start(&url);

    let mut first = block_on(store.load(&id)).unwrap().unwrap();
    let mut second = block_on(store.load(&id)).unwrap().unwrap();
    first.data.insert("a".into(), 1.into());
    second.data.insert("b".into(), 2.into());
    block_on(store.save(&id, &mut first.baseline, &first.data)).unwrap();
    block_on(store.save(&id, &mut second.baseline, &second.data)).unwrap();
    // The second save merged: its baseline no longer knows the bytes, so a
    // further save of it merges again (and still keeps the other's change).
    second.data.insert("c".into(), 3.into());
    block_on(store.save(&id, &mut second.baseline, &second.data)).unwrap();

    let marker = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker)).unwrap();
    let lines = monitor.until(&storage_key(&store.config().key_prefix, &marker).unwrap());
    let mut gets_per_save = Vec::new();
    for line in lines.iter().filter(|l| l.contains(&key)) {
        if line.contains("\"EVALSHA\"") || line.contains("\"evalsha\"") {
            gets_per_save.push(0);
        } else if line.contains(" lua]") && line.contains("\"GET\"") {
            *gets_per_save.last_mut().expect("a script command before any EVALSHA") += 1;
        }
    }
    // Swapped; compared, then merged; merged without a compare (no swap was
    // sent: its client line carries empty swap args).
    assert_eq!(gets_per_save, vec![1, 1, 1], "{lines:#?}");
    // The swap works out the expiry on the client; a merge asks for the time
    // only when a deadline caps the window (none here: `absolute_ttl` unset).
    // (A script's commands follow its EVALSHA line: scripts run atomically.)
    let mut times_per_save = Vec::new();
    let mut ours = false;
    for line in &lines {
        if line.contains("\"EVALSHA\"") || line.contains("\"evalsha\"") {
            ours = line.contains(&key);
            if ours {
                times_per_save.push(0);
            }
        } else if !line.contains(" lua]") {
            ours = false;
        } else if ours && line.contains("\"TIME\"") {
            *times_per_save.last_mut().unwrap() += 1;
        }
    }
    assert_eq!(times_per_save, vec![0, 0, 0], "{lines:#?}");
    let saves: Vec<&String> = lines.iter().filter(|l| l.contains(&key) && l.contains("\"EVALSHA\"")).collect();
    assert!(!saves[0].contains("\"\" \"\" \"\"") && saves[2].contains("\"\" \"\" \"\""), "{saves:#?}");
    let last = block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(last.data.get("a"), Some(&Value::Int(1)));
    assert_eq!(last.data.get("b"), Some(&Value::Int(2)));
    assert_eq!(last.data.get("c"), Some(&Value::Int(3)));
}

#[test]
fn a_contended_session_swaps_against_the_record_this_process_last_wrote() {
    // Once a save of a session had to merge, this process remembers what its
    // own saves of it write: a save whose load came before such a save
    // swaps against that record (the server merges only changes made
    // elsewhere), and no change is lost either way.
    use sessionkeeper_core::BlockingStore;
    if standalone_url().is_none() {
        return;
    }
    let store = Target::Standalone.store(&[]).unwrap();
    let elsewhere = Target::Standalone.store_with_prefix(&store.config().key_prefix, &[]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("start", 0.into())]))).unwrap();
    let merges = || store.stats().merged_saves;
    let load = |s: &Store| block_on(s.load(&id)).unwrap().unwrap();
    let save = |s: &Store, loaded: &mut sessionkeeper_core::Loaded, name: &str| {
        loaded.data.insert(name.into(), Value::Int(1));
        assert!(matches!(block_on(s.save(&id, &mut loaded.baseline, &loaded.data)).unwrap(), SaveOutcome::Saved { .. }), "{name}");
    };

    // Not yet remembered: a stale save merges.
    let (mut a, mut b) = (load(&store), load(&store));
    save(&store, &mut a, "a");
    save(&store, &mut b, "b");
    assert_eq!(merges(), 1);

    // Loads that came before this process's own saves: chained swaps.
    let (mut x, mut y, mut z) = (load(&store), load(&store), load(&store));
    let mut fresh = load(&store);
    save(&store, &mut fresh, "c");
    save(&store, &mut x, "d");
    save(&store, &mut y, "e");
    assert_eq!(merges(), 1, "saves after this process's own merged");
    // Saved twice from one baseline: chained again.
    save(&store, &mut y, "e2");
    assert_eq!(merges(), 1);

    // Another process's save makes the guess wrong: the server merges.
    let mut other = load(&elsewhere);
    save(&elsewhere, &mut other, "f");
    save(&store, &mut z, "g");
    assert_eq!(merges(), 2, "a save after another process's must merge");

    // The same on a thread's own socket (Ruby, Python, C).
    let mut w = blocking.load(&id).unwrap().unwrap();
    let mut v = blocking.load(&id).unwrap().unwrap();
    w.data.insert("h".into(), 1.into());
    blocking.save(&id, &mut w.baseline, &w.data).unwrap();
    v.data.insert("i".into(), 1.into());
    blocking.save(&id, &mut v.baseline, &v.data).unwrap();
    assert_eq!(merges(), 2, "a blocking save after this process's own merged");

    let last = load(&elsewhere);
    for name in ["start", "a", "b", "c", "d", "e", "e2", "f", "g", "h", "i"] {
        assert_eq!(last.data.get(name), Some(&Value::Int(if name == "start" { 0 } else { 1 })), "{name} lost: {:?}", last.data);
    }

    // A logout is never undone by a save that guesses the record.
    let mut stale = load(&store);
    let mut u = load(&store);
    save(&store, &mut u, "j");
    assert!(block_on(elsewhere.destroy(&id)).unwrap());
    stale.data.insert("late".into(), 1.into());
    assert_eq!(block_on(store.save(&id, &mut stale.baseline, &stale.data)).unwrap(), SaveOutcome::Gone);
    assert!(block_on(store.load(&id)).unwrap().is_none(), "the session came back");
}

#[test]
fn a_swap_save_sets_the_ttl_by_the_same_rules() {
    // The client works out the swapped record's time to live (its window,
    // capped by the deadline); past the deadline it sends no swap and the
    // server ends the session.
    ttl_rules_of_a_save(SaveKind::Swap);
}

#[test]
fn a_merging_save_sets_the_ttl_by_the_same_rules() {
    // The server works out the merged record's time to live: the same rules
    // as the client's swap.
    ttl_rules_of_a_save(SaveKind::Merge);
}

#[test]
fn a_chained_save_sets_the_ttl_by_the_same_rules() {
    // The client works out the time to live from the record its own earlier
    // save wrote: the same rules again.
    ttl_rules_of_a_save(SaveKind::Chained);
}

#[derive(Clone, Copy, PartialEq)]
enum SaveKind {
    /// Nothing changed the record since the save's load.
    Swap,
    /// Another save changed it meanwhile: the server merges.
    Merge,
    /// This process's own save changed it meanwhile, in a session whose
    /// saves had merged before: the save swaps against that save's record.
    Chained,
}

impl SaveKind {
    fn name(self) -> &'static str {
        match self {
            SaveKind::Swap => "swap",
            SaveKind::Merge => "merge",
            SaveKind::Chained => "chained",
        }
    }
}

/// The time to live after a save of each kind.
fn ttl_rules_of_a_save(kind: SaveKind) {
    let Some(url) = standalone_url() else { return };
    let mut conn = redis_conn(&url);
    let pttl = |conn: &mut redis::Connection, store: &Store, id: &str| -> i64 {
        redis::cmd("PTTL").arg(storage_key(&store.config().key_prefix, id).unwrap()).query(conn).unwrap()
    };
    let change = |store: &Store, id: &str, name: &str, before: Option<&dyn Fn()>| {
        let mut loaded = block_on(store.load(id)).unwrap().unwrap();
        if let Some(before) = before {
            before();
        }
        loaded.data.insert(name.into(), Value::Int(loaded.data.len() as i64));
        block_on(store.save(id, &mut loaded.baseline, &loaded.data)).unwrap()
    };
    let save_change = |store: &Store, id: &str| {
        if kind == SaveKind::Chained {
            // A first merge makes this process remember the session's saves.
            change(store, id, "warm", Some(&|| assert!(matches!(change(store, id, "warm2", None), SaveOutcome::Saved { .. }))));
        }
        let merged = store.stats().merged_saves;
        let outcome = match kind {
            SaveKind::Swap => change(store, id, "n", None),
            _ => change(store, id, "n", Some(&|| assert!(matches!(change(store, id, "other", None), SaveOutcome::Saved { .. })))),
        };
        if matches!(outcome, SaveOutcome::Saved { .. }) {
            let expected = if kind == SaveKind::Merge { 1 } else { 0 };
            assert_eq!(store.stats().merged_saves - merged, expected, "merges of a {} save", kind.name());
            if kind != SaveKind::Swap {
                let both = block_on(store.load(id)).unwrap().unwrap();
                assert!(both.data.contains_key("other") && both.data.contains_key("n"), "lost a change: {:?}", both.data);
            }
        }
        outcome
    };
    let capped = Target::Standalone.store(&[("idle_ttl", "1h"), ("absolute_ttl", "20s")]).unwrap();
    let (id, _) = block_on(capped.create(&data(&[]))).unwrap();
    assert!(matches!(save_change(&capped, &id), SaveOutcome::Saved { .. }));
    let ttl = pttl(&mut conn, &capped, &id);
    assert!(ttl > 0 && ttl <= 20_000, "the deadline did not cap the save's expiry: {ttl}");

    let store = Target::Standalone.store(&[("idle_ttl", "1h")]).unwrap();
    let (id, _) = block_on(store.with_idle_ttl(Some(Duration::from_secs(30))).create(&data(&[]))).unwrap();
    save_change(&store, &id);
    let ttl = pttl(&mut conn, &store, &id);
    assert!(ttl > 25_000 && ttl <= 30_000, "the session's own window was not kept: {ttl}");
    let (id, _) = block_on(store.with_idle_ttl(None).create(&data(&[]))).unwrap();
    save_change(&store, &id);
    assert_eq!(pttl(&mut conn, &store, &id), -1, "a session without sliding expiry got one");
    let (id, _) = block_on(store.create(&data(&[]))).unwrap();
    save_change(&store, &id);
    let ttl = pttl(&mut conn, &store, &id);
    assert!(ttl > 3_590_000, "{ttl}");

    let short = Target::Standalone.store(&[("idle_ttl", "1h"), ("absolute_ttl", "1s")]).unwrap();
    let (id, _) = block_on(short.create(&data(&[]))).unwrap();
    let mut loaded = block_on(short.load(&id)).unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    loaded.data.insert("late".into(), true.into());
    assert_eq!(block_on(short.save(&id, &mut loaded.baseline, &loaded.data)).unwrap(), SaveOutcome::Gone);
    assert_eq!(pttl(&mut conn, &short, &id), -2, "a session past its deadline was kept");
}

#[test]
fn blocking_saves_run_the_script_on_their_own_socket() {
    use sessionkeeper_core::BlockingStore;
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[]).unwrap();
    let blocking = BlockingStore::new(store.clone());
    let (id, _) = block_on(store.create(&data(&[("a", 0.into()), ("b", 0.into())]))).unwrap();
    let key = storage_key(&store.config().key_prefix, &id).unwrap();

    let mut first = blocking.load(&id).unwrap().unwrap();
    let mut second = blocking.load(&id).unwrap().unwrap();
    first.data.insert("a".into(), 1.into());
    assert!(matches!(blocking.save(&id, &mut first.baseline, &first.data).unwrap(), SaveOutcome::Saved { .. }));

    // A concurrent change is merged, not overwritten; the save goes out on
    // the blocking socket, not the runtime's connection.
    block_on(store.touch(&id)).unwrap();
    let monitor = Monitor::start(&url);
    second.data.insert("b".into(), 2.into());
    assert!(matches!(blocking.save(&id, &mut second.baseline, &second.data).unwrap(), SaveOutcome::Saved { .. }));
    block_on(store.touch(&id)).unwrap();
    let marker = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker)).unwrap();
    let lines = monitor.until(&storage_key(&store.config().key_prefix, &marker).unwrap());
    let sent = client_commands(&lines, &key);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let client = |line: &str| line.split(['[', ']']).nth(1).unwrap_or_default().to_string();
    assert_ne!(client(sent[0]), client(sent[1]), "the blocking save went through the runtime's connection");
    let now = blocking.load(&id).unwrap().unwrap();
    assert_eq!((now.data.get("a"), now.data.get("b")), (Some(&Value::Int(1)), Some(&Value::Int(2))));

    // A session destroyed meanwhile is gone, not re-created.
    let mut held = blocking.load(&id).unwrap().unwrap();
    assert!(blocking.destroy(&id).unwrap());
    held.data.insert("c".into(), 3.into());
    assert_eq!(blocking.save(&id, &mut held.baseline, &held.data).unwrap(), SaveOutcome::Gone);
    assert_eq!(blocking.load(&id).unwrap(), None);
}

#[test]
fn a_load_window_spares_the_correction_of_sessions_that_carry_it() {
    use sessionkeeper_core::BlockingStore;
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[("idle_ttl", "1h")]).unwrap();
    let window = Some(Duration::from_secs(30));
    let (own, _) = block_on(store.with_idle_ttl(window).create(&data(&[]))).unwrap();
    let (plain, _) = block_on(store.create(&data(&[]))).unwrap();
    let hinted = store.with_load_window(window);
    block_on(store.touch(&own)).unwrap(); // the scripts are loaded before MONITOR starts

    let monitor = Monitor::start(&url);
    block_on(hinted.load(&own)).unwrap().unwrap();
    BlockingStore::new(hinted.clone()).load(&own).unwrap().unwrap();
    block_on(hinted.load(&plain)).unwrap().unwrap();
    let marker = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker)).unwrap();
    let lines = monitor.until(&storage_key(&store.config().key_prefix, &marker).unwrap());

    // Its own window: one GETEX sliding by it, and nothing else, on either path.
    let sent = client_commands(&lines, &storage_key(&store.config().key_prefix, &own).unwrap());
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(sent.iter().all(|c| c.contains("\"GETEX\"") && c.contains("\"30000\"")), "{sent:#?}");
    // No window of its own: the store's idle_ttl, set right after.
    let sent = client_commands(&lines, &storage_key(&store.config().key_prefix, &plain).unwrap());
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(sent[1].contains("\"PEXPIREAT\""), "{sent:#?}");
    let mut conn = redis_conn(&url);
    let pttl: i64 = redis::cmd("PTTL").arg(storage_key(&store.config().key_prefix, &plain).unwrap()).query(&mut conn).unwrap();
    assert!(pttl > 3_590_000, "{pttl}");
}

#[test]
fn loads_remember_a_sessions_own_window_so_later_loads_need_no_correction() {
    use sessionkeeper_core::BlockingStore;
    let Some(url) = standalone_url() else { return };
    let store = Target::Standalone.store(&[("idle_ttl", "1h")]).unwrap();
    // Another process: same Redis and prefix, a memory of its own.
    let elsewhere = Target::Standalone.store_with_prefix(&store.config().key_prefix, &[("idle_ttl", "1h")]).unwrap();
    let (own, _) = block_on(store.with_idle_ttl(Some(Duration::from_secs(30))).create(&data(&[]))).unwrap();
    let key = storage_key(&store.config().key_prefix, &own).unwrap();
    block_on(store.touch(&own)).unwrap(); // the scripts are loaded before MONITOR starts
    let pttl = |conn: &mut redis::Connection| -> i64 { redis::cmd("PTTL").arg(&key).query(conn).unwrap() };
    let mut conn = redis_conn(&url);

    let monitor = Monitor::start(&url);
    block_on(store.load(&own)).unwrap().unwrap(); // learns the window
    block_on(store.load(&own)).unwrap().unwrap();
    BlockingStore::new(store.clone()).load(&own).unwrap().unwrap();
    let marker = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker)).unwrap();
    let lines = monitor.until(&storage_key(&store.config().key_prefix, &marker).unwrap());
    let sent = client_commands(&lines, &key);
    assert_eq!(sent.len(), 4, "{sent:#?}");
    assert!(sent[0].contains("\"GETEX\"") && sent[0].contains("\"3600000\"") && sent[1].contains("\"PEXPIREAT\""), "{sent:#?}");
    assert!(sent[2..].iter().all(|c| c.contains("\"GETEX\"") && c.contains("\"30000\"")), "{sent:#?}");
    assert!((25_000..=30_000).contains(&pttl(&mut conn)));

    // The window changed where this process could not see it: the guess is
    // wrong once, and corrected, never left wrong.
    let mut held = block_on(elsewhere.load(&own)).unwrap().unwrap();
    let sixty = elsewhere.with_idle_ttl(Some(Duration::from_secs(60)));
    block_on(sixty.touch(&own)).unwrap();
    let monitor = Monitor::start(&url);
    block_on(store.load(&own)).unwrap().unwrap();
    assert!((55_000..=60_000).contains(&pttl(&mut conn)));
    block_on(store.load(&own)).unwrap().unwrap();
    let marker = sessionkeeper_core::generate_id().unwrap();
    block_on(store.exists(&marker)).unwrap();
    let lines = monitor.until(&storage_key(&store.config().key_prefix, &marker).unwrap());
    let sent: Vec<_> = client_commands(&lines, &key).into_iter().filter(|c| !c.contains("\"PTTL\"")).collect();
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert!(sent[0].contains("\"30000\"") && sent[1].contains("\"PEXPIREAT\"") && sent[2].contains("\"60000\""), "{sent:#?}");

    // Back to the store's window (here by a save that sets it), and gone.
    held.data.insert("k".into(), Value::Int(1));
    let hour = elsewhere.with_idle_ttl(Some(Duration::from_secs(3600)));
    block_on(hour.save(&own, &mut held.baseline, &held.data)).unwrap();
    block_on(store.load(&own)).unwrap().unwrap();
    assert!(pttl(&mut conn) > 3_590_000);
    block_on(store.destroy(&own)).unwrap();
    assert_eq!(block_on(store.load(&own)).unwrap(), None);
}
