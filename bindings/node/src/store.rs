//! The `Store` and `Baseline` classes.
//!
//! Every I/O method converts its arguments on the JavaScript thread, runs the
//! engine call on the engine's threads and settles its Promise back on the
//! JavaScript thread, where the result (or the error object from `error.rs`,
//! with `code` and `temporary`) is built (settle.rs). On a standalone Redis,
//! `node/lib/wire.js` sends loads and saves over its event-loop socket
//! instead (wire.rs), and calls these methods only without one; here they
//! run on a blocking thread with a socket of its own. Every other call runs
//! on the engine's runtime. Nothing blocks the event loop.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use napi::bindgen_prelude::{ClassInstance, FromNapiValue, PromiseRaw, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use sessionkeeper_core::{self as engine, ErrorKind, SaveOutcome, Value};

use crate::convert::{self, Fail, Reader, Writer, R};
use crate::error::{rejected, throw_conversion, throw_engine};
use crate::settle;

type Promise<'env> = napi::Result<PromiseRaw<'env, Unknown<'env>>>;

/// A method's arguments, read by `$read` with a `Reader` named `$r`; when one
/// cannot be converted, the method returns a Promise rejected with the error
/// that names it (methods reject, never throw).
macro_rules! args_or_reject {
    ($env:expr, |$r:ident| $read:expr) => {
        match Reader::new($env.raw()).and_then(|$r| $read) {
            Ok(args) => args,
            Err(f) => return rejected($env, f),
        }
    };
}

/// Runs `fut` on the engine runtime; `done` turns its value into JavaScript
/// on the JavaScript thread once it completes (settle.rs).
fn run<'env, T, F, D>(env: &'env Env, fut: F, done: D) -> Promise<'env>
where
    T: Send + 'static,
    F: Future<Output = engine::Result<T>> + Send + 'static,
    D: FnOnce(&Writer, T) -> R<sys::napi_value> + Send + 'static,
{
    settle::spawn(env, fut, done)
}

/// What a save moves to the thread that runs it: the handle, the id, the
/// caller's Baseline object, a working copy of it and the session data.
type SaveArgs = (engine::Store, String, Arc<Mutex<engine::Baseline>>, engine::Baseline, engine::SessionData);

/// The `ttlMs` argument: a per-call idle TTL. `undefined` keeps the
/// handle's, `null` or `0` turns sliding expiry off, a positive number is
/// milliseconds (fractions round up).
fn ttl_arg(r: &Reader, v: sys::napi_value) -> R<Option<Option<Duration>>> {
    ttl_value(r, v).map_err(|f| f.in_argument("ttlMs"))
}

fn ttl_value(r: &Reader, v: sys::napi_value) -> R<Option<Option<Duration>>> {
    match r.type_of(v)? {
        sys::ValueType::napi_undefined => Ok(None),
        sys::ValueType::napi_null => Ok(Some(None)),
        sys::ValueType::napi_number => ms_duration(r.number(v)?).map(Some),
        _ => Err(Fail::type_error(format!(
            "must be a number of milliseconds, null or undefined; got {}",
            r.describe(v)?
        ))),
    }
}

fn ms_duration(ms: f64) -> R<Option<Duration>> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(Fail::range_error(format!("must be a finite number of milliseconds >= 0; got {ms}")));
    }
    if ms == 0.0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_micros((ms * 1000.0).ceil() as u64)))
}

