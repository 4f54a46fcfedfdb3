//! `Sessionkeeper::Native::Store` and `Sessionkeeper::Native::Baseline`: the
//! engine's `Store` as Ruby objects. The public API is the pure-Ruby facade in
//! `lib/sessionkeeper/store.rb`; these methods take already-normalised
//! arguments (String options, milliseconds).
//!
//! Every method follows the same shape: convert and own the inputs with the
//! GVL held, run the engine call in `without_gvl`, convert the result back.

use std::cell::RefCell;
use std::time::Duration;

use magnus::prelude::*;
use magnus::{Error, RArray, RHash, Ruby, Symbol, Value};
use sessionkeeper_core::{Baseline, ErrorKind, LegacyKey, SaveOutcome, Stats, Store};

use crate::convert::{session_from_ruby, session_to_ruby, ClientString};
use crate::error;
use crate::nogvl::{without_gvl, without_gvl_blocking};

#[magnus::wrap(class = "Sessionkeeper::Native::Store", free_immediately, size)]
pub struct RbStore {
    store: Store,
}

/// What a session held when it was loaded (or last saved): the Rails and
/// Rack adapters keep it for the request, between `load` and `save`, so that
/// `save` writes only the keys that changed.
#[magnus::wrap(class = "Sessionkeeper::Native::Baseline", free_immediately, size)]
pub struct RbBaseline {
    /// `None` while a save is using it (with the GVL released).
    inner: RefCell<Option<Baseline>>,
}

impl RbBaseline {
    fn new(baseline: Baseline) -> Self {
        RbBaseline { inner: RefCell::new(Some(baseline)) }
    }

    fn take(&self, ruby: &Ruby) -> Result<Baseline, Error> {
        self.inner.borrow_mut().take().ok_or_else(|| {
            error::raise(
                ruby,
                ErrorKind::Unexpected,
                "this Baseline is being used by a save in another thread; keep one Baseline per request",
                false,
            )
        })
    }

    fn put(&self, baseline: Baseline) {
        *self.inner.borrow_mut() = Some(baseline);
    }

    fn codec(&self) -> Option<String> {
        self.inner.borrow().as_ref().map(|b| b.codec().name().to_owned())
    }
}

fn options_from_ruby(options: RHash) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::with_capacity(options.len());
    options.foreach(|k: String, v: String| {
        out.push((k, v));
        Ok(magnus::r_hash::ForEach::Continue)
    })?;
    Ok(out)
}

/// `[["private_id", "prefix:"], ["plain", "prefix:"]]` -> the engine's
/// legacy sources, in lookup order.
fn legacy_sources(ruby: &Ruby, sources: RArray) -> Result<Vec<LegacyKey>, Error> {
    let mut out = Vec::with_capacity(sources.len());
    for i in 0..sources.len() {
        let (kind, prefix): (String, String) = sources.entry(i as isize)?;
        out.push(match kind.as_str() {
            "plain" => LegacyKey::Plain(prefix),
            "private_id" => LegacyKey::PrivateId(prefix),
            other => {
                return Err(error::raise(
                    ruby,
                    ErrorKind::Config,
                    &format!("legacy source kind must be \"plain\" or \"private_id\", got {other:?}"),
                    false,
                ))
            }
        });
    }
    Ok(out)
}

fn duration_from_ms(ms: Option<u64>) -> Option<Duration> {
    ms.filter(|ms| *ms > 0).map(Duration::from_millis)
}

