//! The Lua scripts that make every write one atomic round trip. Each
//! touches exactly one key, so they run unchanged on a Cluster. Time comes
//! from the server (`TIME`), so app servers with skewed clocks agree on
//! creation times and deadlines. (Plain loads are a `GETEX`, redis.rs.)

use std::sync::LazyLock;

use redis::Script;

/// The record codec, shared by every script. A record is one string: the
/// magic `SKv1` and a MessagePack map of str field -> bin value (layout.rs).
/// Redis' built-in `cmsgpack` cannot read bin, so this reads and writes
/// exactly that shape itself. `expiry_at` slides to `now + idle` but never
/// past the absolute deadline; -1: the record does not expire.
const CODEC: &str = r#"
local MAGIC = 'SKv1'
local byte, sub = string.byte, string.sub
-- Asked of the server once per script, and only when needed: `TIME` is a
-- large part of a small script's cost.
local clock
local function now_ms()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return clock
end
local function ms_string(n)
  return string.format('%d', n)
end
local function is_ours(v)
  return type(v) == 'string' and sub(v, 1, 4) == MAGIC
end
local function uint(s, pos, n)
  local v = 0
  for i = pos, pos + n - 1 do v = v * 256 + byte(s, i) end
  return v
end
-- A str or bin at pos: where its bytes start and the position after it.
local function extent(s, pos)
  local m = byte(s, pos)
  local len, first
  if m >= 0xa0 and m <= 0xbf then len, first = m - 0xa0, pos + 1
  elseif m == 0xc4 or m == 0xd9 then len, first = uint(s, pos + 1, 1), pos + 2
  elseif m == 0xc5 or m == 0xda then len, first = uint(s, pos + 1, 2), pos + 3
  elseif m == 0xc6 or m == 0xdb then len, first = uint(s, pos + 1, 4), pos + 5
  else error('not a string') end
  if first + len - 1 > #s then error('truncated') end
  return first, first + len
end
-- A str or bin at pos: its bytes and the position after it.
local function raw(s, pos)
  local first, after = extent(s, pos)
  return sub(s, first, after - 1), after
end
-- A record's number of fields and the position of the first.
local function fields(s)
  local m = byte(s, 5)
  if m >= 0x80 and m <= 0x8f then return m - 0x80, 6 end
  if m == 0xde then return uint(s, 6, 2), 8 end
  if m == 0xdf then return uint(s, 6, 4), 10 end
  error('not a map')
end
local function header(len, fix, fix_max, m8, m16, m32)
  if fix and len <= fix_max then return string.char(fix + len) end
  if m8 and len < 256 then return struct.pack('>BB', m8, len) end
  if len < 65536 then return struct.pack('>BI2', m16, len) end
  return struct.pack('>BI4', m32, len)
