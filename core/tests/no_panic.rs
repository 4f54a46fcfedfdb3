//! Nothing a client sends (a cookie, a corrupt stored value) and no
//! configuration string may make the engine panic: random and mutated inputs
//! through every parser. Deterministic (fixed seed), so a failure reproduces.

use sessionkeeper_core::codec::{decode_map, encode_map};
use sessionkeeper_core::{is_valid_id, storage_key, Codec, Config, Map, Timestamp, Value};

/// xorshift64*: enough randomness for input generation, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn sample_session() -> Map {
    let mut inner = Map::new();
    inner.insert("k".into(), Value::Array(vec![Value::Int(-7), Value::Float(0.5), Value::Nil]));
    let mut m = Map::new();
    m.insert("user_id".into(), Value::Int(123_456_789_012));
    m.insert("csrf".into(), Value::Str("x".repeat(40)));
    m.insert("raw".into(), Value::Bytes(vec![0, 1, 2, 255]));
    m.insert("nested".into(), Value::Map(inner));
    m.insert("at".into(), Value::Timestamp(Timestamp::new(1_763_900_000, 5).unwrap()));
    m.insert("flag".into(), Value::Bool(true));
    m
}

#[test]
fn random_ids_never_panic_and_only_valid_ones_become_keys() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let alphabet: Vec<char> = "aZ09_-*:\r\n \0/é\u{202e}2".chars().collect();
    for _ in 0..100_000 {
        let len = rng.below(140);
        let id: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        let valid = is_valid_id(&id);
        assert_eq!(storage_key("session:", &id).is_some(), valid);
        if valid {
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        }
    }
}

#[test]
fn random_bytes_never_panic_any_decoder() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..200_000 {
        let input = rng.bytes(64);
        let _ = Codec::Msgpack.decode(&input);
        let _ = Codec::Json.decode(&input);
        let _ = decode_map(&input);
    }
}

#[test]
fn mutated_valid_encodings_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let session = sample_session();
    let originals = [
        encode_map(&session).unwrap(),
        Codec::Json.encode(&Value::Map(session.clone())).unwrap(),
    ];
    for _ in 0..100_000 {
        let mut input = originals[rng.below(2)].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(4) {
                0 if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] = rng.next() as u8;
                }
                1 if !input.is_empty() => input.truncate(rng.below(input.len())),
                2 => {
                    let i = rng.below(input.len() + 1);
                    input.insert(i, rng.next() as u8);
                }
                _ if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] ^= 1 << rng.below(8);
                }
                _ => {}
            }
        }
        let _ = decode_map(&input);
        let _ = Codec::Json.decode(&input);
    }
}

#[test]
fn random_urls_and_options_never_panic() {
    let mut rng = Rng(0xfeed_face_0bad_c0de);
    let pieces = [
        "redis://", "rediss://", "redis+cluster://", "redis+sentinel://", "unix://", "memory://", "u:p@", ":", "@",
        "h", "[::1]", "6379", ",", "/", "0", "mymaster", "?", "&", "=", "%", "%zz", "%41", "key_prefix", "idle_ttl",
        "30s", "-1", "1e999", "NaN", "ms", "\0", "é", "#insecure", "", "99999999999999999999",
    ];
    for _ in 0..50_000 {
        let n = rng.below(8);
        let url: String = (0..n).map(|_| pieces[rng.below(pieces.len())]).collect();
        let key = pieces[rng.below(pieces.len())];
        let value = pieces[rng.below(pieces.len())];
        let _ = Config::from_url_and_options(&url, [(key, value)]);
    }
}

/// Bytes off the socket (`wire::parse`, the event-loop connection's reader):
/// a reply out of step or garbled must be an error or "need more", never a
/// panic, which would abort the web process the addon runs in.
#[test]
fn random_and_mutated_replies_never_panic_the_reply_parser() {
    let mut rng = Rng(0x0dd_ba11_5ca1_ab1e);
    let replies: [&[u8]; 6] = [b"+OK\r\n", b":42\r\n", b"$-1\r\n", b"$5\r\nhello\r\n", b"-ERR no\r\n", b"\r\n"];
    let bytes = b"+-:$*\r\n0123456789-";
    for _ in 0..200_000 {
        let mut input: Vec<u8> = Vec::new();
        for _ in 0..=rng.below(3) {
            input.extend_from_slice(replies[rng.below(replies.len())]);
        }
        for _ in 0..rng.below(4) {
            let i = rng.below(input.len() + 1);
            input.insert(i, bytes[rng.below(bytes.len())]);
        }
        if rng.below(2) == 0 && !input.is_empty() {
            input.truncate(rng.below(input.len()));
        }
        let mut rest = &input[..];
        while let Ok(Some((_, used))) = sessionkeeper_core::wire::parse(rest) {
            assert!(used > 0 && used <= rest.len(), "a reply must consume bytes it has");
            rest = &rest[used..];
        }
    }
}

/// Signed cookies come from clients: verifying any string is an answer.
#[test]
fn random_signed_cookies_never_panic_the_verifiers() {
    let mut rng = Rng(0x51_6e_ed_c0_0c_1e);
    let secrets = [[7u8; 32].as_slice(), [9u8; 40].as_slice()];
    let salted = sessionkeeper_core::cookie::SaltedSigner::new(&secrets, b"cookie-session").unwrap();
    let good = sessionkeeper_core::cookie::sign(&"a".repeat(43), secrets[0]).unwrap();
    let alphabet: Vec<char> = "aZ09_-.=+/%:s\0é".chars().collect();
    for _ in 0..100_000 {
        let mut raw: String = good.clone();
        if rng.below(2) == 0 {
            let len = rng.below(120);
            raw = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        } else {
            for _ in 0..=rng.below(3) {
                let at = rng.below(raw.len() + 1);
                if raw.is_char_boundary(at) {
                    raw.insert(at, alphabet[rng.below(alphabet.len())]);
                }
            }
        }
        let _ = sessionkeeper_core::cookie::unsign(&raw, &secrets);
        let _ = salted.unsign(&raw);
    }
}
