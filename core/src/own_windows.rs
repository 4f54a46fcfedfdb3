//! The sliding windows of sessions that carry one of their own (Django's
//! `set_expiry`, a per-request `expire_after`), as this process last saw
//! them. A plain load slides by the handle's window in its `GETEX`; for such
//! a session that is the wrong expiry, which costs a second command, and a
//! second round trip, to correct on every read. With the window remembered
//! here, the `GETEX` asks for the right one.
//!
//! Only a guess: a load still checks the record it read and corrects the
//! expiry when the guess was wrong (another process changed the window, the
//! entry was dropped), so an entry can cost at most the round trip it was
//! meant to save, never a wrong expiry.

use std::collections::HashMap;
use std::sync::Mutex;

/// Sessions remembered before the map starts over. The map holds only
/// sessions whose window differs from their handle's (the uncommon case);
/// starting over bounds its memory (about 1.5 MB at most) without the
/// bookkeeping of an LRU, and costs each forgotten session one corrected
/// load.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(crate) struct OwnWindows {
    by_key: Mutex<HashMap<String, u64>>,
}

impl OwnWindows {
    /// The window to ask a load of `key` to slide by, if one is remembered
    /// (milliseconds; 0: the session does not slide).
    pub fn get(&self, key: &str) -> Option<u64> {
        self.lock().get(key).copied()
    }

    /// After a load showed that the session at `key` slides by `window_ms`:
    /// remembered when a load through a handle expecting `expected_ms` would
    /// get it wrong, forgotten when it would not.
    pub fn learn(&self, key: &str, window_ms: u64, expected_ms: u64) {
        let mut map = self.lock();
        if window_ms == expected_ms {
            map.remove(key);
            return;
        }
        if map.len() >= CAPACITY && !map.contains_key(key) {
            map.clear();
        }
        map.insert(key.to_owned(), window_ms);
    }

    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (every change is one call), and a guess is all it holds.
        self.by_key.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_windows_that_differ_from_the_expected_one() {
        let w = OwnWindows::default();
        w.learn("a", 5_000, 1_000);
        w.learn("b", 1_000, 1_000);
        assert_eq!(w.get("a"), Some(5_000));
        assert_eq!(w.get("b"), None);
        w.learn("a", 1_000, 1_000);
        assert_eq!(w.get("a"), None);
        w.learn("c", 0, 1_000);
        assert_eq!(w.get("c"), Some(0));
        w.forget("c");
        assert_eq!(w.get("c"), None);
    }

    #[test]
    fn starts_over_when_full() {
        let w = OwnWindows::default();
        for i in 0..CAPACITY {
            w.learn(&format!("k{i}"), 7, 1);
        }
        assert_eq!(w.get("k0"), Some(7));
        // Updating a remembered key never clears the map.
        w.learn("k0", 8, 1);
        assert_eq!(w.get("k1"), Some(7));
        w.learn("new", 9, 1);
        assert_eq!(w.get("k1"), None);
        assert_eq!(w.get("new"), Some(9));
    }
}
