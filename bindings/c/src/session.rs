//! The session value handle: the data of one session plus what the engine
//! needs to save only what changed. Whole sessions cross the boundary as the
//! engine's MessagePack map; string and integer keys have helpers so simple
//! callers need no MessagePack library.

use std::ffi::c_char;
use std::ptr;

use sessionkeeper_core::codec::{decode_map, encode_map};
use sessionkeeper_core::{Baseline, Meta, SessionData, Value};

use crate::error::{sessionkeeper_code, sessionkeeper_error, Failure};
use crate::guard::{c_string, guard, guard_value, mut_arg, ref_arg, str_arg, Out};

/// One session's data, as loaded, created or built by the caller, plus what
/// was last read from or written to Redis, so that
/// `sessionkeeper_store_save()` writes only the top-level keys that changed.
///
/// Made by `sessionkeeper_session_new()` or `sessionkeeper_store_load()`,
/// owned by the caller, freed with `sessionkeeper_session_free()`.
///
/// Thread safety: not synchronised. Use a session from one thread at a time
/// (it may move between threads); share the store handle instead.
pub struct sessionkeeper_session {
    pub(crate) data: SessionData,
    /// `None` until the session was loaded, created or inserted.
    pub(crate) baseline: Option<Baseline>,
    pub(crate) meta: Option<Meta>,
}

impl sessionkeeper_session {
    pub(crate) fn boxed(data: SessionData, baseline: Option<Baseline>, meta: Option<Meta>) -> *mut sessionkeeper_session {
        Box::into_raw(Box::new(sessionkeeper_session { data, baseline, meta }))
    }
}

/// The type of the value under a session key, as the engine stores it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionkeeper_type {
    /// The session has no such key.
    SESSIONKEEPER_TYPE_MISSING = 0,
    SESSIONKEEPER_TYPE_NIL,
    SESSIONKEEPER_TYPE_BOOL,
    /// A 64-bit signed integer: `sessionkeeper_session_get_int()`.
    SESSIONKEEPER_TYPE_INT,
    SESSIONKEEPER_TYPE_FLOAT,
    /// A UTF-8 string: `sessionkeeper_session_get_string()`.
    SESSIONKEEPER_TYPE_STRING,
    SESSIONKEEPER_TYPE_BYTES,
    SESSIONKEEPER_TYPE_ARRAY,
    SESSIONKEEPER_TYPE_MAP,
    SESSIONKEEPER_TYPE_TIMESTAMP,
}

fn type_of(value: Option<&Value>) -> sessionkeeper_type {
    use sessionkeeper_type::*;
    match value {
        None => SESSIONKEEPER_TYPE_MISSING,
        Some(Value::Nil) => SESSIONKEEPER_TYPE_NIL,
        Some(Value::Bool(_)) => SESSIONKEEPER_TYPE_BOOL,
        Some(Value::Int(_)) => SESSIONKEEPER_TYPE_INT,
        Some(Value::Float(_)) => SESSIONKEEPER_TYPE_FLOAT,
        Some(Value::Str(_)) => SESSIONKEEPER_TYPE_STRING,
        Some(Value::Bytes(_)) => SESSIONKEEPER_TYPE_BYTES,
        Some(Value::Array(_)) => SESSIONKEEPER_TYPE_ARRAY,
        Some(Value::Map(_)) => SESSIONKEEPER_TYPE_MAP,
        Some(Value::Timestamp(_)) => SESSIONKEEPER_TYPE_TIMESTAMP,
    }
}

/// When a loaded session was created and when it ends, in milliseconds
/// since the Unix epoch by the Redis server's clock. 0 means "none".
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sessionkeeper_meta {
    pub created_at_ms: i64,
    /// The absolute deadline (the `absolute_ttl` option), or 0.
    pub deadline_ms: i64,
    /// When the session expires unless used again, or 0 for never.
    pub expires_at_ms: i64,
}

fn wrong_type(key: &str, want: &str, found: &Value) -> Failure {
    Failure::new(
        sessionkeeper_code::SESSIONKEEPER_WRONG_TYPE,
        format!("session key {key:?} holds a {}, not a {want}", found.type_name()),
    )
}

pub(crate) fn into_c_bytes(bytes: Vec<u8>) -> (*mut u8, usize) {
    let len = bytes.len();
    (Box::into_raw(bytes.into_boxed_slice()).cast::<u8>(), len)
}

/// A new, empty session, not yet stored. Fill it with the `set` helpers (or
/// `sessionkeeper_session_set_msgpack()`), then store it with
/// `sessionkeeper_store_create()` or `sessionkeeper_store_insert()`.
///
/// \return A session owned by the caller: free it with
///         `sessionkeeper_session_free()`. NULL only if the library
///         panicked (a bug).
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn sessionkeeper_session_new() -> *mut sessionkeeper_session {
    guard_value(ptr::null_mut(), || sessionkeeper_session::boxed(SessionData::new(), None, None))
}

