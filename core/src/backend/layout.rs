//! The hash layout of one session (documented in docs/data-layout.md):
//! one field per top-level session key, `a:<key>`, and metadata fields `m:*`.
//! The prefixes keep user keys from ever colliding with metadata.

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
/// The codec of every `a:` value in this hash: fixed at creation, so writers
/// configured with another codec still merge into one consistent record.
pub const CODEC: &str = "m:codec";

pub fn attr_field(key: &str) -> String {
    let mut f = String::with_capacity(ATTR_PREFIX.len() + key.len());
    f.push_str(ATTR_PREFIX);
    f.push_str(key);
    f
}
