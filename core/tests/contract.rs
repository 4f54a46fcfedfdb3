//! The operation contract, run unchanged against every backend: memory,
//! standalone, TLS, Cluster and Sentinel.

mod common;

use std::time::Duration;

use common::{data, Target};
use sessionkeeper_core::runtime::{block_on, spawn};
use sessionkeeper_core::{ErrorKind, SaveOutcome, Timestamp, Value};

for_each_backend!(
    missing_session_loads_as_none,
    create_then_load_round_trips_every_type,
    save_writes_only_the_changed_keys,
    unchanged_save_sends_nothing,
    removed_keys_are_deleted,
    concurrent_saves_of_different_keys_both_survive_1000_trials,
    save_after_destroy_reports_gone_and_does_not_resurrect,
    insert_never_overwrites,
    idle_expiry_slides_on_load,
    absolute_deadline_is_honoured,
    touch_and_exists,
    renew_moves_the_session_to_a_new_id,
    malformed_ids_are_no_session,
    oversized_sessions_are_refused_and_nothing_is_written,
    sessions_of_another_codec_are_read_and_merged,
    stats_count_what_happened,
    listing_counting_and_clearing_sessions,
    a_per_request_window_sticks_to_the_session,
);

fn every_type() -> sessionkeeper_core::SessionData {
    let mut nested = sessionkeeper_core::Map::new();
    nested.insert("deep".into(), Value::Array(vec![Value::Int(1), Value::Nil, Value::Str("x".into())]));
    data(&[
        ("nil", Value::Nil),
        ("bool", Value::Bool(true)),
        ("int", Value::Int(-42)),
        ("big", Value::Int(i64::MAX)),
        ("float", Value::Float(3.25)),
        ("string", Value::Str("grüße ✓".into())),
        ("bytes", Value::Bytes(vec![0, 1, 254, 255])),
        ("array", Value::Array(vec![Value::Bool(false), Value::Float(-0.5)])),
        ("map", Value::Map(nested)),
        ("time", Value::Timestamp(Timestamp::new(1_763_900_000, 123_000_000).unwrap())),
        ("", Value::Str("empty key".into())),
    ])
}

fn missing_session_loads_as_none(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let id = sessionkeeper_core::generate_id().unwrap();
    assert_eq!(block_on(store.load(&id)).unwrap(), None);
    assert!(!block_on(store.exists(&id)).unwrap());
    assert!(!block_on(store.destroy(&id)).unwrap());
}

fn create_then_load_round_trips_every_type(t: Target) {
    let Some(store) = t.store(&[("idle_ttl", "1h")]) else { return };
    let original = every_type();
    let (id, _) = block_on(store.create(&original)).unwrap();
    assert_eq!(id.len(), 32);
    let loaded = block_on(store.load(&id)).unwrap().expect("session exists");
    assert_eq!(loaded.data, original);
    let meta = loaded.meta;
    let expires = meta.expires_at_ms.expect("idle ttl set");
    // The sliding expiry is one hour from the server's now.
    assert!((expires - meta.created_at_ms - 3_600_000).abs() < 60_000, "{meta:?}");
    assert_eq!(meta.deadline_ms, None);
}

fn save_writes_only_the_changed_keys(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let (id, _) = block_on(store.create(&data(&[("a", 1.into()), ("b", 2.into()), ("c", 3.into())]))).unwrap();
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    loaded.data.insert("b".into(), 20.into());
    loaded.data.insert("d".into(), "new".into());
    let outcome = block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap();
    assert_eq!(outcome, SaveOutcome::Saved { written: 2, removed: 0 });
    let again = block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(again.data, data(&[("a", 1.into()), ("b", 20.into()), ("c", 3.into()), ("d", "new".into())]));
    // The baseline now matches what is stored: saving again sends nothing.
    assert_eq!(block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap(), SaveOutcome::Unchanged);
}

fn unchanged_save_sends_nothing(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let (id, _) = block_on(store.create(&every_type())).unwrap();
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    let trips_before = store.stats().round_trips.count;
    // Same values, rebuilt from scratch (equal, not identical objects).
    let rebuilt = every_type();
    assert_eq!(block_on(store.save(&id, &mut loaded.baseline, &rebuilt)).unwrap(), SaveOutcome::Unchanged);
    assert_eq!(store.stats().round_trips.count, trips_before, "an unchanged save made a round trip");
    assert_eq!(store.stats().skipped_saves, 1);
}