/// Frees a session. Nothing is written to Redis: save first.
///
/// \param session The session, or NULL (ignored). It must not be used
///        afterwards.
///
/// Thread safety: any thread, but only once per session, and not while
/// another thread uses it.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_free(session: *mut sessionkeeper_session) {
    if !session.is_null() {
        // SAFETY: `session` came from `Box::into_raw` in this library and the
        // caller gives up its only reference.
        guard_value((), || drop(unsafe { Box::from_raw(session) }));
    }
}

/// The number of top-level keys in the session.
///
/// \param session The session, borrowed for the call, or NULL (gives 0).
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_len(session: *const sessionkeeper_session) -> usize {
    // SAFETY: `session` is NULL or a live session (documented contract).
    guard_value(0, || unsafe { session.as_ref() }.map_or(0, |s| s.data.len()))
}

/// When the session was created and when it expires, as of the load,
/// create or insert that last gave it a baseline.
///
/// \param session The session, borrowed for the call.
/// \param[out] meta_out Receives the times; zeroed when the answer is false.
/// \return true when the session came from `sessionkeeper_store_load()`;
///         false for a session not loaded from Redis, or a NULL argument.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_meta(
    session: *const sessionkeeper_session,
    meta_out: *mut sessionkeeper_meta,
) -> bool {
    guard_value(false, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let Some(out) = (unsafe { Out::optional(meta_out, sessionkeeper_meta::default()) }) else { return false };
        // SAFETY: as above.
        let Some(meta) = unsafe { session.as_ref() }.and_then(|s| s.meta) else { return false };
        out.set(sessionkeeper_meta {
            created_at_ms: meta.created_at_ms,
            deadline_ms: meta.deadline_ms.unwrap_or(0),
            expires_at_ms: meta.expires_at_ms.unwrap_or(0),
        });
        true
    })
}

/// The type of the value under a top-level key.
///
/// \param session The session, borrowed for the call.
/// \param key A NUL-terminated UTF-8 key, borrowed for the call.
/// \param[out] type_out Receives the type; `SESSIONKEEPER_TYPE_MISSING`
///        when there is no such key.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`, `SESSIONKEEPER_NULL_ARGUMENT` or
///         `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_type(
    session: *const sessionkeeper_session,
    key: *const c_char,
    type_out: *mut sessionkeeper_type,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(type_out, "type_out", sessionkeeper_type::SESSIONKEEPER_TYPE_MISSING) }?;
        // SAFETY: as above.
        let session = unsafe { ref_arg(session, "session") }?;
        // SAFETY: as above.
        let key = unsafe { str_arg(key, "key") }?;
        out.set(type_of(session.data.get(key)));
        Ok(())
    })
}

/// Reads a top-level string value.
///
/// \param session The session, borrowed for the call.
/// \param key A NUL-terminated UTF-8 key, borrowed for the call.
/// \param[out] value_out Receives a copy of the value as a NUL-terminated
///        UTF-8 string owned by the caller (free it with
///        `sessionkeeper_string_free()`), or NULL when there is no such key.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK` (also for a missing key);
///         `SESSIONKEEPER_WRONG_TYPE` when the value is not a string or holds
///         a NUL byte; `SESSIONKEEPER_NULL_ARGUMENT`;
///         `SESSIONKEEPER_INVALID_UTF8` for the key.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_get_string(
    session: *const sessionkeeper_session,
    key: *const c_char,
    value_out: *mut *mut c_char,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(value_out, "value_out", ptr::null_mut()) }?;
        // SAFETY: as above.
        let session = unsafe { ref_arg(session, "session") }?;
        // SAFETY: as above.
        let key = unsafe { str_arg(key, "key") }?;
        match session.data.get(key) {
            None => {}
            Some(Value::Str(s)) => out.set(c_string(s, &format!("session key {key:?}"))?),
            Some(other) => return Err(wrong_type(key, "string", other)),
        }
        Ok(())
    })
}

/// Reads a top-level integer value.
///
/// \param session The session, borrowed for the call.
/// \param key A NUL-terminated UTF-8 key, borrowed for the call.
/// \param[out] value_out Receives the value; 0 when there is no such key.
/// \param[out] found_out Receives whether the key exists.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK` (also for a missing key);
///         `SESSIONKEEPER_WRONG_TYPE` when the value is not an integer;
///         `SESSIONKEEPER_NULL_ARGUMENT`; `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_get_int(
    session: *const sessionkeeper_session,
    key: *const c_char,
    value_out: *mut i64,
    found_out: *mut bool,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let value = unsafe { Out::new(value_out, "value_out", 0) }?;
        // SAFETY: as above.
        let found = unsafe { Out::new(found_out, "found_out", false) }?;
        // SAFETY: as above.
        let session = unsafe { ref_arg(session, "session") }?;
        // SAFETY: as above.
        let key = unsafe { str_arg(key, "key") }?;
        match session.data.get(key) {
            None => {}
            Some(Value::Int(i)) => {
                value.set(*i);
                found.set(true);
            }
            Some(other) => return Err(wrong_type(key, "integer", other)),
        }
        Ok(())
    })
}

