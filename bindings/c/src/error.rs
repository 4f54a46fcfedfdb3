//! The one place where engine errors and argument problems become C error
//! codes and error objects.

use std::ffi::{c_char, c_int, CStr, CString};

use sessionkeeper_core::{Error, ErrorKind};

/// The result of every fallible call. `SESSIONKEEPER_OK` is zero, so
/// `if (code) { ... }` reads as "if it failed". The engine's kinds come
/// first, in the engine's order; the codes after `SESSIONKEEPER_UNEXPECTED`
/// are about how the library was called.
///
/// `sessionkeeper_code_name()` gives a stable lowercase name for each code
/// (the same names the Ruby, Python and Node bindings use).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionkeeper_code {
    /// Success.
    SESSIONKEEPER_OK = 0,
    /// The URL or an option is wrong. Fix the configuration.
    SESSIONKEEPER_CONFIG,
    /// Redis could not be reached, or the connection broke. Usually temporary.
    SESSIONKEEPER_CONNECTION,
    /// Redis did not answer within `command_timeout` (or `connect_timeout`).
    SESSIONKEEPER_TIMEOUT,
    /// Redis refused the credentials, or the ACL user may not run a command.
    SESSIONKEEPER_AUTH,
    /// Stored data could not be decoded, or MessagePack handed to
    /// `sessionkeeper_session_set_msgpack()` is not a map with string keys.
    SESSIONKEEPER_CODEC,
    /// The encoded session is larger than the `max_size` option; nothing was
    /// written.
    SESSIONKEEPER_TOO_LARGE,
    /// A write (save, insert) was given an id that is not a valid session id.
    /// Reads treat such an id as "no session" instead.
    SESSIONKEEPER_INVALID_ID,
    /// Anything else: a bug, or a Redis reply the engine does not understand.
    SESSIONKEEPER_UNEXPECTED,
    /// A pointer argument that must not be NULL was NULL.
    SESSIONKEEPER_NULL_ARGUMENT,
    /// A string argument is not valid UTF-8.
    SESSIONKEEPER_INVALID_UTF8,
    /// A session key holds a value of another type than the one asked for
    /// (for example `sessionkeeper_session_get_int()` on a string).
    SESSIONKEEPER_WRONG_TYPE,
    /// The library panicked: a bug in Sessionkeeper, please report it. What
    /// the call did is unknown; the handles passed to it may still be used
    /// and must still be freed.
    SESSIONKEEPER_PANIC,
}

use sessionkeeper_code::*;

impl sessionkeeper_code {
    const ALL: [sessionkeeper_code; 13] = [
        SESSIONKEEPER_OK,
        SESSIONKEEPER_CONFIG,
        SESSIONKEEPER_CONNECTION,
        SESSIONKEEPER_TIMEOUT,
        SESSIONKEEPER_AUTH,
        SESSIONKEEPER_CODEC,
        SESSIONKEEPER_TOO_LARGE,
        SESSIONKEEPER_INVALID_ID,
        SESSIONKEEPER_UNEXPECTED,
        SESSIONKEEPER_NULL_ARGUMENT,
        SESSIONKEEPER_INVALID_UTF8,
        SESSIONKEEPER_WRONG_TYPE,
        SESSIONKEEPER_PANIC,
    ];

    fn name(self) -> &'static CStr {
        match self {
            SESSIONKEEPER_OK => c"ok",
            SESSIONKEEPER_CONFIG => c"config",
            SESSIONKEEPER_CONNECTION => c"connection",
            SESSIONKEEPER_TIMEOUT => c"timeout",
            SESSIONKEEPER_AUTH => c"auth",
            SESSIONKEEPER_CODEC => c"codec",
            SESSIONKEEPER_TOO_LARGE => c"too_large",
            SESSIONKEEPER_INVALID_ID => c"invalid_id",
            SESSIONKEEPER_UNEXPECTED => c"unexpected",
            SESSIONKEEPER_NULL_ARGUMENT => c"null_argument",
            SESSIONKEEPER_INVALID_UTF8 => c"invalid_utf8",
            SESSIONKEEPER_WRONG_TYPE => c"wrong_type",
            SESSIONKEEPER_PANIC => c"panic",
        }
    }
}

// `sessionkeeper_code_name` indexes ALL by the code's value: checked at
// compile time.
const _: () = {
    let all = sessionkeeper_code::ALL;
    let mut i = 0;
    while i < all.len() {
        assert!(all[i] as usize == i);
        i += 1;
    }
};

