//! `sessionkeeper._native`: the private extension module behind the
//! `sessionkeeper` package. Python code imports from `sessionkeeper`, whose
//! `__init__.py` re-exports what is public; the stubs in `_native.pyi` list
//! everything here.

mod async_store;
mod convert;
mod cookie;
mod error;
mod green;
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

/// Decodes a MessagePack map (a whole session as another store wrote it,
/// e.g. Flask-Session) into a dict with the engine's value rules. Raises
/// `CodecError` when the bytes are not a MessagePack map with string keys.
#[pyfunction]
fn decode_msgpack<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let map = sessionkeeper_core::codec::decode_map(data).map_err(|e| error::to_py(py, e))?;
    convert::data_to_py(py, &map)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add_class::<async_store::AsyncStore>()?;
    m.add_class::<store::Baseline>()?;
    m.add_class::<store::Loaded>()?;
    m.add_class::<cookie::SaltedSigner>()?;
    m.add_function(wrap_pyfunction!(generate_id, m)?)?;
    m.add_function(wrap_pyfunction!(is_valid_id, m)?)?;
    m.add_function(wrap_pyfunction!(decode_msgpack, m)?)?;
    m.add_function(wrap_pyfunction!(cookie::sign_cookie, m)?)?;
    m.add_function(wrap_pyfunction!(cookie::unsign_cookie, m)?)?;
    m.add_function(wrap_pyfunction!(green::_run_waits_with, m)?)?;
    m.add("OPTION_NAMES", sessionkeeper_core::config::OPTION_NAMES.to_vec())?;
    Ok(())
}
