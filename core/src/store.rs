//! The session operations every binding exposes. Async; `BlockingStore`
//! wraps them for Ruby, Python and C.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::layout::{attr_field, encode_record, field_ms, ATTR_PREFIX, CODEC, CREATED, DEADLINE, IDLE};
use crate::backend::{Backend, Expiry, Record, Swap, Updated};
use crate::codec::Codec;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{generate_id, storage_key};
use crate::metrics::{Metrics, Stats};
use crate::own_saves::{OwnSaves, Written};
use crate::own_windows::OwnWindows;
use crate::runtime::PerProcess;
use crate::value::SessionData;

/// Encoded top-level values by key, in the session's key order.
type Encoded = indexmap::IndexMap<String, Vec<u8>>;

/// A handle on one session store. Cheap to clone; clones share connections
/// and statistics. Safe to use from many tasks and threads at once, and in
/// a child process after `fork()` (it reconnects there).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// The sliding expiry used by this handle (see `with_idle_ttl`).
    idle_ttl: Option<Duration>,
    /// Whether `idle_ttl` was set for the session (`with_idle_ttl`) rather
    /// than taken from the configuration.
    idle_explicit: bool,
    /// The window plain loads slide by in their `GETEX` (`with_load_window`);
    /// `None`: `idle_ttl`.
    load_window: Option<Option<Duration>>,
}

struct Inner {
    config: Config,
    backend: PerProcess<Backend>,
    metrics: Metrics,
    own_windows: OwnWindows,
    own_saves: OwnSaves<StoredRecord, Encoded>,
}

/// When a loaded session was created and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Milliseconds since the epoch, by the Redis server's clock.
    pub created_at_ms: i64,
    /// The absolute deadline, if `absolute_ttl` was set at creation.
    pub deadline_ms: Option<i64>,
    /// When the session expires unless used again; `None`: never.
    pub expires_at_ms: Option<i64>,
    /// The session's own sliding window, if one was set with `with_idle_ttl`
    /// (`Some(None)`: set to "no sliding expiry").
    pub idle_ttl: Option<Option<Duration>>,
}

/// What a session held when it was read, as stored: what `save` compares
/// against to write only what changed. Adapters keep it for the request.
#[derive(Debug, Clone)]
pub struct Baseline {
    codec: Codec,
    encoded: Encoded,
    /// The record as Redis held it when loaded, for the save's swap.
    stored: Option<StoredRecord>,
    /// Where its load started in this store's order of loads and saves
    /// (`OwnSaves`); 0 when no load made it.
    loaded_at: u64,
}

/// Two baselines are equal when they describe the same stored state,
/// whichever load read it.
impl PartialEq for Baseline {
    fn eq(&self, other: &Self) -> bool {
        (self.codec, &self.encoded, &self.stored) == (other.codec, &other.encoded, &other.stored)
    }
}

/// A stored record's bytes and its metadata fields (`m:*`, and any field a
/// newer version added), from which a save builds the record it swaps in.
#[derive(Debug, Clone, PartialEq)]
struct StoredRecord {
    bytes: Vec<u8>,
    meta: Vec<(String, Vec<u8>)>,
}

/// A save that has something to write.
pub(crate) struct PreparedSave {
    key: String,
    encoded: Encoded,
    set: Vec<(String, Vec<u8>)>,
    removed: Vec<String>,
    expiry: Expiry,
    swap: Option<PreparedSwap>,
    /// Where the save started in the order of loads and saves (`OwnSaves`).
    at: u64,
}

struct PreparedSwap {
    swap: Swap,
    /// The new record's metadata fields.
    meta: Vec<(String, Vec<u8>)>,
    /// Against the record an earlier save of this process wrote rather than
    /// the one the baseline holds.
    chained: bool,
}

impl PreparedSave {
    pub(crate) fn swap(&self) -> Option<&Swap> {
        self.swap.as_ref().map(|s| &s.swap)
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// The update script's arguments.
    pub(crate) fn update_args(&self) -> Vec<Vec<u8>> {
        crate::backend::update_args(self.expiry, &self.set, &self.removed, self.swap())
    }
}

/// Records up to this size are saved by a swap (the client sends the record
/// as loaded and its merge); bigger ones by a merge on the server, which
/// sends only the changes.
const SWAP_LIMIT: usize = 64 * 1024;

/// What a save changes: the top-level keys whose values are new, and those
/// it removes.
struct Changes<'a> {
    set: Vec<&'a str>,
    removed: Vec<&'a str>,
}

impl Changes<'_> {
    /// `record` with these changes applied, the new values taken from
    /// `encoded`: what the server's merge makes of that record.
    fn applied_to(&self, record: &Encoded, encoded: &Encoded) -> Encoded {
        let mut out = record.clone();
        for k in &self.set {
            out.insert((*k).to_owned(), encoded[*k].clone());
        }
        for k in &self.removed {
            out.shift_remove(*k);
        }
        out
    }
}

