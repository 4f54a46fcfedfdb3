//! The record this process's last save of a contended session wrote.
//!
//! A save swaps the record it loaded for its own merge (one `GET`, one
//! compare, one `SET` on the server) unless another save changed the record
//! since that load; then the server merges the changes into the record
//! field by field, which costs it several times more. When many requests
//! change one session at once (an app's busy session under load), most of
//! the saves that came between a request's load and its save are this
//! process's own: it knows the record they wrote. A save whose load came
//! before that record was written applies its changes to it here and swaps
//! against it, and the server's merge is left for changes made elsewhere.
//!
//! Only a guess, and a safe one: the swap happens only if the server still
//! holds exactly that record, and applying a save's changes to a record here
//! gives what the server's merge would give from the same record. A wrong
//! guess costs the merge it was meant to save.
//!
//! Sessions are remembered only once one of their saves had to merge (the
//! uncontended case costs one atomic read), and the map starts over past a
//! fixed size, like `OwnWindows`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Records remembered, in bytes, before the map starts over: a busy session
/// is a handful of keys at a time.
const CAPACITY_BYTES: usize = 4 << 20;

/// Sessions remembered before the map starts over, whether or not their
/// record is known (a merge leaves an entry without one).
const CAPACITY_ENTRIES: usize = 10_000;

/// A record a save of this process wrote, and its top-level values by key,
/// to which a later save applies its changes.
#[derive(Debug)]
pub(crate) struct Written<R, E> {
    pub record: R,
    pub encoded: E,
    /// About how many bytes it holds, for `CAPACITY_BYTES`.
    pub size: usize,
}

struct Entry<R, E> {
    /// The order of the operation that last told something about the record:
    /// the save that wrote `written`, or the one that found it changed.
    at: u64,
    /// `None` while the record is unknown (a save merged into it).
    written: Option<Arc<Written<R, E>>>,
}

struct Map<R, E> {
    by_key: HashMap<String, Entry<R, E>>,
    bytes: usize,
}

pub(crate) struct OwnSaves<R, E> {
    /// Loads and saves numbered in the order this process starts them.
    sequence: AtomicU64,
    /// `by_key`'s length, read without the lock.
    entries: AtomicUsize,
    map: Mutex<Map<R, E>>,
}

impl<R, E> Default for OwnSaves<R, E> {
    fn default() -> Self {
        let map = Map { by_key: HashMap::new(), bytes: 0 };
        OwnSaves { sequence: AtomicU64::new(0), entries: AtomicUsize::new(0), map: Mutex::new(map) }
    }
}

