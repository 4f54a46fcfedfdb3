//! JSON for users who want to read sessions with `redis-cli`. JSON has no
//! bytes or timestamps, so those become one-key tagged objects:
//! `{"$bytes": "<base64>"}` and `{"$time": [secs, nanos]}`. A user map that
//! would look like a tag is wrapped as `{"$map": {...}}`, so decoding is exact.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::Value as Json;

use super::MAX_DEPTH;
use crate::error::{Error, Result};
use crate::value::{Map, Timestamp, Value};

const BYTES_TAG: &str = "$bytes";
const TIME_TAG: &str = "$time";
const MAP_TAG: &str = "$map";

pub fn encode(value: &Value) -> Result<Vec<u8>> {
    let json = to_json(value, 0)?;
    serde_json::to_vec(&json).map_err(|e| Error::codec(format!("cannot write JSON: {e}")))
}

pub fn decode(bytes: &[u8]) -> Result<Value> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| Error::codec(format!("stored value is not valid JSON ({e})")))?;
    from_json(json, 0)
}

fn too_deep() -> Error {
    Error::codec(format!("session value nested deeper than {MAX_DEPTH} levels"))
}

fn tagged(tag: &str, inner: Json) -> Json {
    let mut obj = serde_json::Map::with_capacity(1);
    obj.insert(tag.to_owned(), inner);
    Json::Object(obj)
}

fn looks_tagged(map_len: usize, first_key: Option<&str>) -> bool {
    map_len == 1 && matches!(first_key, Some(BYTES_TAG | TIME_TAG | MAP_TAG))
}

fn to_json(value: &Value, depth: usize) -> Result<Json> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => Json::Number(
            serde_json::Number::from_f64(*f)
                .ok_or_else(|| Error::codec("NaN and infinite floats cannot be stored with the json codec; use msgpack"))?,
        ),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => tagged(BYTES_TAG, Json::String(BASE64.encode(b))),
        Value::Timestamp(t) => tagged(TIME_TAG, Json::Array(vec![Json::from(t.secs), Json::from(t.nanos)])),
        Value::Array(items) => Json::Array(items.iter().map(|v| to_json(v, depth + 1)).collect::<Result<_>>()?),
        Value::Map(map) => {
            let mut obj = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                obj.insert(k.clone(), to_json(v, depth + 1)?);
            }
            if looks_tagged(map.len(), map.keys().next().map(String::as_str)) {
                tagged(MAP_TAG, Json::Object(obj))
            } else {
                Json::Object(obj)
            }
        }
    })
}

fn from_json(json: Json, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if n.is_u64() {
                return Err(Error::codec("stored integer is larger than 2^63-1"));
            } else {
                Value::Float(n.as_f64().ok_or_else(|| Error::codec("unreadable JSON number"))?)
            }
        }
        Json::String(s) => Value::Str(s),
        Json::Array(items) => Value::Array(items.into_iter().map(|v| from_json(v, depth + 1)).collect::<Result<_>>()?),
        Json::Object(obj) => {
            if obj.len() == 1 {
                let (k, v) = obj.into_iter().next().expect("one entry");
                return match (k.as_str(), v) {
                    (BYTES_TAG, Json::String(b64)) => BASE64
                        .decode(b64)
                        .map(Value::Bytes)
                        .map_err(|_| Error::codec("invalid base64 in a stored $bytes value")),
                    (TIME_TAG, Json::Array(parts)) => parse_time(&parts),
                    (MAP_TAG, Json::Object(inner)) => Ok(Value::Map(object_to_map(inner, depth)?)),
                    (_, v) => {
                        let mut m = Map::with_capacity(1);
                        m.insert(k, from_json(v, depth + 1)?);
                        Ok(Value::Map(m))
                    }
                };
            }
            Value::Map(object_to_map(obj, depth)?)
        }
    })
}

fn object_to_map(obj: serde_json::Map<String, Json>, depth: usize) -> Result<Map> {
    let mut m = Map::with_capacity(obj.len());
    for (k, v) in obj {
        m.insert(k, from_json(v, depth + 1)?);
    }
    Ok(m)
}

fn parse_time(parts: &[Json]) -> Result<Value> {
    match parts {
        [s, n] => s
            .as_i64()
            .zip(n.as_u64().and_then(|n| u32::try_from(n).ok()))
            .and_then(|(s, n)| Timestamp::new(s, n))
            .map(Value::Timestamp)
            .ok_or_else(|| Error::codec("malformed stored $time value")),
        _ => Err(Error::codec("malformed stored $time value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_that_look_like_tags_survive() {
        let mut inner = Map::new();
        inner.insert("$bytes".into(), Value::Str("not base64 !".into()));
        let v = Value::Map(inner);
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes, br#"{"$map":{"$bytes":"not base64 !"}}"#);
        assert_eq!(decode(&bytes).unwrap(), v);
    }

    #[test]
    fn integers_beyond_i64_are_refused() {
        assert!(decode(b"18446744073709551615").is_err());
        assert_eq!(decode(b"1.0").unwrap(), Value::Float(1.0));
    }
}
