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
