//! The one place where engine errors become Python exceptions.
//!
//! The exception classes live in Python (`sessionkeeper/_errors.py`), so they
//! can subclass the matching built-ins (`ConnectionError`, `TimeoutError`,
//! `ValueError`) and be documented and pickled like any Python class. They are
//! looked up once per process and cached.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use sessionkeeper_core::{Error, ErrorKind};

static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    CLASSES.get_or_try_init(py, || {
        let module = py.import("sessionkeeper._errors")?;
        ErrorKind::ALL
            .iter()
            .map(|k| Ok(module.getattr(k.class_name())?.cast_into::<PyType>()?.unbind()))
            .collect()
    })
}

/// The Python exception for an engine error: `sessionkeeper.<Kind>Error`
/// with `.temporary` set. Engine messages never hold passwords or session
/// payloads, so they are passed on as they are.
pub fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let index = ErrorKind::ALL.iter().position(|k| *k == err.kind()).unwrap_or(ErrorKind::ALL.len() - 1);
        let cls = classes(py)?[index].bind(py);
        let kwargs = PyDict::new(py);
        kwargs.set_item("temporary", err.is_temporary())?;
        let instance = cls.call((err.message(),), Some(&kwargs))?;
        Ok(PyErr::from_value(instance))
    };
    // Failing to build the exception (the package is broken) still reports
    // what went wrong with the engine, chained to the lookup failure.
    build().unwrap_or_else(|lookup| {
        let e = pyo3::exceptions::PyRuntimeError::new_err(format!("sessionkeeper: {err}"));
        e.set_cause(py, Some(lookup));
        e
    })
}

/// `Result<T, core::Error>` to `PyResult<T>`.
pub trait IntoPyResult<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
