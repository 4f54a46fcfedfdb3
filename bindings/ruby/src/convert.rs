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

use magnus::prelude::*;
use magnus::r_hash::ForEach;
use magnus::time::{Offset, Timespec};
use magnus::value::{Qfalse, Qtrue};
use magnus::{Error, Float, Integer, IntoValue, RArray, RHash, RString, Ruby, Symbol, Time, Value};
use sessionkeeper_core::codec::MAX_DEPTH;
use sessionkeeper_core::{Map, SessionData, Timestamp, Value as SkValue};

use crate::error;

/// Converts a session Hash (the top level: one entry per session key).
pub fn session_from_ruby(ruby: &Ruby, hash: RHash) -> Result<SessionData, Error> {
    let mut out = SessionData::with_capacity(hash.len());
    let mut failure = None;
    hash.foreach(|k: Value, v: Value| {
        let key = match key_from_ruby(ruby, k, "") {
            Ok(key) => key,
            Err(e) => {
                failure = Some(e);
                return Ok(ForEach::Stop);
            }
        };
        match from_ruby(ruby, v, &child_path("", &key), 1) {
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

/// Where a value sits, for messages: `"cart"`, `"cart"[2]["sku"]`.
fn describe(path: &str) -> String {
    if path.is_empty() {
        "the session".to_owned()
    } else {
        format!("session key {path}")
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        format!("{key:?}")
    } else {
        format!("{path}[{key:?}]")
    }
}

fn key_from_ruby(ruby: &Ruby, key: Value, path: &str) -> Result<String, Error> {
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

/// `path` names the top-level key and the way down to `value`.
pub fn from_ruby(ruby: &Ruby, value: Value, path: &str, depth: usize) -> Result<SkValue, Error> {
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
        return i.to_i64().map(SkValue::Int).map_err(|_| {
            error::raise(
                ruby,
                sessionkeeper_core::ErrorKind::Codec,
                &format!(
                    "{}: the Integer {} does not fit in 64 bits; store it as a String",
                    describe(path),
                    abbreviate(&value.to_string())
                ),
                false,
            )
        });
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
        return s.to_string().map(SkValue::Str).map_err(|_| {
            error::codec(
                ruby,
                format!(
                    "{}: the String cannot be read as text in its encoding ({}); use String#b to store raw bytes",
                    describe(path),
                    encoding_name(s)
                ),
            )
        });
    }
    if let Some(sym) = Symbol::from_value(value) {
        return Ok(SkValue::Str(sym.name()?.into_owned()));
    }
    if let Some(array) = RArray::from_value(value) {
        let len = array.len();
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            let item: Value = array.entry(i as isize)?;
            out.push(from_ruby(ruby, item, &format!("{path}[{i}]"), depth + 1)?);
        }
        return Ok(SkValue::Array(out));
    }
    if let Some(hash) = RHash::from_value(value) {
        let mut out = Map::with_capacity(hash.len());
        let mut failure = None;
        hash.foreach(|k: Value, v: Value| {
            let converted = key_from_ruby(ruby, k, path)
                .and_then(|key| from_ruby(ruby, v, &child_path(path, &key), depth + 1).map(|v| (key, v)));
            match converted {
                Ok((key, v)) => {
                    out.insert(key, v);
                    Ok(ForEach::Continue)
                }
                Err(e) => {
                    failure = Some(e);
                    Ok(ForEach::Stop)
                }
            }
        })?;
        return match failure {
            Some(e) => Err(e),
            None => Ok(SkValue::Map(out)),
        };
    }
    if let Some(time) = Time::from_value(value) {
        return timestamp(ruby, time, path);
    }
    // ActiveSupport::TimeWithZone and DateTime are not Time objects at the C
    // level but say they act like one; they convert without loss.
    if value.respond_to("acts_like_time?", false)? && value.funcall::<_, _, bool>("acts_like_time?", ())? {
        let time: Value = value.funcall("to_time", ())?;
        if let Some(time) = Time::from_value(time) {
            return timestamp(ruby, time, path);
        }
    }
    Err(error::codec(
        ruby,
        format!(
            "{}: cannot store an instance of {} (sessions hold nil, true/false, Integer, Float, String, Symbol, Array, Hash and Time); \
             store its id or a Hash of its attributes instead",
            describe(path),
            value.class().inspect()
        ),
    ))
}

fn timestamp(ruby: &Ruby, time: Time, path: &str) -> Result<SkValue, Error> {
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

pub fn session_to_ruby(ruby: &Ruby, data: SessionData) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    for (k, v) in data {
        hash.aset(ruby.str_new(&k), to_ruby(ruby, v)?)?;
    }
    Ok(hash)
}

pub fn to_ruby(ruby: &Ruby, value: SkValue) -> Result<Value, Error> {
    Ok(match value {
        SkValue::Nil => ruby.qnil().as_value(),
        SkValue::Bool(b) => b.into_value_with(ruby),
        SkValue::Int(i) => ruby.integer_from_i64(i).as_value(),
        SkValue::Float(f) => ruby.float_from_f64(f).as_value(),
        SkValue::Str(s) => ruby.str_new(&s).as_value(),
        SkValue::Bytes(b) => ruby.str_from_slice(&b).as_value(),
        SkValue::Array(items) => {
            let array = ruby.ary_new_capa(items.len());
            for item in items {
                array.push(to_ruby(ruby, item)?)?;
            }
            array.as_value()
        }
        SkValue::Map(map) => {
            let hash = ruby.hash_new();
            for (k, v) in map {
                hash.aset(ruby.str_new(&k), to_ruby(ruby, v)?)?;
            }
            hash.as_value()
        }
        SkValue::Timestamp(ts) => ruby
            .time_timespec_new(Timespec { tv_sec: ts.secs, tv_nsec: i64::from(ts.nanos) }, Offset::utc())?
            .as_value(),
    })
}