/// The code of an engine error kind. Exhaustive on purpose: a new kind in the
/// engine must get its own code here (and so in the header).
pub(crate) fn code_of(kind: ErrorKind) -> sessionkeeper_code {
    match kind {
        ErrorKind::Config => SESSIONKEEPER_CONFIG,
        ErrorKind::Connection => SESSIONKEEPER_CONNECTION,
        ErrorKind::Timeout => SESSIONKEEPER_TIMEOUT,
        ErrorKind::Auth => SESSIONKEEPER_AUTH,
        ErrorKind::Codec => SESSIONKEEPER_CODEC,
        ErrorKind::TooLarge => SESSIONKEEPER_TOO_LARGE,
        ErrorKind::InvalidId => SESSIONKEEPER_INVALID_ID,
        ErrorKind::Unexpected => SESSIONKEEPER_UNEXPECTED,
    }
}

/// A failed call, as the Rust side sees it before it crosses the boundary.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: sessionkeeper_code,
    pub temporary: bool,
    pub message: String,
}

impl Failure {
    pub fn new(code: sessionkeeper_code, message: impl Into<String>) -> Failure {
        Failure { code, temporary: false, message: message.into() }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(SESSIONKEEPER_NULL_ARGUMENT, format!("{what} is NULL"))
    }

    pub fn utf8(what: &str) -> Failure {
        Failure::new(SESSIONKEEPER_INVALID_UTF8, format!("{what} is not valid UTF-8"))
    }

    pub fn panic(payload: &(dyn std::any::Any + Send)) -> Failure {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Failure::new(SESSIONKEEPER_PANIC, format!("sessionkeeper panicked (a bug; please report it): {detail}"))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure { code: code_of(e.kind()), temporary: e.is_temporary(), message: e.message().to_owned() }
    }
}

/// Details of a failed call: its code, a human-readable message and whether
/// retrying may help. Created by the library for an `err` out-parameter,
/// immutable, and freed with `sessionkeeper_error_free()`. Safe to read from
/// any thread.
pub struct sessionkeeper_error {
    code: sessionkeeper_code,
    temporary: bool,
    message: CString,
}

impl From<Failure> for sessionkeeper_error {
    fn from(f: Failure) -> sessionkeeper_error {
        // A message never holds a NUL from the engine, but a C string cannot
        // carry one, so be sure rather than lose the message.
        let message = CString::new(f.message.replace('\0', "\u{FFFD}")).unwrap_or_default();
        sessionkeeper_error { code: f.code, temporary: f.temporary, message }
    }
}

/// The code of an error.
///
/// \param error An error from an `err` out-parameter, or NULL.
/// \return Its code; `SESSIONKEEPER_NULL_ARGUMENT` when `error` is NULL.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_error_code(error: *const sessionkeeper_error) -> sessionkeeper_code {
    // SAFETY: the caller passes NULL or a live error from this library.
    match unsafe { error.as_ref() } {
        Some(e) => e.code,
        None => SESSIONKEEPER_NULL_ARGUMENT,
    }
}

/// The error's message: one line of English, NUL-terminated, never NULL. It
/// names what was wrong (an option, an argument) but never holds a password
/// or session data, so it may be logged.
///
/// \param error An error from an `err` out-parameter, or NULL.
/// \return A string owned by `error`: valid until `sessionkeeper_error_free(error)`;
///         do not free it. For a NULL `error`, a static string.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_error_message(error: *const sessionkeeper_error) -> *const c_char {
    // SAFETY: the caller passes NULL or a live error from this library.
    match unsafe { error.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"no error object (NULL)".as_ptr(),
    }
}

/// Whether the same call may succeed if retried later (Redis restarting,
/// failing over or overloaded). A web adapter may then serve the request
/// without a session instead of failing it.
///
/// \param error An error from an `err` out-parameter, or NULL.
/// \return true for a temporary error; false for a permanent one or NULL.
///
/// Thread safety: any thread.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_error_is_temporary(error: *const sessionkeeper_error) -> bool {
    // SAFETY: the caller passes NULL or a live error from this library.
    unsafe { error.as_ref() }.is_some_and(|e| e.temporary)
}

/// Frees an error.
///
/// \param error An error from an `err` out-parameter, or NULL (ignored).
///        It must not be used afterwards.
///
/// Thread safety: any thread, but only once per error.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_error_free(error: *mut sessionkeeper_error) {
    if !error.is_null() {
        // SAFETY: `error` came from `Box::into_raw` in `guard` and the caller
        // gives up its only reference.
        drop(unsafe { Box::from_raw(error) });
    }
}

/// The stable lowercase name of a code: "ok", "config", "connection",
/// "timeout", "auth", "codec", "too_large", "invalid_id", "unexpected",
/// "null_argument", "invalid_utf8", "wrong_type", "panic".
///
/// \param code A `sessionkeeper_code` value (taken as an int so that any
///        value is safe to pass).
/// \return A static NUL-terminated string; do not free it. "unknown" for a
///         value that is not a code.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn sessionkeeper_code_name(code: c_int) -> *const c_char {
    usize::try_from(code)
        .ok()
        .and_then(|i| sessionkeeper_code::ALL.get(i))
        .map_or(c"unknown".as_ptr(), |c| c.name().as_ptr())
}
