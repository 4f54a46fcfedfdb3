//! Public session ids (what the cookie carries) and the private keys they are
//! stored under.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Shortest accepted id. 32 characters of base64url carry 192 bits; 32 hex
/// characters (our own ids, Rails') carry 128.
pub const MIN_ID_LEN: usize = 32;
/// Longest accepted id; bounds the work a hostile cookie can cause.
pub const MAX_ID_LEN: usize = 128;

/// A new public id: 128 bits from the operating system's CSPRNG, as 32
/// lowercase hex characters (the shape Rails issues).
pub fn generate_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::temporary(crate::ErrorKind::Unexpected, format!("the OS random source failed: {e}"))
    })?;
    Ok(hex(&bytes))
}

/// Whether `id` may be a public session id: 32 to 128 characters of
/// `[A-Za-z0-9_-]`. This admits the ids of Rails, express-session, Django and
/// Flask, and rejects everything that could smuggle a key pattern, a private
/// id (`2::…`) or a protocol separator into Redis.
pub fn is_valid_id(id: &str) -> bool {
    (MIN_ID_LEN..=MAX_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The Redis key of a session: `prefix + "2::" + sha256_hex(id)`, Rack's
/// private-id scheme, so a leaked key list gives no usable cookie.
/// `None` for an invalid id: such an id never becomes a key.
pub fn storage_key(prefix: &str, id: &str) -> Option<String> {
    if !is_valid_id(id) {
        return None;
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut key = String::with_capacity(prefix.len() + 3 + 64);
    key.push_str(prefix);
    key.push_str("2::");
    key.push_str(&hex(&digest));
    Some(key)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_are_32_lowercase_hex_and_valid() {
        let id = generate_id().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(is_valid_id(&id));
    }

    #[test]
    fn generated_ids_do_not_repeat_and_use_every_bit() {
        let ids: Vec<String> = (0..10_000).map(|_| generate_id().unwrap()).collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        // Every one of the 128 bit positions takes both values somewhere:
        // catches a generator that fixes or truncates part of the id.
        let mut ones = [0u32; 128];
        for id in &ids {
            for (i, c) in id.bytes().enumerate() {
                let nibble = (c as char).to_digit(16).unwrap();
                for bit in 0..4 {
                    if nibble & (1 << bit) != 0 {
                        ones[i * 4 + bit] += 1;
                    }
                }
            }
        }
        for (pos, n) in ones.iter().enumerate() {
            // Binomial(10000, 0.5): mean 5000, sd 50; 4600..5400 is 8 sd.
            assert!((4600..5400).contains(n), "bit {pos} set {n} times in 10000 ids");
        }
    }

    #[test]
    fn framework_ids_are_accepted() {
        assert!(is_valid_id("46f1d90ac4a7f4a2026040ea8ac8d0e6")); // Rails
        assert!(is_valid_id("k3j5h6g7f8d9s0a1q2w3e4r5t6y7u8i9")); // Django
        assert!(is_valid_id("Xy9_-abcdefghijklmnopqrstuvwxyz01")); // express / Flask
        assert!(is_valid_id(&"a".repeat(128)));
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let bad = [
            String::new(),
            "a".repeat(31),
            "a".repeat(129),
            format!("{}*", "a".repeat(31)),
            format!("{}\r\nFLUSHALL\r\n", "a".repeat(32)),
            format!("2::{}", "a".repeat(64)),
            format!("{} ", "a".repeat(32)),
            format!("{}é", "a".repeat(31)),
            format!("{}\0", "a".repeat(32)),
        ];
        for id in &bad {
            assert!(!is_valid_id(id), "{id:?} accepted");
            assert_eq!(storage_key("session:", id), None);
        }
    }

    #[test]
    fn storage_key_is_rack_private_id() {
        // The byte-level example from shared/peers/rails.md.
        assert_eq!(
            storage_key("bench:rss:", "46f1d90ac4a7f4a2026040ea8ac8d0e6").unwrap(),
            "bench:rss:2::46016df16bb6b2106739d3c1cb748019f5680ca453b8b08a8e97eeb1e0d07b01"
        );
    }
}
