//! `AsyncStore`: the same operations as awaitables for asyncio, with no
//! thread pool in between. Each call converts its arguments while attached,
//! spawns the engine future on the engine's runtime (where every connection
//! lives), and returns an `asyncio.Future` of the running loop. When the
//! engine future finishes, a runtime thread hands the outcome to the loop
//! with `loop.call_soon_threadsafe`; the loop thread converts it to Python
//! objects and resolves the future. Cancelling the awaiting task aborts the
//! engine future.

use std::future::Future;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use sessionkeeper_core::runtime;
use sessionkeeper_core::SaveOutcome;
use tokio::task::AbortHandle;

use crate::convert;
use crate::error;
use crate::store::{legacy_keys_from_py, legacy_value_to_py, loaded_to_py, outcome_name, stats_to_py, Baseline};

type Finish = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// Run on the loop thread: resolves the future unless it was cancelled.
#[pyclass(module = "sessionkeeper._native", frozen)]
struct Resolve {
    future: Py<PyAny>,
    finish: Mutex<Option<Finish>>,
}

#[pymethods]
impl Resolve {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let Some(finish) = self.finish.lock().unwrap_or_else(|p| p.into_inner()).take() else { return Ok(()) };
        let future = self.future.bind(py);
        if future.call_method0("done")?.is_truthy()? {
            return Ok(()); // cancelled meanwhile; the outcome is dropped
        }
        match finish(py) {
            Ok(value) => future.call_method1("set_result", (value,))?,
            Err(e) => future.call_method1("set_exception", (e.into_value(py),))?,
        };
        Ok(())
    }
}

/// Done-callback of the asyncio future: aborts the engine future when the
/// awaiting task was cancelled (a timeout, a client gone away).
#[pyclass(module = "sessionkeeper._native", frozen)]
struct AbortOnCancel {
    handle: AbortHandle,
}

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.handle.abort();
        }
        Ok(())
    }
}

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Spawns `work` on the engine runtime and returns an asyncio future of the
/// running loop that `convert` completes on the loop thread.
fn spawn_for_asyncio<'py, T, W, C>(py: Python<'py>, work: W, convert: C) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    W: Future<Output = sessionkeeper_core::Result<T>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let get_loop = GET_RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?;
    let event_loop = get_loop.call0()?; // RuntimeError outside a running loop
    let future = event_loop.call_method0("create_future")?;
    let (loop_ref, future_ref) = (event_loop.unbind(), future.clone().unbind());
    let task = runtime::spawn(async move {
        let outcome = work.await;
        let finish: Finish = Box::new(move |py| match outcome {
            Ok(value) => convert(py, value),
            Err(e) => Err(error::to_py(py, e)),
        });
        // `try_attach`: during interpreter shutdown there is no one left to
        // tell. A closed loop (RuntimeError) likewise has no one waiting.
        let _ = Python::try_attach(|py| -> PyResult<()> {
            let resolve = Py::new(py, Resolve { future: future_ref, finish: Mutex::new(Some(finish)) })?;
            loop_ref.bind(py).call_method1("call_soon_threadsafe", (resolve,))?;
            Ok(())
        });
    });
    let abort = Py::new(py, AbortOnCancel { handle: task.abort_handle() })?;
    future.call_method1("add_done_callback", (abort,))?;
    Ok(future)
}

/// The asyncio twin of `Store`: every method returns an awaitable and never
/// blocks the event loop. Works with any running asyncio loop. One made by
/// `Store.asyncio()` shares that store's engine (stats, what it learned of
/// the sessions); one opened from a URL has an engine of its own.
#[pyclass(module = "sessionkeeper._native", frozen)]
pub struct AsyncStore {
    inner: sessionkeeper_core::Store,
}

impl AsyncStore {
    /// An asyncio store on an engine a `Store` already has (`Store.asyncio`).
    pub(crate) fn on(inner: sessionkeeper_core::Store) -> Self {
        AsyncStore { inner }
    }
}

#[pymethods]
impl AsyncStore {
    #[new]
    #[pyo3(signature = (url, **options))]
    fn new(py: Python<'_>, url: &str, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let options = convert::options_from_py(options)?;
        let store = sessionkeeper_core::Store::from_url_and_options(url, options).map_err(|e| error::to_py(py, e))?;
        Ok(AsyncStore { inner: store })
    }

