//! Waiting for Redis under gevent.
//!
//! A native call that blocks, even with the GIL released, blocks gevent's
//! hub: every other greenlet of the worker (gunicorn's gevent worker) waits
//! with it, up to `command_timeout` when Redis hangs. Once gevent has
//! monkey-patched the process (`sessionkeeper/_green.py` hears of it), the
//! sync `Store` hands each wait to the hub's thread pool instead, as a
//! pure-Python client's socket would yield to the hub. Without gevent the
//! wait stays on the calling thread, with the GIL released.

use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyCFunction;
use sessionkeeper_core as engine;

use crate::error::IntoPyResult;

/// `runner(fn)` runs `fn()` in the hub's thread pool and returns when it is
/// done, letting other greenlets run meanwhile.
static RUNNER: OnceLock<Py<PyAny>> = OnceLock::new();

/// Called by `sessionkeeper/_green.py` once gevent has patched the process.
#[pyfunction]
pub fn _run_waits_with(runner: Bound<'_, PyAny>) {
    let _ = RUNNER.set(runner.unbind());
}

/// Runs `wait` (a call that waits for Redis) with the GIL released: on this
/// thread, or under gevent in the hub's thread pool.
pub fn wait<T: Send + 'static>(py: Python<'_>, wait: impl FnOnce() -> engine::Result<T> + Send + 'static) -> PyResult<T> {
    let Some(runner) = RUNNER.get() else { return py.detach(wait).py_err(py) };
    let result: Arc<Mutex<Option<engine::Result<T>>>> = Arc::default();
    let (slot, wait) = (result.clone(), Mutex::new(Some(wait)));
    let call = PyCFunction::new_closure(py, None, None, move |args, _kwargs| -> PyResult<()> {
        if let Some(wait) = wait.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let out = args.py().detach(wait);
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
        }
        Ok(())
    })?;
    runner.call1(py, (call,))?;
    let out = result.lock().unwrap_or_else(|p| p.into_inner()).take();
    out.ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the hub's thread pool did not run the call"))?.py_err(py)
}