impl StoredRecord {
    /// The codec its values are in (a record names it; msgpack if not, as
    /// `decode_record` reads it), `None` for one this version does not know.
    fn codec(&self) -> Option<Codec> {
        match self.meta.iter().find(|(f, _)| f == CODEC) {
            Some((_, name)) => codec_named(name),
            None => Some(Codec::Msgpack),
        }
    }

    /// The swap that turns this record into one holding `encoded`, sliding
    /// by the window `expiry` gives (an explicit one becomes the session's
    /// own, as the merge script does), and the new record's metadata.
    fn swap_to(&self, encoded: &Encoded, expiry: Expiry) -> (Swap, Vec<(String, Vec<u8>)>) {
        let mut meta = self.meta.clone();
        let window_ms = if expiry.explicit {
            let own = expiry.idle_ms.to_string().into_bytes();
            match meta.iter_mut().find(|(f, _)| f == IDLE) {
                Some((_, v)) => *v = own,
                None => meta.push((IDLE.to_owned(), own)),
            }
            expiry.idle_ms
        } else {
            field_ms(&self.meta, IDLE).map_or(expiry.idle_ms, |ms| ms.max(0) as u64)
        };
        let attrs: Vec<(String, &[u8])> = encoded.iter().map(|(k, v)| (attr_field(k), v.as_slice())).collect();
        let new = encode_record(
            meta.iter().map(|(f, v)| (f.as_str(), v.as_slice())).chain(attrs.iter().map(|(f, v)| (f.as_str(), *v))),
        );
        let swap = Swap { old: self.bytes.clone(), new, deadline_ms: field_ms(&self.meta, DEADLINE), window_ms };
        (swap, meta)
    }
}

/// A session read by `load`.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub data: SessionData,
    pub meta: Meta,
    pub baseline: Baseline,
}

/// Where a peer store kept one session, for reading it during a migration
/// (docs/migration.md lists the peers' layouts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyKey {
    /// `prefix + id`: Flask-Session (`session:`), connect-redis (`sess:`),
    /// Django's cache backend (`:1:django.contrib.sessions.cache`),
    /// redis-session-store before 0.11.6.
    Plain(String),
    /// `prefix + "2::" + sha256_hex(id)`, Rack's private id:
    /// redis-session-store 0.11.6+, redis-actionpack, Rails' cache_store.
    PrivateId(String),
}

impl LegacyKey {
    /// Only ever called with a valid id.
    fn key_for(&self, id: &str) -> String {
        match self {
            LegacyKey::Plain(prefix) => format!("{prefix}{id}"),
            LegacyKey::PrivateId(prefix) => storage_key(prefix, id).unwrap_or_default(),
        }
    }
}

/// A peer's session value found by `legacy_read`: the bytes as the peer
/// wrote them, and which of the given sources held them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyValue {
    pub source: usize,
    pub bytes: Vec<u8>,
}

/// What `save` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Nothing changed; nothing was sent to Redis.
    Unchanged,
    /// The changed keys were written and the removed ones deleted.
    Saved { written: usize, removed: usize },
    /// The session was destroyed or expired meanwhile and was not re-created.
    /// The adapter should start a fresh session.
    Gone,
}

impl Store {
    /// Opens a store. Validates the configuration now (including reading a
    /// TLS CA file); connects to Redis lazily, on first use.
    pub fn open(config: Config) -> Result<Store> {
        let backend = Backend::open(&config)?;
        let idle_ttl = config.idle_ttl;
        let inner = Inner {
            config,
            backend: PerProcess::with(backend),
            metrics: Metrics::new(),
            own_windows: OwnWindows::default(),
            own_saves: OwnSaves::default(),
        };
        Ok(Store { inner: Arc::new(inner), idle_ttl, idle_explicit: false, load_window: None })
    }