fn ms_of(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Option values: strings as they are, numbers and booleans spelled out
/// (`idle_ttl: 900` is 900 seconds, as in every binding); `undefined` and
/// `null` are left out so `{ key_prefix: maybe }` works.
fn options_arg(r: &Reader, v: sys::napi_value) -> R<Vec<(String, String)>> {
    if matches!(r.type_of(v)?, sys::ValueType::napi_undefined | sys::ValueType::napi_null) {
        return Ok(Vec::new());
    }
    let map = match r.value(v, 0)? {
        Value::Map(m) => m,
        _ => return Err(Fail::type_error(format!("must be an object; got {}", r.describe(v)?))),
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let text = match v {
            Value::Nil => continue,
            Value::Str(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            other => {
                return Err(Fail::type_error(format!(
                    "option {k}: must be a string, number or boolean; got a {}",
                    other.type_name()
                )))
            }
        };
        out.push((k, text));
    }
    Ok(out)
}

/// Migration sources: each a string (`prefix + id`, e.g. connect-redis'
/// `"sess:"`), `{ plain: prefix }`, or `{ privateId: prefix }` (`prefix +
/// "2::" + sha256(id)`, Rack's private id).
fn legacy_keys_arg(r: &Reader, v: sys::napi_value) -> R<Vec<engine::LegacyKey>> {
    let items = match r.value(v, 0)? {
        Value::Array(a) => a,
        Value::Str(s) => vec![Value::Str(s)],
        _ => return Err(Fail::type_error(format!("must be an array of key prefixes; got {}", r.describe(v)?))),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let key = match item {
            Value::Str(s) => engine::LegacyKey::Plain(s),
            Value::Map(mut m) if m.len() == 1 => match (m.shift_remove("plain"), m.shift_remove("privateId")) {
                (Some(Value::Str(s)), None) => engine::LegacyKey::Plain(s),
                (None, Some(Value::Str(s))) => engine::LegacyKey::PrivateId(s),
                _ => return Err(Fail::type_error("each source must be a string, { plain: string } or { privateId: string }")),
            },
            _ => return Err(Fail::type_error("each source must be a string, { plain: string } or { privateId: string }")),
        };
        out.push(key);
    }
    Ok(out)
}

/// A connection to one session store: `new Store(url, options)`.
///
/// Cheap to copy with `withIdleTtl`; copies share connections and statistics.
#[napi]
pub struct Store {
    engine: engine::Store,
}

/// What a session held when it was loaded, kept by JavaScript between `load`
/// and `save` so `save` writes only what changed. Opaque; `save` updates it.
#[napi(custom_finalize)]
pub struct Baseline {
    inner: Arc<Mutex<engine::Baseline>>,
    /// The native memory V8 was told this object holds.
    external: i64,
}

impl Baseline {
    /// Wraps `b` and tells V8 about the memory it holds. Its JavaScript object
    /// is small, and without this V8 would collect thousands of them late (a
    /// Baseline that outlives a young-generation collection waits for a full
    /// one), their native memory held all the while: tens of MiB under load.
    fn wrap(env: sys::napi_env, b: engine::Baseline) -> Baseline {
        let external = i64::try_from(b.heap_size()).unwrap_or(i64::MAX);
        // A failure only leaves V8's estimate as it was.
        let _ = Env::from_raw(env).adjust_external_memory(external);
        Baseline { inner: Arc::new(Mutex::new(b)), external }
    }
}

impl napi::bindgen_prelude::ObjectFinalize for Baseline {
    fn finalize(self, env: Env) -> napi::Result<()> {
        env.adjust_external_memory(-self.external)?;
        Ok(())
    }
}

#[napi]
impl Baseline {
    /// An independent copy: saving with one does not update the other.
    #[napi]
    pub fn copy(&self, env: &Env) -> Baseline {
        Baseline::wrap(env.raw(), self.inner.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

fn baseline_js(w: &Writer, b: engine::Baseline) -> R<sys::napi_value> {
    let env = w.env();
    // SAFETY: `env` is the env of the current callback.
    unsafe { <Baseline as napi::bindgen_prelude::ToNapiValue>::to_napi_value(env, Baseline::wrap(env, b)) }
        .map_err(|e| Fail::Napi(e.status as sys::napi_status))
}

/// The shared state of a `Baseline` argument; a wrong object is a `TypeError`.
fn baseline_arg(env: sys::napi_env, r: &Reader, v: sys::napi_value) -> R<Arc<Mutex<engine::Baseline>>> {
    let wrong = |r: &Reader| -> Fail {
        match r.describe(v) {
            Ok(d) => Fail::type_error(format!("must be a Baseline from load, create or insert; got {d}")),
            Err(f) => f,
        }
    };
    if r.type_of(v)? != sys::ValueType::napi_object {
        return Err(wrong(r));
    }
    // SAFETY: `v` is an object of this env. `ClassInstance` checks that it
    // wraps a `Baseline` (not another class or a plain object) before reading
    // it; we only clone the `Arc` out while the object is alive.
    match unsafe { ClassInstance::<Baseline>::from_napi_value(env, v) } {
        Ok(b) => Ok(b.inner.clone()),
        Err(_) => {
            clear_pending(env);
            Err(wrong(r))
        }
    }
}

fn clear_pending(env: sys::napi_env) {
    let mut pending = false;
    // SAFETY: plain queries on the current env.
    unsafe {
        sys::napi_is_exception_pending(env, &mut pending);
        if pending {
            let mut ignored = std::ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut ignored);
        }
    }
}

/// A load's result: `{ data, meta, baseline }`, or `null` for no session.
/// When the data has an exact JSON form, `data` and `meta` come from one
/// `JSON.parse` (a read's largest cost here was setting their properties
/// one Node-API call at a time).
pub(crate) fn loaded_js(w: &Writer, loaded: Option<engine::Loaded>) -> R<sys::napi_value> {
    let Some(loaded) = loaded else { return w.null() };
    let mut text = String::with_capacity(256);
    text.push_str("{\"data\":");
    let mut out = if convert::json_map(&loaded.data, &mut text) {
        text.push_str(",\"meta\":");
        meta_json(&loaded.meta, &mut text);
        text.push('}');
        w.parse_json(&text)?
    } else {
        let mut out = w.object()?;
        let data = w.map(&loaded.data)?;
        w.set(&mut out, "data", data)?;
        text.clear();
        meta_json(&loaded.meta, &mut text);
        let meta = w.parse_json(&text)?;
        w.set(&mut out, "meta", meta)?;
        out
    };
    let baseline = baseline_js(w, loaded.baseline)?;
    w.set(&mut out, "baseline", baseline)?;
    Ok(out)
}

/// A load's `meta` as JSON: `createdAtMs`, `deadlineMs` and `expiresAtMs`
/// (null: none), and `idleTtlMs`, the session's own sliding window: left out
/// when none was stored, null for "no sliding expiry", else milliseconds.
fn meta_json(meta: &engine::Meta, out: &mut String) {
    use std::fmt::Write;
    // Written in place: this runs on every load.
    let field = |out: &mut String, name: &str, ms: Option<i64>| {
        let _ = match ms {
            Some(ms) => write!(out, ",\"{name}\":{ms}"),
            None => write!(out, ",\"{name}\":null"),
        };
    };
    let _ = write!(out, "{{\"createdAtMs\":{}", meta.created_at_ms);
    field(out, "deadlineMs", meta.deadline_ms);
    field(out, "expiresAtMs", meta.expires_at_ms);
    if let Some(idle) = meta.idle_ttl {
        field(out, "idleTtlMs", ms_of(idle));
    }
    out.push('}');
}

/// `save(id, baseline, data, ttlMs)`'s arguments: the id, the caller's
/// Baseline object, the data and the per-call window.
type SaveInputs = (String, Arc<Mutex<engine::Baseline>>, engine::SessionData, Option<Option<Duration>>);

pub(crate) fn save_args(
    env: &Env,
    id: Unknown<'_>,
    baseline: Unknown<'_>,
    data: Unknown<'_>,
    ttl_ms: Unknown<'_>,
) -> R<SaveInputs> {
    let r = Reader::new(env.raw())?;
    let id = r.string_arg(id.raw(), "id")?;
    let baseline = baseline_arg(env.raw(), &r, baseline.raw()).map_err(|f| f.in_argument("baseline"))?;
    let data = r.session_data(data.raw()).map_err(|f| f.in_argument("data"))?;
    let ttl = ttl_arg(&r, ttl_ms.raw())?;
    Ok((id, baseline, data, ttl))
}

/// A copy of the caller's Baseline for a save that runs off this thread;
/// `adopt` puts it back.
pub(crate) fn working_copy(shared: &Mutex<engine::Baseline>) -> engine::Baseline {
    shared.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// After a save: on success the caller's Baseline object describes the
/// stored state.
pub(crate) fn adopt(outcome: &SaveOutcome, shared: &Mutex<engine::Baseline>, working: engine::Baseline) {
    if matches!(outcome, SaveOutcome::Saved { .. }) {
        *shared.lock().unwrap_or_else(PoisonError::into_inner) = working;
    }
}

/// A save's result: `{ outcome, written, removed }`.
pub(crate) fn outcome_js(w: &Writer, outcome: SaveOutcome) -> R<sys::napi_value> {
    let (name, written, removed) = match outcome {
        SaveOutcome::Saved { written, removed } => ("saved", written, removed),
        SaveOutcome::Unchanged => ("unchanged", 0, 0),
        SaveOutcome::Gone => ("gone", 0, 0),
    };
    let mut out = w.object()?;
    let v = w.string(name)?;
    w.set(&mut out, "outcome", v)?;
    let v = w.number(written as f64)?;
    w.set(&mut out, "written", v)?;
    let v = w.number(removed as f64)?;
    w.set(&mut out, "removed", v)?;
    Ok(out)
}

/// `skipped_saves` -> `skippedSaves`: the engine's counter names in JS style.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn stats_js(w: &Writer, s: &engine::Stats) -> R<sys::napi_value> {
    let mut out = w.object()?;
    for (name, n) in s.counters() {
        let v = w.number(n as f64)?;
        w.set(&mut out, &camel_case(name), v)?;
    }
    let mut errors = w.object()?;
    for (kind, n) in &s.errors {
        let v = w.number(*n as f64)?;
        w.set(&mut errors, kind, v)?;
    }
    w.set(&mut out, "errors", errors)?;
    let l = &s.round_trips;
    let mut rt = w.object()?;
    for (name, n) in [
        ("count", l.count),
        ("p50Us", l.p50_us),
        ("p90Us", l.p90_us),
        ("p99Us", l.p99_us),
        ("p999Us", l.p999_us),
        ("maxUs", l.max_us),
    ] {
        let v = w.number(n as f64)?;
        w.set(&mut rt, name, v)?;
    }
    w.set(&mut out, "roundTrips", rt)?;
    Ok(out)
}

#[napi]
impl Store {
    /// `new Store(url, options?)`: validates the configuration now (throws an
    /// `Error` with `code: "SESSIONKEEPER_CONFIG"`); connects on first use.
    #[napi(constructor)]
    pub fn new(env: Env, url: Unknown<'_>, options: Unknown<'_>) -> napi::Result<Self> {
        let raw = env.raw();
        let r = Reader::new(raw).map_err(|f| throw_conversion(raw, f))?;
        let url = r.string_arg(url.raw(), "url").map_err(|f| throw_conversion(raw, f))?;
        let options =
            options_arg(&r, options.raw()).map_err(|f| throw_conversion(raw, f.in_argument("options")))?;
        let engine = engine::Store::from_url_and_options(&url, options).map_err(|e| throw_engine(raw, &e))?;
        Ok(Store { engine })
    }

    /// A handle on the same store (same connections) whose calls use another
    /// idle TTL: milliseconds, or `null`/`0` for no sliding expiry.
    #[napi]
    pub fn with_idle_ttl(&self, env: Env, ttl_ms: Unknown<'_>) -> napi::Result<Store> {
        let raw = env.raw();
        let r = Reader::new(raw).map_err(|f| throw_conversion(raw, f))?;
        let ttl = ttl_arg(&r, ttl_ms.raw()).map_err(|f| throw_conversion(raw, f))?;
        Ok(Store { engine: self.engine.with_idle_ttl(ttl.unwrap_or(self.engine.idle_ttl())) })
    }

    /// A handle on the same store whose loads expect sessions to carry this
    /// window (milliseconds, `null`/`0`: none) as their own, so loading one
    /// that does takes one command instead of two (the engine's
    /// `with_load_window`). Every other call is this handle's.
    #[napi]
    pub fn with_load_window(&self, env: Env, window_ms: Unknown<'_>) -> napi::Result<Store> {
        let raw = env.raw();
        let r = Reader::new(raw).map_err(|f| throw_conversion(raw, f))?;
        let window = ttl_value(&r, window_ms.raw()).map_err(|f| throw_conversion(raw, f.in_argument("windowMs")))?;
        Ok(Store { engine: window.map_or_else(|| self.engine.clone(), |w| self.engine.with_load_window(w)) })
    }

    /// This handle's idle TTL in milliseconds; `null` when sessions do not slide.
    #[napi(getter)]
    pub fn idle_ttl_ms(&self) -> Option<f64> {
        ms_of(self.engine.idle_ttl()).map(|ms| ms as f64)
    }

    /// The engine's counters since the store was opened (no I/O, synchronous).
    #[napi]
    pub fn stats<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let raw = env.raw();
        let v = stats_js(&Writer::new(raw), &self.engine.stats()).map_err(|f| throw_conversion(raw, f))?;
        // SAFETY: created in this env just now.
        Ok(unsafe { Unknown::from_raw_unchecked(raw, v) })
    }

    /// An empty baseline in this store's codec, for `save` without `load`.
    #[napi]
    pub fn empty_baseline(&self, env: &Env) -> Baseline {
        Baseline::wrap(env.raw(), engine::Baseline::empty(self.engine.config().codec))
    }

    pub(crate) fn engine(&self) -> &engine::Store {
        &self.engine
    }

    pub(crate) fn handle(&self, ttl: Option<Option<Duration>>) -> engine::Store {
        match ttl {
            None => self.engine.clone(),
            Some(t) => self.engine.with_idle_ttl(t),
        }
    }

    /// `load(id, ttlMs?)` → `{ data, meta, baseline } | null`. Slides the
    /// expiry. A corrupt session is deleted and rejects with
    /// `SESSIONKEEPER_CODEC`.
    #[napi]
    pub fn load<'env>(&self, env: &'env Env, id: Unknown<'env>, ttl_ms: Unknown<'env>) -> Promise<'env> {
        let (id, ttl) = args_or_reject!(env, |r| {
            let id = r.string_arg(id.raw(), "id")?;
            let ttl = ttl_arg(&r, ttl_ms.raw())?;
            Ok((id, ttl))
        });
        // A per-call window makes the load a script: no own-socket path.
        let own_socket = ttl.is_none() && self.engine.blocking_uses_own_socket();
        let store = self.handle(ttl);
        settle::run(
            env,
            own_socket,
            (store, id),
            |(store, id)| store.load_blocking(&id),
            |(store, id)| async move { store.load(&id).await },
            loaded_js,
        )
    }

    /// `save(id, baseline, data, ttlMs?)` → `{ outcome, written, removed }`
    /// with `outcome` `"saved"`, `"unchanged"` (nothing sent) or `"gone"`
    /// (destroyed or expired meanwhile; not re-created). Updates `baseline`.
    #[napi]
    pub fn save<'env>(
        &self,
        env: &'env Env,
        id: Unknown<'env>,
        baseline: Unknown<'env>,
        data: Unknown<'env>,
        ttl_ms: Unknown<'env>,
    ) -> Promise<'env> {
        let (id, shared, data, ttl) = match save_args(env, id, baseline, data, ttl_ms) {
            Ok(a) => a,
            Err(f) => return rejected(env, f),
        };
        let own_socket = self.engine.blocking_uses_own_socket();
        let store = self.handle(ttl);
        let working = working_copy(&shared);
        let args = (store, id, shared, working, data);
        let blocking = move |(store, id, shared, mut working, data): SaveArgs| {
            let outcome = store.save_blocking(&id, &mut working, &data)?;
            adopt(&outcome, &shared, working);
            Ok(outcome)
        };
        let asynchronous = move |(store, id, shared, mut working, data): SaveArgs| async move {
            let outcome = store.save(&id, &mut working, &data).await?;
            adopt(&outcome, &shared, working);
            Ok(outcome)
        };
        settle::run(env, own_socket, args, blocking, asynchronous, outcome_js)
    }

    /// `create(data, ttlMs?)` → `{ id, baseline }` under a new random id.
    #[napi]
    pub fn create<'env>(&self, env: &'env Env, data: Unknown<'env>, ttl_ms: Unknown<'env>) -> Promise<'env> {
        let (data, ttl) = args_or_reject!(env, |r| {
            let data = r.session_data(data.raw()).map_err(|f| f.in_argument("data"))?;
            let ttl = ttl_arg(&r, ttl_ms.raw())?;
            Ok((data, ttl))
        });
        let store = self.handle(ttl);
        run(env, async move { store.create(&data).await }, |w, (id, baseline)| {
            let mut out = w.object()?;
            let v = w.string(&id)?;
            w.set(&mut out, "id", v)?;
            let v = baseline_js(w, baseline)?;
            w.set(&mut out, "baseline", v)?;
            Ok(out)
        })
    }

    /// `insert(id, data, ttlMs?)` → `Baseline`, or `null` when a session with
    /// that id exists (it is left alone). For ids a framework generated.
    #[napi]
    pub fn insert<'env>(
        &self,
        env: &'env Env,
        id: Unknown<'env>,
        data: Unknown<'env>,
        ttl_ms: Unknown<'env>,
    ) -> Promise<'env> {
        let (id, data, ttl) = args_or_reject!(env, |r| {
            let id = r.string_arg(id.raw(), "id")?;
            let data = r.session_data(data.raw()).map_err(|f| f.in_argument("data"))?;
            let ttl = ttl_arg(&r, ttl_ms.raw())?;
            Ok((id, data, ttl))
        });
        let store = self.handle(ttl);
        run(env, async move { store.insert(&id, &data).await }, |w, b| match b {
            Some(b) => baseline_js(w, b),
            None => w.null(),
        })
    }

    /// `destroy(id)` → whether there was a session.
    #[napi]
    pub fn destroy<'env>(&self, env: &'env Env, id: Unknown<'env>) -> Promise<'env> {
        let id = args_or_reject!(env, |r| r.string_arg(id.raw(), "id"));
        let store = self.engine.clone();
        run(env, async move { store.destroy(&id).await }, |w, b| w.bool(b))
    }

    /// `touch(id, ttlMs?)` → whether the session exists; slides its expiry
    /// without reading it.
    #[napi]
    pub fn touch<'env>(&self, env: &'env Env, id: Unknown<'env>, ttl_ms: Unknown<'env>) -> Promise<'env> {
        let (id, ttl) = args_or_reject!(env, |r| {
            let id = r.string_arg(id.raw(), "id")?;
            let ttl = ttl_arg(&r, ttl_ms.raw())?;
            Ok((id, ttl))
        });
        let store = self.handle(ttl);
        run(env, async move { store.touch(&id).await }, |w, b| w.bool(b))
    }

    /// `exists(id)` → whether a live session has this id (no sliding).
    #[napi]
    pub fn exists<'env>(&self, env: &'env Env, id: Unknown<'env>) -> Promise<'env> {
        let id = args_or_reject!(env, |r| r.string_arg(id.raw(), "id"));
        let store = self.engine.clone();
        run(env, async move { store.exists(&id).await }, |w, b| w.bool(b))
    }

    /// `renew(id, ttlMs?)` → the new id, or `null` when there was no session.
    /// Moves the session to a fresh id (defence against session fixation).
    #[napi]
    pub fn renew<'env>(&self, env: &'env Env, id: Unknown<'env>, ttl_ms: Unknown<'env>) -> Promise<'env> {
        let (id, ttl) = args_or_reject!(env, |r| {
            let id = r.string_arg(id.raw(), "id")?;
            let ttl = ttl_arg(&r, ttl_ms.raw())?;
            Ok((id, ttl))
        });
        let store = self.handle(ttl);
        run(env, async move { store.renew(&id).await }, |w, new_id| match new_id {
            Some(id) => w.string(&id),
            None => w.null(),
        })
    }

    /// `handles()` → the opaque handle (`"2::<sha256 hex>"`) of every live
    /// session under the key prefix (SCAN on every Cluster master). A handle
    /// is NOT a session id and cannot be used as a cookie.
    #[napi]
    pub fn handles<'env>(&self, env: &'env Env) -> Promise<'env> {
        let store = self.engine.clone();
        run(env, async move { store.handles().await }, |w, hs| {
            w.value(&Value::Array(hs.into_iter().map(Value::Str).collect()))
        })
    }

    /// `count()` → the number of live sessions under the key prefix (a SCAN).
    #[napi]
    pub fn count<'env>(&self, env: &'env Env) -> Promise<'env> {
        let store = self.engine.clone();
        run(env, async move { store.count().await }, |w, n| w.number(n as f64))
    }

    /// `clear()` → how many sessions under the key prefix were deleted.
    #[napi]
    pub fn clear<'env>(&self, env: &'env Env) -> Promise<'env> {
        let store = self.engine.clone();
        run(env, async move { store.clear().await }, |w, n| w.number(n as f64))
    }

    /// `peekHandle(handle)` → `{ data, meta, baseline } | null`, without
    /// sliding the expiry.
    #[napi]
    pub fn peek_handle<'env>(&self, env: &'env Env, handle: Unknown<'env>) -> Promise<'env> {
        let handle = args_or_reject!(env, |r| r.string_arg(handle.raw(), "handle"));
        let store = self.engine.clone();
        run(env, async move { store.peek_handle(&handle).await }, loaded_js)
    }

    /// `destroyHandle(handle)` → whether there was a session.
    #[napi]
    pub fn destroy_handle<'env>(&self, env: &'env Env, handle: Unknown<'env>) -> Promise<'env> {
        let handle = args_or_reject!(env, |r| r.string_arg(handle.raw(), "handle"));
        let store = self.engine.clone();
        run(env, async move { store.destroy_handle(&handle).await }, |w, b| w.bool(b))
    }

    /// `legacyRead(id, sources)` → `{ source, bytes }` (the index of the
    /// source that held it, the peer's value as a Buffer) or `null`.
    #[napi]
    pub fn legacy_read<'env>(&self, env: &'env Env, id: Unknown<'env>, sources: Unknown<'env>) -> Promise<'env> {
        let (id, sources) = args_or_reject!(env, |r| {
            let id = r.string_arg(id.raw(), "id")?;
            let sources = legacy_keys_arg(&r, sources.raw()).map_err(|f| f.in_argument("sources"))?;
            Ok((id, sources))
        });
        let store = self.engine.clone();
        run(env, async move { store.legacy_read(&id, &sources).await }, |w, found| match found {
            Some(v) => {
                let mut out = w.object()?;
                let n = w.number(v.source as f64)?;
                w.set(&mut out, "source", n)?;
                let b = w.value(&Value::Bytes(v.bytes))?;
                w.set(&mut out, "bytes", b)?;
                Ok(out)
            }
            None => w.null(),
        })
    }

    /// `legacyMigrate(id, sources, data, ttlMs?)` → `Baseline`, or `null`
    /// when a concurrent request migrated it first (load it instead). Stores
    /// `data` in our layout, then deletes the peer's keys.
    #[napi]
    pub fn legacy_migrate<'env>(
        &self,
        env: &'env Env,
        id: Unknown<'env>,
        sources: Unknown<'env>,
        data: Unknown<'env>,
        ttl_ms: Unknown<'env>,
    ) -> Promise<'env> {
        let (id, sources, data, ttl) = args_or_reject!(env, |r| {
            let id = r.string_arg(id.raw(), "id")?;
            let sources = legacy_keys_arg(&r, sources.raw()).map_err(|f| f.in_argument("sources"))?;
            let data = r.session_data(data.raw()).map_err(|f| f.in_argument("data"))?;
            let ttl = ttl_arg(&r, ttl_ms.raw())?;
            Ok((id, sources, data, ttl))
        });
        let store = self.handle(ttl);
        run(env, async move { store.legacy_migrate(&id, &sources, &data).await }, |w, b| match b {
            Some(b) => baseline_js(w, b),
            None => w.null(),
        })
    }

    /// `legacyDelete(id, sources)`: deletes the peer's keys for `id`.
    #[napi]
    pub fn legacy_delete<'env>(&self, env: &'env Env, id: Unknown<'env>, sources: Unknown<'env>) -> Promise<'env> {
        let (id, sources) = args_or_reject!(env, |r| {
            let id = r.string_arg(id.raw(), "id")?;
            let sources = legacy_keys_arg(&r, sources.raw()).map_err(|f| f.in_argument("sources"))?;
            Ok((id, sources))
        });
        let store = self.engine.clone();
        run(env, async move { store.legacy_delete(&id, &sources).await }, |w, ()| w.null())
    }
}

