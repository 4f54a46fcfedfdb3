//! The signed session cookie of shared mode (docs/shared-sessions.md): one
//! format every adapter can issue and verify, so apps in different languages
//! behind one cookie domain share a login.
//!
//! The format is express-session's (`cookie-signature`):
//! `s:<id>.<base64(HMAC-SHA256(secret, id))>` with the `=` padding stripped.
//! express-session configured with the same secret therefore reads and
//! issues it without any code of ours.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
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

/// Signatures in itsdangerous' format (`Signer` with `key_derivation="hmac"`
/// and SHA-256): `<value>.<base64url(HMAC(HMAC(secret, salt), value))>`
/// without padding, as Flask apps sign their cookies. The Flask adapter's
/// cookie is the session id signed this way with the app's `SECRET_KEY`;
/// doing it here costs a microsecond where itsdangerous' pure-Python path
/// costs several per request.
#[derive(Clone)]
pub struct SaltedSigner {
    /// One keyed MAC per secret, cloned per use: keying a MAC hashes the key
    /// twice, which each signature would otherwise pay again.
    keys: Vec<Hmac<Sha256>>,
}

impl SaltedSigner {
    /// The first secret signs, every one verifies (rotation). Any length
    /// is accepted, as itsdangerous does: the app chose its key.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S], salt: &[u8]) -> Result<SaltedSigner> {
        if secrets.is_empty() {
            return Err(Error::new(ErrorKind::Config, "a signer needs at least one secret"));
        }
        let keys = secrets
            .iter()
            .map(|secret| {
                let mut derive = Hmac::<Sha256>::new_from_slice(secret.as_ref()).expect("HMAC takes keys of any length");
                derive.update(salt);
                Hmac::<Sha256>::new_from_slice(&derive.finalize().into_bytes()).expect("HMAC takes keys of any length")
            })
            .collect();
        Ok(SaltedSigner { keys })
    }

    pub fn sign(&self, value: &str) -> String {
        let mut mac = self.keys[0].clone();
        mac.update(value.as_bytes());
        format!("{value}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The value a signature of one of the secrets covers, or `None`.
    pub fn unsign<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (value, signature) = signed.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature.trim_end_matches('=')).ok()?;
        self.keys
            .iter()
            .any(|key| {
                let mut mac = key.clone();
                mac.update(value.as_bytes());
                // verify_slice compares in constant time.
                mac.verify_slice(&signature).is_ok()
            })
            .then_some(value)
    }
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
    fn salted_signatures_match_itsdangerous() {
        // Signer(secret, salt=..., key_derivation="hmac", digest_method=hashlib.sha256).sign(value)
        let signer = SaltedSigner::new(&[SECRET], b"sessionkeeper").unwrap();
        let signed = "0123456789abcdef0123456789abcdef.HfIAocQLF3iTXCCZEb9f-QDVks_leBFg_5WFwWeVOoc";
        assert_eq!(signer.sign(ID), signed);
        assert_eq!(signer.unsign(signed), Some(ID));
        let short = SaltedSigner::new(&["short"], b"salt").unwrap();
        assert_eq!(short.sign("value.with.dots"), "value.with.dots.Mdc-EXB9k2gB3VYwRRpgPef5g49IXdR6zn9yGInsySo");
        assert_eq!(short.unsign("value.with.dots.Mdc-EXB9k2gB3VYwRRpgPef5g49IXdR6zn9yGInsySo"), Some("value.with.dots"));
    }

    #[test]
    fn salted_signatures_rotate_and_refuse_forgeries() {
        let old = SaltedSigner::new(&[b"old".as_slice()], b"salt").unwrap();
        let rotated = SaltedSigner::new(&[b"new".as_slice(), b"old".as_slice()], b"salt").unwrap();
        let by_old = old.sign(ID);
        assert_eq!(rotated.unsign(&by_old), Some(ID));
        assert_ne!(rotated.sign(ID), by_old, "the first secret signs");
        let other_salt = SaltedSigner::new(&[b"old".as_slice()], b"pepper").unwrap();
        let mut tampered = by_old.clone();
        tampered.replace_range(0..1, "1");
        for bad in [tampered, ID.to_string(), format!("{by_old}x"), String::new(), ".".to_string()] {
            assert_eq!(rotated.unsign(&bad), None, "{bad}");
        }
        assert_eq!(other_salt.unsign(&by_old), None);
        assert!(SaltedSigner::new::<&[u8]>(&[], b"salt").is_err());
    }

    #[test]
    fn short_secrets_and_bad_ids_are_refused() {
        assert_eq!(sign(ID, b"short").unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(unsign("s:x.y", &[b"short".as_slice()]).unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(sign("not an id", SECRET).unwrap_err().kind(), ErrorKind::InvalidId);
    }
}
