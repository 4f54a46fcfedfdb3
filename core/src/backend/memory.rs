//! `memory://`: the Redis record semantics in process memory, for users' own
//! tests and development. It mirrors the Lua scripts line by line; the shared
//! contract suite keeps the two honest.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use indexmap::IndexMap;

use super::layout::{CREATED, DEADLINE, IDLE};
use super::{expiry_at, wall_clock_ms as now_ms, Expiry, Record};

/// Stores opened on the same `memory://name` share one backend, like two app
/// servers sharing one Redis.
static NAMED: LazyLock<Mutex<HashMap<String, Arc<MemoryBackend>>>> = LazyLock::new(Default::default);

/// Expired entries are dropped on access, and all of them every this many
/// writes, so an idle key cannot pin memory forever.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    writes: u64,
}

struct Entry {
    fields: IndexMap<String, Vec<u8>>,
    expires_at_ms: Option<i64>,
}

impl Entry {
    fn deadline(&self) -> Option<i64> {
        self.fields.get(DEADLINE).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
    }

    /// The Lua `window`: an explicit window is stored as the session's own;
    /// a default one yields to the session's own.
    fn window(&mut self, expiry: Expiry) -> u64 {
        if expiry.explicit {
            self.fields.insert(IDLE.to_owned(), expiry.idle_ms.to_string().into_bytes());
            return expiry.idle_ms;
        }
        self.fields.get(IDLE).and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()).unwrap_or(expiry.idle_ms)
    }

    fn slide(&mut self, now: i64, expiry: Expiry) {
        let idle = self.window(expiry);
        self.expires_at_ms = expiry_at(now, idle, self.deadline());
    }
}

impl MemoryBackend {
    pub fn named(name: &str) -> Arc<MemoryBackend> {
        let mut all = NAMED.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(name.to_owned()).or_default().clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every mutation is a single map operation), so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live entry for `key`, after dropping it if expired or past its
    /// deadline (what Redis expiry and the scripts' deadline check do).
    fn live<'a>(state: &'a mut State, key: &str, now: i64) -> Option<&'a mut Entry> {
        let dead = match state.entries.get(key) {
            None => return None,
            Some(e) => e.expires_at_ms.is_some_and(|t| t <= now) || e.deadline().is_some_and(|d| now >= d),
        };
        if dead {
            state.entries.remove(key);
            return None;
        }
        state.entries.get_mut(key)
    }

    fn count_write(state: &mut State, now: i64) {
        state.writes += 1;
        if state.writes.is_multiple_of(SWEEP_EVERY) {
            state.entries.retain(|_, e| e.expires_at_ms.is_none_or(|t| t > now));
        }
    }

    pub fn load(&self, key: &str, slide: Option<Expiry>) -> Option<Record> {
        let now = now_ms();
        let mut state = self.lock();
        let entry = Self::live(&mut state, key, now)?;
        if let Some(expiry) = slide {
            entry.slide(now, expiry);
        }
        Some(Record {
            fields: entry.fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            now_ms: now,
            expires_at_ms: entry.expires_at_ms,
            stored: None,
        })
    }

    pub fn update(&self, key: &str, expiry: Expiry, set: &[(String, Vec<u8>)], remove: &[String]) -> bool {
        let now = now_ms();
        let mut state = self.lock();
        let Some(entry) = Self::live(&mut state, key, now) else { return false };
        for (f, v) in set {
            entry.fields.insert(f.clone(), v.clone());
        }
        for f in remove {
            entry.fields.shift_remove(f);
        }
        entry.slide(now, expiry);
        Self::count_write(&mut state, now);
        true
    }

    pub fn insert(&self, key: &str, expiry: Expiry, fields: &[(String, Vec<u8>)]) -> bool {
        let now = now_ms();
        let mut state = self.lock();
        if Self::live(&mut state, key, now).is_some() {
            return false;
        }
        let mut entry = Entry { fields: fields.iter().cloned().collect(), expires_at_ms: None };
        entry.fields.entry(CREATED.to_owned()).or_insert_with(|| now.to_string().into_bytes());
        if entry.deadline().is_none() && expiry.absolute_ms > 0 {
            let d = now + expiry.absolute_ms as i64;
            entry.fields.insert(DEADLINE.to_owned(), d.to_string().into_bytes());
        }
        entry.slide(now, expiry);
        // A deadline already in the past (renewing a session in its last
        // millisecond) expires at once, as PEXPIREAT in the past does.
        if entry.expires_at_ms.is_some_and(|t| t <= now) {
            return true;
        }
        state.entries.insert(key.to_owned(), entry);
        Self::count_write(&mut state, now);
        true
    }

    /// Keys matching `pattern`, which is always `<literal prefix>*` here
    /// (the only shape the store asks for); `\\` escapes are undone.
    pub fn scan(&self, pattern: &str) -> Vec<String> {
        let literal = unescape_glob(pattern.strip_suffix('*').unwrap_or(pattern));
        let now = now_ms();
        let mut state = self.lock();
        let keys: Vec<String> = state.entries.keys().filter(|k| k.starts_with(&literal)).cloned().collect();
        keys.into_iter().filter(|k| Self::live(&mut state, k, now).is_some()).collect()
    }

    pub fn delete(&self, key: &str) -> bool {
        let now = now_ms();
        let mut state = self.lock();
        Self::live(&mut state, key, now).is_some() && state.entries.remove(key).is_some()
    }

    pub fn touch(&self, key: &str, expiry: Expiry) -> bool {
        let now = now_ms();
        let mut state = self.lock();
        let Some(entry) = Self::live(&mut state, key, now) else { return false };
        entry.slide(now, expiry);
        true
    }

    pub fn exists(&self, key: &str) -> bool {
        let now = now_ms();
        Self::live(&mut self.lock(), key, now).is_some()
    }
}

fn unescape_glob(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}
