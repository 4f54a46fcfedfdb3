//! The value model every binding converts to and from: JSON's types plus bytes
//! and timestamps, which is what Ruby, Python, JavaScript and C can all
//! represent without loss.

use indexmap::IndexMap;

/// Keys keep their insertion order (Ruby hashes, Python dicts and JS objects
/// do too); equality ignores order.
pub type Map = IndexMap<String, Value>;

/// A session's data: its top-level keys are the unit of change detection and
/// merging.
pub type SessionData = Map;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    /// Integers are 64-bit signed; larger ones are refused by the bindings.
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Map),
    Timestamp(Timestamp),
}

/// A point in time, UTC, with nanosecond precision: MessagePack's timestamp
/// extension (type -1) holds exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (negative before 1970).
    pub secs: i64,
    /// 0..1_000_000_000
    pub nanos: u32,
}

impl Timestamp {
    pub fn new(secs: i64, nanos: u32) -> Option<Timestamp> {
        (nanos < 1_000_000_000).then_some(Timestamp { secs, nanos })
    }
}

impl Value {
    /// The name used in error messages and the type table in docs/.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Timestamp(_) => "timestamp",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
