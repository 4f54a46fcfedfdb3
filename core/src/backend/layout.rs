//! The layout of one session record (documented in docs/data-layout.md): one
//! Redis string, `MAGIC` followed by a MessagePack map of field name ->
//! bytes. Fields are `a:<key>` (one per top-level session key, its value
//! encoded by the session's codec) and metadata `m:*`. The prefixes keep user
//! keys from ever colliding with metadata; the magic tells our records from a
//! peer store's value under the same key name.
//!
//! One string, not a hash, so that a load is one native `GETEX` (a Lua
//! script costs the server several times more). Saves still send only the
//! changed fields; a script merges them into the map on the server.

pub const ATTR_PREFIX: &str = "a:";
/// Creation time, milliseconds since the epoch (server clock).
pub const CREATED: &str = "m:created";
/// Absolute deadline, milliseconds since the epoch; absent when unlimited.
/// The Lua scripts read this field by name.
pub const DEADLINE: &str = "m:deadline";
/// The session's own sliding window in ms (0: none), set by a per-request
/// lifetime (`Store::with_idle_ttl`); it overrides the store's `idle_ttl`.
/// The Lua scripts read this field by name.
pub const IDLE: &str = "m:idle";
/// The codec of every `a:` value in this record: fixed at creation, so
/// writers configured with another codec still merge into one consistent
/// record.
pub const CODEC: &str = "m:codec";

/// The first bytes of every record; the Lua scripts compare them too.
pub const MAGIC: &[u8] = b"SKv1";

pub fn attr_field(key: &str) -> String {
    let mut f = String::with_capacity(ATTR_PREFIX.len() + key.len());
    f.push_str(ATTR_PREFIX);
    f.push_str(key);
    f
}

/// One record as the scripts write it: `MAGIC` and a map of str field names
/// to bin values.
pub fn encode_record<'a>(fields: impl Iterator<Item = (&'a str, &'a [u8])> + Clone) -> Vec<u8> {
    let (count, size) = fields.clone().fold((0u32, 0usize), |(n, size), (f, v)| (n + 1, size + f.len() + v.len() + 10));
    let mut out = Vec::with_capacity(MAGIC.len() + 5 + size);
    out.extend_from_slice(MAGIC);
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_map_len(&mut out, count);
    for (field, value) in fields {
        let _ = rmp::encode::write_str(&mut out, field);
        let _ = rmp::encode::write_bin(&mut out, value);
    }
    out
}

/// A metadata field holding milliseconds.
pub fn field_ms(fields: &[(String, Vec<u8>)], name: &str) -> Option<i64> {
    let (_, value) = fields.iter().find(|(f, _)| f == name)?;
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// What a stored string turned out to be.
#[derive(Debug, PartialEq)]
pub enum Stored {
    /// Not one of our records (no magic): a peer store's value.
    Foreign,
    /// Our magic, but the map cannot be read.
    Corrupt(&'static str),
    Record(Vec<(String, Vec<u8>)>),
}

/// Reads a record. Names and values may be MessagePack str or bin, as any
/// MessagePack writer may choose.
pub fn decode_record(bytes: &[u8]) -> Stored {
    let Some(mut rest) = bytes.strip_prefix(MAGIC) else { return Stored::Foreign };
    let Some(count) = map_len(&mut rest) else { return Stored::Corrupt("the record is not a MessagePack map") };
    // Every entry takes at least two bytes: a hostile count cannot make us
    // reserve more than the input's size.
    let mut fields = Vec::with_capacity((count as usize).min(rest.len() / 2));
    for _ in 0..count {
        let Some(name) = raw(&mut rest) else { return Stored::Corrupt("a field name is truncated or not a string") };
        let Ok(name) = String::from_utf8(name.to_vec()) else { return Stored::Corrupt("a field name is not UTF-8") };
        let Some(value) = raw(&mut rest) else { return Stored::Corrupt("a field value is truncated or not bytes") };
        fields.push((name, value.to_vec()));
    }
    if !rest.is_empty() {
        return Stored::Corrupt("the record has trailing bytes");
    }
    Stored::Record(fields)
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Some(head)
}

fn be(bytes: &[u8]) -> usize {
    bytes.iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b))
}

fn map_len(input: &mut &[u8]) -> Option<u32> {
    let marker = take(input, 1)?[0];
    Some(match marker {
        0x80..=0x8f => u32::from(marker & 0x0f),
        0xde => be(take(input, 2)?) as u32,
        0xdf => be(take(input, 4)?) as u32,
        _ => return None,
    })
}

/// A str or bin payload.
fn raw<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let marker = take(input, 1)?[0];
    let len = match marker {
        0xa0..=0xbf => usize::from(marker & 0x1f),
        0xc4 | 0xd9 => be(take(input, 1)?),
        0xc5 | 0xda => be(take(input, 2)?),
        0xc6 | 0xdb => be(take(input, 4)?),
        _ => return None,
    };
    take(input, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<(String, Vec<u8>)> {
        vec![("m:codec".into(), b"msgpack".to_vec()), ("a:user".into(), vec![0xc1, 0, 0xff]), ("a:big".into(), vec![7; 70_000])]
    }

    #[test]
    fn round_trips() {
        let f = fields();
        let encode = |f: &[(String, Vec<u8>)]| encode_record(f.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        assert_eq!(decode_record(&encode(&f)), Stored::Record(f));
        assert_eq!(decode_record(&encode(&[])), Stored::Record(vec![]));
    }

    #[test]
    fn reads_str_values_too() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([0x81, 0xa3, b'a', b':', b'x', 0xd9, 2, 0xc1, 0xc2]);
        assert_eq!(decode_record(&bytes), Stored::Record(vec![("a:x".into(), vec![0xc1, 0xc2])]));
    }

    #[test]
    fn tells_foreign_from_corrupt() {
        assert_eq!(decode_record(b"\x04\x08{\x06"), Stored::Foreign);
        assert_eq!(decode_record(b"{\"a\":1}"), Stored::Foreign);
        assert!(matches!(decode_record(b"SKv1"), Stored::Corrupt(_)));
        assert!(matches!(decode_record(b"SKv1\xdf\xff\xff\xff\xff"), Stored::Corrupt(_)));
        assert!(matches!(decode_record(b"SKv1\x81\xa1a\xc6\xff\xff\xff\xff"), Stored::Corrupt(_)));
        let mut trailing = encode_record(fields().iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        trailing.push(0);
        assert!(matches!(decode_record(&trailing), Stored::Corrupt(_)));
    }
}