/// Sets a top-level key to a string, replacing any value. Only changes the
/// handle: `sessionkeeper_store_save()` writes it.
///
/// \param session The session, borrowed for the call.
/// \param key A NUL-terminated UTF-8 key, copied.
/// \param value A NUL-terminated UTF-8 string, copied.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`, `SESSIONKEEPER_NULL_ARGUMENT` or
///         `SESSIONKEEPER_INVALID_UTF8` (the session is then unchanged).
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_set_string(
    session: *mut sessionkeeper_session,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let session = unsafe { mut_arg(session, "session") }?;
        // SAFETY: as above.
        let key = unsafe { str_arg(key, "key") }?;
        // SAFETY: as above.
        let value = unsafe { str_arg(value, "value") }?;
        session.data.insert(key.to_owned(), Value::Str(value.to_owned()));
        Ok(())
    })
}

/// Sets a top-level key to an integer, replacing any value. Only changes the
/// handle: `sessionkeeper_store_save()` writes it.
///
/// \param session The session, borrowed for the call.
/// \param key A NUL-terminated UTF-8 key, copied.
/// \param value The value.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`, `SESSIONKEEPER_NULL_ARGUMENT` or
///         `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_set_int(
    session: *mut sessionkeeper_session,
    key: *const c_char,
    value: i64,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let session = unsafe { mut_arg(session, "session") }?;
        // SAFETY: as above.
        let key = unsafe { str_arg(key, "key") }?;
        session.data.insert(key.to_owned(), Value::Int(value));
        Ok(())
    })
}

/// Removes a top-level key. Only changes the handle:
/// `sessionkeeper_store_save()` deletes it in Redis.
///
/// \param session The session, borrowed for the call.
/// \param key A NUL-terminated UTF-8 key, borrowed for the call.
/// \param[out] removed_out NULL, or receives whether the key existed.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`, `SESSIONKEEPER_NULL_ARGUMENT` or
///         `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_remove(
    session: *mut sessionkeeper_session,
    key: *const c_char,
    removed_out: *mut bool,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let removed = unsafe { Out::optional(removed_out, false) };
        // SAFETY: as above.
        let session = unsafe { mut_arg(session, "session") }?;
        // SAFETY: as above.
        let key = unsafe { str_arg(key, "key") }?;
        // shift_remove keeps the order of the other keys.
        let existed = session.data.shift_remove(key).is_some();
        if let Some(out) = removed {
            out.set(existed);
        }
        Ok(())
    })
}

/// The whole session as one MessagePack map with string keys: the engine's
/// exchange format, readable by any MessagePack library. Bytes are `bin`,
/// timestamps the standard timestamp extension (type -1).
///
/// \param session The session, borrowed for the call.
/// \param[out] bytes_out Receives a buffer owned by the caller: free it with
///        `sessionkeeper_bytes_free(bytes, len)`. Set to NULL on failure.
/// \param[out] len_out Receives the buffer's length.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`, `SESSIONKEEPER_CODEC` (a value nested too
///         deeply) or `SESSIONKEEPER_NULL_ARGUMENT`.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_get_msgpack(
    session: *const sessionkeeper_session,
    bytes_out: *mut *mut u8,
    len_out: *mut usize,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let bytes = unsafe { Out::new(bytes_out, "bytes_out", ptr::null_mut()) }?;
        // SAFETY: as above.
        let len = unsafe { Out::new(len_out, "len_out", 0) }?;
        // SAFETY: as above.
        let session = unsafe { ref_arg(session, "session") }?;
        let (p, n) = into_c_bytes(encode_map(&session.data)?);
        bytes.set(p);
        len.set(n);
        Ok(())
    })
}

/// Replaces the session's data with a MessagePack map (the format of
/// `sessionkeeper_session_get_msgpack()`). What was loaded is remembered, so
/// a later `sessionkeeper_store_save()` still writes only the keys that
/// changed and deletes the keys that are gone.
///
/// \param session The session, borrowed for the call.
/// \param bytes The MessagePack bytes, copied; must not be NULL (even when
///        `len` is 0).
/// \param len Their length.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_CODEC` when the bytes are not
///         one map with string keys of supported values (the session is then
///         unchanged); `SESSIONKEEPER_NULL_ARGUMENT`.
///
/// Thread safety: see `sessionkeeper_session`.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_session_set_msgpack(
    session: *mut sessionkeeper_session,
    bytes: *const u8,
    len: usize,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let session = unsafe { mut_arg(session, "session") }?;
        if bytes.is_null() {
            return Err(Failure::null("bytes"));
        }
        if len > isize::MAX as usize {
            return Err(Failure::new(sessionkeeper_code::SESSIONKEEPER_CODEC, "len is larger than any buffer"));
        }
        // SAFETY: `bytes` points to `len` readable bytes (documented
        // contract) and the length fits a slice.
        let input = unsafe { std::slice::from_raw_parts(bytes, len) };
        session.data = decode_map(input)?;
        Ok(())
    })
}