    pub fn from_url_and_options<K: AsRef<str>, V: AsRef<str>>(
        url: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Store> {
        Store::open(Config::from_url_and_options(url, options)?)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A handle on the same store whose loads, saves, creates and touches set
    /// the session's own sliding expiry (per-request `expire_after`, Django's
    /// `set_expiry`, express-session's `cookie.maxAge`). The session keeps it:
    /// later operations through a default handle slide by it too, so an
    /// adapter can load without knowing it. `None` switches sliding off.
    pub fn with_idle_ttl(&self, idle_ttl: Option<Duration>) -> Store {
        Store { inner: self.inner.clone(), idle_ttl, idle_explicit: true, load_window: None }
    }

    /// A handle whose loads expect the sessions to carry `window` as their
    /// own (set by `with_idle_ttl` saves, e.g. express-session's
    /// `cookie.maxAge`): a load's one `GETEX` slides by it, so such a
    /// session needs no second command to correct its expiry. The rules are
    /// unchanged: a session with another window of its own, or none (which
    /// slides by `idle_ttl`), is still corrected after the read. Only plain
    /// loads change; every other call is this handle's as it was.
    pub fn with_load_window(&self, window: Option<Duration>) -> Store {
        Store { load_window: Some(window), ..self.clone() }
    }

    pub fn idle_ttl(&self) -> Option<Duration> {
        self.idle_ttl
    }

    /// Whether `load_blocking` and `save_blocking` do their I/O on the
    /// calling thread's own socket (standalone Redis without TLS). Elsewhere
    /// they wait on the runtime, so a caller that would give them a thread of
    /// their own (Node) gains nothing: it should call `load`/`save`.
    pub fn blocking_uses_own_socket(&self) -> bool {
        self.backend().is_ok_and(|b| b.has_direct_sockets())
    }

    pub fn stats(&self) -> Stats {
        self.inner.metrics.snapshot()
    }

    pub(crate) fn expiry(&self) -> Expiry {
        let idle_ms = window_ms(self.idle_ttl);
        let getex_ms = self.load_window.map_or(idle_ms, window_ms);
        Expiry { idle_ms, getex_ms, absolute_ms: window_ms(self.inner.config.absolute_ttl), explicit: self.idle_explicit }
    }

    /// The expiry of a plain load of `key`: this handle's, its `GETEX`
    /// sliding by the window the session was last seen to carry, if it has
    /// one of its own (`OwnWindows`).
    pub(crate) fn plain_load_expiry(&self, key: &str) -> Expiry {
        let mut expiry = self.expiry();
        if let Some(window) = self.inner.own_windows.get(key).filter(|_| !expiry.explicit) {
            expiry.getex_ms = window;
        }
        expiry
    }

    pub(crate) fn backend(&self) -> Result<Arc<Backend>> {
        self.inner.backend.get_or_try_init(|| Backend::open(&self.inner.config))
    }

    /// The storage key of a valid id; counts and reports an invalid one.
    pub(crate) fn key(&self, id: &str) -> Option<String> {
        let key = storage_key(&self.inner.config.key_prefix, id);
        if key.is_none() {
            Metrics::add(&self.inner.metrics.invalid_ids, 1);
        }
        key
    }

    fn invalid_id() -> Error {
        Error::new(ErrorKind::InvalidId, "session ids are 32 to 128 characters of [A-Za-z0-9_-]")
    }

    /// Times one backend call and counts its error, if any.
    pub(crate) async fn round_trip<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let out = fut.await;
        self.timed(started, out)
    }

    pub(crate) fn timed<T>(&self, started: Instant, out: Result<T>) -> Result<T> {
        self.inner.metrics.round_trip(started.elapsed());
        if let Err(e) = &out {
            self.inner.metrics.error(e.kind());
        }
        out
    }

    pub(crate) fn count_error<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.inner.metrics.error(e.kind());
        }
        r
    }

    /// Reads a session and slides its expiry, in one round trip. `None` for a
    /// missing, expired or invalid id (an invalid id never reaches Redis).
    /// A session whose data cannot be decoded is deleted and reported as a
    /// `Codec` error, so the adapter can log it and start a fresh one.
    pub async fn load(&self, id: &str) -> Result<Option<Loaded>> {
        let Some(key) = self.key(id) else { return self.count_load(None, Ok(None)) };
        let loaded = self.load_key(&key, Some(self.plain_load_expiry(&key))).await;
        self.count_load(Some(&key), loaded)
    }

    /// `load` for a caller that blocks its thread anyway (`BlockingStore`:
    /// Python, C): on standalone Redis without TLS the `GETEX` goes out on a
    /// socket this thread reads itself, saving the two thread hand-offs of a
    /// call through the runtime. Same semantics as `load`.
    pub fn load_blocking(&self, id: &str) -> Result<Option<Loaded>> {
        self.load_blocking_with(id, None)
    }

    /// `load_blocking` that another thread can cut short with
    /// `Interrupt::interrupt` (Ruby's unblocking function): the call then
    /// returns a temporary `Timeout` error ("interrupted"), and may simply be
    /// retried, since a load changes nothing but the expiry.
    pub fn load_blocking_interruptible(&self, id: &str, interrupt: &crate::runtime::Interrupt) -> Result<Option<Loaded>> {
        self.load_blocking_with(id, Some(interrupt))
    }

    fn load_blocking_with(&self, id: &str, interrupt: Option<&crate::runtime::Interrupt>) -> Result<Option<Loaded>> {
        let Some(key) = self.key(id) else { return self.count_load(None, Ok(None)) };
        let loaded = self.load_key_blocking(&key, interrupt);
        self.count_load(Some(&key), loaded)
    }

    fn load_key_blocking(&self, key: &str, interrupt: Option<&crate::runtime::Interrupt>) -> Result<Option<Loaded>> {
        use crate::runtime::block_on_unless_interrupted as on_runtime;
        let backend = self.backend()?;
        let started = Instant::now();
        let loaded_at = self.start_load();
        let expiry = self.plain_load_expiry(key);
        let Some(fetched) = backend.load_on_this_thread(key, expiry, interrupt) else {
            return on_runtime(self.load_key(key, Some(expiry)), interrupt);
        };
        let fetched = self.timed(started, fetched);
        match self.decode_fetched(fetched, loaded_at) {
            Err(e) if e.kind() == ErrorKind::Codec => on_runtime(self.drop_undecodable(&backend, key, e), interrupt),
            other => other,
        }
    }

    /// A load's number in the order this store's loads and saves start: a
    /// save compares it with its own saves' (`OwnSaves`).
    pub(crate) fn start_load(&self) -> u64 {
        self.inner.own_saves.tick()
    }

    /// Counts a finished plain load of `key` (`None`: an invalid id) and
    /// learns the session's window from it (`OwnWindows`).
    pub(crate) fn count_load(&self, key: Option<&str>, loaded: Result<Option<Loaded>>) -> Result<Option<Loaded>> {
        match (key, &loaded) {
            // A handle that sets the window (`with_idle_ttl`) expects its own,
            // not what the default handles' loads should ask for.
            (Some(_), _) if self.idle_explicit => {}
            (Some(key), Ok(Some(found))) => {
                let expiry = self.expiry();
                let window = found.meta.idle_ttl.map_or(expiry.idle_ms, window_ms);
                self.inner.own_windows.learn(key, window, expiry.getex_ms);
            }
            (Some(key), Ok(None)) => self.inner.own_windows.forget(key),
            _ => {}
        }
        let m = &self.inner.metrics;
        Metrics::add(&m.loads, 1);
        Metrics::add(if matches!(loaded, Ok(Some(_))) { &m.hits } else { &m.misses }, 1);
        loaded
    }

    /// Reads the record at `key`, sliding its expiry if `slide` is given; a
    /// record that cannot be decoded is deleted and reported.
    pub(crate) async fn load_key(&self, key: &str, slide: Option<Expiry>) -> Result<Option<Loaded>> {
        let backend = self.backend()?;
        let loaded_at = self.start_load();
        let fetched = self.round_trip(backend.load(key, slide)).await;
        match self.decode_fetched(fetched, loaded_at) {
            Err(e) if e.kind() == ErrorKind::Codec => self.drop_undecodable(&backend, key, e).await,
            other => other,
        }
    }

    /// A `Codec` error out of here always means the stored record is
    /// undecodable (the backend's or `decode_record`'s verdict).
    /// `loaded_at`: the load's number from `start_load`.
    pub(crate) fn decode_fetched(&self, fetched: Result<Option<Record>>, loaded_at: u64) -> Result<Option<Loaded>> {
        let Some(record) = fetched? else { return Ok(None) };
        Metrics::add(&self.inner.metrics.bytes_read, fields_size(&record.fields));
        let mut loaded = decode_record(record)?;
        loaded.baseline.loaded_at = loaded_at;
        Ok(Some(loaded))
    }

    /// Keeping an undecodable session would fail every request that carries
    /// its cookie until it expires: it is deleted, and the error reported.
    async fn drop_undecodable<T>(&self, backend: &Backend, key: &str, e: Error) -> Result<T> {
        let removed = self.round_trip(backend.delete(key)).await.is_ok();
        let what = if removed { "it was removed" } else { "removing it failed too" };
        self.count_error(Err(Error::codec(format!("{}; {what}", e.message()))))
    }

    /// Writes what changed between `baseline` (from `load`) and `data`: the
    /// changed top-level keys are set and the missing ones removed, in one
    /// atomic round trip; keys another request changed meanwhile are left
    /// alone. Nothing is sent when nothing changed. A session destroyed or
    /// expired meanwhile is not re-created (`SaveOutcome::Gone`). On success
    /// `baseline` describes the stored state.
    pub async fn save(&self, id: &str, baseline: &mut Baseline, data: &SessionData) -> Result<SaveOutcome> {
        let save = match self.prepare_save(id, baseline, data)? {
            Ok(save) => save,
            Err(unchanged) => return Ok(unchanged),
        };
        self.send_save(baseline, save).await
    }

    /// Sends a prepared save on the runtime's connection and finishes it.
    pub(crate) async fn send_save(&self, baseline: &mut Baseline, save: PreparedSave) -> Result<SaveOutcome> {
        let backend = self.backend()?;
        let updated = self.round_trip(backend.update(&save.key, save.expiry, &save.set, &save.removed, save.swap())).await?;
        Ok(self.finish_save(baseline, save, updated))
    }

    /// `save` for a caller that blocks its thread anyway (`BlockingStore`):
    /// like `load_blocking`, the script runs on this thread's own socket
    /// where the topology allows it. Same semantics as `save`.
    pub fn save_blocking(&self, id: &str, baseline: &mut Baseline, data: &SessionData) -> Result<SaveOutcome> {
        self.save_blocking_with(id, baseline, data, None)
    }

    /// `save_blocking` that `interrupt` can cut short from another thread
    /// (a temporary `Timeout` error, "interrupted"). Whether the save landed
    /// is then unknown; saving again is safe: the same keys get the same
    /// values, merged into whatever the record holds.
    pub fn save_blocking_interruptible(
        &self,
        id: &str,
        baseline: &mut Baseline,
        data: &SessionData,
        interrupt: &crate::runtime::Interrupt,
    ) -> Result<SaveOutcome> {
        self.save_blocking_with(id, baseline, data, Some(interrupt))
    }

    fn save_blocking_with(
        &self,
        id: &str,
        baseline: &mut Baseline,
        data: &SessionData,
        interrupt: Option<&crate::runtime::Interrupt>,
    ) -> Result<SaveOutcome> {
        let save = match self.prepare_save(id, baseline, data)? {
            Ok(save) => save,
            Err(unchanged) => return Ok(unchanged),
        };
        let backend = self.backend()?;
        let started = Instant::now();
        let updated = match backend.update_on_this_thread(&save.key, save.expiry, &save.set, &save.removed, save.swap(), interrupt) {
            Some(updated) => self.timed(started, updated)?,
            None => crate::runtime::block_on_unless_interrupted(
                self.round_trip(backend.update(&save.key, save.expiry, &save.set, &save.removed, save.swap())),
                interrupt,
            )?,
        };
        Ok(self.finish_save(baseline, save, updated))
    }

    /// What a save has to send, or `Err(Unchanged)` when nothing changed.
    pub(crate) fn prepare_save(
        &self,
        id: &str,
        baseline: &Baseline,
        data: &SessionData,
    ) -> Result<std::result::Result<PreparedSave, SaveOutcome>> {
        let Some(key) = self.key(id) else { return self.count_error(Err(Self::invalid_id())) };
        let encoded = self.count_error(self.encode(baseline.codec, data))?;
        let changes = Changes {
            set: encoded.iter().filter(|(k, v)| baseline.encoded.get(*k) != Some(v)).map(|(k, _)| k.as_str()).collect(),
            removed: baseline.encoded.keys().filter(|k| !encoded.contains_key(*k)).map(String::as_str).collect(),
        };
        if changes.set.is_empty() && changes.removed.is_empty() {
            Metrics::add(&self.inner.metrics.skipped_saves, 1);
            return Ok(Err(SaveOutcome::Unchanged));
        }
        let set = changes.set.iter().map(|k| (attr_field(k), encoded[*k].clone())).collect();
        let removed = changes.removed.iter().map(|k| attr_field(k)).collect();
        let expiry = self.expiry();
        let at = self.inner.own_saves.tick();
        let swap = self.swap_for(&key, at, baseline, &encoded, &changes, expiry);
        Ok(Ok(PreparedSave { key, encoded, set, removed, expiry, swap, at }))
    }

    /// The swap of the save numbered `at`: against the record this
    /// process's last save of `key` wrote when the baseline's load came
    /// before that save (`OwnSaves`), else against the record as loaded.
    /// `None` (the server merges) when neither is known or the record is too
    /// big to send twice.
    fn swap_for(
        &self,
        key: &str,
        at: u64,
        baseline: &Baseline,
        encoded: &Encoded,
        changes: &Changes<'_>,
        expiry: Expiry,
    ) -> Option<PreparedSwap> {
        let own = &self.inner.own_saves;
        let seen = own.seen(key, baseline.loaded_at);
        let watched = seen.is_some();
        // Values of one codec are never spliced into a record of another.
        let earlier = seen.flatten().filter(|w| w.record.codec() == Some(baseline.codec));
        let (swap, meta, content) = match &earlier {
            Some(written) => {
                let content = changes.applied_to(&written.encoded, encoded);
                let (swap, meta) = written.record.swap_to(&content, expiry);
                (swap, meta, Some(content))
            }
            None => {
                let stored = baseline.stored.as_ref().filter(|s| s.bytes.len() <= SWAP_LIMIT)?;
                let (swap, meta) = stored.swap_to(encoded, expiry);
                (swap, meta, None)
            }
        };
        if watched && swap.new.len() <= SWAP_LIMIT {
            let record = StoredRecord { bytes: swap.new.clone(), meta: meta.clone() };
            let encoded = content.unwrap_or_else(|| encoded.clone());
            let values: usize = encoded.iter().map(|(k, v)| k.len() + v.len()).sum();
            let size = record.bytes.len() + fields_size(&record.meta) as usize + values;
            own.writing(key, at, Written { record, encoded, size });
        }
        Some(PreparedSwap { swap, meta, chained: earlier.is_some() })
    }

    pub(crate) fn finish_save(&self, baseline: &mut Baseline, save: PreparedSave, updated: Updated) -> SaveOutcome {
        let m = &self.inner.metrics;
        baseline.stored = match (updated, save.swap) {
            (Updated::Gone, _) => {
                self.inner.own_saves.forget(&save.key);
                Metrics::add(&m.gone_saves, 1);
                return SaveOutcome::Gone;
            }
            (Updated::Swapped, Some(PreparedSwap { swap, meta, chained: false })) => Some(StoredRecord { bytes: swap.new, meta }),
            // Another save changed the record since the one swapped against.
            (Updated::Merged, Some(_)) => {
                self.inner.own_saves.merged(&save.key, save.at, true);
                Metrics::add(&m.merged_saves, 1);
                None
            }
            // A merge with nothing to compare (a big record, a baseline that
            // knows no bytes): the record is unknown, but nothing says a
            // save of another request came between.
            (Updated::Merged, None) => {
                self.inner.own_saves.merged(&save.key, save.at, false);
                None
            }
            // The record's bytes are not what this baseline describes: a
            // merge's are unknown here, a chained swap's hold other saves'
            // changes too. The next save finds them in `OwnSaves` or merges.
            _ => None,
        };
        Metrics::add(&m.saves, 1);
        Metrics::add(&m.keys_written, save.set.len() as u64);
        Metrics::add(&m.keys_removed, save.removed.len() as u64);
        Metrics::add(&m.bytes_written, fields_size(&save.set));
        baseline.encoded = save.encoded;
        SaveOutcome::Saved { written: save.set.len(), removed: save.removed.len() }
    }

    /// Stores `data` under a new id, only where no session exists, and
    /// returns the id with the baseline for later saves.
    pub async fn create(&self, data: &SessionData) -> Result<(String, Baseline)> {
        // 128 random bits never collide in practice; the loop is for the
        // guarantee, not for a case anyone will see.
        for _ in 0..4 {
            let id = self.count_error(generate_id())?;
            if let Some(baseline) = self.insert(&id, data).await? {
                return Ok((id, baseline));
            }
        }
        self.count_error(Err(Error::unexpected("could not find a free session id")))
    }

    /// Stores `data` under `id` (one a framework generated) only if no
    /// session has that id. `None` when one exists: nothing was overwritten.
    pub async fn insert(&self, id: &str, data: &SessionData) -> Result<Option<Baseline>> {
        let Some(key) = self.key(id) else { return self.count_error(Err(Self::invalid_id())) };
        self.insert_at(&key, data, false).await
    }

    async fn insert_at(&self, key: &str, data: &SessionData, replace_foreign: bool) -> Result<Option<Baseline>> {
        let m = &self.inner.metrics;
        let codec = self.inner.config.codec;
        let encoded = self.count_error(self.encode(codec, data))?;
        let mut fields: Vec<(String, Vec<u8>)> = Vec::with_capacity(encoded.len() + 1);
        // msgpack, the default, goes unnamed: readers take a record without
        // `m:codec` as msgpack, and every session is 19 bytes smaller in Redis.
        if codec != Codec::Msgpack {
            fields.push((CODEC.to_owned(), codec.name().as_bytes().to_vec()));
        }
        fields.extend(encoded.iter().map(|(k, v)| (attr_field(k), v.clone())));
        let backend = self.backend()?;
        if !self.round_trip(backend.insert(key, self.expiry(), &fields, replace_foreign)).await? {
            return Ok(None);
        }
        Metrics::add(&m.creates, 1);
        Metrics::add(&m.keys_written, encoded.len() as u64);
        Metrics::add(&m.bytes_written, fields_size(&fields));
        Ok(Some(Baseline { codec, encoded, stored: None, loaded_at: 0 }))
    }

    /// For migration: the value a peer store (redis-session-store,
    /// Flask-Session, connect-redis, Django's cache backend, ...) wrote for
    /// `id`, looked up at each of `sources` in order. One round trip per
    /// source tried, so adapters call it only when `load` found nothing. The
    /// bytes are in the peer's format; the adapter decodes them.
    pub async fn legacy_read(&self, id: &str, sources: &[LegacyKey]) -> Result<Option<LegacyValue>> {
        if self.key(id).is_none() {
            return Ok(None);
        }
        let backend = self.backend()?;
        for (source, legacy) in sources.iter().enumerate() {
            let key = legacy.key_for(id);
            if let Some(bytes) = self.round_trip(backend.foreign_get(&key)).await? {
                Metrics::add(&self.inner.metrics.bytes_read, bytes.len() as u64);
                return Ok(Some(LegacyValue { source, bytes }));
            }
        }
        Ok(None)
    }

    /// For migration: stores `data` (decoded from `legacy_read`) as a session
    /// in our format under `id`, then deletes the peer's keys. `None` when a
    /// concurrent request migrated it first: `load` it instead.
    pub async fn legacy_migrate(&self, id: &str, sources: &[LegacyKey], data: &SessionData) -> Result<Option<Baseline>> {
        let Some(key) = self.key(id) else { return self.count_error(Err(Self::invalid_id())) };
        // A peer's value under our own key name is replaced in the same step.
        let Some(baseline) = self.insert_at(&key, data, true).await? else { return Ok(None) };
        self.legacy_delete_keys(id, sources).await?;
        Ok(Some(baseline))
    }

    /// For migration: deletes the peer's values for `id` (a logout of a
    /// session never migrated, or an undecodable peer value). Only string
    /// values are deleted, so a session of ours under the same key name
    /// stays.
    pub async fn legacy_delete(&self, id: &str, sources: &[LegacyKey]) -> Result<()> {
        if self.key(id).is_none() {
            return Ok(());
        }
        self.legacy_delete_keys(id, sources).await
    }

    async fn legacy_delete_keys(&self, id: &str, sources: &[LegacyKey]) -> Result<()> {
        let backend = self.backend()?;
        for legacy in sources {
            self.round_trip(backend.foreign_delete(&legacy.key_for(id))).await?;
        }
        Ok(())
    }

    /// Deletes a session. `false` when there was none (or the id is invalid).
    pub async fn destroy(&self, id: &str) -> Result<bool> {
        let Some(key) = self.key(id) else { return Ok(false) };
        let backend = self.backend()?;
        let gone = self.round_trip(backend.delete(&key)).await?;
        self.inner.own_windows.forget(&key);
        self.inner.own_saves.forget(&key);
        Metrics::add(&self.inner.metrics.destroys, u64::from(gone));
        Ok(gone)
    }

    /// Slides a session's expiry without reading it. `false` when it is gone.
    pub async fn touch(&self, id: &str) -> Result<bool> {
        let Some(key) = self.key(id) else { return Ok(false) };
        let backend = self.backend()?;
        self.round_trip(backend.touch(&key, self.expiry())).await
    }

    /// Whether a live session has this id. Does not slide its expiry.
    pub async fn exists(&self, id: &str) -> Result<bool> {
        let Some(key) = self.key(id) else { return Ok(false) };
        let backend = self.backend()?;
        self.round_trip(backend.exists(&key)).await
    }

    /// Moves a session to a new id and deletes the old one (the defence
    /// against session fixation, done at login). The data, creation time and
    /// absolute deadline carry over. `None` when there was no session.
    pub async fn renew(&self, id: &str) -> Result<Option<String>> {
        let Some(key) = self.key(id) else { return Ok(None) };
        let backend = self.backend()?;
        let Some(record) = self.round_trip(backend.load(&key, Some(self.expiry()))).await? else { return Ok(None) };
        for _ in 0..4 {
            let new_id = self.count_error(generate_id())?;
            let new_key = storage_key(&self.inner.config.key_prefix, &new_id).expect("generated ids are valid");
            // Created before the old one is deleted: a failure in between
            // leaves the user logged in under the old id, never logged out.
            if self.round_trip(backend.insert(&new_key, self.expiry(), &record.fields, false)).await? {
                self.round_trip(backend.delete(&key)).await?;
                return Ok(Some(new_id));
            }
        }
        self.count_error(Err(Error::unexpected("could not find a free session id")))
    }

    /// The handle of every live session under this store's key prefix, on
    /// every Cluster master: `2::<sha256 hex>`, the key without the prefix.
    /// A handle is not a session id (ids cannot be recovered from keys, by
    /// design) and cannot be used as a cookie; it works with `peek_handle`
    /// and `destroy_handle`. For admin tools and express-session's
    /// `all`/`ids`; it SCANs the whole keyspace, so not for request paths.
    pub async fn handles(&self) -> Result<Vec<String>> {
        let prefix = &self.inner.config.key_prefix;
        let keys = self.scan_sessions().await?;
        Ok(keys.into_iter().filter_map(|k| k.strip_prefix(prefix.as_str()).map(str::to_owned)).filter(|h| is_valid_handle(h)).collect())
    }

    async fn scan_sessions(&self) -> Result<Vec<String>> {
        let pattern = format!("{}2::*", escape_glob(&self.inner.config.key_prefix));
        let backend = self.backend()?;
        self.count_error(backend.scan(&pattern).await)
    }

    /// The number of live sessions under this store's key prefix (a SCAN).
    pub async fn count(&self) -> Result<usize> {
        Ok(self.handles().await?.len())
    }

    /// Deletes every session under this store's key prefix; returns how many.
    pub async fn clear(&self) -> Result<usize> {
        let mut deleted = 0;
        for handle in self.handles().await? {
            deleted += usize::from(self.destroy_handle(&handle).await?);
        }
        Ok(deleted)
    }

    /// Reads the session behind a handle from `handles`, without sliding its
    /// expiry (listing sessions must not keep them alive).
    pub async fn peek_handle(&self, handle: &str) -> Result<Option<Loaded>> {
        if !is_valid_handle(handle) {
            return Ok(None);
        }
        self.load_key(&format!("{}{handle}", self.inner.config.key_prefix), None).await
    }

    /// Deletes the session behind a handle from `handles`.
    pub async fn destroy_handle(&self, handle: &str) -> Result<bool> {
        if !is_valid_handle(handle) {
            return Ok(false);
        }
        let backend = self.backend()?;
        let gone = self.round_trip(backend.delete(&format!("{}{handle}", self.inner.config.key_prefix))).await?;
        Metrics::add(&self.inner.metrics.destroys, u64::from(gone));
        Ok(gone)
    }

    /// Encodes every top-level value and enforces `max_size`.
    fn encode(&self, codec: Codec, data: &SessionData) -> Result<Encoded> {
        let mut out = Encoded::with_capacity(data.len());
        let mut size = 0usize;
        for (k, v) in data {
            let bytes = codec.encode(v).map_err(|e| Error::codec(format!("session key {k:?}: {}", e.message())))?;
            size += k.len() + bytes.len();
            out.insert(k.clone(), bytes);
        }
        let max = self.inner.config.max_size;
        if size > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!("the session is {size} bytes encoded, more than max_size ({max}); nothing was written"),
            ));
        }
        Ok(out)
    }
}