fn ms(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RbStore {
    /// `Native::Store.new(url, {"key_prefix" => "app:", ...})`. Validates the
    /// configuration now; connects on first use.
    fn new(ruby: &Ruby, url: String, options: RHash) -> Result<Self, Error> {
        let options = options_from_ruby(options)?;
        let store = Store::from_url_and_options(&url, options).map_err(|e| error::to_ruby(ruby, e))?;
        Ok(RbStore { store })
    }

    /// A handle on the same store (same connections and stats) with another
    /// sliding expiry, in milliseconds; `nil` or 0 switches it off.
    fn with_idle_ttl(&self, idle_ttl_ms: Option<u64>) -> Self {
        RbStore { store: self.store.with_idle_ttl(duration_from_ms(idle_ttl_ms)) }
    }

    fn idle_ttl_ms(&self) -> Option<u64> {
        ms(self.store.idle_ttl())
    }

    fn absolute_ttl_ms(&self) -> Option<u64> {
        ms(self.store.config().absolute_ttl)
    }

    fn connect_timeout_ms(&self) -> Option<u64> {
        ms(Some(self.store.config().connect_timeout))
    }

    fn command_timeout_ms(&self) -> Option<u64> {
        ms(Some(self.store.config().command_timeout))
    }

    fn codec(&self) -> &'static str {
        self.store.config().codec.name()
    }

    fn key_prefix(&self) -> String {
        self.store.config().key_prefix.clone()
    }

    /// The Redis target with any password removed.
    fn target(&self) -> String {
        self.store.config().redacted_target()
    }

    fn new_baseline(&self) -> RbBaseline {
        RbBaseline::new(Baseline::empty(self.store.config().codec))
    }

    /// `nil`, or `[data, baseline, created_at_ms, expires_at_ms, deadline_ms]`.
    /// `serializer` (here and below): `nil` or the `ValueSerializer` of
    /// `serializer: :marshal` (see convert.rs).
    fn load(ruby: &Ruby, rb_self: &Self, id: ClientString, serializer: Option<Value>) -> Result<Option<RArray>, Error> {
        // The core reads a load's reply on this thread where it can (no
        // runtime hand-offs); the interrupt cuts it short for Thread#raise.
        let store = rb_self.store.clone();
        let Some(loaded) = without_gvl_blocking(ruby, |interrupt| store.load_blocking_interruptible(&id, interrupt))?
        else {
            return Ok(None);
        };
        let out = ruby.ary_new_capa(5);
        out.push(session_to_ruby(ruby, loaded.data, serializer)?)?;
        out.push(RbBaseline::new(loaded.baseline))?;
        out.push(loaded.meta.created_at_ms)?;
        out.push(loaded.meta.expires_at_ms)?;
        out.push(loaded.meta.deadline_ms)?;
        Ok(Some(out))
    }

    /// `:saved`, `:unchanged`, or `:gone` (destroyed or expired meanwhile and
    /// NOT re-created: the caller starts a fresh session).
    fn save(
        ruby: &Ruby,
        rb_self: &Self,
        id: ClientString,
        baseline: &RbBaseline,
        data: RHash,
        serializer: Option<Value>,
    ) -> Result<Symbol, Error> {
        let data = session_from_ruby(ruby, data, serializer)?;
        let store = rb_self.store.clone();
        let mut owned = baseline.take(ruby)?;
        // Like a load, on this thread's own socket where the core can; an
        // interrupted save is simply made again (same keys, same values).
        let out =
            without_gvl_blocking(ruby, |interrupt| store.save_blocking_interruptible(&id, &mut owned, &data, interrupt));
        baseline.put(owned);
        Ok(ruby.to_symbol(match out? {
            SaveOutcome::Unchanged => "unchanged",
            SaveOutcome::Saved { .. } => "saved",
            SaveOutcome::Gone => "gone",
        }))
    }

    /// `[id, baseline]` of a new session holding `data`.
    fn create(ruby: &Ruby, rb_self: &Self, data: RHash, serializer: Option<Value>) -> Result<RArray, Error> {
        let data = session_from_ruby(ruby, data, serializer)?;
        let store = rb_self.store.clone();
        let (id, baseline) = without_gvl(ruby, store.create(&data))?;
        let out = ruby.ary_new_capa(2);
        out.push(id)?;
        out.push(RbBaseline::new(baseline))?;
        Ok(out)
    }

    /// Stores `data` under `id` only if no session has it; `nil` otherwise.
    fn insert(
        ruby: &Ruby,
        rb_self: &Self,
        id: ClientString,
        data: RHash,
        serializer: Option<Value>,
    ) -> Result<Option<RbBaseline>, Error> {
        let data = session_from_ruby(ruby, data, serializer)?;
        let store = rb_self.store.clone();
        Ok(without_gvl(ruby, store.insert(&id, &data))?.map(RbBaseline::new))
    }

    /// `nil`, or `[source_index, bytes]`: what a peer store (e.g.
    /// redis-session-store) wrote for `id`, as it wrote it.
    fn legacy_read(ruby: &Ruby, rb_self: &Self, id: ClientString, sources: RArray) -> Result<Option<RArray>, Error> {
        let sources = legacy_sources(ruby, sources)?;
        let store = rb_self.store.clone();
        let Some(found) = without_gvl(ruby, store.legacy_read(&id, &sources))? else { return Ok(None) };
        let out = ruby.ary_new_capa(2);
        out.push(found.source)?;
        out.push(ruby.str_from_slice(&found.bytes))?;
        Ok(Some(out))
    }

    /// Stores the decoded peer session in our format and deletes the peer's
    /// keys. `nil` when a concurrent request migrated it first.
    fn legacy_migrate(
        ruby: &Ruby,
        rb_self: &Self,
        id: ClientString,
        sources: RArray,
        data: RHash,
        serializer: Option<Value>,
    ) -> Result<Option<RbBaseline>, Error> {
        let sources = legacy_sources(ruby, sources)?;
        let data = session_from_ruby(ruby, data, serializer)?;
        let store = rb_self.store.clone();
        Ok(without_gvl(ruby, store.legacy_migrate(&id, &sources, &data))?.map(RbBaseline::new))
    }

    fn legacy_delete(ruby: &Ruby, rb_self: &Self, id: ClientString, sources: RArray) -> Result<(), Error> {
        let sources = legacy_sources(ruby, sources)?;
        let store = rb_self.store.clone();
        without_gvl(ruby, store.legacy_delete(&id, &sources))
    }

    fn destroy(ruby: &Ruby, rb_self: &Self, id: ClientString) -> Result<bool, Error> {
        let store = rb_self.store.clone();
        without_gvl(ruby, store.destroy(&id))
    }

    fn touch(ruby: &Ruby, rb_self: &Self, id: ClientString) -> Result<bool, Error> {
        let store = rb_self.store.clone();
        without_gvl(ruby, store.touch(&id))
    }

    fn exists(ruby: &Ruby, rb_self: &Self, id: ClientString) -> Result<bool, Error> {
        let store = rb_self.store.clone();
        without_gvl(ruby, store.exists(&id))
    }

    fn renew(ruby: &Ruby, rb_self: &Self, id: ClientString) -> Result<Option<String>, Error> {
        let store = rb_self.store.clone();
        without_gvl(ruby, store.renew(&id))
    }

    fn stats(ruby: &Ruby, rb_self: &Self) -> Result<RHash, Error> {
        stats_to_ruby(ruby, rb_self.store.stats())
    }
}

