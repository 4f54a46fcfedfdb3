//! Ruby values to and from the engine's value model, in one place.
//!
//! Ruby -> engine (with the GVL held, before any Redis wait):
//! nil, true/false, Integer (64-bit signed), Float, String (binary
//! encoding -> bytes, any other encoding -> UTF-8 text), Symbol (-> string,
//! as Rails' JSON serializer does), Array, Hash with String or Symbol keys,
//! Time (and anything that `acts_like_time?`, e.g. TimeWithZone) -> timestamp.
//! Anything else is a `Sessionkeeper::CodecError` that names the key, never a
//! silent `to_s`.
//!
//! Engine -> Ruby: strings are UTF-8, bytes are binary Strings, maps are Hashes
//! with String keys, timestamps are UTC Times.
//!
//! Opt-in language-local values (`serializer: :marshal`): when the caller
//! passes a serializer (a `Sessionkeeper::ValueSerializer`), a value the
//! model cannot represent is not an error but is stored as the one-entry map
//! `{MARK => bytes}`, the bytes being `serializer.dump(value, where)`; on the
//! way back such a map becomes `serializer.load(bytes)`. Only the offending
//! value is dumped (a Hash holding a Date keeps its other entries readable by
//! every language), and the core's per-key change detection keeps working,
//! since dumping the same object gives the same bytes. A user Hash that has
//! the marker's shape is dumped too, so it comes back as it was and stored
//! session data can never smuggle bytes into `load`.

use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::time::{Offset, Timespec};
use magnus::value::{Qfalse, Qtrue};
use magnus::{Error, Float, Integer, IntoValue, RArray, RHash, RString, Ruby, Symbol, Time, Value};
use sessionkeeper_core::codec::MAX_DEPTH;
use sessionkeeper_core::{Map, SessionData, Timestamp, Value as SkValue};

use crate::error;

/// A String argument that comes from a client (a session id, a cookie
/// value), whatever its encoding and bytes: Rack hands over a cookie holding
/// raw non-ASCII bytes as a binary String. Bytes that are not UTF-8 cannot
/// be part of a valid id or signature, so they become U+FFFD and the engine
/// answers "no session" (or InvalidIdError for a write), never an
/// EncodingError that a client could turn into an HTTP 500.
pub struct ClientString(String);

impl magnus::TryConvert for ClientString {
    fn try_convert(val: Value) -> Result<Self, Error> {
        let s = RString::try_convert(val)?;
        // SAFETY: copied at once; no Ruby code runs while the slice is borrowed.
        Ok(ClientString(String::from_utf8_lossy(unsafe { s.as_slice() }).into_owned()))
    }
}

impl std::ops::Deref for ClientString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// The key of the one-entry map that holds a value dumped by the caller's
/// serializer (see the module docs and ruby/README.md).
pub const MARK: &str = "__ruby_marshal__";

