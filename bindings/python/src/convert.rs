//! Python values to and from the engine's value model, in one place.
//!
//! | Python                         | engine      | back to Python            |
//! |--------------------------------|-------------|---------------------------|
//! | `None`                         | Nil         | `None`                    |
//! | `bool`                         | Bool        | `bool`                    |
//! | `int` (64-bit signed range)    | Int         | `int`                     |
//! | `float`                        | Float       | `float`                   |
//! | `str`                          | Str         | `str`                     |
//! | `bytes`                        | Bytes       | `bytes`                   |
//! | `list`, `tuple`                | Array       | `list`                    |
//! | `dict` with `str` keys         | Map         | `dict`                    |
//! | aware `datetime.datetime`      | Timestamp   | `datetime` in UTC (µs)    |
//!
//! Subclasses of these count as the base type (a `str` subclass such as
//! `markupsafe.Markup` is stored as a plain `str`). Anything else is a
//! `TypeError` naming the session key and the path inside it. An `int`
//! outside the 64-bit range, a naive `datetime` (its zone is unknown, and
//! guessing would shift it silently) and nesting deeper than the engine's
//! limit are a `sessionkeeper.CodecError`. Nothing is ever stringified or
//! pickled.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyBytes, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType,
};
use sessionkeeper_core::codec::MAX_DEPTH;
use sessionkeeper_core::{Error, ErrorKind, Map, SessionData, Timestamp, Value};

use crate::error;

/// Where inside a session value a conversion failed.
enum Seg {
    Key(String),
    Index(usize),
}

enum Problem {
    /// A type the value model has no place for; holds the type's name.
    Unsupported(String),
    /// A dict key that is not a `str`; holds the key's type name.
    KeyType(String),
    IntRange,
    NaiveDatetime,
    TooDeep,
    Python(PyErr),
}

struct Failure {
    /// Innermost segment first (pushed while unwinding).
    path: Vec<Seg>,
    problem: Problem,
}

impl Failure {
    fn new(problem: Problem) -> Self {
        Failure { path: Vec::new(), problem }
    }

    fn at(mut self, seg: Seg) -> Self {
        self.path.push(seg);
        self
    }

    fn into_pyerr(self, py: Python<'_>, key: &str) -> PyErr {
        let mut place = format!("session key {key:?}");
        for seg in self.path.iter().rev() {
            match seg {
                Seg::Key(k) => place.push_str(&format!("[{k:?}]")),
                Seg::Index(i) => place.push_str(&format!("[{i}]")),
            }
        }
        let codec = |msg: String| error::to_py(py, Error::new(ErrorKind::Codec, msg));
        match self.problem {
            Problem::Unsupported(ty) => pyo3::exceptions::PyTypeError::new_err(format!(
                "{place}: cannot store a value of type {ty} in a session; use None, bool, int, float, str, bytes, \
                 list, tuple, dict with str keys, or a timezone-aware datetime"
            )),
            Problem::KeyType(ty) => pyo3::exceptions::PyTypeError::new_err(format!(
                "{place}: dict keys must be str, not {ty}"
            )),
            Problem::IntRange => codec(format!("{place}: integers must fit in 64 bits (-2**63 .. 2**63-1)")),
            Problem::NaiveDatetime => codec(format!(
                "{place}: datetime has no timezone; use an aware datetime, e.g. datetime.now(timezone.utc)"
            )),
            Problem::TooDeep => codec(format!("{place}: nested deeper than {MAX_DEPTH} levels")),
            Problem::Python(e) => e,
        }
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Self {
        Failure::new(Problem::Python(e))
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().qualname().map(|n| n.to_string()).unwrap_or_else(|_| "object".to_owned())
}

static EPOCH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `datetime(1970, 1, 1, tzinfo=timezone.utc)`.
fn epoch(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    EPOCH
        .get_or_try_init(py, || -> PyResult<_> {
            let dt = py.import("datetime")?;
            let utc = dt.getattr("timezone")?.getattr("utc")?;
            Ok(dt.getattr("datetime")?.call1((1970, 1, 1, 0, 0, 0, 0, utc))?.unbind())
        })
        .map(|e| e.bind(py))
}

/// A whole session (a mapping with `str` keys) as engine data.
pub fn data_from_py(mapping: &Bound<'_, PyAny>) -> PyResult<SessionData> {
    let py = mapping.py();
    let dict = match mapping.cast::<PyDict>() {
        Ok(d) => d.clone(),
        // Any other mapping (a Mapping ABC implementation): copy it first.
        Err(_) => {
            let d = PyDict::new(py);
            d.call_method1("update", (mapping,))?;
            d
        }
    };
    let mut data = SessionData::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = match k.cast::<PyString>() {
            Ok(s) => s.to_cow()?.into_owned(),
            Err(_) => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "session keys must be str, not {} ({})",
                    type_name(&k),
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                )))
            }
        };
        match value_from_py(&v, 0) {
            Ok(value) => {
                data.insert(key, value);
            }
            Err(f) => return Err(f.into_pyerr(py, &key)),
        }
    }
    Ok(data)
}