fn stats_to_ruby(ruby: &Ruby, s: Stats) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    let sym = |name: &str| ruby.to_symbol(name);
    for (name, v) in s.counters() {
        h.aset(sym(name), v)?;
    }
    let errors = ruby.hash_new();
    for (name, v) in s.errors {
        errors.aset(sym(name), v)?;
    }
    h.aset(sym("errors"), errors)?;
    let l = s.round_trips;
    let rt = ruby.hash_new();
    for (name, v) in [
        ("count", l.count),
        ("p50_us", l.p50_us),
        ("p90_us", l.p90_us),
        ("p99_us", l.p99_us),
        ("p999_us", l.p999_us),
        ("max_us", l.max_us),
    ] {
        rt.aset(sym(name), v)?;
    }
    h.aset(sym("round_trips"), rt)?;
    Ok(h)
}

fn generate_id(ruby: &Ruby) -> Result<String, Error> {
    sessionkeeper_core::generate_id().map_err(|e| error::to_ruby(ruby, e))
}

fn valid_id(id: Value) -> bool {
    ClientString::try_convert(id).map(|id| sessionkeeper_core::is_valid_id(&id)).unwrap_or(false)
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    use magnus::{function, method};
    let root = ruby.define_module("Sessionkeeper")?;
    let native = root.define_module("Native")?;
    native.define_module_function("generate_id", function!(generate_id, 0))?;
    native.define_module_function("valid_id?", function!(valid_id, 1))?;

    let store = native.define_class("Store", ruby.class_object())?;
    store.define_singleton_method("new", function!(RbStore::new, 2))?;
    store.define_method("with_idle_ttl", method!(RbStore::with_idle_ttl, 1))?;
    store.define_method("idle_ttl_ms", method!(RbStore::idle_ttl_ms, 0))?;
    store.define_method("absolute_ttl_ms", method!(RbStore::absolute_ttl_ms, 0))?;
    store.define_method("connect_timeout_ms", method!(RbStore::connect_timeout_ms, 0))?;
    store.define_method("command_timeout_ms", method!(RbStore::command_timeout_ms, 0))?;
    store.define_method("codec", method!(RbStore::codec, 0))?;
    store.define_method("key_prefix", method!(RbStore::key_prefix, 0))?;
    store.define_method("target", method!(RbStore::target, 0))?;
    store.define_method("new_baseline", method!(RbStore::new_baseline, 0))?;
    store.define_method("load", method!(RbStore::load, 2))?;
    store.define_method("save", method!(RbStore::save, 4))?;
    store.define_method("create", method!(RbStore::create, 2))?;
    store.define_method("insert", method!(RbStore::insert, 3))?;
    store.define_method("destroy", method!(RbStore::destroy, 1))?;
    store.define_method("touch", method!(RbStore::touch, 1))?;
    store.define_method("exists?", method!(RbStore::exists, 1))?;
    store.define_method("renew", method!(RbStore::renew, 1))?;
    store.define_method("stats", method!(RbStore::stats, 0))?;
    store.define_method("legacy_read", method!(RbStore::legacy_read, 2))?;
    store.define_method("legacy_migrate", method!(RbStore::legacy_migrate, 4))?;
    store.define_method("legacy_delete", method!(RbStore::legacy_delete, 2))?;

    let baseline = native.define_class("Baseline", ruby.class_object())?;
    baseline.define_method("codec", method!(RbBaseline::codec, 0))?;
    Ok(())
}