impl<R, E> OwnSaves<R, E> {
    /// The next number in the order loads and saves start (never 0: a
    /// baseline no load produced comes before every save).
    pub fn tick(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// What is known of `key` for a save whose load was numbered
    /// `loaded_at`: `None` when its saves are not remembered (it is not
    /// contended); else the record this process's last save of it wrote, if
    /// that save started after the load (so the load cannot have seen it)
    /// and did not merge.
    pub fn seen(&self, key: &str, loaded_at: u64) -> Option<Option<Arc<Written<R, E>>>> {
        if self.entries.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let map = self.lock();
        let entry = map.by_key.get(key)?;
        Some(entry.written.clone().filter(|_| entry.at > loaded_at))
    }

    #[cfg(test)]
    fn watches(&self, key: &str) -> bool {
        self.seen(key, u64::MAX).is_some()
    }

    #[cfg(test)]
    fn written_after(&self, key: &str, loaded_at: u64) -> Option<Arc<Written<R, E>>> {
        self.seen(key, loaded_at).flatten()
    }

    /// The save numbered `at` of a watched `key` is about to write `written`.
    pub fn writing(&self, key: &str, at: u64, written: Written<R, E>) {
        let mut map = self.lock();
        let Some(entry) = map.by_key.get_mut(key) else { return };
        if entry.at > at {
            return;
        }
        let old = entry.written.as_ref().map_or(0, |w| w.size);
        let new = written.size;
        entry.at = at;
        entry.written = Some(Arc::new(written));
        map.bytes = map.bytes - old + new;
        if map.bytes > CAPACITY_BYTES {
            self.clear(&mut map);
        }
    }

    /// The save numbered `at` of `key` merged into the record on the server:
    /// the record is unknown from here on. With `contended` (it found the
    /// record changed by someone else), the session's saves are remembered
    /// from now on.
    pub fn merged(&self, key: &str, at: u64, contended: bool) {
        if !contended && self.entries.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut map = self.lock();
        if !map.by_key.contains_key(key) {
            if !contended {
                return;
            }
            if map.by_key.len() >= CAPACITY_ENTRIES {
                self.clear(&mut map);
            }
        }
        let entry = map.by_key.entry(key.to_owned()).or_insert(Entry { at, written: None });
        // A later save's record is still a good guess unless that save
        // built on this one's; then its own reply will say so.
        if entry.at <= at {
            entry.at = at;
            let old = entry.written.take().map_or(0, |w| w.size);
            map.bytes -= old;
        }
        self.entries.store(map.by_key.len(), Ordering::Relaxed);
    }

    /// The session at `key` is gone (destroyed, expired, found gone).
    pub fn forget(&self, key: &str) {
        if self.entries.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut map = self.lock();
        if let Some(entry) = map.by_key.remove(key) {
            map.bytes -= entry.written.map_or(0, |w| w.size);
        }
        self.entries.store(map.by_key.len(), Ordering::Relaxed);
    }

    fn clear(&self, map: &mut Map<R, E>) {
        map.by_key.clear();
        map.bytes = 0;
        self.entries.store(0, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Map<R, E>> {
        // Every change is made whole under the lock, and a guess is all it
        // holds.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(record: &str) -> Written<String, ()> {
        Written { record: record.to_owned(), encoded: (), size: record.len() }
    }

    fn guess(s: &OwnSaves<String, ()>, key: &str, loaded_at: u64) -> Option<String> {
        s.written_after(key, loaded_at).map(|w| w.record.clone())
    }

    #[test]
    fn remembers_only_sessions_whose_saves_merged() {
        let s = OwnSaves::default();
        let load = s.tick();
        let save = s.tick();
        s.writing("k", save, written("r1"));
        assert!(!s.watches("k"));
        assert_eq!(guess(&s, "k", load), None);
        s.merged("k", s.tick(), true);
        assert!(s.watches("k"));
        assert_eq!(guess(&s, "k", load), None, "a merge leaves the record unknown");
        let save = s.tick();
        s.writing("k", save, written("r2"));
        assert_eq!(guess(&s, "k", load), Some("r2".into()));
    }

    #[test]
    fn guesses_only_for_loads_that_came_before_the_save() {
        let s = OwnSaves::default();
        s.merged("k", s.tick(), true);
        let before = s.tick();
        let save = s.tick();
        s.writing("k", save, written("r"));
        let after = s.tick();
        assert_eq!(guess(&s, "k", before), Some("r".into()));
        assert_eq!(guess(&s, "k", after), None, "that load read the record itself");
        assert_eq!(guess(&s, "other", before), None);
    }

    #[test]
    fn a_merge_forgets_the_record_unless_a_later_save_wrote_one() {
        let s = OwnSaves::default();
        s.merged("k", s.tick(), true);
        let load = s.tick();
        let first = s.tick();
        s.writing("k", first, written("r1"));
        let second = s.tick();
        s.writing("k", second, written("r2"));
        s.merged("k", first, true);
        assert_eq!(guess(&s, "k", load), Some("r2".into()));
        s.merged("k", second, false);
        assert_eq!(guess(&s, "k", load), None);
        // An older save's record never replaces a newer one.
        s.writing("k", first, written("r1"));
        assert_eq!(guess(&s, "k", load), None);
    }

    #[test]
    fn forgets_a_gone_session_and_starts_over_when_full() {
        let s = OwnSaves::default();
        s.merged("k", s.tick(), false);
        assert!(!s.watches("k"), "a merge that found nothing changed is no contention");
        s.merged("k", s.tick(), true);
        s.forget("k");
        assert!(!s.watches("k"));
        s.merged("a", s.tick(), true);
        s.merged("b", s.tick(), true);
        let big = "x".repeat(CAPACITY_BYTES / 2 + 1);
        s.writing("a", s.tick(), written(&big));
        assert!(s.watches("a"));
        s.writing("b", s.tick(), written(&big));
        assert!(!s.watches("a") && !s.watches("b"));
        assert_eq!(s.entries.load(Ordering::Relaxed), 0);
        for i in 0..CAPACITY_ENTRIES {
            s.merged(&i.to_string(), s.tick(), true);
        }
        assert!(s.watches("0"));
        s.merged("one more", s.tick(), true);
        assert!(!s.watches("0") && s.watches("one more"));
        assert_eq!(s.entries.load(Ordering::Relaxed), 1);
    }
}
