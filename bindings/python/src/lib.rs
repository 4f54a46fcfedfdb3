//! `sessionkeeper._native`: the private extension module behind the
//! `sessionkeeper` package. Python code imports from `sessionkeeper`, whose
//! `__init__.py` re-exports what is public; the stubs in `_native.pyi` list
//! everything here.

mod async_store;
mod convert;
mod error;
mod store;

use pyo3::prelude::*;

/// A new session id: 128 bits from the OS CSPRNG as 32 hex characters.
#[pyfunction]
fn generate_id(py: Python<'_>) -> PyResult<String> {
    sessionkeeper_core::generate_id().map_err(|e| error::to_py(py, e))
}

/// Whether `id` can be a session id (32 to 128 characters of
/// `[A-Za-z0-9_-]`); other ids never reach Redis.
#[pyfunction]
fn is_valid_id(id: &str) -> bool {
    sessionkeeper_core::is_valid_id(id)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add_class::<async_store::AsyncStore>()?;
    m.add_class::<store::Baseline>()?;
    m.add_class::<store::Loaded>()?;
    m.add_function(wrap_pyfunction!(generate_id, m)?)?;
    m.add_function(wrap_pyfunction!(is_valid_id, m)?)?;
    m.add("OPTION_NAMES", sessionkeeper_core::config::OPTION_NAMES.to_vec())?;
    Ok(())
}
