//! Shared mode's signed session cookie (`sign`, `unsign`): the engine's
//! `cookie` module, as module functions. The format is express-session's
//! (`s:<id>.<base64 HMAC-SHA256>`), so an express app needs neither: these
//! are for code that reads or writes the cookie itself (another framework,
//! a gateway, tests). No HMAC is computed here.

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use sessionkeeper_core::{cookie, Value};

use crate::convert::{Fail, Reader, R};
use crate::error::{throw_conversion, throw_engine};

/// A secret: a string (its UTF-8 bytes) or bytes (`Buffer`, `Uint8Array`).
fn secret_of(v: Value) -> R<Vec<u8>> {
    match v {
        Value::Str(s) => Ok(s.into_bytes()),
        Value::Bytes(b) => Ok(b),
        other => Err(Fail::type_error(format!("a secret must be a string or a Buffer; got a {}", other.type_name()))),
    }
}

/// `secrets`: one secret or a non-empty array of them (the first signs, all
/// verify).
fn secrets_arg(r: &Reader, v: sys::napi_value) -> R<Vec<Vec<u8>>> {
    let secrets = match r.value(v, 0).map_err(|f| f.in_argument("secrets"))? {
        Value::Array(items) => items.into_iter().map(secret_of).collect::<R<Vec<_>>>(),
        one => secret_of(one).map(|s| vec![s]),
    }
    .map_err(|f| f.in_argument("secrets"))?;
    if secrets.is_empty() {
        return Err(Fail::type_error("must hold at least one secret").in_argument("secrets"));
    }
    Ok(secrets)
}

/// `sign(id, secret)`: the cookie value `s:<id>.<signature>` for a session id.
/// Throws `SESSIONKEEPER_CONFIG` for a secret shorter than 32 bytes and
/// `SESSIONKEEPER_INVALID_ID` for an id that cannot be a session id.
#[napi]
pub fn sign(env: Env, id: Unknown<'_>, secret: Unknown<'_>) -> napi::Result<String> {
    let raw = env.raw();
    let args = (|| -> R<_> {
        let r = Reader::new(raw)?;
        let id = r.string_arg(id.raw(), "id")?;
        let secret = secret_of(r.value(secret.raw(), 0)?).map_err(|f| f.in_argument("secret"))?;
        Ok((id, secret))
    })();
    let (id, secret) = args.map_err(|f| throw_conversion(raw, f))?;
    cookie::sign(&id, &secret).map_err(|e| throw_engine(raw, &e))
}

/// `unsign(value, secrets)`: the session id in a signed cookie value when one
/// of `secrets` verifies it, else `null` (also for `undefined`/`null`: no
/// cookie). Takes the value as any cookie parser hands it over (quoted,
/// percent-encoded or form-decoded). Throws `SESSIONKEEPER_CONFIG` for a
/// secret shorter than 32 bytes.
#[napi]
pub fn unsign(env: Env, value: Unknown<'_>, secrets: Unknown<'_>) -> napi::Result<Option<String>> {
    let raw = env.raw();
    let args = (|| -> R<_> {
        let r = Reader::new(raw)?;
        let secrets = secrets_arg(&r, secrets.raw())?;
        let value = match r.type_of(value.raw())? {
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => None,
            _ => Some(r.string_arg(value.raw(), "value")?),
        };
        Ok((value, secrets))
    })();
    let (value, secrets) = args.map_err(|f| throw_conversion(raw, f))?;
    let Some(value) = value else {
        // Still refuse a short secret, so a misconfiguration shows on the
        // first request rather than on the first one with a cookie.
        return cookie::unsign("", &secrets).map_err(|e| throw_engine(raw, &e));
    };
    cookie::unsign(&value, &secrets).map_err(|e| throw_engine(raw, &e))
}
