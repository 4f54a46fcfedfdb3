//! Where sessions live. Both backends implement the same record operations
//! with the same semantics (the Lua scripts in `scripts.rs` and their Rust
//! twin in `memory.rs`); the shared contract suite in `core/tests` runs
//! against each of them.

mod direct;
pub(crate) mod layout;
mod memory;
mod redis;

pub(crate) use redis::update_args;
pub(crate) mod scripts;

use std::sync::Arc;

use crate::config::{Config, Topology};
use crate::error::Result;

/// A session record as it is stored: field names (with their layout
/// prefixes) and raw values, plus the time of the operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub fields: Vec<(String, Vec<u8>)>,
    /// Time of the operation, milliseconds since the epoch: the server's
    /// clock when a script ran, the client's after a plain `GETEX`.
    pub now_ms: i64,
    /// When the record will expire, if it will.
    pub expires_at_ms: Option<i64>,
    /// The record's bytes as Redis holds them (not for `memory://`): a save
    /// that finds them unchanged replaces them without merging.
    pub stored: Option<Vec<u8>>,
}

/// Expiry arguments common to every write: the sliding window and, for new
/// records, the absolute lifetime. Zero means "none".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expiry {
    pub idle_ms: u64,
    /// What a plain load's `GETEX` slides by: `idle_ms`, unless the handle
    /// expects the sessions' own window (`Store::with_load_window`).
    pub getex_ms: u64,
    pub absolute_ms: u64,
    /// The window was set for this session (a per-request lifetime): it is
    /// stored with the session and used by later default-window operations.
    pub explicit: bool,
}

impl Expiry {
    /// The scripts' window argument: `e<ms>` explicit, `d<ms>` default.
    pub fn window_arg(&self) -> String {
        format!("{}{}", if self.explicit { 'e' } else { 'd' }, self.idle_ms)
    }
}

/// The scripts' `expiry_at`: slide to `now + idle`, never past the
/// deadline; `None`: the record does not expire.
pub(crate) fn expiry_at(now_ms: i64, idle_ms: u64, deadline: Option<i64>) -> Option<i64> {
    match (idle_ms, deadline) {
        (0, deadline) => deadline,
        (idle, Some(deadline)) => Some((now_ms + idle as i64).min(deadline)),
        (idle, None) => Some(now_ms + idle as i64),
    }
}

pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// How a load's reply was read: by the `GETEX` that slides the expiry, or,
/// while the server takes no writes, by a plain `GET` (`Sliding::read_only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GetMode {
    Sliding,
    ReadOnly,
}

impl GetMode {
    /// What a load's reply, read this way, leaves to do.
    pub fn sliding(self, reply: Option<Vec<u8>>, expiry: Expiry) -> Result<Sliding> {
        match self {
            GetMode::Sliding => Sliding::after_get(reply, expiry),
            GetMode::ReadOnly => Sliding::read_only(reply, expiry),
        }
    }
}

/// What a plain load's `GETEX` found, and what is left to do: the rules a
/// load script would apply in the same step, applied from the record read.
pub(crate) enum Sliding {
    Missing,
    /// Past its absolute deadline: delete it, report no session.
    PastDeadline,
    /// `correction`: the expiry the `GETEX` set is not the one the rules give
    /// (the session has its own window, or its deadline falls inside the
    /// window): set it to this (`None`: persist).
    Found { record: Record, correction: Option<Option<i64>> },
}

impl Sliding {
    /// The record, when the `GETEX` left nothing to do; else the follow-up
    /// (`RedisBackend::finish_sliding`).
    pub fn without_follow_up(self) -> std::result::Result<Option<Record>, Sliding> {
        match self {
            Sliding::Missing => Ok(None),
            Sliding::Found { record, correction: None } => Ok(Some(record)),
            other => Err(other),
        }
    }

    /// After the plain `GET` that replaces a load's `GETEX` refused while
    /// the server takes no writes (`NOREPLICAS`, see `wire::refuses_writes`):
    /// the session as stored, its expiry neither slid nor corrected, and one
    /// past its deadline missing (it cannot be deleted now). Users stay
    /// logged in while the replicas are away; their saves fail meanwhile.
    pub fn read_only(reply: Option<Vec<u8>>, expiry: Expiry) -> Result<Sliding> {
        Ok(match Sliding::after_get(reply, Expiry { getex_ms: 0, ..expiry })? {
            Sliding::Found { record, .. } => Sliding::Found { record, correction: None },
            Sliding::Missing | Sliding::PastDeadline => Sliding::Missing,
        })
    }

