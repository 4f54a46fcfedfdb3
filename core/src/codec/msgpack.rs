//! MessagePack, written with `rmp` and read by a bounds-checked decoder that
//! never trusts a length prefix (a corrupt value must fail, not allocate 4 GiB).

use rmp::Marker;

use super::MAX_DEPTH;
use crate::error::{Error, Result};
use crate::value::{Map, Timestamp, Value};

/// MessagePack's reserved extension type for timestamps.
const TIMESTAMP_EXT: i8 = -1;

pub fn encode(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(32);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

pub fn encode_map(map: &Map) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    write_map(&mut out, map, 0)?;
    Ok(out)
}

fn too_deep() -> Error {
    Error::codec(format!("session value nested deeper than {MAX_DEPTH} levels"))
}

fn write_value(out: &mut Vec<u8>, value: &Value, depth: usize) -> Result<()> {
    use rmp::encode as w;
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match value {
        Value::Nil => ok(w::write_nil(out)),
        Value::Bool(b) => ok(w::write_bool(out, *b)),
        Value::Int(i) => ok(w::write_sint(out, *i)),
        Value::Float(f) => ok(w::write_f64(out, *f)),
        Value::Str(s) => ok(w::write_str(out, s)),
        Value::Bytes(b) => ok(w::write_bin(out, b)),
        Value::Array(items) => {
            ok(w::write_array_len(out, len_u32(items.len())?))?;
            items.iter().try_for_each(|v| write_value(out, v, depth + 1))
        }
        Value::Map(map) => write_map(out, map, depth),
        Value::Timestamp(t) => write_timestamp(out, *t),
    }
}

// Writing into a Vec cannot fail; rmp's results only carry Infallible I/O.
fn ok<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<()> {
    r.map(|_| ()).map_err(|e| Error::unexpected(e.to_string()))
}

fn write_map(out: &mut Vec<u8>, map: &Map, depth: usize) -> Result<()> {
    ok(rmp::encode::write_map_len(out, len_u32(map.len())?))?;
    for (k, v) in map {
        ok(rmp::encode::write_str(out, k))?;
        write_value(out, v, depth + 1)?;
    }
    Ok(())
}

fn len_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::codec("a collection has more than 2^32 elements"))
}

/// The three layouts of the timestamp extension, smallest that fits.
fn write_timestamp(out: &mut Vec<u8>, t: Timestamp) -> Result<()> {
    if t.secs >= 0 && t.secs >> 34 == 0 {
        if t.nanos == 0 && t.secs <= u32::MAX as i64 {
            ok(rmp::encode::write_ext_meta(out, 4, TIMESTAMP_EXT))?;
            out.extend_from_slice(&(t.secs as u32).to_be_bytes());
        } else {
            let packed = ((t.nanos as u64) << 34) | t.secs as u64;
            ok(rmp::encode::write_ext_meta(out, 8, TIMESTAMP_EXT))?;
            out.extend_from_slice(&packed.to_be_bytes());
        }
    } else {
        ok(rmp::encode::write_ext_meta(out, 12, TIMESTAMP_EXT))?;
        out.extend_from_slice(&t.nanos.to_be_bytes());
        out.extend_from_slice(&t.secs.to_be_bytes());
    }
    Ok(())
}

