//! The Rust side of the PHP interop test (tests/php/interop.php): writes a
//! session holding every value type straight through the engine, and later
//! checks what PHP wrote back through libsessionkeeper.
//!
//!   interop_peer write <url>                       prints the new session's id
//!   interop_peer verify <url> <rust_id> <php_id>   checks both sessions, then deletes them
//!
//! Prints "interop_peer: N passed, M failed" and exits non-zero on failure.

use std::process::ExitCode;

use sessionkeeper_core::{BlockingStore, Map, SessionData, Store, Timestamp, Value};

/// What `write` stores; `verify` expects it back with PHP's changes applied.
fn written() -> SessionData {
    let mut prefs = Map::new();
    prefs.insert("theme".into(), Value::Str("dark".into()));
    prefs.insert("sizes".into(), Value::Array(vec![Value::Int(1), Value::Int(2)]));
    let mut data = SessionData::new();
    data.insert("user".into(), Value::Str("alice".into()));
    data.insert("visits".into(), Value::Int(41));
    data.insert("ratio".into(), Value::Float(0.5));
    data.insert("admin".into(), Value::Bool(false));
    data.insert("nothing".into(), Value::Nil);
    data.insert("tags".into(), Value::Array(vec![Value::Str("a".into()), Value::Int(1), Value::Bool(true)]));
    data.insert("prefs".into(), Value::Map(prefs));
    data.insert("raw".into(), Value::Bytes(vec![0, 255, 10]));
    data.insert("seen_at".into(), Value::Timestamp(Timestamp { secs: 1_700_000_000, nanos: 123_456_789 }));
    data.insert("unicode".into(), Value::Str("héllo ✓".into()));
    data
}

/// `written()` after tests/php/interop.php changed it.
fn expected_after_php() -> SessionData {
    let mut data = written();
    data.insert("visits".into(), Value::Int(42));
    data.insert("written_by".into(), Value::Str("php".into()));
    data.shift_remove("nothing");
    data
}

fn expected_from_php() -> SessionData {
    let mut data = SessionData::new();
    data.insert("from".into(), Value::Str("php".into()));
    data.insert("n".into(), Value::Int(7));
    data.insert("unicode".into(), Value::Str("héllo ✓".into()));
    data
}

fn open(url: &str) -> Result<BlockingStore, String> {
    Store::from_url_and_options(url, [("key_prefix", "interop:")])
        .map(BlockingStore::new)
        .map_err(|e| format!("cannot open {url}: {e}"))
}

fn run(args: &[String]) -> Result<(usize, usize), String> {
    match args {
        [cmd, url] if cmd == "write" => {
            let store = open(url)?;
            let (id, _) = store.create(&written()).map_err(|e| format!("create: {e}"))?;
            println!("{id}");
            Ok((1, 0))
        }
        [cmd, url, rust_id, php_id] if cmd == "verify" => {
            let store = open(url)?;
            let (mut ok, mut bad) = (0, 0);
            for (id, want, what) in
                [(rust_id, expected_after_php(), "the Rust session PHP changed"), (php_id, expected_from_php(), "the session PHP created")]
            {
                match store.load(id).map_err(|e| format!("load: {e}"))? {
                    Some(loaded) if loaded.data == want => ok += 1,
                    Some(loaded) => {
                        bad += 1;
                        eprintln!("FAIL {what}:\n  found  {:?}\n  wanted {want:?}", loaded.data);
                    }
                    None => {
                        bad += 1;
                        eprintln!("FAIL {what}: no session with id {id}");
                    }
                }
                store.destroy(id).map_err(|e| format!("destroy: {e}"))?;
            }
            Ok((ok, bad))
        }
        _ => Err("usage: interop_peer write <url> | verify <url> <rust_id> <php_id>".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok((ok, bad)) => {
            eprintln!("interop_peer: {ok} passed, {bad} failed");
            if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("interop_peer: {e}\ninterop_peer: 0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}
