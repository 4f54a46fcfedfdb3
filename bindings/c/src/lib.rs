//! libsessionkeeper: the Sessionkeeper engine behind a C ABI, for any
//! language with a C FFI (PHP, Go, Lua, a C web server module). The header,
//! `include/sessionkeeper.h`, is generated from this crate by cbindgen; the
//! conventions every function follows are written at its top (see
//! `cbindgen.toml`).
//!
//! Layout: `error.rs` maps engine errors to codes in one place, `guard.rs`
//! is the panic and argument boundary, `store.rs` the store operations,
//! `session.rs` the session value handle and its key helpers, `cookie.rs`
//! the signed cookie of shared mode.

#![deny(unsafe_op_in_unsafe_fn)]
// Every exported function takes raw pointers and documents, in the header,
// what the caller must guarantee about them.
#![allow(clippy::missing_safety_doc)]
// Types are named as C sees them (`sessionkeeper_store`), so cbindgen writes
// the header without a rename table and Rust and C read the same.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, CString};

mod cookie;
mod error;
mod guard;
mod session;
mod store;

pub use cookie::*;
pub use error::*;
pub use session::*;
pub use store::*;

use guard::{c_string, guard, guard_value, str_arg, Out};

/// The library's version, for example "0.1.0".
///
/// \return A static NUL-terminated string; do not free it.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn sessionkeeper_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Frees a string this library returned through a `char **` out-parameter
/// (session ids, string values).
///
/// \param s The string, or NULL (ignored). It must not be used afterwards,
///        and must not be passed to free(3): it was not allocated by malloc.
///
/// Thread safety: any thread, but only once per string.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from `CString::into_raw` in this library and the
        // caller gives up its only reference.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Frees a byte buffer this library returned (from
/// `sessionkeeper_session_get_msgpack()`).
///
/// \param bytes The buffer, or NULL (ignored). It must not be used
///        afterwards, and must not be passed to free(3).
/// \param len The length returned with it, unchanged.
///
/// Thread safety: any thread, but only once per buffer.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_bytes_free(bytes: *mut u8, len: usize) {
    if !bytes.is_null() {
        // SAFETY: `bytes`/`len` came from `Box::<[u8]>::into_raw` in
        // `session::into_c_bytes`, and the caller gives up its only reference.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(bytes, len)) });
    }
}

/// Generates a new session id: 128 bits from the operating system's random
/// source, as 32 lowercase hex characters. Ids are normally made by
/// `sessionkeeper_store_create()`; this is for frameworks that pick the id
/// themselves and then call `sessionkeeper_store_insert()`.
///
/// \param[out] id_out Receives a new NUL-terminated id, owned by the caller:
///        free it with `sessionkeeper_string_free()`. Set to NULL on failure.
/// \param[out] err NULL, or receives an error on failure (see the
///        conventions at the top of this header).
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_UNEXPECTED` (temporary) if the
///         OS random source fails; `SESSIONKEEPER_NULL_ARGUMENT`.
///
/// Thread safety: any thread. Does no I/O besides reading randomness.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_id_generate(
    id_out: *mut *mut c_char,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: `id_out` is NULL or writable (documented contract).
        let out = unsafe { Out::new(id_out, "id_out", std::ptr::null_mut()) }?;
        let id = sessionkeeper_core::generate_id()?;
        out.set(c_string(&id, "the id")?);
        Ok(())
    })
}

/// Whether `id` is a well-formed session id: 32 to 128 characters of
/// `[A-Za-z0-9_-]`. A malformed id from a cookie needs no special handling:
/// loading it finds no session and it never reaches Redis. This only says
/// whether the id is well-formed, not whether a session exists (see
/// `sessionkeeper_store_exists()`).
///
/// \param id A NUL-terminated string, borrowed for the call, or NULL.
/// \return true for a well-formed id; false otherwise, and for NULL or
///         invalid UTF-8.
///
/// Thread safety: any thread. No I/O.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_id_is_valid(id: *const c_char) -> bool {
    guard_value(false, || {
        // SAFETY: `id` is NULL or a NUL-terminated string (documented contract).
        unsafe { str_arg(id, "id") }.is_ok_and(sessionkeeper_core::is_valid_id)
    })
}