impl Baseline {
    /// The baseline of a session that holds nothing yet, in `codec`.
    pub fn empty(codec: Codec) -> Baseline {
        Baseline { codec, encoded: Encoded::new(), stored: None, loaded_at: 0 }
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// About how many bytes of memory this baseline holds outside itself:
    /// for bindings whose garbage collector must be told about memory it
    /// cannot see (Node's `napi_adjust_external_memory`).
    pub fn heap_size(&self) -> usize {
        // Per allocation: the vector's or string's header and the
        // allocator's own overhead, roughly.
        const PER_ALLOCATION: usize = 32;
        let field = |name: &str, value: &[u8]| name.len() + value.len() + 2 * PER_ALLOCATION;
        let encoded: usize = self.encoded.iter().map(|(k, v)| field(k, v)).sum();
        let stored = self.stored.as_ref().map_or(0, |s| {
            s.bytes.len() + PER_ALLOCATION + s.meta.iter().map(|(k, v)| field(k, v)).sum::<usize>()
        });
        encoded + stored
    }
}

/// Bytes of record fields as sent or received (names plus values), for stats.
fn fields_size(fields: &[(String, Vec<u8>)]) -> u64 {
    fields.iter().map(|(f, v)| (f.len() + v.len()) as u64).sum()
}

/// `2::` and 64 lowercase hex digits: the only handles `handles` returns,
/// so nothing else is ever turned into a key.
pub fn is_valid_handle(handle: &str) -> bool {
    handle.len() == 67
        && handle.starts_with("2::")
        && handle.bytes().skip(3).all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Escapes the glob characters of a literal for SCAN's MATCH.
fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A window or lifetime in milliseconds as the backend takes it: 0 for none,
/// at least 1 otherwise.
fn window_ms(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// The codec a record's `m:codec` field names, `None` for one this version
/// does not know.
fn codec_named(value: &[u8]) -> Option<Codec> {
    std::str::from_utf8(value).ok().and_then(Codec::from_name)
}

fn decode_record(record: Record) -> Result<Loaded> {
    let mut codec = Codec::Msgpack;
    let mut created_at_ms = record.now_ms;
    let mut deadline_ms = None;
    let mut idle_ttl = None;
    let mut attrs = Vec::with_capacity(record.fields.len());
    let mut meta = Vec::with_capacity(4);
    let parse_ms = |v: &[u8]| std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok());
    for (mut field, value) in record.fields {
        if field.starts_with(ATTR_PREFIX) {
            // The key's name in the field's own allocation: one fewer per key.
            field.drain(..ATTR_PREFIX.len());
            attrs.push((field, value));
            continue;
        }
        if field == CODEC {
            codec = codec_named(&value).ok_or_else(|| Error::codec("the session names a codec this version does not know"))?;
        } else if field == CREATED {
            created_at_ms = parse_ms(&value).unwrap_or(record.now_ms);
        } else if field == DEADLINE {
            deadline_ms = parse_ms(&value);
        } else if field == IDLE {
            idle_ttl = parse_ms(&value).map(|ms| (ms > 0).then(|| Duration::from_millis(ms as u64)));
        }
        // Other fields are metadata of a newer version: ignored, kept.
        meta.push((field, value));
    }
    let mut data = SessionData::with_capacity(attrs.len());
    let mut encoded = Encoded::with_capacity(attrs.len());
    for (name, bytes) in attrs {
        let value = codec
            .decode(&bytes)
            .map_err(|e| Error::codec(format!("session key {name:?} could not be decoded ({})", e.message())))?;
        data.insert(name.clone(), value);
        encoded.insert(name, bytes);
    }
    Ok(Loaded {
        data,
        meta: Meta { created_at_ms, deadline_ms, expires_at_ms: record.expires_at_ms, idle_ttl },
        baseline: Baseline { codec, encoded, stored: record.stored.map(|bytes| StoredRecord { bytes, meta }), loaded_at: 0 },
    })
}
