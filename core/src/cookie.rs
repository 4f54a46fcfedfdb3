//! The signed session cookie of shared mode (docs/shared-sessions.md): one
//! format every adapter can issue and verify, so apps in different languages
//! behind one cookie domain share a login.
//!
//! The format is express-session's (`cookie-signature`):
//! `s:<id>.<base64(HMAC-SHA256(secret, id))>` with the `=` padding stripped.
//! express-session configured with the same secret therefore reads and
//! issues it without any code of ours.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, ErrorKind, Result};
use crate::id::is_valid_id;

/// Shorter secrets are refused: the signature is only as strong as the key.
pub const MIN_SECRET_LEN: usize = 32;

const PREFIX: &str = "s:";

/// The cookie value for `id`, signed with `secret`. Give it to the
/// framework's cookie writer as is; its own escaping is undone by `unsign`.
pub fn sign(id: &str, secret: &[u8]) -> Result<String> {
    check_secret(secret)?;
    if !is_valid_id(id) {
        return Err(Error::new(ErrorKind::InvalidId, "session ids are 32 to 128 characters of [A-Za-z0-9_-]"));
    }
    Ok(format!("{PREFIX}{id}.{}", STANDARD_NO_PAD.encode(mac(secret, id).finalize().into_bytes())))
}

/// The session id in a signed cookie value, if one of `secrets` verifies it
/// (the first secret signs, every one verifies: that is how a secret is
/// rotated). Accepts the value as cookie parsers hand it over: wrapped in
/// double quotes (Django's quoting of `/`), percent-encoded (express, Rack),
/// or form-decoded with `+` turned into a space. Anything else is `None`:
/// no session, never an error a user could trigger.
pub fn unsign<S: AsRef<[u8]>>(raw: &str, secrets: &[S]) -> Result<Option<String>> {
    for secret in secrets {
        check_secret(secret.as_ref())?;
    }
    let value = normalize(raw);
    let Some(signed) = value.strip_prefix(PREFIX) else { return Ok(None) };
    let Some((id, signature)) = signed.rsplit_once('.') else { return Ok(None) };
    if !is_valid_id(id) {
        return Ok(None);
    }
    let Ok(signature) = STANDARD_NO_PAD.decode(signature.trim_end_matches('=')) else { return Ok(None) };
    // verify_slice compares in constant time.
    let verified = secrets.iter().any(|secret| mac(secret.as_ref(), id).verify_slice(&signature).is_ok());
    Ok(verified.then(|| id.to_string()))
}

fn check_secret(secret: &[u8]) -> Result<()> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(Error::new(
            ErrorKind::Config,
            format!("the shared cookie secret must be at least {MIN_SECRET_LEN} bytes (got {})", secret.len()),
        ));
    }
    Ok(())
}

fn mac(secret: &[u8], id: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac
}

/// Undoes the escaping cookie writers and parsers apply. A valid value has
/// no spaces, no quotes and no `%`, so none of this can change one.
fn normalize(raw: &str) -> String {
    let trimmed = raw.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(trimmed);
    let bytes = unquoted.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match hex_pair(bytes[i + 1], bytes[i + 2]) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b' ' => {
                out.push(b'+');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    Some(digit(hi)? << 4 | digit(lo)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn matches_cookie_signature() {
        // express-session's value: "s:" + require('cookie-signature').sign(ID, SECRET).
        let signed = sign(ID, SECRET).unwrap();
        assert_eq!(signed, "s:0123456789abcdef0123456789abcdef.r6eyaAslLT1j3TgPMyaqot58P8sKOoMRZFfPjBFUiio");
        assert_eq!(unsign(&signed, &[SECRET]).unwrap().as_deref(), Some(ID));
    }

    #[test]
    fn accepts_every_escaping_of_a_valid_value() {
        let signed = sign(ID, SECRET).unwrap();
        let percent: String = signed
            .chars()
            .map(|c| match c {
                ':' => "%3A".to_string(),
                '+' => "%2B".to_string(),
                '/' => "%2F".to_string(),
                c => c.to_string(),
            })
            .collect();
        for form in [signed.clone(), format!("\"{signed}\""), percent, signed.replace('+', " ")] {
            assert_eq!(unsign(&form, &[SECRET]).unwrap().as_deref(), Some(ID), "{form}");
        }
    }

    #[test]
    fn rejects_what_does_not_verify() {
        let signed = sign(ID, SECRET).unwrap();
        let other = b"another secret that is long enough!!";
        let mut tampered = signed.clone();
        tampered.replace_range(2..3, "1");
        for bad in [
            ID.to_string(),
            tampered,
            signed.trim_start_matches("s:").to_string(),
            format!("{signed}x"),
            "s:".to_string(),
            "s:.".to_string(),
            "%".to_string(),
            "s:short.abc".to_string(),
            String::new(),
        ] {
            assert_eq!(unsign(&bad, &[SECRET]).unwrap(), None, "{bad}");
        }
        assert_eq!(unsign(&signed, &[other.as_slice()]).unwrap(), None);
    }

    #[test]
    fn rotation_verifies_with_every_secret() {
        let old = b"the old secret, still long enough...";
        let signed_old = sign(ID, old).unwrap();
        assert_eq!(unsign(&signed_old, &[SECRET, old.as_slice()]).unwrap().as_deref(), Some(ID));
    }

    #[test]
    fn short_secrets_and_bad_ids_are_refused() {
        assert_eq!(sign(ID, b"short").unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(unsign("s:x.y", &[b"short".as_slice()]).unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(sign("not an id", SECRET).unwrap_err().kind(), ErrorKind::InvalidId);
    }
}