fn removed_keys_are_deleted(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let (id, _) = block_on(store.create(&data(&[("keep", 1.into()), ("drop", 2.into())]))).unwrap();
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    loaded.data.shift_remove("drop");
    let outcome = block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap();
    assert_eq!(outcome, SaveOutcome::Saved { written: 0, removed: 1 });
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data, data(&[("keep", 1.into())]));
    // Removing every key keeps an empty session, which still exists.
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    loaded.data.clear();
    block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap();
    let empty = block_on(store.load(&id)).unwrap().expect("an emptied session still exists");
    assert!(empty.data.is_empty());
}

/// Two app servers (two stores, two connections) each read the session,
/// then both save at once, changing different keys. With whole-session
/// writes one change would be lost about half the time.
fn concurrent_saves_of_different_keys_both_survive_1000_trials(t: Target) {
    let prefix = format!("sktest:{}:", common::unique());
    let (Some(a), Some(b)) = (t.store_with_prefix(&prefix, &[]), t.store_with_prefix(&prefix, &[])) else { return };
    block_on(async move {
        for trial in 0..1000i64 {
            let (id, _) = a.create(&data(&[("shared", "x".into())])).await.unwrap();
            let mut la = a.load(&id).await.unwrap().unwrap();
            let mut lb = b.load(&id).await.unwrap().unwrap();
            la.data.insert("from_a".into(), trial.into());
            lb.data.insert("from_b".into(), (-trial).into());
            let (a2, b2, id_a, id_b) = (a.clone(), b.clone(), id.clone(), id.clone());
            let sa = spawn(async move { a2.save(&id_a, &mut la.baseline, &la.data).await });
            let sb = spawn(async move { b2.save(&id_b, &mut lb.baseline, &lb.data).await });
            assert!(matches!(sa.await.unwrap().unwrap(), SaveOutcome::Saved { .. }));
            assert!(matches!(sb.await.unwrap().unwrap(), SaveOutcome::Saved { .. }));
            let merged = a.load(&id).await.unwrap().unwrap().data;
            assert_eq!(merged.get("from_a"), Some(&Value::Int(trial)), "trial {trial}: a's change lost");
            assert_eq!(merged.get("from_b"), Some(&Value::Int(-trial)), "trial {trial}: b's change lost");
            assert_eq!(merged.get("shared"), Some(&Value::Str("x".into())));
            a.destroy(&id).await.unwrap();
        }
    });
}

fn save_after_destroy_reports_gone_and_does_not_resurrect(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let (id, _) = block_on(store.create(&data(&[("user_id", 7.into())]))).unwrap();
    // A slow request loaded the session; meanwhile the user logs out.
    let mut slow = block_on(store.load(&id)).unwrap().unwrap();
    assert!(block_on(store.destroy(&id)).unwrap());
    slow.data.insert("last_seen".into(), 1.into());
    assert_eq!(block_on(store.save(&id, &mut slow.baseline, &slow.data)).unwrap(), SaveOutcome::Gone);
    assert_eq!(block_on(store.load(&id)).unwrap(), None, "the logged-out session came back");
    assert_eq!(store.stats().gone_saves, 1);
}

fn insert_never_overwrites(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let id = "framework_made_id_0123456789abcdefXYZ".to_string();
    assert!(block_on(store.insert(&id, &data(&[("first", true.into())]))).unwrap().is_some());
    assert!(block_on(store.insert(&id, &data(&[("second", true.into())]))).unwrap().is_none());
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data, data(&[("first", true.into())]));
    block_on(store.destroy(&id)).unwrap();
}

fn idle_expiry_slides_on_load(t: Target) {
    let Some(store) = t.store(&[("idle_ttl", "600ms")]) else { return };
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    for _ in 0..4 {
        // 4 x 300 ms is past the 600 ms window: only the slides keep it.
        std::thread::sleep(Duration::from_millis(300));
        assert!(block_on(store.load(&id)).unwrap().is_some(), "a used session expired");
    }
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(block_on(store.load(&id)).unwrap(), None, "an idle session did not expire");
    // A per-request TTL (Rails' expire_after, express' maxAge) overrides it.
    let long = store.with_idle_ttl(Some(Duration::from_secs(60)));
    let (id, _) = block_on(long.create(&data(&[]))).unwrap();
    std::thread::sleep(Duration::from_millis(900));
    assert!(block_on(long.exists(&id)).unwrap());
}