    /// See `Store.with_idle_ttl`.
    #[pyo3(signature = (idle_ttl))]
    fn with_idle_ttl(&self, idle_ttl: Option<&Bound<'_, PyAny>>) -> PyResult<AsyncStore> {
        Ok(AsyncStore { inner: self.inner.with_idle_ttl(convert::ttl_from_py(idle_ttl)?) })
    }

    #[getter]
    fn idle_ttl(&self) -> Option<f64> {
        convert::ttl_to_py(self.inner.idle_ttl())
    }

    /// See `Store.load`.
    fn load<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.load(&id).await }, |py, loaded| {
            Ok(loaded_to_py(py, loaded)?.into_pyobject(py)?.into_any().unbind())
        })
    }

    /// See `Store.save`.
    fn save<'py>(
        &self,
        py: Python<'py>,
        id: String,
        baseline: &Bound<'py, Baseline>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = convert::data_from_py(data)?;
        let mut working = baseline.get().snapshot();
        let shared = baseline.clone().unbind();
        let store = self.inner.clone();
        spawn_for_asyncio(
            py,
            async move {
                let outcome = store.save(&id, &mut working, &data).await?;
                Ok((outcome, working))
            },
            move |py, (outcome, working)| {
                if matches!(outcome, SaveOutcome::Saved { .. }) {
                    shared.get().replace(working);
                }
                Ok(outcome_name(outcome).into_pyobject(py)?.into_any().unbind())
            },
        )
    }

    /// See `Store.create`.
    fn create<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let data = convert::data_from_py(data)?;
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.create(&data).await }, |py, (id, baseline)| {
            let items = [id.into_pyobject(py)?.into_any(), Bound::new(py, Baseline::new(baseline))?.into_any()];
            Ok(PyTuple::new(py, items)?.into_any().unbind())
        })
    }

    /// See `Store.insert`.
    fn insert<'py>(&self, py: Python<'py>, id: String, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let data = convert::data_from_py(data)?;
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.insert(&id, &data).await }, |py, out| {
            Ok(out.map(Baseline::new).into_pyobject(py)?.into_any().unbind())
        })
    }

    /// See `Store.destroy`.
    fn destroy<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.destroy(&id).await }, bool_to_py)
    }

    /// See `Store.touch`.
    fn touch<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.touch(&id).await }, bool_to_py)
    }

    /// See `Store.exists`.
    fn exists<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.exists(&id).await }, bool_to_py)
    }

    /// See `Store.renew`.
    fn renew<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.renew(&id).await }, |py, out| {
            Ok(out.into_pyobject(py)?.into_any().unbind())
        })
    }

    /// See `Store.legacy_read`.
    fn legacy_read<'py>(&self, py: Python<'py>, id: String, sources: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let sources = legacy_keys_from_py(sources)?;
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.legacy_read(&id, &sources).await }, |py, out| {
            Ok(legacy_value_to_py(py, out)?.into_pyobject(py)?.into_any().unbind())
        })
    }

    /// See `Store.legacy_migrate`.
    fn legacy_migrate<'py>(
        &self,
        py: Python<'py>,
        id: String,
        sources: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let sources = legacy_keys_from_py(sources)?;
        let data = convert::data_from_py(data)?;
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.legacy_migrate(&id, &sources, &data).await }, |py, out| {
            Ok(out.map(Baseline::new).into_pyobject(py)?.into_any().unbind())
        })
    }

    /// See `Store.legacy_delete`.
    fn legacy_delete<'py>(&self, py: Python<'py>, id: String, sources: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let sources = legacy_keys_from_py(sources)?;
        let store = self.inner.clone();
        spawn_for_asyncio(py, async move { store.legacy_delete(&id, &sources).await }, |py, ()| Ok(py.None()))
    }

    /// See `Store.stats` (not awaitable: it reads local counters).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_to_py(py, &self.inner.stats())
    }

    fn __repr__(&self) -> String {
        format!("<sessionkeeper.AsyncStore {}>", self.inner.config().redacted_target())
    }
}

fn bool_to_py(py: Python<'_>, b: bool) -> PyResult<Py<PyAny>> {
    Ok(pyo3::types::PyBool::new(py, b).to_owned().into_any().unbind())
}
