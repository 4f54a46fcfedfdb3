//! The Lua scripts that make every operation one atomic round trip. Each
//! touches exactly one key, so they run unchanged on a Cluster. Time comes
//! from the server (`TIME`), so app servers with skewed clocks agree.

use std::sync::LazyLock;

use redis::Script;

/// Shared helpers. `expire` slides the TTL to `now + idle` but never past the
/// absolute deadline; with neither, the record does not expire.
/// `hset_chunked` keeps `unpack` below Lua's C-stack limit.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function expire(key, now, idle, deadline)
  local at = -1
  if idle > 0 then
    at = now + idle
    if deadline and deadline < at then at = deadline end
  elseif deadline then
    at = deadline
  end
  if at >= 0 then redis.call('PEXPIREAT', key, at) else redis.call('PERSIST', key) end
  return at
end
-- The sliding window of one operation. "e<ms>": set explicitly for this
-- session (a per-request lifetime), so it is stored as the session's own;
-- "d<ms>": the store's default, which the session's own window overrides.
local function window(key, arg)
  local ms = tonumber(string.sub(arg, 2))
  if string.sub(arg, 1, 1) == 'e' then
    redis.call('HSET', key, 'm:idle', ms)
    return ms
  end
  return tonumber(redis.call('HGET', key, 'm:idle')) or ms
end
local function deadline_of(key)
  return tonumber(redis.call('HGET', key, 'm:deadline'))
end
-- Whether KEYS[1] holds a live session, and its deadline. A session past its
-- deadline is deleted; a key holding anything but a hash is no session.
local function live(key, now)
  if redis.call('TYPE', key).ok ~= 'hash' then return false end
  local deadline = deadline_of(key)
  if deadline and now >= deadline then
    redis.call('DEL', key)
    return false
  end
  return true, deadline
end
local function chunked(cmd, key, args, first, last, step)
  local i = first
  while i <= last do
    local j = math.min(i + step - 1, last)
    redis.call(cmd, key, unpack(args, i, j))
    i = j + 1
  end
end
"#;

/// KEYS[1] record; ARGV[1] the window (see `window`), or "p" to leave the
/// expiry as it is (a listing must not keep sessions alive).
/// Returns false, or {now, expires_at (-1: never), field, value, ...}.
/// A key holding something else than a hash (a peer store's string value
/// during a migration) is no session, not an error.
const LOAD: &str = r#"
local data = redis.pcall('HGETALL', KEYS[1])
if data.err or #data == 0 then return false end
local now = now_ms()
local deadline, own_idle = nil, nil
for i = 1, #data, 2 do
  if data[i] == 'm:deadline' then deadline = tonumber(data[i + 1])
  elseif data[i] == 'm:idle' then own_idle = tonumber(data[i + 1]) end
end
if deadline and now >= deadline then
  redis.call('DEL', KEYS[1])
  return false
end
local at
if ARGV[1] == 'p' then
  local pttl = redis.call('PTTL', KEYS[1])
  at = pttl >= 0 and now + pttl or -1
else
  -- The window, as `window` computes it, from the fields already read.
  local idle = tonumber(string.sub(ARGV[1], 2))
  if string.sub(ARGV[1], 1, 1) == 'e' then
    if own_idle ~= idle then redis.call('HSET', KEYS[1], 'm:idle', idle) end
  elseif own_idle then
    idle = own_idle
  end
  at = expire(KEYS[1], now, idle, deadline)
end
local out = {now, at}
for i = 1, #data do out[i + 2] = data[i] end
return out
"#;

/// KEYS[1] record; ARGV[1] the window (see `window`), ARGV[2] number of field/value pairs to
/// set, then the pairs, then the fields to delete. Returns 1, or 0 when the
/// record is gone (never re-created: a logout must stay a logout).
const UPDATE: &str = r#"
local now = now_ms()
local alive, deadline = live(KEYS[1], now)
if not alive then return 0 end
local last_set = 2 + 2 * tonumber(ARGV[2])
chunked('HSET', KEYS[1], ARGV, 3, last_set, 2000)
chunked('HDEL', KEYS[1], ARGV, last_set + 1, #ARGV, 2000)
expire(KEYS[1], now, window(KEYS[1], ARGV[1]), deadline)
return 1
"#;

/// KEYS[1] record; ARGV[1] the window (see `window`), ARGV[2] absolute ms, ARGV[3] "1" to
/// replace a value that is not a session hash (a migrated peer's string under
/// the same key name), then field/value pairs. Returns 1, or 0 when the key
/// already exists (and is not replaceable).
const INSERT: &str = r#"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'none' then
  if kind == 'hash' or ARGV[3] ~= '1' then return 0 end
  redis.call('DEL', KEYS[1])
end
local now = now_ms()
chunked('HSET', KEYS[1], ARGV, 4, #ARGV, 2000)
redis.call('HSETNX', KEYS[1], 'm:created', now)
local deadline = deadline_of(KEYS[1])
local absolute = tonumber(ARGV[2])
if not deadline and absolute > 0 then
  deadline = now + absolute
  redis.call('HSET', KEYS[1], 'm:deadline', deadline)
end
expire(KEYS[1], now, window(KEYS[1], ARGV[1]), deadline)
return 1
"#;

/// KEYS[1] record; ARGV[1] the window (see `window`). Returns 1, or 0 when
/// gone (or the key holds something that is not a session).
const TOUCH: &str = r#"
local now = now_ms()
local alive, deadline = live(KEYS[1], now)
if not alive then return 0 end
expire(KEYS[1], now, window(KEYS[1], ARGV[1]), deadline)
return 1
"#;

/// KEYS[1] record. Returns 1 when it exists and is within its deadline.
const EXISTS: &str = r#"
if live(KEYS[1], now_ms()) then return 1 end
return 0
"#;

/// KEYS[1] a peer store's session key. Returns its string value, or false
/// when the key is missing or holds anything else (e.g. our own hash).
const FOREIGN_GET: &str = r#"
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return false end
return redis.call('GET', KEYS[1])
"#;

/// KEYS[1] a peer store's session key. Deletes it only if it holds a string,
/// so a session hash under the same name is never touched. Returns 1 or 0.
const FOREIGN_DELETE: &str = r#"
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
return redis.call('DEL', KEYS[1])
"#;

pub struct Scripts {
    pub load: Script,
    pub update: Script,
    pub insert: Script,
    pub touch: Script,
    pub exists: Script,
    pub foreign_get: Script,
    pub foreign_delete: Script,
}

pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
    Scripts {
        load: with_prelude(LOAD),
        update: with_prelude(UPDATE),
        insert: with_prelude(INSERT),
        touch: with_prelude(TOUCH),
        exists: with_prelude(EXISTS),
        foreign_get: Script::new(FOREIGN_GET),
        foreign_delete: Script::new(FOREIGN_DELETE),
    }
});
