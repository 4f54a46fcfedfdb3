//! The signed cookie of shared mode (issue 7, docs/shared-sessions.md): one
//! format every adapter, in every language, issues and verifies. The signing
//! and verifying are the core's (`sessionkeeper_core::cookie`); this file
//! only converts arguments. The Ruby API is `Sessionkeeper.sign_cookie` /
//! `Sessionkeeper.unsign_cookie` in `lib/sessionkeeper.rb`.

use magnus::prelude::*;
use magnus::{Error, RArray, RString, Ruby};

use crate::convert::ClientString;
use crate::error;

/// A secret's bytes, whatever the String's encoding (a UTF-8 secret is used
/// as its UTF-8 bytes, as every other language does).
fn bytes(secret: RString) -> Vec<u8> {
    // SAFETY: copied at once; no Ruby code runs while the slice is borrowed.
    unsafe { secret.as_slice() }.to_vec()
}

/// `s:<id>.<signature>` for session `id`. ConfigError for a secret shorter
/// than 32 bytes, InvalidIdError for something that is not a session id.
fn sign_cookie(ruby: &Ruby, id: String, secret: RString) -> Result<String, Error> {
    sessionkeeper_core::cookie::sign(&id, &bytes(secret)).map_err(|e| error::to_ruby(ruby, e))
}

/// The session id in a cookie value, or `nil` when none of `secrets` (an
/// Array of Strings, already checked non-empty by the Ruby side) verifies it.
fn unsign_cookie(ruby: &Ruby, value: ClientString, secrets: RArray) -> Result<Option<String>, Error> {
    let mut keys = Vec::with_capacity(secrets.len());
    for i in 0..secrets.len() {
        let secret: RString = secrets.entry(i as isize)?;
        keys.push(bytes(secret));
    }
    sessionkeeper_core::cookie::unsign(&value, &keys).map_err(|e| error::to_ruby(ruby, e))
}

pub fn init(ruby: &Ruby) -> Result<(), Error> {
    use magnus::function;
    let native = ruby.define_module("Sessionkeeper")?.define_module("Native")?;
    native.define_module_function("sign_cookie", function!(sign_cookie, 2))?;
    native.define_module_function("unsign_cookie", function!(unsign_cookie, 2))?;
    Ok(())
}