fn absolute_deadline_is_honoured(t: Target) {
    let Some(store) = t.store(&[("idle_ttl", "1h"), ("absolute_ttl", "800ms")]) else { return };
    let (id, _) = block_on(store.create(&data(&[("x", 1.into())]))).unwrap();
    let loaded = block_on(store.load(&id)).unwrap().unwrap();
    let deadline = loaded.meta.deadline_ms.expect("deadline recorded");
    assert!((deadline - loaded.meta.created_at_ms - 800).abs() <= 5, "{:?}", loaded.meta);
    // The sliding refresh never extends past the deadline.
    assert!(loaded.meta.expires_at_ms.unwrap() <= deadline);
    let mut held = loaded;
    // Keep using it: activity does not extend an absolute deadline.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        assert!(block_on(store.touch(&id)).unwrap());
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(block_on(store.load(&id)).unwrap(), None);
    assert!(!block_on(store.exists(&id)).unwrap());
    held.data.insert("y".into(), 2.into());
    assert_eq!(block_on(store.save(&id, &mut held.baseline, &held.data)).unwrap(), SaveOutcome::Gone);
    // A renew carries the deadline over instead of resetting it.
    let (id, _) = block_on(store.create(&data(&[]))).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let renewed = block_on(store.renew(&id)).unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(block_on(store.load(&renewed)).unwrap(), None, "renew reset the absolute deadline");
}

fn touch_and_exists(t: Target) {
    let Some(store) = t.store(&[("idle_ttl", "700ms")]) else { return };
    let (id, _) = block_on(store.create(&data(&[]))).unwrap();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(350));
        assert!(block_on(store.touch(&id)).unwrap());
    }
    assert!(block_on(store.exists(&id)).unwrap());
    // exists does not slide the expiry.
    std::thread::sleep(Duration::from_millis(400));
    assert!(block_on(store.exists(&id)).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!block_on(store.exists(&id)).unwrap());
    assert!(!block_on(store.touch(&id)).unwrap());
}

fn renew_moves_the_session_to_a_new_id(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let (old, _) = block_on(store.create(&every_type())).unwrap();
    let before = block_on(store.load(&old)).unwrap().unwrap();
    let new = block_on(store.renew(&old)).unwrap().expect("renewed");
    assert_ne!(new, old);
    assert_eq!(block_on(store.load(&old)).unwrap(), None, "the old id still works");
    let after = block_on(store.load(&new)).unwrap().unwrap();
    assert_eq!(after.data, before.data);
    assert_eq!(after.meta.created_at_ms, before.meta.created_at_ms);
    assert_eq!(block_on(store.renew(&old)).unwrap(), None);
}

