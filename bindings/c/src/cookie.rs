//! The signed cookie of shared mode (docs/shared-sessions.md): issue and
//! verify the `s:<id>.<signature>` value every adapter (Rails, Rack, Flask,
//! Django, express-session) uses when apps in different languages share one
//! login. The format and the checks are the engine's
//! (`sessionkeeper_core::cookie`); this file only converts arguments.

use std::ffi::{c_char, CStr};
use std::ptr;

use crate::error::{sessionkeeper_code, sessionkeeper_error, Failure};
use crate::guard::{c_string, guard, str_arg, Out};

/// A secret argument: its bytes as given, without a UTF-8 check (a secret is
/// a key, not text; frameworks hand over the UTF-8 bytes of their string).
///
/// SAFETY: `p` is NULL or a NUL-terminated string valid for `'a`.
unsafe fn secret_arg<'a>(p: *const c_char, what: &str) -> Result<&'a [u8], Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: see the function's contract.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// Signs a session id for the shared cookie: returns
/// `s:<id>.<base64 HMAC-SHA256(secret, id)>` without `=` padding, exactly
/// what express-session (`cookie-signature`) issues with the same secret, and
/// what the Rails, Rack, Flask and Django adapters issue in shared mode. Put
/// it in the `Set-Cookie` header as is (percent-encoding it is fine too:
/// `sessionkeeper_cookie_unsign()` undoes that).
///
/// \param id The session id (from `sessionkeeper_store_create()`), a
///        NUL-terminated string borrowed for the call.
/// \param secret The shared secret, at least 32 bytes before the NUL, borrowed
///        for the call. Its bytes are used as they are (no UTF-8 check); every
///        app sharing the session must use the same bytes. With several
///        secrets (rotation), sign with the newest one.
/// \param[out] cookie_out Receives the NUL-terminated cookie value, owned by
///        the caller: free it with `sessionkeeper_string_free()`. Set to NULL
///        on failure.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_CONFIG` when the secret is
///         shorter than 32 bytes; `SESSIONKEEPER_INVALID_ID` when `id` is not
///         a valid session id; `SESSIONKEEPER_NULL_ARGUMENT`;
///         `SESSIONKEEPER_INVALID_UTF8` for an `id` that is not UTF-8.
///
/// Thread safety: any thread. No I/O.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_cookie_sign(
    id: *const c_char,
    secret: *const c_char,
    cookie_out: *mut *mut c_char,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(cookie_out, "cookie_out", ptr::null_mut()) }?;
        // SAFETY: as above.
        let id = unsafe { str_arg(id, "id") }?;
        // SAFETY: as above.
        let secret = unsafe { secret_arg(secret, "secret") }?;
        let cookie = sessionkeeper_core::cookie::sign(id, secret)?;
        out.set(c_string(&cookie, "the cookie")?);
        Ok(())
    })
}

/// Verifies a shared cookie's value and returns the session id in it.
///
/// The value may be passed as the request's `Cookie` header holds it, or as
/// a cookie parser returns it: percent-encoded (`s%3A...`), wrapped in double
/// quotes, or with `+` turned into a space by form decoding. A value that is
/// not a signed id, is signed with another secret, or is not UTF-8 is not an
/// error: `*id_out` is NULL and the call returns `SESSIONKEEPER_OK` (treat it
/// as "no session"; anything a client sends ends up here).
///
/// \param cookie The cookie's value (not the whole header), a NUL-terminated
///        string borrowed for the call.
/// \param secrets An array of `secret_count` NUL-terminated secrets, each at
///        least 32 bytes, borrowed for the call; the value is accepted when
///        any of them verifies it (rotation: list the new secret first, the
///        old ones after it, and sign with the first).
/// \param secret_count The number of secrets, at least 1.
/// \param[out] id_out Receives the session id, NUL-terminated and owned by the
///        caller (free it with `sessionkeeper_string_free()`), or NULL when
///        the value does not verify. Set to NULL on failure.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK` (verified or not: look at `*id_out`);
///         `SESSIONKEEPER_CONFIG` when a secret is shorter than 32 bytes or
///         `secret_count` is 0; `SESSIONKEEPER_NULL_ARGUMENT` for a NULL
///         `cookie`, `secrets`, secret or `id_out`.
///
/// Thread safety: any thread. No I/O.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_cookie_unsign(
    cookie: *const c_char,
    secrets: *const *const c_char,
    secret_count: usize,
    id_out: *mut *mut c_char,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(id_out, "id_out", ptr::null_mut()) }?;
        if cookie.is_null() {
            return Err(Failure::null("cookie"));
        }
        if secrets.is_null() {
            return Err(Failure::null("secrets"));
        }
        if secret_count == 0 {
            // Nothing could ever verify: a configuration mistake, not "no session".
            return Err(Failure::new(sessionkeeper_code::SESSIONKEEPER_CONFIG, "no secret given (secret_count is 0)"));
        }
        let mut keys = Vec::with_capacity(secret_count.min(16));
        for i in 0..secret_count {
            // SAFETY: `secrets` holds `secret_count` pointers (documented
            // contract), each NULL or a NUL-terminated string.
            keys.push(unsafe { secret_arg(*secrets.add(i), &format!("secrets[{i}]")) }?);
        }
        // SAFETY: checked non-NULL; a NUL-terminated string (documented contract).
        let Ok(value) = unsafe { CStr::from_ptr(cookie) }.to_str() else {
            // Not UTF-8, so not a value the engine could have signed. The
            // secrets are still checked, so a short one is reported however
            // the value looks.
            sessionkeeper_core::cookie::unsign("", &keys)?;
            return Ok(());
        };
        if let Some(id) = sessionkeeper_core::cookie::unsign(value, &keys)? {
            out.set(c_string(&id, "the id")?);
        }
        Ok(())
    })
}