/// Whether `handle` looks like one `handles()` returns (`"2::"` and 64
/// lowercase hex digits).
#[napi]
pub fn is_valid_handle(handle: Unknown<'_>) -> bool {
    let env = handle.value().env;
    Reader::new(env)
        .and_then(|r| match r.type_of(handle.raw())? {
            sys::ValueType::napi_string => Ok(engine::is_valid_handle(&r.string(handle.raw())?)),
            _ => Ok(false),
        })
        .unwrap_or(false)
}

/// A new session id: 128 bits from the OS's CSPRNG as 32 hex characters
/// (usable as express-session's `genid`).
#[napi]
pub fn generate_id(env: Env) -> napi::Result<String> {
    engine::generate_id().map_err(|e| throw_engine(env.raw(), &e))
}

/// Whether `id` can be a session id (32 to 128 of `[A-Za-z0-9_-]`); other
/// ids are treated as "no session" and never reach Redis.
#[napi]
pub fn is_valid_id(id: Unknown<'_>) -> bool {
    let env = id.value().env;
    Reader::new(env)
        .and_then(|r| match r.type_of(id.raw())? {
            sys::ValueType::napi_string => Ok(engine::is_valid_id(&r.string(id.raw())?)),
            _ => Ok(false),
        })
        .unwrap_or(false)
}

/// The JavaScript `code` of every engine error kind, for `index.js`.
#[napi]
pub fn error_codes() -> Vec<String> {
    ErrorKind::ALL.iter().map(|k| crate::error::code_of(*k)).collect()
}

/// The native memory this process' addons have told V8 about (see
/// `Baseline::wrap`), for the tests: V8 shows it nowhere else.
#[napi(js_name = "_externalMemory")]
pub fn external_memory(env: &Env) -> napi::Result<i64> {
    env.adjust_external_memory(0)
}