fn malformed_ids_are_no_session(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let trips = store.stats().round_trips.count;
    for id in malformed_ids() {
        assert_eq!(block_on(store.load(&id)).unwrap(), None);
        assert!(!block_on(store.exists(&id)).unwrap());
        assert!(!block_on(store.destroy(&id)).unwrap());
        assert!(!block_on(store.touch(&id)).unwrap());
        assert_eq!(block_on(store.renew(&id)).unwrap(), None);
        let err = block_on(store.insert(&id, &data(&[]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidId);
        let mut baseline = sessionkeeper_core::Baseline::empty(sessionkeeper_core::Codec::Msgpack);
        let err = block_on(store.save(&id, &mut baseline, &data(&[("x", 1.into())]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidId);
    }
    assert_eq!(store.stats().round_trips.count, trips, "a malformed id reached the backend");
    assert_eq!(store.stats().invalid_ids, 7 * malformed_ids().len() as u64);
}

pub fn malformed_ids() -> Vec<String> {
    vec![
        String::new(),
        "short".into(),
        "a".repeat(31),
        "a".repeat(129),
        format!("{}*", "a".repeat(32)),
        format!("{}\r\nFLUSHALL\r\n", "a".repeat(32)),
        format!("2::{}", "b".repeat(64)),
        "../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
        format!("{} {}", "a".repeat(20), "b".repeat(20)),
    ]
}

fn oversized_sessions_are_refused_and_nothing_is_written(t: Target) {
    let Some(store) = t.store(&[("max_size", "1k")]) else { return };
    let big = data(&[("blob", Value::Bytes(vec![7; 2000]))]);
    let err = block_on(store.create(&big)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    assert!(!err.is_temporary());
    assert!(err.message().contains("max_size"));
    let (id, _) = block_on(store.create(&data(&[("small", 1.into())]))).unwrap();
    let mut loaded = block_on(store.load(&id)).unwrap().unwrap();
    loaded.data.insert("blob".into(), Value::Bytes(vec![7; 2000]));
    assert_eq!(block_on(store.save(&id, &mut loaded.baseline, &loaded.data)).unwrap_err().kind(), ErrorKind::TooLarge);
    assert_eq!(block_on(store.load(&id)).unwrap().unwrap().data, data(&[("small", 1.into())]));
    assert_eq!(store.stats().errors.iter().find(|(k, _)| *k == "too_large").unwrap().1, 2);
}

fn sessions_of_another_codec_are_read_and_merged(t: Target) {
    let prefix = format!("sktest:{}:", common::unique());
    let (Some(json), Some(msgpack)) =
        (t.store_with_prefix(&prefix, &[("codec", "json")]), t.store_with_prefix(&prefix, &[("codec", "msgpack")]))
    else {
        return;
    };
    let (id, _) = block_on(json.create(&every_type())).unwrap();
    let mut via_msgpack = block_on(msgpack.load(&id)).unwrap().unwrap();
    assert_eq!(via_msgpack.data, every_type());
    via_msgpack.data.insert("added".into(), 1.into());
    block_on(msgpack.save(&id, &mut via_msgpack.baseline, &via_msgpack.data)).unwrap();
    let mut expected = every_type();
    expected.insert("added".into(), 1.into());
    assert_eq!(block_on(json.load(&id)).unwrap().unwrap().data, expected);
}

fn stats_count_what_happened(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    let (id, _) = block_on(store.create(&data(&[("a", 1.into())]))).unwrap();
    let mut l = block_on(store.load(&id)).unwrap().unwrap();
    block_on(store.load(&sessionkeeper_core::generate_id().unwrap())).unwrap();
    l.data.insert("b".into(), 2.into());
    block_on(store.save(&id, &mut l.baseline, &l.data)).unwrap();
    block_on(store.save(&id, &mut l.baseline, &l.data)).unwrap();
    block_on(store.destroy(&id)).unwrap();
    assert!(!block_on(store.destroy(&id)).unwrap(), "already gone: counts no destroy");
    let s = store.stats();
    assert_eq!((s.loads, s.hits, s.misses), (2, 1, 1));
    assert_eq!((s.creates, s.saves, s.skipped_saves, s.destroys), (1, 1, 1, 1));
    assert_eq!(s.keys_written, 2);
    assert!(s.bytes_read > 0 && s.bytes_written > 0);
    assert_eq!(s.round_trips.count, 6);
    assert!(s.round_trips.p50_us <= s.round_trips.p99_us && s.round_trips.p99_us <= s.round_trips.max_us);
    assert!(s.errors.iter().all(|(_, n)| *n == 0));
}

fn listing_counting_and_clearing_sessions(t: Target) {
    let u = common::unique();
    // Glob characters in the prefix are matched literally: unescaped, this
    // pattern would also match the neighbour's keys.
    let Some(store) = t.store_with_prefix(&format!("sktest:{u}:[g]*?:"), &[("idle_ttl", "1s")]) else { return };
    let neighbour = t.store_with_prefix(&format!("sktest:{u}:g!!:"), &[]).unwrap();
    let mut ids = Vec::new();
    for i in 0..5i64 {
        ids.push(block_on(store.create(&data(&[("i", i.into())]))).unwrap().0);
    }
    for _ in 0..2 {
        block_on(neighbour.create(&data(&[]))).unwrap();
    }
    let handles = block_on(store.handles()).unwrap();
    assert_eq!(handles.len(), 5, "{handles:?}");
    assert!(handles.iter().all(|h| sessionkeeper_core::is_valid_handle(h)));
    assert_eq!(block_on(store.count()).unwrap(), 5);
    // A handle is not an id: it does not load as one, and ids do not leak.
    for h in &handles {
        assert!(!sessionkeeper_core::is_valid_id(h));
        assert!(!ids.iter().any(|id| h.contains(id.as_str())));
    }
    let mut seen: Vec<i64> = handles
        .iter()
        .map(|h| match block_on(store.peek_handle(h)).unwrap().unwrap().data.get("i") {
            Some(Value::Int(i)) => *i,
            other => panic!("{other:?}"),
        })
        .collect();
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    // Peeking does not keep a session alive.
    std::thread::sleep(Duration::from_millis(600));
    for h in &handles {
        block_on(store.peek_handle(h)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(block_on(store.count()).unwrap(), 0, "peek slid the expiry");
    // Destroy by handle, and clear.
    let (a, _) = block_on(store.create(&data(&[]))).unwrap();
    block_on(store.create(&data(&[]))).unwrap();
    let hs = block_on(store.handles()).unwrap();
    assert!(block_on(store.destroy_handle(&hs[0])).unwrap());
    assert_eq!(block_on(store.count()).unwrap(), 1);
    assert_eq!(block_on(store.clear()).unwrap(), 1);
    assert_eq!(block_on(store.load(&a)).unwrap(), None);
    assert_eq!(block_on(neighbour.count()).unwrap(), 2, "clear reached another prefix");
    assert!(!block_on(store.destroy_handle("2::not-a-handle")).unwrap());
    assert_eq!(block_on(store.peek_handle("*")).unwrap(), None);
    block_on(neighbour.clear()).unwrap();
}

/// Django's `set_expiry`, express' `maxAge`, Rails' per-request
/// `expire_after`: the window set on one request applies to the next ones,
/// which load through a default handle without knowing it.
fn a_per_request_window_sticks_to_the_session(t: Target) {
    let Some(store) = t.store(&[("idle_ttl", "1h")]) else { return };
    let short = store.with_idle_ttl(Some(Duration::from_millis(700)));
    let (id, _) = block_on(short.create(&data(&[("remember", false.into())]))).unwrap();
    let (other, _) = block_on(store.create(&data(&[]))).unwrap();

    let l = block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(l.meta.idle_ttl, Some(Some(Duration::from_millis(700))));
    assert!(l.meta.expires_at_ms.unwrap() - l.meta.created_at_ms < 60_000, "default handle slid by the store's 1h: {:?}", l.meta);
    let o = block_on(store.load(&other)).unwrap().unwrap();
    assert_eq!(o.meta.idle_ttl, None);
    assert!(o.meta.expires_at_ms.unwrap() - o.meta.created_at_ms > 3_000_000, "{:?}", o.meta);

    // Default-handle saves and touches keep the session's own window.
    let mut l = l;
    l.data.insert("seen".into(), 1.into());
    block_on(store.save(&id, &mut l.baseline, &l.data)).unwrap();
    assert!(block_on(store.touch(&id)).unwrap());
    std::thread::sleep(Duration::from_millis(1100));
    assert!(!block_on(store.exists(&id)).unwrap(), "the session's 700 ms window was replaced by the default");
    assert!(block_on(store.exists(&other)).unwrap());

    // "Remember me": an explicit window on a later request replaces it.
    let (id, _) = block_on(short.create(&data(&[]))).unwrap();
    let long = store.with_idle_ttl(Some(Duration::from_secs(3600)));
    assert!(block_on(long.touch(&id)).unwrap());
    let l = block_on(store.load(&id)).unwrap().unwrap();
    assert_eq!(l.meta.idle_ttl, Some(Some(Duration::from_secs(3600))));
    std::thread::sleep(Duration::from_millis(1100));
    assert!(block_on(store.exists(&id)).unwrap());
    // Renew carries the window over.
    let renewed = block_on(store.renew(&id)).unwrap().unwrap();
    assert_eq!(block_on(store.load(&renewed)).unwrap().unwrap().meta.idle_ttl, Some(Some(Duration::from_secs(3600))));
}
