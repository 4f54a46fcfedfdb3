//! Encoding of session values. A session is stored one top-level key per hash
//! field, so codecs encode single values; `encode_map`/`decode_map` give the
//! whole-session MessagePack form that crosses the C boundary.

mod json;
mod msgpack;

use crate::error::{Error, Result};
use crate::value::{Map, Value};

/// Nesting deeper than this is refused on encode and on decode, so a hostile
/// or corrupt value cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// MessagePack: compact, and every language has a reader.
    #[default]
    Msgpack,
    /// JSON: readable with `redis-cli`; bytes and timestamps are tagged
    /// objects (see docs/data-layout.md).
    Json,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Msgpack => "msgpack",
            Codec::Json => "json",
        }
    }

    pub fn from_name(name: &str) -> Option<Codec> {
        match name {
            "msgpack" => Some(Codec::Msgpack),
            "json" => Some(Codec::Json),
            _ => None,
        }
    }

    pub fn encode(self, value: &Value) -> Result<Vec<u8>> {
        match self {
            Codec::Msgpack => msgpack::encode(value),
            Codec::Json => json::encode(value),
        }
    }

    pub fn decode(self, bytes: &[u8]) -> Result<Value> {
        match self {
            Codec::Msgpack => msgpack::decode(bytes),
            Codec::Json => json::decode(bytes),
        }
    }
}

/// A whole session as one MessagePack map (the C API's exchange format).
pub fn encode_map(map: &Map) -> Result<Vec<u8>> {
    msgpack::encode_map(map)
}

/// Decodes what `encode_map` produced; anything but a map with string keys is
/// a codec error.
pub fn decode_map(bytes: &[u8]) -> Result<Map> {
    match msgpack::decode(bytes)? {
        Value::Map(m) => Ok(m),
        other => Err(Error::codec(format!("expected a map of session data, found {}", other.type_name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Timestamp;

    pub(crate) fn every_type() -> Value {
        let mut inner = Map::new();
        inner.insert("z".into(), Value::Int(-1));
        inner.insert("a".into(), Value::Array(vec![Value::Nil, Value::Bool(false)]));
        let mut m = Map::new();
        m.insert("nil".into(), Value::Nil);
        m.insert("t".into(), Value::Bool(true));
        m.insert("small".into(), Value::Int(7));
        m.insert("neg".into(), Value::Int(-300));
        m.insert("big".into(), Value::Int(i64::MAX));
        m.insert("min".into(), Value::Int(i64::MIN));
        m.insert("f".into(), Value::Float(1.5));
        m.insert("fneg".into(), Value::Float(-0.1));
        m.insert("s".into(), Value::Str("héllo ✓".into()));
        m.insert("empty".into(), Value::Str(String::new()));
        m.insert("b".into(), Value::Bytes(vec![0, 255, 10, 13]));
        m.insert("arr".into(), Value::Array(vec![Value::Int(1), Value::Str("x".into())]));
        m.insert("map".into(), Value::Map(inner));
        m.insert("t32".into(), Value::Timestamp(Timestamp::new(1_700_000_000, 0).unwrap()));
        m.insert("t64".into(), Value::Timestamp(Timestamp::new(1_700_000_000, 123_456_789).unwrap()));
        m.insert("t96".into(), Value::Timestamp(Timestamp::new(-1, 5).unwrap()));
        m.insert("tbig".into(), Value::Timestamp(Timestamp::new(1 << 40, 1).unwrap()));
        Value::Map(m)
    }

    #[test]
    fn every_type_round_trips_in_both_codecs() {
        let v = every_type();
        for codec in [Codec::Msgpack, Codec::Json] {
            let bytes = codec.encode(&v).unwrap();
            let back = codec.decode(&bytes).unwrap();
            assert_eq!(back, v, "{codec:?}");
            // Key order survives too.
            if let (Value::Map(a), Value::Map(b)) = (&v, &back) {
                assert!(a.keys().eq(b.keys()));
            }
        }
    }

    #[test]
    fn whole_map_round_trips() {
        let Value::Map(m) = every_type() else { unreachable!() };
        assert_eq!(decode_map(&encode_map(&m).unwrap()).unwrap(), m);
        assert_eq!(decode_map(&Codec::Msgpack.encode(&Value::Int(1)).unwrap()).unwrap_err().kind(), crate::ErrorKind::Codec);
    }

    #[test]
    fn garbage_is_a_codec_error_never_a_panic() {
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xc1],
            vec![0xdd, 0xff, 0xff, 0xff, 0xff], // array32 claiming 4G elements
            vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'a'], // str32 longer than the input
            vec![0x81, 0x01, 0x02], // map with an integer key
            vec![0xd4, 0x01, 0x00], // unknown extension type
            vec![0xa2, 0xff, 0xfe], // invalid UTF-8 string
            vec![0x91; 100], // nesting beyond MAX_DEPTH
            vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // u64 beyond i64
            b"\x01\x02".to_vec(),
        ];
        for input in &inputs {
            for codec in [Codec::Msgpack, Codec::Json] {
                if let Err(e) = codec.decode(input) {
                    assert_eq!(e.kind(), crate::ErrorKind::Codec);
                }
            }
            assert!(Codec::Msgpack.decode(input).is_err(), "{input:?} decoded");
        }
        assert!(Codec::Json.decode(b"{").is_err());
        assert!(Codec::Json.decode(b"\xff").is_err());
        // Trailing bytes after one value are corruption too.
        assert!(Codec::Msgpack.decode(&[0x01, 0x02]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_on_encode() {
        let mut v = Value::Nil;
        for _ in 0..(MAX_DEPTH + 1) {
            v = Value::Array(vec![v]);
        }
        for codec in [Codec::Msgpack, Codec::Json] {
            assert_eq!(codec.encode(&v).unwrap_err().kind(), crate::ErrorKind::Codec);
        }
    }

    #[test]
    fn json_refuses_non_finite_floats() {
        assert!(Codec::Json.encode(&Value::Float(f64::NAN)).is_err());
        // MessagePack can hold them.
        let b = Codec::Msgpack.encode(&Value::Float(f64::INFINITY)).unwrap();
        assert_eq!(Codec::Msgpack.decode(&b).unwrap(), Value::Float(f64::INFINITY));
    }

    #[test]
    fn msgpack_bytes_are_the_standard_encoding() {
        // {"counter": 3} exactly as any MessagePack library writes it.
        let mut m = Map::new();
        m.insert("counter".into(), Value::Int(3));
        assert_eq!(encode_map(&m).unwrap(), b"\x81\xa7counter\x03");
        // Timestamp extension, type -1, 32-bit form.
        let t = Value::Timestamp(Timestamp::new(1, 0).unwrap());
        assert_eq!(Codec::Msgpack.encode(&t).unwrap(), vec![0xd6, 0xff, 0, 0, 0, 1]);
        assert_eq!(Codec::Json.encode(&Value::Map(m)).unwrap(), br#"{"counter":3}"#);
    }
}
