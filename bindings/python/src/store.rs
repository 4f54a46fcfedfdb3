//! The synchronous `Store`. Every call takes owned copies of its arguments
//! (ids as `String`, session data converted to engine values) while attached
//! to the interpreter, then waits for Redis detached from it (`green::wait`:
//! on this thread, or in gevent's thread pool under gevent), so other Python
//! threads run meanwhile; results are converted after re-attaching.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use sessionkeeper_core::{BlockingStore, LegacyKey, LegacyValue, Loaded as CoreLoaded, SaveOutcome, Stats};

use crate::convert;
use crate::error::IntoPyResult;
use crate::green;

/// What a session held when it was read, as stored. Opaque: keep the one
/// `load` (or `create`/`insert`) returned and pass it to `save`, which
/// writes only the top-level keys that differ from it and then updates it.
#[pyclass(module = "sessionkeeper._native", frozen)]
pub struct Baseline {
    inner: Mutex<sessionkeeper_core::Baseline>,
}

impl Baseline {
    pub fn new(inner: sessionkeeper_core::Baseline) -> Self {
        Baseline { inner: Mutex::new(inner) }
    }

    /// A copy to work on while detached. A copy, not a lock held across the
    /// wait: a thread blocked on this mutex while holding the GIL would
    /// deadlock with the waiting thread re-attaching.
    pub fn snapshot(&self) -> sessionkeeper_core::Baseline {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, value: sessionkeeper_core::Baseline) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

#[pymethods]
impl Baseline {
    fn __repr__(&self) -> String {
        format!("<sessionkeeper.Baseline codec={}>", self.snapshot().codec().name())
    }
}

/// A session read by `load`.
#[pyclass(module = "sessionkeeper._native", frozen)]
pub struct Loaded {
    /// The session's data, a new `dict` the caller owns.
    #[pyo3(get)]
    data: Py<PyDict>,
    /// Pass this to `save`.
    #[pyo3(get)]
    baseline: Py<Baseline>,
    /// Creation time, milliseconds since the epoch (Redis server clock).
    #[pyo3(get)]
    created_at_ms: i64,
    /// When the session expires unless used again; `None`: never.
    #[pyo3(get)]
    expires_at_ms: Option<i64>,
    /// The absolute deadline, if the store has an `absolute_ttl`.
    #[pyo3(get)]
    deadline_ms: Option<i64>,
    /// The session's own sliding window in seconds, stored with it by a
    /// `with_idle_ttl` handle (0.0: its own choice of no sliding expiry);
    /// None: it slides by the store's default.
    #[pyo3(get)]
    idle_ttl: Option<f64>,
}

#[pymethods]
impl Loaded {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<sessionkeeper.Loaded keys={}>", self.data.bind(py).len())
    }
}

pub fn loaded_to_py(py: Python<'_>, loaded: Option<CoreLoaded>) -> PyResult<Option<Loaded>> {
    let Some(l) = loaded else { return Ok(None) };
    Ok(Some(Loaded {
        data: convert::data_to_py(py, &l.data)?.unbind(),
        baseline: Py::new(py, Baseline::new(l.baseline))?,
        created_at_ms: l.meta.created_at_ms,
        expires_at_ms: l.meta.expires_at_ms,
        deadline_ms: l.meta.deadline_ms,
        idle_ttl: l.meta.idle_ttl.map(|own| convert::ttl_to_py(own).unwrap_or(0.0)),
    }))
}

/// Peer-store key layouts from Python: `("plain", prefix)` (key = prefix +
/// id) or `("private_id", prefix)` (key = prefix + "2::" + sha256(id)).
pub fn legacy_keys_from_py(sources: &Bound<'_, PyAny>) -> PyResult<Vec<LegacyKey>> {
    let mut out = Vec::new();
    for item in sources.try_iter()? {
        let (kind, prefix): (String, String) = item?.extract()?;
        out.push(match kind.as_str() {
            "plain" => LegacyKey::Plain(prefix),
            "private_id" => LegacyKey::PrivateId(prefix),
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown legacy key kind {other:?} (expected \"plain\" or \"private_id\")"
                )))
            }
        });
    }
    Ok(out)
}

pub fn legacy_value_to_py<'py>(py: Python<'py>, value: Option<LegacyValue>) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let Some(v) = value else { return Ok(None) };
    Ok(Some(PyTuple::new(py, [v.source.into_pyobject(py)?.into_any(), PyBytes::new(py, &v.bytes).into_any()])?))
}

pub fn outcome_name(outcome: SaveOutcome) -> &'static str {
    match outcome {
        SaveOutcome::Unchanged => "unchanged",
        SaveOutcome::Saved { .. } => "saved",
        SaveOutcome::Gone => "gone",
    }
}

pub fn stats_to_py<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in s.counters() {
        d.set_item(k, v)?;
    }
    let errors = PyDict::new(py);
    for (k, v) in &s.errors {
        errors.set_item(*k, *v)?;
    }
    d.set_item("errors", errors)?;
    let rt = &s.round_trips;
    let lat = PyDict::new(py);
    for (k, v) in [
        ("count", rt.count),
        ("p50_us", rt.p50_us),
        ("p90_us", rt.p90_us),
        ("p99_us", rt.p99_us),
        ("p999_us", rt.p999_us),
        ("max_us", rt.max_us),
    ] {
        lat.set_item(k, v)?;
    }
    d.set_item("round_trips", lat)?;
    Ok(d)
}

