//! The boundary: every `extern "C"` body runs inside `guard`, which turns a
//! panic into `SESSIONKEEPER_PANIC` (unwinding into C is undefined
//! behaviour) and an error into a code plus an optional error object. The
//! argument helpers make NULL and invalid UTF-8 ordinary errors.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crate::error::{sessionkeeper_code, sessionkeeper_error, Failure};

pub(crate) type Outcome = Result<(), Failure>;

/// Runs `body`; on failure stores a new error object in `*err` (when `err`
/// is not NULL) and returns its code. `*err` is set to NULL first, so after
/// any call it is either NULL or an error the caller must free.
pub(crate) fn guard(err: *mut *mut sessionkeeper_error, body: impl FnOnce() -> Outcome) -> sessionkeeper_code {
    if !err.is_null() {
        // SAFETY: a non-NULL `err` points to writable storage for one
        // pointer (the documented contract of every `err` parameter).
        unsafe { err.write(ptr::null_mut()) };
    }
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return sessionkeeper_code::SESSIONKEEPER_OK,
        Ok(Err(f)) => f,
        Err(payload) => Failure::panic(payload.as_ref()),
    };
    let code = failure.code;
    if !err.is_null() {
        // Building the object only allocates; an allocation failure aborts
        // the process rather than unwinding.
        let object = Box::new(sessionkeeper_error::from(failure));
        // SAFETY: as above.
        unsafe { err.write(Box::into_raw(object)) };
    }
    code
}

/// For the few calls that return a value instead of a code: the value, or
/// `fallback` when `body` panics.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// A borrowed UTF-8 string argument.
///
/// SAFETY: `p` is NULL or a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: see the function's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Failure::utf8(what))
}

/// A borrowed handle argument.
///
/// SAFETY: `p` is NULL or points to a live `T` not mutated for `'a`.
pub(crate) unsafe fn ref_arg<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: see the function's contract.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// A mutably borrowed handle argument.
///
/// SAFETY: `p` is NULL or points to a live `T` nothing else uses for `'a`.
pub(crate) unsafe fn mut_arg<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: see the function's contract.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// A required out-parameter, checked for NULL and reset to `empty` before
/// the work starts, so that a failed call leaves it in a known state.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// SAFETY: `p` is NULL or points to writable storage for a `T` that
    /// needs no drop (a pointer, integer, bool or C enum).
    pub unsafe fn new(p: *mut T, what: &str, empty: T) -> Result<Out<T>, Failure> {
        if p.is_null() {
            return Err(Failure::null(what));
        }
        // SAFETY: see the function's contract.
        unsafe { p.write(empty) };
        Ok(Out(p))
    }

    /// An optional out-parameter: NULL means the caller does not want it.
    ///
    /// SAFETY: as `new`.
    pub unsafe fn optional(p: *mut T, empty: T) -> Option<Out<T>> {
        if p.is_null() {
            return None;
        }
        // SAFETY: see the function's contract.
        unsafe { p.write(empty) };
        Some(Out(p))
    }

    pub fn set(self, value: T) {
        // SAFETY: checked non-NULL and writable in `new`/`optional`.
        unsafe { self.0.write(value) }
    }
}

/// A string for C, to be freed with `sessionkeeper_string_free`.
pub(crate) fn c_string(s: &str, what: &str) -> Result<*mut c_char, Failure> {
    CString::new(s).map(CString::into_raw).map_err(|_| {
        Failure::new(
            sessionkeeper_code::SESSIONKEEPER_WRONG_TYPE,
            format!("{what} contains a NUL byte and cannot be returned as a C string; read it with sessionkeeper_session_get_msgpack()"),
        )
    })
}