fn value_from_py(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, Failure> {
    if depth > MAX_DEPTH {
        return Err(Failure::new(Problem::TooDeep));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_cow()?.into_owned()));
    }
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    // bool is a subclass of int: test it first.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj.extract::<i64>().map(Value::Int).map_err(|_| Failure::new(Problem::IntRange));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_cow()?.into_owned(),
                Err(_) => return Err(Failure::new(Problem::KeyType(type_name(&k)))),
            };
            match value_from_py(&v, depth + 1) {
                Ok(value) => {
                    map.insert(key, value);
                }
                Err(f) => return Err(f.at(Seg::Key(key))),
            }
        }
        return Ok(Value::Map(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        let mut items = Vec::with_capacity(l.len());
        for (i, item) in l.iter().enumerate() {
            items.push(value_from_py(&item, depth + 1).map_err(|f| f.at(Seg::Index(i)))?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        let mut items = Vec::with_capacity(t.len());
        for (i, item) in t.iter().enumerate() {
            items.push(value_from_py(&item, depth + 1).map_err(|f| f.at(Seg::Index(i)))?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if obj.is_instance_of::<PyDateTime>() {
        return datetime_from_py(obj);
    }
    Err(Failure::new(Problem::Unsupported(type_name(obj))))
}

fn datetime_from_py(dt: &Bound<'_, PyAny>) -> Result<Value, Failure> {
    if dt.call_method0("utcoffset")?.is_none() {
        return Err(Failure::new(Problem::NaiveDatetime));
    }
    // Aware subtraction is exact (integer days, seconds, microseconds);
    // `timestamp()` would go through a float and lose microseconds.
    let delta = dt.call_method1("__sub__", (epoch(dt.py())?,))?;
    let days: i64 = delta.getattr("days")?.extract()?;
    let seconds: i64 = delta.getattr("seconds")?.extract()?;
    let micros: u32 = delta.getattr("microseconds")?.extract()?;
    Ok(Value::Timestamp(Timestamp { secs: days * 86_400 + seconds, nanos: micros * 1_000 }))
}

/// Engine data as a new `dict`.
pub fn data_to_py<'py>(py: Python<'py>, data: &SessionData) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in data {
        let value = value_to_py(py, v).map_err(|f| f.into_pyerr(py, k))?;
        dict.set_item(k, value)?;
    }
    Ok(dict)
}

fn value_to_py<'py>(py: Python<'py>, value: &Value) -> Result<Bound<'py, PyAny>, Failure> {
    Ok(match value {
        Value::Nil => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => {
            let Ok(int) = i.into_pyobject(py);
            int.into_any()
        }
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for (i, item) in items.iter().enumerate() {
                list.append(value_to_py(py, item).map_err(|f| f.at(Seg::Index(i)))?)?;
            }
            list.into_any()
        }
        Value::Map(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, value_to_py(py, v).map_err(|f| f.at(Seg::Key(k.clone())))?)?;
            }
            dict.into_any()
        }
        Value::Timestamp(t) => {
            let timedelta = TIMEDELTA.import(py, "datetime", "timedelta")?;
            // datetime has microseconds; the nanoseconds another language
            // may have written are truncated.
            let delta = timedelta.call1((0, t.secs, t.nanos / 1_000))?;
            epoch(py)?.call_method1("__add__", (delta,))?
        }
    })
}

/// The options of `Store(url, **options)` as the engine's string map:
/// `str` as given, `bool` as true/false, numbers as seconds or bytes,
/// `timedelta` as seconds, `None` as "none" (switches a TTL off).
pub fn options_from_py(options: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let Some(options) = options else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(options.len());
    for (k, v) in options.iter() {
        let name: String = k.extract()?;
        let text = if let Ok(s) = v.cast::<PyString>() {
            s.to_cow()?.into_owned()
        } else if v.is_none() {
            "none".to_owned()
        } else if let Ok(b) = v.cast::<PyBool>() {
            if b.is_true() { "true" } else { "false" }.to_owned()
        } else if v.is_instance_of::<PyInt>() {
            v.extract::<i64>()?.to_string()
        } else if let Ok(f) = v.cast::<PyFloat>() {
            f.value().to_string()
        } else if v.hasattr("total_seconds")? {
            v.call_method0("total_seconds")?.extract::<f64>()?.to_string()
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "option {name}: expected str, int, float, bool, timedelta or None, not {}",
                type_name(&v)
            )));
        };
        out.push((name, text));
    }
    Ok(out)
}

/// A TTL argument: `None` or 0 switch it off; seconds (int or float) or a
/// `timedelta` set it.
pub fn ttl_from_py(ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Option<std::time::Duration>> {
    let Some(ttl) = ttl.filter(|t| !t.is_none()) else { return Ok(None) };
    let secs: f64 = if ttl.hasattr("total_seconds")? {
        ttl.call_method0("total_seconds")?.extract()?
    } else {
        ttl.extract()?
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!("a TTL must be zero or positive seconds, not {secs}")));
    }
    if secs == 0.0 {
        return Ok(None);
    }
    std::time::Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("invalid TTL {secs}: {e}")))
}

/// A `Duration` as float seconds, for reading a TTL back.
pub fn ttl_to_py(ttl: Option<std::time::Duration>) -> Option<f64> {
    ttl.map(|d| d.as_secs_f64())
}