/// A session store for synchronous code (Flask, Django, scripts). Safe to
/// share between threads and to keep across `fork()` (a child reconnects).
#[pyclass(module = "sessionkeeper._native", frozen)]
pub struct Store {
    inner: BlockingStore,
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (url, **options))]
    fn new(py: Python<'_>, url: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let options = convert::options_from_py(options)?;
        let store = sessionkeeper_core::Store::from_url_and_options(url, options).py_err(py)?;
        Ok(Store { inner: BlockingStore::new(store) })
    }

    /// A handle on the same store (same connections and stats) whose calls
    /// slide the expiry to `idle_ttl` (seconds or timedelta; None or 0: no
    /// sliding expiry).
    #[pyo3(signature = (idle_ttl))]
    fn with_idle_ttl(&self, idle_ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Store> {
        Ok(Store { inner: self.inner.with_idle_ttl(convert::ttl_from_py(idle_ttl)?) })
    }

    /// The asyncio twin of this store on the same engine: the same
    /// connections' configuration, stats, and what the engine learned of
    /// the sessions (windows, its own last saves), for code with sync and
    /// async paths to one store (Django's session methods).
    fn asyncio(&self) -> crate::async_store::AsyncStore {
        crate::async_store::AsyncStore::on(self.inner.store().clone())
    }

    /// The sliding expiry of this handle, in seconds; None: none.
    #[getter]
    fn idle_ttl(&self) -> Option<f64> {
        convert::ttl_to_py(self.inner.store().idle_ttl())
    }

    /// Reads a session and slides its expiry. None when there is none.
    fn load(&self, py: Python<'_>, id: String) -> PyResult<Option<Loaded>> {
        let store = self.inner.clone();
        let out = green::wait(py, move || store.load(&id))?;
        loaded_to_py(py, out)
    }

    /// Writes the top-level keys of `data` that differ from `baseline`, and
    /// removes the missing ones. Returns "saved", "unchanged" (nothing sent)
    /// or "gone" (the session was destroyed or expired meanwhile and was not
    /// re-created: start a fresh one).
    fn save(&self, py: Python<'_>, id: String, baseline: &Bound<'_, Baseline>, data: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let data = convert::data_from_py(data)?;
        let shared = baseline.get();
        let (store, mut working) = (self.inner.clone(), shared.snapshot());
        let (outcome, working) = green::wait(py, move || Ok((store.save(&id, &mut working, &data)?, working)))?;
        if matches!(outcome, SaveOutcome::Saved { .. }) {
            shared.replace(working);
        }
        Ok(outcome_name(outcome))
    }

    /// Stores `data` under a new id. Returns `(id, baseline)`.
    fn create<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let data = convert::data_from_py(data)?;
        let store = self.inner.clone();
        let (id, baseline) = green::wait(py, move || store.create(&data))?;
        PyTuple::new(py, [id.into_pyobject(py)?.into_any(), Bound::new(py, Baseline::new(baseline))?.into_any()])
    }

    /// Stores `data` under `id` only if no session has that id. Returns the
    /// baseline, or None when one exists (nothing was overwritten).
    fn insert(&self, py: Python<'_>, id: String, data: &Bound<'_, PyAny>) -> PyResult<Option<Baseline>> {
        let data = convert::data_from_py(data)?;
        let store = self.inner.clone();
        let out = green::wait(py, move || store.insert(&id, &data))?;
        Ok(out.map(Baseline::new))
    }

    /// Deletes a session. False when there was none.
    fn destroy(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        let store = self.inner.clone();
        green::wait(py, move || store.destroy(&id))
    }

    /// Slides a session's expiry without reading it. False when it is gone.
    fn touch(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        let store = self.inner.clone();
        green::wait(py, move || store.touch(&id))
    }

    /// Whether a live session has this id (does not slide its expiry).
    fn exists(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        let store = self.inner.clone();
        green::wait(py, move || store.exists(&id))
    }

    /// Moves a session to a new id (keeping data, creation time and deadline)
    /// and deletes the old one. Returns the new id, or None when there was
    /// no session.
    fn renew(&self, py: Python<'_>, id: String) -> PyResult<Option<String>> {
        let store = self.inner.clone();
        green::wait(py, move || store.renew(&id))
    }

    /// Migration: the value a peer store wrote for `id`, looked up at each of
    /// `sources` (`[("plain", "session:")]`, ...) in order, one round trip
    /// each. Returns `(index of the source, bytes)` or None.
    fn legacy_read<'py>(&self, py: Python<'py>, id: String, sources: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let sources = legacy_keys_from_py(sources)?;
        let store = self.inner.clone();
        let out = green::wait(py, move || store.legacy_read(&id, &sources))?;
        legacy_value_to_py(py, out)
    }

    /// Migration: stores `data` (decoded from `legacy_read`) as a session in
    /// our format under `id` and deletes the peer's keys. Returns the
    /// baseline, or None when a concurrent request migrated it first (load it).
    fn legacy_migrate(&self, py: Python<'_>, id: String, sources: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<Option<Baseline>> {
        let sources = legacy_keys_from_py(sources)?;
        let data = convert::data_from_py(data)?;
        let store = self.inner.clone();
        let out = green::wait(py, move || store.legacy_migrate(&id, &sources, &data))?;
        Ok(out.map(Baseline::new))
    }

    /// Migration: deletes the peer's keys for `id`.
    fn legacy_delete(&self, py: Python<'_>, id: String, sources: &Bound<'_, PyAny>) -> PyResult<()> {
        let sources = legacy_keys_from_py(sources)?;
        let store = self.inner.clone();
        green::wait(py, move || store.legacy_delete(&id, &sources))
    }

    /// Counters and round-trip latency since the store was opened.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_to_py(py, &self.inner.stats())
    }

    fn __repr__(&self) -> String {
        format!("<sessionkeeper.Store {}>", self.inner.store().config().redacted_target())
    }
}
