//! Every error JavaScript sees is made here.
//!
//! Engine errors become `Error` objects with
//! - `code`: `SESSIONKEEPER_<KIND>` (`SESSIONKEEPER_CONFIG`, `_CONNECTION`,
//!   `_TIMEOUT`, `_AUTH`, `_CODEC`, `_TOO_LARGE`, `_INVALID_ID`, `_UNEXPECTED`),
//! - `kind`: the engine's lowercase kind name (`"timeout"`, `"too_large"`, ...),
//! - `temporary`: whether the same call may succeed later (Redis restarting,
//!   failing over or overloaded),
//!
//! and a message that never contains a password or session data. Values that
//! cannot be converted become a `TypeError` (`code: "ERR_INVALID_ARG_TYPE"`)
//! or `RangeError` (`code: "ERR_OUT_OF_RANGE"`) naming the session key, like
//! Node's own argument errors. An exception thrown by JavaScript while we read
//! a value (a getter) is passed on unchanged.

use std::ptr;

use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::{sys, Env};
use sessionkeeper_core::{Error as EngineError, ErrorKind};

use crate::convert::{napi_call, Fail, Writer, R};

/// `SESSIONKEEPER_TIMEOUT` for `ErrorKind::Timeout`, and so on.
pub fn code_of(kind: ErrorKind) -> String {
    format!("SESSIONKEEPER_{}", kind.name().to_ascii_uppercase())
}

/// The JavaScript `Error` for an engine error.
pub fn engine_error(env: sys::napi_env, e: &EngineError) -> R<sys::napi_value> {
    let w = Writer::new(env);
    let code = w.string(&code_of(e.kind()))?;
    let message = w.string(&e.to_string())?;
    let mut err = ptr::null_mut();
    // napi_create_error sets `code` itself.
    napi_call!(sys::napi_create_error(env, code, message, &mut err));
    let temporary = w.bool(e.is_temporary())?;
    w.set(&mut err, "temporary", temporary)?;
    let kind = w.string(e.kind().name())?;
    w.set(&mut err, "kind", kind)?;
    Ok(err)
}

/// The JavaScript error for a failed conversion: a `TypeError`/`RangeError`,
/// or the exception JavaScript threw meanwhile.
pub fn conversion_error(env: sys::napi_env, fail: Fail) -> R<sys::napi_value> {
    let w = Writer::new(env);
    let mut err = ptr::null_mut();
    match fail {
        Fail::Type(p) => {
            let (code, message) = (w.string("ERR_INVALID_ARG_TYPE")?, w.string(&p.message())?);
            napi_call!(sys::napi_create_type_error(env, code, message, &mut err));
        }
        Fail::Range(p) => {
            let (code, message) = (w.string("ERR_OUT_OF_RANGE")?, w.string(&p.message())?);
            napi_call!(sys::napi_create_range_error(env, code, message, &mut err));
        }
        Fail::Napi(status) => {
            let mut pending = false;
            napi_call!(sys::napi_is_exception_pending(env, &mut pending));
            if pending {
                napi_call!(sys::napi_get_and_clear_last_exception(env, &mut err));
            } else {
                let e = EngineError::new(ErrorKind::Unexpected, format!("a Node-API call failed (status {status})"));
                return engine_error(env, &e);
            }
        }
    }
    Ok(err)
}

/// A `napi::Error` that napi throws (or rejects with) as exactly `value`.
pub fn as_napi(env: sys::napi_env, value: sys::napi_value) -> napi::Error {
    // SAFETY: `value` was created in `env` during the current callback.
    napi::Error::from(unsafe { Unknown::from_raw_unchecked(env, value) })
}

/// Fallback when even building an error object failed (the environment is
/// shutting down): napi makes a plain `Error` from this.
fn unbuildable(fail: Fail) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("sessionkeeper: could not build an error object ({fail:?})"))
}

/// A thrown (or rejecting) error for an engine error.
pub fn throw_engine(env: sys::napi_env, e: &EngineError) -> napi::Error {
    match engine_error(env, e) {
        Ok(v) => as_napi(env, v),
        Err(f) => unbuildable(f),
    }
}

/// A thrown (or rejecting) error for a failed conversion.
pub fn throw_conversion(env: sys::napi_env, fail: Fail) -> napi::Error {
    match conversion_error(env, fail) {
        Ok(v) => as_napi(env, v),
        Err(f) => unbuildable(f),
    }
}

/// A promise already rejected with the error for `fail`: argument problems
/// reject like engine errors do, so callers need one error path.
pub fn rejected<'env>(env: &'env Env, fail: Fail) -> napi::Result<PromiseRaw<'env, Unknown<'env>>> {
    let err = conversion_error(env.raw(), fail).map_err(unbuildable)?;
    // SAFETY: `err` was just created in `env`.
    PromiseRaw::reject(env, unsafe { Unknown::from_raw_unchecked(env.raw(), err) })
}