/// Converts a session Hash (the top level: one entry per session key).
/// `serializer` is `None` (strict: unrepresentable values are a CodecError
/// naming the key) or the `Sessionkeeper::ValueSerializer` that dumps them.
pub fn session_from_ruby(ruby: &Ruby, hash: RHash, serializer: Option<Value>) -> Result<SessionData, Error> {
    let mut out = SessionData::with_capacity(hash.len());
    let mut failure = None;
    hash.foreach(|k: Value, v: Value| {
        let key = match key_from_ruby(ruby, k, &Path::Root) {
            Ok(key) => key,
            Err(e) => {
                failure = Some(e);
                return Ok(ForEach::Stop);
            }
        };
        match from_ruby(ruby, v, &Path::Key(&Path::Root, &key), 1, serializer) {
            Ok(value) => {
                out.insert(key, value);
                Ok(ForEach::Continue)
            }
            Err(e) => {
                failure = Some(e);
                Ok(ForEach::Stop)
            }
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Where a value sits, for messages: `"cart"`, `"cart"[2]["sku"]`. Built
/// as text only when a message needs it: every value converted has a path,
/// and few conversions ever print one.
#[derive(Clone, Copy)]
pub enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{key:?}"),
            Path::Key(parent, key) => write!(f, "{parent}[{key:?}]"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn describe(path: &Path<'_>) -> String {
    match path {
        Path::Root => "the session".to_owned(),
        _ => format!("session key {path}"),
    }
}

fn key_from_ruby(ruby: &Ruby, key: Value, path: &Path<'_>) -> Result<String, Error> {
    if let Some(s) = RString::from_value(key) {
        return s.to_string().map_err(|_| {
            error::codec(ruby, format!("{}: a key is not valid text in its encoding", describe(path)))
        });
    }
    if let Some(sym) = Symbol::from_value(key) {
        return Ok(sym.name()?.into_owned());
    }
    Err(error::codec(
        ruby,
        format!(
            "{}: keys must be Strings or Symbols, found a {} key",
            describe(path),
            key.class().inspect()
        ),
    ))
}

/// `value` cannot be represented: dump it with the serializer if there is
/// one, else fail with `message`.
fn unrepresentable(ruby: &Ruby, value: Value, path: &Path<'_>, serializer: Option<Value>, message: String) -> Result<SkValue, Error> {
    let Some(serializer) = serializer else { return Err(error::codec(ruby, message)) };
    // The serializer raises a CodecError naming `path` itself when it cannot
    // dump the value either.
    let dumped: RString = serializer.funcall("dump", (value, describe(path)))?;
    // SAFETY: copied at once; no Ruby code runs while the slice is borrowed.
    let bytes = unsafe { dumped.as_slice() }.to_vec();
    let mut map = Map::with_capacity(1);
    map.insert(MARK.to_owned(), SkValue::Bytes(bytes));
    Ok(SkValue::Map(map))
}

/// `path` names the top-level key and the way down to `value`.
pub fn from_ruby(ruby: &Ruby, value: Value, path: &Path<'_>, depth: usize, serializer: Option<Value>) -> Result<SkValue, Error> {
    if depth > MAX_DEPTH {
        return Err(error::codec(
            ruby,
            format!("{}: nested more than {MAX_DEPTH} levels deep (a Hash or Array that contains itself?)", describe(path)),
        ));
    }
    if value.is_nil() {
        return Ok(SkValue::Nil);
    }
    if Qtrue::from_value(value).is_some() {
        return Ok(SkValue::Bool(true));
    }
    if Qfalse::from_value(value).is_some() {
        return Ok(SkValue::Bool(false));
    }
    if let Some(i) = Integer::from_value(value) {
        return match i.to_i64() {
            Ok(i) => Ok(SkValue::Int(i)),
            Err(_) => unrepresentable(
                ruby,
                value,
                path,
                serializer,
                format!(
                    "{}: the Integer {} does not fit in 64 bits; store it as a String",
                    describe(path),
                    abbreviate(&value.to_string())
                ),
            ),
        };
    }
    if let Some(f) = Float::from_value(value) {
        return Ok(SkValue::Float(f.to_f64()));
    }
    if let Some(s) = RString::from_value(value) {
        if s.enc_get() == ruby.ascii8bit_encindex() {
            // SAFETY: the slice is copied at once; no Ruby code runs (and so
            // nothing can mutate or free the string) while it is borrowed.
            return Ok(SkValue::Bytes(unsafe { s.as_slice() }.to_vec()));
        }
        return match s.to_string() {
            Ok(text) => Ok(SkValue::Str(text)),
            Err(_) => unrepresentable(
                ruby,
                value,
                path,
                serializer,
                format!(
                    "{}: the String cannot be read as text in its encoding ({}); use String#b to store raw bytes",
                    describe(path),
                    encoding_name(s)
                ),
            ),
        };
    }
    if let Some(sym) = Symbol::from_value(value) {
        return Ok(SkValue::Str(sym.name()?.into_owned()));
    }
    if let Some(array) = RArray::from_value(value) {
        let len = array.len();
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            let item: Value = array.entry(i as isize)?;
            out.push(from_ruby(ruby, item, &Path::Index(path, i), depth + 1, serializer)?);
        }
        return Ok(SkValue::Array(out));
    }
    if let Some(hash) = RHash::from_value(value) {
        if serializer.is_some() && hash.len() == 1 && hash.get(MARK).is_some() {
            // Looks like a dumped value: dump it, so it comes back as this Hash.
            return unrepresentable(ruby, value, path, serializer, String::new());
        }
        let mut out = Map::with_capacity(hash.len());
        let mut failure = None;
        let mut bad_key = None;
        hash.foreach(|k: Value, v: Value| {
            let key = match key_from_ruby(ruby, k, path) {
                Ok(key) => key,
                Err(e) => {
                    bad_key = Some(e);
                    return Ok(ForEach::Stop);
                }
            };
            match from_ruby(ruby, v, &Path::Key(path, &key), depth + 1, serializer) {
                Ok(v) => {
                    out.insert(key, v);
                    Ok(ForEach::Continue)
                }
                Err(e) => {
                    failure = Some(e);
                    Ok(ForEach::Stop)
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        return match bad_key {
            // Keys that are not text: the whole Hash is what cannot be represented.
            Some(_) if serializer.is_some() => unrepresentable(ruby, value, path, serializer, String::new()),
            Some(e) => Err(e),
            None => Ok(SkValue::Map(out)),
        };
    }
    if let Some(time) = Time::from_value(value) {
        return timestamp(ruby, time, path).or_else(|e| match serializer {
            Some(_) => unrepresentable(ruby, value, path, serializer, String::new()),
            None => Err(e),
        });
    }
    // ActiveSupport::TimeWithZone and DateTime are not Time objects at the C
    // level but say they act like one; they convert without loss.
    if value.respond_to("acts_like_time?", false)? && value.funcall::<_, _, bool>("acts_like_time?", ())? {
        let time: Value = value.funcall("to_time", ())?;
        if let Some(time) = Time::from_value(time) {
            return timestamp(ruby, time, path);
        }
    }
    unrepresentable(
        ruby,
        value,
        path,
        serializer,
        format!(
            "{}: cannot store an instance of {} (sessions hold nil, true/false, Integer, Float, String, Symbol, Array, Hash and Time); \
             store its id or a Hash of its attributes instead, or opt into serializer: :marshal",
            describe(path),
            value.class().inspect()
        ),
    )
}

fn timestamp(ruby: &Ruby, time: Time, path: &Path<'_>) -> Result<SkValue, Error> {
    let ts = time.timespec()?;
    u32::try_from(ts.tv_nsec)
        .ok()
        .and_then(|nanos| Timestamp::new(ts.tv_sec, nanos))
        .map(SkValue::Timestamp)
        .ok_or_else(|| error::codec(ruby, format!("{}: the Time is out of range", describe(path))))
}

fn encoding_name(s: RString) -> String {
    s.funcall::<_, _, Value>("encoding", ())
        .and_then(|e| e.funcall::<_, _, String>("to_s", ()))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn abbreviate(text: &str) -> String {
    if text.len() <= 40 {
        text.to_owned()
    } else {
        format!("{}...{} ({} digits)", &text[..12], &text[text.len() - 6..], text.trim_start_matches('-').len())
    }
}

/// `serializer`: `None`, or the `Sessionkeeper::ValueSerializer` that loads
/// the values it dumped (without one they stay `{MARK => bytes}` Hashes,
/// which is also what other languages see).
pub fn session_to_ruby(ruby: &Ruby, data: SessionData, serializer: Option<Value>) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    for (k, v) in data {
        let value = to_ruby(ruby, v, serializer, &Path::Key(&Path::Root, &k))?;
        hash.aset(ruby.str_new(&k), value)?;
    }
    Ok(hash)
}

fn dumped_bytes(map: &Map) -> Option<&[u8]> {
    match map.get(MARK) {
        Some(SkValue::Bytes(bytes)) if map.len() == 1 => Some(bytes),
        _ => None,
    }
}

pub fn to_ruby(ruby: &Ruby, value: SkValue, serializer: Option<Value>, path: &Path<'_>) -> Result<Value, Error> {
    Ok(match value {
        SkValue::Nil => ruby.qnil().as_value(),
        SkValue::Bool(b) => b.into_value_with(ruby),
        SkValue::Int(i) => ruby.integer_from_i64(i).as_value(),
        SkValue::Float(f) => ruby.float_from_f64(f).as_value(),
        SkValue::Str(s) => ruby.str_new(&s).as_value(),
        SkValue::Bytes(b) => ruby.str_from_slice(&b).as_value(),
        SkValue::Array(items) => {
            let array = ruby.ary_new_capa(items.len());
            for (i, item) in items.into_iter().enumerate() {
                array.push(to_ruby(ruby, item, serializer, &Path::Index(path, i))?)?;
            }
            array.as_value()
        }
        SkValue::Map(map) => {
            if let (Some(serializer), Some(bytes)) = (serializer, dumped_bytes(&map)) {
                return serializer.funcall("load", (ruby.str_from_slice(bytes), describe(path)));
            }
            let hash = ruby.hash_new();
            for (k, v) in map {
                let value = to_ruby(ruby, v, serializer, &Path::Key(path, &k))?;
                hash.aset(ruby.str_new(&k), value)?;
            }
            hash.as_value()
        }
        SkValue::Timestamp(ts) => ruby
            .time_timespec_new(Timespec { tv_sec: ts.secs, tv_nsec: i64::from(ts.nanos) }, Offset::utc())?
            .as_value(),
    })
}