    /// `expiry`: the `GETEX` slid by `getex_ms` (0: a plain `GET`, the
    /// expiry untouched); the rules want the session's own window, else
    /// `idle_ms`.
    pub fn after_get(reply: Option<Vec<u8>>, expiry: Expiry) -> Result<Sliding> {
        let Some(bytes) = reply else { return Ok(Sliding::Missing) };
        let fields = match layout::decode_record(&bytes) {
            layout::Stored::Record(fields) => fields,
            // A peer store's value under our key name (a migration reads it).
            layout::Stored::Foreign => return Ok(Sliding::Missing),
            layout::Stored::Corrupt(why) => {
                return Err(crate::error::Error::codec(format!("the stored session is corrupt ({why})")))
            }
        };
        let now_ms = wall_clock_ms();
        let deadline = layout::field_ms(&fields, layout::DEADLINE);
        if deadline.is_some_and(|d| now_ms >= d) {
            return Ok(Sliding::PastDeadline);
        }
        let own_window = layout::field_ms(&fields, layout::IDLE).map(|ms| ms.max(0) as u64);
        let window = own_window.unwrap_or(expiry.idle_ms);
        let expires_at_ms = expiry_at(now_ms, window, deadline);
        let slid = expiry.getex_ms;
        let needs_correction = if slid > 0 { expires_at_ms != Some(now_ms + slid as i64) } else { window > 0 };
        Ok(Sliding::Found {
            record: Record { fields, now_ms, expires_at_ms, stored: Some(bytes) },
            correction: needs_correction.then_some(expires_at_ms),
        })
    }
}

/// The common save: the record as loaded, and the client's merge of the
/// changes into it, with the expiry rules already resolved from its metadata.
pub(crate) struct Swap {
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    pub deadline_ms: Option<i64>,
    /// The window to slide by (0: none).
    pub window_ms: u64,
}