end
-- One field as encoded: its name as str, its value as bin.
local function field(k, v)
  return header(#k, 0xa0, 31, 0xd9, 0xda, 0xdb) .. k .. header(#v, nil, 0, 0xc4, 0xc5, 0xc6) .. v
end
local function map_header(n)
  return header(n, 0x80, 15, nil, 0xde, 0xdf)
end
local function expiry_at(now, idle, deadline)
  if idle > 0 then
    local at = now + idle
    if deadline and deadline < at then return deadline end
    return at
  end
  return deadline or -1
end
local function put(key, blob, at)
  if at >= 0 then redis.call('SET', key, blob, 'PXAT', at) else redis.call('SET', key, blob) end
end
"#;

/// Records as Lua tables, for every script but the update's merge (which
/// splices the record and needs none of this: defining it would cost each
/// merge more than a tenth of its server time).
const RECORDS: &str = r#"
local function decode(s)
  local count, pos = fields(s)
  local rec = {}
  for _ = 1, count do
    local k, v
    k, pos = raw(s, pos)
    v, pos = raw(s, pos)
    rec[k] = v
  end
  if pos ~= #s + 1 then error('trailing bytes') end
  return rec
end
local function encode(rec)
  local parts, n = {MAGIC, ''}, 0
  for k, v in pairs(rec) do
    n = n + 1
    parts[n + 2] = field(k, v)
  end
  parts[2] = map_header(n)
  return table.concat(parts)
end
-- The record at key as a table, and its bytes, or nil when the key holds
-- no session of ours. A record of ours that cannot be read is deleted:
-- keeping it would fail every request that carries its cookie. `corrupt`
-- says so, for a load to report it.
local corrupt = false
local function read(key)
  local v = redis.pcall('GET', key)
  if not is_ours(v) then return nil end
  local ok, rec = pcall(decode, v)
  if not ok then
    redis.call('DEL', key)
    corrupt = true
    return nil
  end
  return rec, v
end
local function write(key, rec, at)
  local blob = encode(rec)
  put(key, blob, at)
  return blob
end
local function expire(key, at)
  if at >= 0 then redis.call('PEXPIREAT', key, at) else redis.call('PERSIST', key) end
end
-- The sliding window of one operation. "e<ms>": set explicitly for this
-- session (a per-request lifetime), so it is stored as the session's own
-- (the second result says the record changed); "d<ms>": the store's
-- default, which the session's own window overrides.
local function window(rec, arg)
  local ms = tonumber(sub(arg, 2))
  if sub(arg, 1, 1) == 'e' then
    local changed = tonumber(rec['m:idle']) ~= ms
    rec['m:idle'] = ms_string(ms)
    return ms, changed
  end
  return tonumber(rec['m:idle']) or ms, false
end
-- The record at key if it is a live session, its deadline and its bytes.
-- A session past its deadline is deleted.
local function live(key)
  local rec, bytes = read(key)
  if not rec then return nil end
  local deadline = tonumber(rec['m:deadline'])
  if deadline and now_ms() >= deadline then
    redis.call('DEL', key)
    return nil
  end
  return rec, deadline, bytes
end
"#;

/// A load that stores an explicit window (`e<ms>` in ARGV[1]) or peeks
/// (`p`: the expiry is left as it is, a listing must not keep sessions
/// alive). Loads with the store's default window are a plain `GETEX`
/// instead (redis.rs). KEYS[1] record. Returns false, or {now, expires_at
/// (-1: never), record bytes}, or 0 when a load (not a peek) found a record
/// of ours it could not read and deleted it: reported as a `GETEX` load
/// reports it, while a listing skips it.
const LOAD: &str = r#"
local now = now_ms()
local rec, deadline, bytes = live(KEYS[1])
if not rec then
  if corrupt and ARGV[1] ~= 'p' then return 0 end
  return false
end
local at
if ARGV[1] == 'p' then
  local pttl = redis.call('PTTL', KEYS[1])
  at = pttl >= 0 and now + pttl or -1
  return {now, at, bytes}
end
local idle, changed = window(rec, ARGV[1])
at = expiry_at(now, idle, deadline)
if changed then return {now, at, write(KEYS[1], rec, at)} end
expire(KEYS[1], at)
return {now, at, bytes}
"#;

/// KEYS[1] record; ARGV[1] the window (see `window`); ARGV[2..4] the swap:
/// the record as the client loaded it, the client's merge of the changes
/// into it, and its time to live in ms ('': none), which the client worked
/// out from the record's deadline and window (empty strings: no swap);
/// ARGV[5] the number of field/value pairs to set, then the pairs, then the
/// fields to delete. When the record still holds exactly what the client
/// loaded (the common case: no concurrent save), it is replaced by the
/// client's merge; decoding and re-encoding it here would cost the server
/// several times more. Otherwise the changes are merged into what it holds
/// now. Returns 2 (swapped), 1 (merged), or 0 when the record is gone (never
/// re-created: a logout must stay a logout).
///
/// The swap comes before the codec and calls nothing of it: the common path
/// then neither defines the codec's functions nor asks for `TIME` (about 40%
/// of its server time).
const UPDATE_SWAP: &str = r#"
local stored = redis.pcall('GET', KEYS[1])
if ARGV[2] ~= '' and stored == ARGV[2] then
  if ARGV[4] == '' then redis.call('SET', KEYS[1], ARGV[3]) else redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end
  return 2
end
"#;

/// The update script's merge path (see `UPDATE_SWAP`), after the codec.
/// The record is spliced rather than decoded and re-encoded: the fields the
/// save leaves alone are copied as they are, in runs, and only the changed
/// ones are encoded (under contention on one session, most saves come here).
/// The time is asked for only when a deadline caps the window.
const UPDATE_MERGE: &str = r#"
local key = KEYS[1]
-- `stored`: the record the swap read.
if not is_ours(stored) then return 0 end
local sets, dels = {}, {}
local last_set = 5 + 2 * tonumber(ARGV[5])
for i = 6, last_set, 2 do sets[ARGV[i]] = ARGV[i + 1] end
for i = last_set + 1, #ARGV do dels[ARGV[i]] = true end
local explicit = sub(ARGV[1], 1, 1) == 'e'
local idle = tonumber(sub(ARGV[1], 2))
if explicit then sets['m:idle'] = ms_string(idle) end
-- The merged record, and the stored window and deadline.
local function splice()
  local count, pos = fields(stored)
  local parts, n, run = {MAGIC, ''}, 0, nil
  local own_idle, deadline
  for _ = 1, count do
    local start = pos
    -- Names are nearly always a fixstr and values a bin 8: read inline.
    local m, k, at, first, after = byte(stored, pos)
    if m >= 0xa0 and m <= 0xbf then
      at = pos + 1 + m - 0xa0
      k = sub(stored, pos + 1, at - 1)
    else
      k, at = raw(stored, pos)
    end
    m = byte(stored, at)
    if m == 0xc4 then
      first = at + 2
      after = first + byte(stored, at + 1)
      if after - 1 > #stored then error('truncated') end
    else
      first, after = extent(stored, at)
    end
    if k == 'm:idle' then own_idle = sub(stored, first, after - 1)
    elseif k == 'm:deadline' then deadline = sub(stored, first, after - 1) end
    if sets[k] == nil and not dels[k] then
      n = n + 1
      run = run or start
    elseif run then
      parts[#parts + 1] = sub(stored, run, start - 1)
      run = nil
    end
    pos = after
  end
  if pos ~= #stored + 1 then error('trailing bytes') end
  if run then parts[#parts + 1] = sub(stored, run, pos - 1) end
  for k, v in pairs(sets) do
    n = n + 1
    parts[#parts + 1] = field(k, v)
  end
  parts[2] = map_header(n)
  return table.concat(parts), own_idle, tonumber(deadline)
end
local ok, blob, own_idle, deadline = pcall(splice)
if not ok then
  -- A record of ours that cannot be read is deleted, as read() does.
  redis.call('DEL', key)
  return 0
end
if deadline and now_ms() >= deadline then
  redis.call('DEL', key)
  return 0
end
if not explicit then
  -- The session's own window after this save's changes, else the default.
  local own = sets['m:idle']
  if own == nil and not dels['m:idle'] then own = own_idle end
  idle = tonumber(own) or idle
end
if not deadline and idle > 0 then
  redis.call('SET', key, blob, 'PX', idle)
else
  put(key, blob, expiry_at(now_ms(), idle, deadline))
end
return 1
"#;

/// KEYS[1] record; ARGV[1] the window (see `window`), ARGV[2] absolute ms,
/// ARGV[3] "1" to replace a value that is not one of our records (a migrated
/// peer's value under the same key name), then field/value pairs. Keeps
/// `m:created` and `m:deadline` when the pairs carry them (a renew). Returns
/// 1, or 0 when the key is taken.
const INSERT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[3] ~= '1' or is_ours(redis.pcall('GET', KEYS[1])) then return 0 end
end
local now = now_ms()
local rec = {}
for i = 4, #ARGV, 2 do rec[ARGV[i]] = ARGV[i + 1] end
if not rec['m:created'] then rec['m:created'] = ms_string(now) end
local deadline = tonumber(rec['m:deadline'])
local absolute = tonumber(ARGV[2])
if not deadline and absolute > 0 then
  deadline = now + absolute
  rec['m:deadline'] = ms_string(deadline)
end
write(KEYS[1], rec, expiry_at(now, window(rec, ARGV[1]), deadline))
return 1
"#;

/// KEYS[1] record; ARGV[1] the window (see `window`). Returns 1, or 0 when
/// gone (or the key holds something that is not a session).
const TOUCH: &str = r#"
local now = now_ms()
local rec, deadline = live(KEYS[1])
if not rec then return 0 end
local idle, changed = window(rec, ARGV[1])
local at = expiry_at(now, idle, deadline)
if changed then write(KEYS[1], rec, at) else expire(KEYS[1], at) end
return 1
"#;

/// KEYS[1] record. Returns 1 when it exists and is within its deadline.
const EXISTS: &str = r#"
if live(KEYS[1]) then return 1 end
return 0
"#;

/// KEYS[1] a peer store's session key. Returns its string value, or false
/// when the key is missing or holds anything else (e.g. our own record).
const FOREIGN_GET: &str = r#"
local v = redis.pcall('GET', KEYS[1])
if type(v) ~= 'string' or is_ours(v) then return false end
return v
"#;

/// KEYS[1] a peer store's session key. Deletes it only if it holds a peer's
/// string, so a session of ours under the same name is never touched.
/// Returns 1 or 0.
const FOREIGN_DELETE: &str = r#"
local v = redis.pcall('GET', KEYS[1])
if type(v) ~= 'string' or is_ours(v) then return 0 end
return redis.call('DEL', KEYS[1])
"#;

pub struct Scripts {
    pub load: Script,
    pub update: Script,
    /// The update script's source, for `EVAL` on a direct socket that met
    /// `NOSCRIPT` (redis-rs keeps its own copy private).
    pub update_code: String,
    pub insert: Script,
    pub touch: Script,
    pub exists: Script,
    pub foreign_get: Script,
    pub foreign_delete: Script,
}

pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let with_prelude = |body: &str| Script::new(&format!("{CODEC}{RECORDS}{body}"));
    let update = format!("{UPDATE_SWAP}{CODEC}{UPDATE_MERGE}");
    Scripts {
        load: with_prelude(LOAD),
        update: Script::new(&update),
        update_code: update,
        insert: with_prelude(INSERT),
        touch: with_prelude(TOUCH),
        exists: with_prelude(EXISTS),
        foreign_get: with_prelude(FOREIGN_GET),
        foreign_delete: with_prelude(FOREIGN_DELETE),
    }
});
