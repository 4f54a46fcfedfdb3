//! The signed cookie of shared mode (issue 7): one format every adapter, in
//! every language, issues and verifies. The signing is the core's
//! (`sessionkeeper_core::cookie`); this file only converts arguments.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::error::IntoPyResult;

/// A secret as Python code holds it: `str` (UTF-8) or `bytes`.
fn secret_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "a cookie secret must be str or bytes, not {}",
        obj.get_type().name()?
    )))
}

/// One secret, or a sequence of them (the first signs, every one verifies).
fn secrets_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Ok(vec![secret_bytes(obj)?]);
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        out.push(secret_bytes(&item?)?);
    }
    if out.is_empty() {
        return Err(pyo3::exceptions::PyValueError::new_err("no cookie secret given"));
    }
    Ok(out)
}

/// The shared-mode cookie value for session `id`: `s:<id>.<signature>`
/// (express-session's format, HMAC-SHA256 keyed by `secret`). Raises
/// `ConfigError` for a secret shorter than 32 bytes and `InvalidIdError` for
/// an id that is not a session id.
#[pyfunction]
pub fn sign_cookie(py: Python<'_>, id: &str, secret: &Bound<'_, PyAny>) -> PyResult<String> {
    let secret = secret_bytes(secret)?;
    sessionkeeper_core::cookie::sign(id, &secret).py_err(py)
}

/// The session id in a shared-mode cookie value, or `None` when no secret
/// verifies it (tampered, unsigned, another format). `secrets` is one
/// secret or a sequence: the first signs, every one verifies (rotation).
/// The value may be as the framework's cookie parser handed it over (in
/// double quotes, percent-encoded, `+` turned into a space). Raises
/// `ConfigError` for a secret shorter than 32 bytes.
#[pyfunction]
pub fn unsign_cookie(py: Python<'_>, value: &str, secrets: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let secrets = secrets_list(secrets)?;
    sessionkeeper_core::cookie::unsign(value, &secrets).py_err(py)
}

/// Signs and verifies values in itsdangerous' format (`Signer` with
/// `key_derivation="hmac"` and `hashlib.sha256`): what the Flask adapter's
/// cookie carries, at a fraction of itsdangerous' cost. `secrets` is one
/// secret or a sequence (the first signs, every one verifies); `salt` is the
/// signer's salt.
#[pyclass(module = "sessionkeeper._native", frozen)]
pub struct SaltedSigner {
    inner: sessionkeeper_core::cookie::SaltedSigner,
}

#[pymethods]
impl SaltedSigner {
    #[new]
    fn new(py: Python<'_>, secrets: &Bound<'_, PyAny>, salt: &Bound<'_, PyAny>) -> PyResult<Self> {
        let secrets = secrets_list(secrets)?;
        let salt = secret_bytes(salt)?;
        Ok(SaltedSigner { inner: sessionkeeper_core::cookie::SaltedSigner::new(&secrets, &salt).py_err(py)? })
    }

    /// `value` and its signature: `<value>.<signature>`.
    fn sign(&self, value: &str) -> String {
        self.inner.sign(value)
    }

    /// The value a signature of one of the secrets covers, or `None`.
    fn unsign<'a>(&self, signed: &'a str) -> Option<&'a str> {
        self.inner.unsign(signed)
    }

    fn __repr__(&self) -> &'static str {
        "SaltedSigner(...)"
    }
}