impl Swap {
    /// The swapped record's time to live in ms, by this machine's clock (as
    /// a plain load's deadline check): `Some(None)` for no expiry, `None`
    /// when the deadline has passed (no swap then: the script's merge path
    /// deletes the session by the server's clock).
    pub fn ttl_ms(&self, now_ms: i64) -> Option<Option<u64>> {
        if self.deadline_ms.is_some_and(|d| now_ms >= d) {
            return None;
        }
        Some(expiry_at(now_ms, self.window_ms, self.deadline_ms).map(|at| (at - now_ms).max(1) as u64))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Updated {
    /// Never re-created.
    Gone,
    /// The changes were merged into the record as it was.
    Merged,
    /// The record was unchanged since the load and now holds `Swap::new`.
    Swapped,
}

impl Updated {
    /// The update script's reply.
    pub fn from_script(n: i64) -> Updated {
        match n {
            2 => Updated::Swapped,
            1 => Updated::Merged,
            _ => Updated::Gone,
        }
    }
}

pub(crate) enum Backend {
    Memory(Arc<memory::MemoryBackend>),
    Redis(redis::RedisBackend),
}

impl Backend {
    /// Builds the backend; Redis connections are opened lazily, on first use.
    pub fn open(config: &Config) -> Result<Backend> {
        Ok(match &config.topology {
            Topology::Memory { name } => Backend::Memory(memory::MemoryBackend::named(name)),
            _ => Backend::Redis(redis::RedisBackend::new(config)?),
        })
    }

    /// Reads a record and slides its expiry (unless `slide` is `None`), in one
    /// atomic step. A record past its absolute deadline is deleted and
    /// reported missing.
    pub async fn load(&self, key: &str, slide: Option<Expiry>) -> Result<Option<Record>> {
        match self {
            Backend::Memory(m) => Ok(m.load(key, slide)),
            Backend::Redis(r) => r.load(key, slide).await,
        }
    }

    /// Whether blocking callers' loads and saves have sockets of their own.
    pub fn has_direct_sockets(&self) -> bool {
        matches!(self, Backend::Redis(r) if r.direct().is_some())
    }

    /// For blocking callers: a plain load (the store's default window) done
    /// on the calling thread's own socket, then finished like `load`.
    /// `None` when this backend has no such path: call `load`.
    pub fn load_on_this_thread(
        &self,
        key: &str,
        expiry: Expiry,
        interrupt: Option<&crate::runtime::Interrupt>,
    ) -> Option<Result<Option<Record>>> {
        let Backend::Redis(r) = self else { return None };
        let direct = r.direct().filter(|_| !expiry.explicit)?;
        // The rare follow-up commands go through the runtime.
        use crate::runtime::block_on_unless_interrupted as on_runtime;
        let finish = || -> Result<Option<Record>> {
            let (reply, mode) = direct.get(key, expiry.getex_ms, interrupt)?;
            match mode.sliding(reply, expiry)?.without_follow_up() {
                Ok(record) => Ok(record),
                Err(sliding) => on_runtime(r.finish_sliding(key, sliding), interrupt),
            }
        };
        Some(finish())
    }

    /// Where a caller doing its own I/O connects (`Store::wire_target`).
    pub fn wire_target(&self) -> Option<crate::wire::Target> {
        match self {
            Backend::Redis(r) => r.direct().map(|d| d.wire_target()),
            Backend::Memory(_) => None,
        }
    }

    /// `update` for blocking callers, on the calling thread's own socket
    /// (see `load_on_this_thread`). `None`: call `update`.
    pub fn update_on_this_thread(
        &self,
        key: &str,
        expiry: Expiry,
        set: &[(String, Vec<u8>)],
        remove: &[String],
        swap: Option<&Swap>,
        interrupt: Option<&crate::runtime::Interrupt>,
    ) -> Option<Result<Updated>> {
        let Backend::Redis(r) = self else { return None };
        let direct = r.direct()?;
        let args = redis::update_args(expiry, set, remove, swap);
        let script = &scripts::SCRIPTS;
        Some(direct.run_script(script.update.get_hash(), &script.update_code, key, &args, interrupt).map(Updated::from_script))
    }

    /// Sets and removes fields of an existing record and slides its expiry.
    /// `Gone` when the record is gone: it is never re-created here. With a
    /// `swap` (Redis only), a record still holding exactly `swap.old` is
    /// replaced by `swap.new` without decoding it on the server; otherwise
    /// the changes are merged into whatever it holds now.
    pub async fn update(
        &self,
        key: &str,
        expiry: Expiry,
        set: &[(String, Vec<u8>)],
        remove: &[String],
        swap: Option<&Swap>,
    ) -> Result<Updated> {
        match self {
            Backend::Memory(m) => Ok(if m.update(key, expiry, set, remove) { Updated::Merged } else { Updated::Gone }),
            Backend::Redis(r) => r.update(key, expiry, set, remove, swap).await,
        }
    }

    /// Creates a record only if the key is free. Adds the creation time and
    /// the absolute deadline unless `fields` already carry them (a renew).
    /// With `replace_foreign`, a key holding something other than a session
    /// (a peer store's value being migrated) counts as free.
    pub async fn insert(&self, key: &str, expiry: Expiry, fields: &[(String, Vec<u8>)], replace_foreign: bool) -> Result<bool> {
        match self {
            Backend::Memory(m) => Ok(m.insert(key, expiry, fields)),
            Backend::Redis(r) => r.insert(key, expiry, fields, replace_foreign).await,
        }
    }

    /// The string value a peer store wrote at `key`, if any. The memory
    /// backend holds only sessions, so it never has one.
    pub async fn foreign_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Backend::Memory(_) => Ok(None),
            Backend::Redis(r) => r.foreign_get(key).await,
        }
    }

    /// Every key matching the glob `pattern` that holds a string (a session
    /// record, or a peer's value to be told apart by reading it), on
    /// every master of a Cluster. Not atomic: sessions created or deleted
    /// meanwhile may or may not be listed, as with SCAN itself.
    pub async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        match self {
            Backend::Memory(m) => Ok(m.scan(pattern)),
            Backend::Redis(r) => r.scan(pattern).await,
        }
    }

    /// Deletes a peer store's string value at `key`; never a session record.
    pub async fn foreign_delete(&self, key: &str) -> Result<bool> {
        match self {
            Backend::Memory(_) => Ok(false),
            Backend::Redis(r) => r.foreign_delete(key).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<bool> {
        match self {
            Backend::Memory(m) => Ok(m.delete(key)),
            Backend::Redis(r) => r.delete(key).await,
        }
    }

    /// Slides the expiry of an existing record; `false` when it is gone.
    pub async fn touch(&self, key: &str, expiry: Expiry) -> Result<bool> {
        match self {
            Backend::Memory(m) => Ok(m.touch(key, expiry)),
            Backend::Redis(r) => r.touch(key, expiry).await,
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self {
            Backend::Memory(m) => Ok(m.exists(key)),
            Backend::Redis(r) => r.exists(key).await,
        }
    }
}