pub fn decode(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(Error::codec("stored value has trailing bytes (corrupt MessagePack)"));
    }
    Ok(v)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn corrupt(what: &str) -> Error {
    Error::codec(format!("stored value is not valid MessagePack ({what})"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| corrupt("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len8(&mut self) -> Result<usize> {
        Ok(self.byte()? as usize)
    }
    fn len16(&mut self) -> Result<usize> {
        Ok(u16::from_be_bytes(self.be()?) as usize)
    }
    fn len32(&mut self) -> Result<usize> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let marker = Marker::from_u8(self.byte()?);
        Ok(match marker {
            Marker::Null => Value::Nil,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::Int(n as i64),
            Marker::FixNeg(n) => Value::Int(n as i64),
            Marker::U8 => Value::Int(self.byte()? as i64),
            Marker::U16 => Value::Int(u16::from_be_bytes(self.be()?) as i64),
            Marker::U32 => Value::Int(u32::from_be_bytes(self.be()?) as i64),
            Marker::U64 => {
                let n = u64::from_be_bytes(self.be()?);
                Value::Int(i64::try_from(n).map_err(|_| Error::codec("stored integer is larger than 2^63-1"))?)
            }
            Marker::I8 => Value::Int(i8::from_be_bytes(self.be()?) as i64),
            Marker::I16 => Value::Int(i16::from_be_bytes(self.be()?) as i64),
            Marker::I32 => Value::Int(i32::from_be_bytes(self.be()?) as i64),
            Marker::I64 => Value::Int(i64::from_be_bytes(self.be()?)),
            Marker::F32 => Value::Float(f32::from_be_bytes(self.be()?) as f64),
            Marker::F64 => Value::Float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(n) => self.string(n as usize)?,
            Marker::Str8 => {
                let n = self.len8()?;
                self.string(n)?
            }
            Marker::Str16 => {
                let n = self.len16()?;
                self.string(n)?
            }
            Marker::Str32 => {
                let n = self.len32()?;
                self.string(n)?
            }
            Marker::Bin8 => {
                let n = self.len8()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            Marker::Bin16 => {
                let n = self.len16()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            Marker::Bin32 => {
                let n = self.len32()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            Marker::FixArray(n) => self.array(n as usize, depth)?,
            Marker::Array16 => {
                let n = self.len16()?;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.len32()?;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => Value::Map(self.map(n as usize, depth)?),
            Marker::Map16 => {
                let n = self.len16()?;
                Value::Map(self.map(n, depth)?)
            }
            Marker::Map32 => {
                let n = self.len32()?;
                Value::Map(self.map(n, depth)?)
            }
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 => {
                let n = self.len8()?;
                self.ext(n)?
            }
            Marker::Ext16 => {
                let n = self.len16()?;
                self.ext(n)?
            }
            Marker::Ext32 => {
                let n = self.len32()?;
                self.ext(n)?
            }
            Marker::Reserved => return Err(corrupt("reserved marker 0xc1")),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value> {
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(|s| Value::Str(s.to_owned()))
            .map_err(|_| corrupt("string is not UTF-8"))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value> {
        // Every element takes at least one byte, so a length beyond what is
        // left is corruption; checking first avoids a huge allocation.
        if n > self.remaining() {
            return Err(corrupt("array longer than the value"));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Map> {
        if n.saturating_mul(2) > self.remaining() {
            return Err(corrupt("map longer than the value"));
        }
        let mut map = Map::with_capacity(n);
        for _ in 0..n {
            let key = match self.value(depth + 1)? {
                Value::Str(s) => s,
                other => return Err(Error::codec(format!("map keys must be strings, found {}", other.type_name()))),
            };
            let value = self.value(depth + 1)?;
            map.insert(key, value);
        }
        Ok(map)
    }

    fn ext(&mut self, n: usize) -> Result<Value> {
        let ty = self.byte()? as i8;
        let data = self.take(n)?;
        if ty != TIMESTAMP_EXT {
            return Err(Error::codec(format!("unknown MessagePack extension type {ty}")));
        }
        let ts = match n {
            4 => Timestamp::new(u32::from_be_bytes(data.try_into().expect("4 bytes")) as i64, 0),
            8 => {
                let packed = u64::from_be_bytes(data.try_into().expect("8 bytes"));
                Timestamp::new((packed & ((1 << 34) - 1)) as i64, (packed >> 34) as u32)
            }
            12 => Timestamp::new(
                i64::from_be_bytes(data[4..12].try_into().expect("8 bytes")),
                u32::from_be_bytes(data[0..4].try_into().expect("4 bytes")),
            ),
            _ => None,
        };
        ts.map(Value::Timestamp).ok_or_else(|| corrupt("malformed timestamp"))
    }
}
