//! `make demo`: a private Redis, and a session stored, read back, merged
//! from two concurrent writers, protected from a racing logout, and expired.

use std::time::Duration;

use sessionkeeper_core::runtime::{block_on, spawn};
use sessionkeeper_core::{storage_key, Map, SaveOutcome, SessionData, Store, Timestamp, Value};

fn show(data: &SessionData) -> String {
    let parts: Vec<String> = data.iter().map(|(k, v)| format!("{k}: {}", show_value(v))).collect();
    format!("{{ {} }}", parts.join(", "))
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(show_value).collect::<Vec<_>>().join(", ")),
        Value::Timestamp(t) => format!("<time {}>", t.secs),
        other => format!("{other:?}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SK_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = Store::from_url_and_options(&url, [("key_prefix", "demo:session:"), ("idle_ttl", "30m"), ("codec", "json")])?;
    println!("Sessionkeeper demo against {url}");
    println!("(codec json so redis-cli output is readable; the default, msgpack, is smaller)\n");

    println!("1. A user logs in: the app stores a session.");
    let mut data = SessionData::new();
    data.insert("user_id".into(), Value::Int(42));
    data.insert("cart".into(), Value::Array(vec![]));
    data.insert("login_at".into(), Value::Timestamp(Timestamp::new(1_763_900_000, 0).unwrap()));
    let (id, _) = block_on(store.create(&data))?;
    let key = storage_key("demo:session:", &id).expect("valid id");
    println!("   cookie carries the id  {id}");
    println!("   Redis stores it under  {key}");
    println!("   (the key is a SHA-256 of the id: a leaked key list gives no usable cookie)");
    println!("   what redis-cli HGETALL shows (one field per top-level key, plus metadata):");
    let mut raw = redis::Client::open(url.as_str())?.get_connection()?;
    let fields: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL").arg(&key).query(&mut raw)?;
    for (field, value) in fields {
        println!("     {field:<12} {}", String::from_utf8_lossy(&value).escape_debug());
    }
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut raw)?;
    println!("   TTL {ttl} s (the 30-minute sliding expiry)\n");

    println!("2. The next request reads it back (one round trip, which also slides the 30-minute expiry):");
    let loaded = block_on(store.load(&id))?.expect("just created");
    println!("   {}\n", show(&loaded.data));

    println!("3. Two requests on one session at the same moment, each changing a different key.");
    println!("   Both read the session before either writes (the classic lost update).");
    let second = store.clone();
    let (mut a, mut b) = (block_on(store.load(&id))?.unwrap(), block_on(second.load(&id))?.unwrap());
    a.data.insert("theme".into(), "dark".into());
    b.data.insert("cart".into(), Value::Array(vec!["book".into()]));
    let (ida, idb, sa, sb) = (id.clone(), id.clone(), store.clone(), second.clone());
    let ta = spawn(async move { sa.save(&ida, &mut a.baseline, &a.data).await });
    let tb = spawn(async move { sb.save(&idb, &mut b.baseline, &b.data).await });
    println!("   request A saved: {:?}", block_on(ta)??);
    println!("   request B saved: {:?}", block_on(tb)??);
    let merged = block_on(store.load(&id))?.unwrap();
    println!("   stored now: {}", show(&merged.data));
    println!("   both changes survive: each save wrote only its own key. A store that writes the");
    println!("   whole session would have kept only the last writer's copy.\n");

    println!("4. A request that changes nothing sends nothing:");
    let mut read_only = merged;
    let before = store.stats().round_trips.count;
    let outcome = block_on(store.save(&id, &mut read_only.baseline, &read_only.data))?;
    println!("   save -> {outcome:?}, round trips: {}\n", store.stats().round_trips.count - before);

    println!("5. The user logs out while a slow request still holds the session.");
    let mut slow = block_on(store.load(&id))?.unwrap();
    block_on(store.destroy(&id))?;
    slow.data.insert("last_page".into(), "/checkout".into());
    let outcome = block_on(store.save(&id, &mut slow.baseline, &slow.data))?;
    assert_eq!(outcome, SaveOutcome::Gone);
    println!("   the slow request's save -> {outcome:?}: the logged-out session is not brought back");
    println!("   load after logout -> {:?}\n", block_on(store.load(&id))?.map(|l| show(&l.data)));

    println!("6. Expiry: a session idle longer than idle_ttl (2 s here) is gone.");
    let short = store.with_idle_ttl(Some(Duration::from_secs(2)));
    let mut m = Map::new();
    m.insert("user_id".into(), Value::Int(7));
    let (id2, _) = block_on(short.create(&m))?;
    println!("   right away:  {}", if block_on(short.exists(&id2))? { "present" } else { "missing" });
    std::thread::sleep(Duration::from_millis(2500));
    println!("   after 2.5 s: {}\n", if block_on(short.exists(&id2))? { "present" } else { "missing" });

    let s = store.stats();
    println!(
        "Stats: {} loads ({} hits), {} saves, {} skipped, {} keys written, round trip p50 {} µs / p99 {} µs",
        s.loads, s.hits, s.saves, s.skipped_saves, s.keys_written, s.round_trips.p50_us, s.round_trips.p99_us
    );
    Ok(())
}
