//! The store handle and its operations: each one converts its arguments,
//! runs the engine's blocking call and converts the result. Session rules
//! (ids, expiry, change detection, merging) all live in the engine.

use std::ffi::c_char;
use std::ptr;
use std::time::Duration;

use sessionkeeper_core::{BlockingStore, Baseline, ErrorKind, SaveOutcome, Store};

use crate::error::{code_of, sessionkeeper_code, sessionkeeper_error, Failure};
use crate::guard::{c_string, guard, mut_arg, ref_arg, str_arg, Out};
use crate::session::sessionkeeper_session;

/// A connection to one session store (a Redis deployment, or `memory://`
/// for tests), with its configuration and statistics.
///
/// Made by `sessionkeeper_store_open()` or
/// `sessionkeeper_store_with_idle_ttl()`, owned by the caller, freed with
/// `sessionkeeper_store_free()`.
///
/// Thread safety: one handle may be used by any number of threads at once;
/// open one per process and share it. Fork: a handle opened before fork()
/// works in the child, which makes its own connections on first use.
pub struct sessionkeeper_store {
    inner: BlockingStore,
}

/// What `sessionkeeper_store_save()` did.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sessionkeeper_save_outcome {
    /// Nothing changed since the session was loaded or last saved; nothing
    /// was sent to Redis.
    SESSIONKEEPER_SAVE_UNCHANGED = 0,
    /// The changed keys were written and the removed ones deleted.
    SESSIONKEEPER_SAVE_WRITTEN,
    /// The session was destroyed or expired since it was loaded, and was
    /// NOT re-created (a logout in another request stays a logout). Start a
    /// fresh session with `sessionkeeper_store_create()` if one is needed.
    SESSIONKEEPER_SAVE_GONE,
}

/// A snapshot of a store handle's counters since it was opened (handles made
/// by `sessionkeeper_store_with_idle_ttl()` share them). Filled in by
/// `sessionkeeper_store_stats()`; plain data owned by the caller.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sessionkeeper_stats {
    pub loads: u64,
    pub hits: u64,
    pub misses: u64,
    pub saves: u64,
    /// Saves that found nothing changed and sent nothing.
    pub skipped_saves: u64,
    /// Saves that found the session destroyed or expired (not re-created).
    pub gone_saves: u64,
    /// Saves that found the session changed by another save since their
    /// load and merged their changes into it: a measure of contention.
    pub merged_saves: u64,
    pub creates: u64,
    pub destroys: u64,
    /// Top-level keys written and removed by saves and creates.
    pub keys_written: u64,
    pub keys_removed: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Ids refused without contacting Redis.
    pub invalid_ids: u64,
    /// Errors by kind.
    pub errors_config: u64,
    pub errors_connection: u64,
    pub errors_timeout: u64,
    pub errors_auth: u64,
    pub errors_codec: u64,
    pub errors_too_large: u64,
    pub errors_invalid_id: u64,
    pub errors_unexpected: u64,
    /// Redis round trips, and their latency percentiles in microseconds
    /// (upper bounds of buckets 12.5% wide).
    pub round_trips: u64,
    pub latency_p50_us: u64,
    pub latency_p90_us: u64,
    pub latency_p99_us: u64,
    pub latency_p999_us: u64,
    pub latency_max_us: u64,
}

fn store_ref<'a>(store: *const sessionkeeper_store) -> Result<&'a BlockingStore, Failure> {
    // SAFETY: every exported function documents that `store` is NULL or a
    // live handle from `sessionkeeper_store_open`.
    unsafe { ref_arg(store, "store") }.map(|s| &s.inner)
}

fn id_arg<'a>(id: *const c_char) -> Result<&'a str, Failure> {
    // SAFETY: every exported function documents that `id` is NULL or a
    // NUL-terminated string valid for the call.
    unsafe { str_arg(id, "id") }
}

/// A session that was never loaded or created saves against an empty
/// baseline in the store's codec.
fn empty_baseline(store: &BlockingStore) -> Baseline {
    Baseline::empty(store.store().config().codec)
}

/// Opens a store. The URL gives the topology and credentials:
/// `redis://[user:password@]host:port[/db]`, `rediss://` (TLS),
/// `redis+cluster://host1:port1,host2:port2`,
/// `redis+sentinel://host1:port1,host2:port2/master_name`,
/// `unix:///path/to/redis.sock`, or `memory://name` (in-process, for tests).
/// Options override the URL's query string; their names are `key_prefix`,
/// `idle_ttl`, `absolute_ttl`, `connect_timeout`, `command_timeout`,
/// `codec` ("msgpack" or "json"), `max_size` (bytes), `tls_ca_file`,
/// `tls_insecure`, `sentinel_username`, `sentinel_password`. Durations are
/// "30s", "15m", "2h", "250ms" or seconds; "0" or "none" switches a TTL off.
/// An unknown option name is an error that names it.
///
/// The configuration is checked now; Redis is contacted lazily, on the first
/// operation, so a Redis that is down is reported by that operation.
///
/// \param url A NUL-terminated UTF-8 URL, borrowed for the call.
/// \param option_names An array of `option_count` NUL-terminated UTF-8
///        names, borrowed for the call; may be NULL when `option_count` is 0.
/// \param option_values The matching values, likewise.
/// \param option_count The number of options.
/// \param[out] store_out Receives a new store owned by the caller: free it
///        with `sessionkeeper_store_free()`. Set to NULL on failure.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_CONFIG` for a bad URL, option
///         name or value, or an unreadable `tls_ca_file`;
///         `SESSIONKEEPER_NULL_ARGUMENT`; `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: any thread. Does no network I/O.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_open(
    url: *const c_char,
    option_names: *const *const c_char,
    option_values: *const *const c_char,
    option_count: usize,
    store_out: *mut *mut sessionkeeper_store,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(store_out, "store_out", ptr::null_mut()) }?;
        // SAFETY: as above.
        let url = unsafe { str_arg(url, "url") }?;
        let mut options = Vec::with_capacity(option_count.min(64));
        if option_count > 0 {
            if option_names.is_null() {
                return Err(Failure::null("option_names"));
            }
            if option_values.is_null() {
                return Err(Failure::null("option_values"));
            }
            for i in 0..option_count {
                // SAFETY: both arrays hold `option_count` pointers (documented
                // contract), and each is NULL or a NUL-terminated string.
                let (name, value) = unsafe {
                    (
                        str_arg(*option_names.add(i), &format!("option_names[{i}]"))?,
                        str_arg(*option_values.add(i), &format!("option_values[{i}]"))?,
                    )
                };
                options.push((name, value));
            }
        }
        let store = Store::from_url_and_options(url, options)?;
        out.set(Box::into_raw(Box::new(sessionkeeper_store { inner: BlockingStore::new(store) })));
        Ok(())
    })
}

/// Frees a store handle. Connections are closed once no handle made from
/// the same `sessionkeeper_store_open()` remains.
///
/// \param store The store, or NULL (ignored). It must not be used
///        afterwards, and no other thread may be using it.
///
/// Thread safety: any thread, but only once per handle.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_free(store: *mut sessionkeeper_store) {
    if !store.is_null() {
        // SAFETY: `store` came from `Box::into_raw` in this library and the
        // caller gives up its only reference.
        crate::guard::guard_value((), || drop(unsafe { Box::from_raw(store) }));
    }
}

/// A second handle on the same store (same connections and statistics)
/// whose loads, saves, creates, inserts and touches use another sliding
/// expiry: for a per-request "remember me" lifetime.
///
/// \param store The store, borrowed for the call.
/// \param idle_ttl_ms The sliding expiry in milliseconds; 0 switches
///        sliding expiry off for this handle.
/// \param[out] store_out Receives a new handle owned by the caller: free it
///        with `sessionkeeper_store_free()`. Set to NULL on failure.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK` or `SESSIONKEEPER_NULL_ARGUMENT`.
///
/// Thread safety: any thread. No I/O.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_with_idle_ttl(
    store: *const sessionkeeper_store,
    idle_ttl_ms: u64,
    store_out: *mut *mut sessionkeeper_store,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(store_out, "store_out", ptr::null_mut()) }?;
        let store = store_ref(store)?;
        let ttl = (idle_ttl_ms > 0).then(|| Duration::from_millis(idle_ttl_ms));
        out.set(Box::into_raw(Box::new(sessionkeeper_store { inner: store.with_idle_ttl(ttl) })));
        Ok(())
    })
}

/// Reads a session and slides its expiry, in one round trip.
///
/// \param store The store, borrowed for the call.
/// \param id A NUL-terminated session id (from a cookie), borrowed for the
///        call. A malformed id is not an error: it finds no session and
///        never reaches Redis.
/// \param[out] session_out Receives a new session owned by the caller (free
///        it with `sessionkeeper_session_free()`), or NULL when there is no
///        session with this id (missing, expired or malformed id).
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK` (also when there is no session);
///         `SESSIONKEEPER_CONNECTION` / `SESSIONKEEPER_TIMEOUT` (temporary)
///         when Redis is unreachable or slow; `SESSIONKEEPER_AUTH`;
///         `SESSIONKEEPER_CODEC` when the stored session cannot be decoded
///         (it is deleted; start a fresh one); `SESSIONKEEPER_NULL_ARGUMENT`;
///         `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: any thread; blocks until Redis answers or
/// `command_timeout` passes.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_load(
    store: *const sessionkeeper_store,
    id: *const c_char,
    session_out: *mut *mut sessionkeeper_session,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(session_out, "session_out", ptr::null_mut()) }?;
        let store = store_ref(store)?;
        let id = id_arg(id)?;
        if let Some(loaded) = store.load(id)? {
            out.set(sessionkeeper_session::boxed(loaded.data, Some(loaded.baseline), Some(loaded.meta)));
        }
        Ok(())
    })
}

/// Writes what changed in `session` since it was loaded, created or last
/// saved: changed top-level keys are set and removed ones deleted, in one
/// atomic round trip; keys another request changed meanwhile are kept.
/// Nothing is sent when nothing changed. Also slides the expiry.
///
/// \param store The store, borrowed for the call.
/// \param id The session's NUL-terminated id, borrowed for the call.
/// \param session The session, borrowed for the call. On success it
///        remembers what is now stored, for the next save.
/// \param[out] outcome_out Receives what happened; a session destroyed or
///        expired meanwhile is `SESSIONKEEPER_SAVE_GONE`, not an error.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_INVALID_ID` for a malformed
///         id; `SESSIONKEEPER_TOO_LARGE` when the encoded session exceeds
///         `max_size` (nothing is written); `SESSIONKEEPER_CONNECTION`,
///         `SESSIONKEEPER_TIMEOUT`, `SESSIONKEEPER_AUTH`;
///         `SESSIONKEEPER_NULL_ARGUMENT`; `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: any thread; blocks until Redis answers or
/// `command_timeout` passes. The session must not be used by another
/// thread during the call.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_save(
    store: *const sessionkeeper_store,
    id: *const c_char,
    session: *mut sessionkeeper_session,
    outcome_out: *mut sessionkeeper_save_outcome,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(outcome_out, "outcome_out", sessionkeeper_save_outcome::SESSIONKEEPER_SAVE_UNCHANGED) }?;
        let store = store_ref(store)?;
        let id = id_arg(id)?;
        // SAFETY: as above.
        let session = unsafe { mut_arg(session, "session") }?;
        let baseline = session.baseline.get_or_insert_with(|| empty_baseline(store));
        out.set(match store.save(id, baseline, &session.data)? {
            SaveOutcome::Unchanged => sessionkeeper_save_outcome::SESSIONKEEPER_SAVE_UNCHANGED,
            SaveOutcome::Saved { .. } => sessionkeeper_save_outcome::SESSIONKEEPER_SAVE_WRITTEN,
            SaveOutcome::Gone => sessionkeeper_save_outcome::SESSIONKEEPER_SAVE_GONE,
        });
        Ok(())
    })
}

/// Stores `session` under a new random id, with the store's expiry.
///
/// \param store The store, borrowed for the call.
/// \param session The session, borrowed for the call. On success it
///        remembers what is now stored, so later saves write only changes.
/// \param[out] id_out Receives the new NUL-terminated id, owned by the
///        caller: free it with `sessionkeeper_string_free()`. Set to NULL on
///        failure.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_TOO_LARGE` (nothing written);
///         `SESSIONKEEPER_CONNECTION`, `SESSIONKEEPER_TIMEOUT`,
///         `SESSIONKEEPER_AUTH`; `SESSIONKEEPER_NULL_ARGUMENT`.
///
/// Thread safety: any thread; blocks until Redis answers or
/// `command_timeout` passes. The session must not be used by another
/// thread during the call.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_create(
    store: *const sessionkeeper_store,
    session: *mut sessionkeeper_session,
    id_out: *mut *mut c_char,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(id_out, "id_out", ptr::null_mut()) }?;
        let store = store_ref(store)?;
        // SAFETY: as above.
        let session = unsafe { mut_arg(session, "session") }?;
        let (id, baseline) = store.create(&session.data)?;
        let id = c_string(&id, "the id")?;
        session.baseline = Some(baseline);
        session.meta = None;
        out.set(id);
        Ok(())
    })
}

/// Stores `session` under `id` (an id the caller generated, for example with
/// `sessionkeeper_id_generate()`) only if no session has that id; an
/// existing session is never overwritten.
///
/// \param store The store, borrowed for the call.
/// \param id A NUL-terminated session id, borrowed for the call.
/// \param session The session, borrowed for the call. When inserted it
///        remembers what is now stored, so later saves write only changes.
/// \param[out] inserted_out Receives true when stored, false when a session
///        with this id already exists.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_INVALID_ID`;
///         `SESSIONKEEPER_TOO_LARGE`; `SESSIONKEEPER_CONNECTION`,
///         `SESSIONKEEPER_TIMEOUT`, `SESSIONKEEPER_AUTH`;
///         `SESSIONKEEPER_NULL_ARGUMENT`; `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: any thread; blocks until Redis answers or
/// `command_timeout` passes. The session must not be used by another
/// thread during the call.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_insert(
    store: *const sessionkeeper_store,
    id: *const c_char,
    session: *mut sessionkeeper_session,
    inserted_out: *mut bool,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(inserted_out, "inserted_out", false) }?;
        let store = store_ref(store)?;
        let id = id_arg(id)?;
        // SAFETY: as above.
        let session = unsafe { mut_arg(session, "session") }?;
        if let Some(baseline) = store.insert(id, &session.data)? {
            session.baseline = Some(baseline);
            session.meta = None;
            out.set(true);
        }
        Ok(())
    })
}

/// A boolean answer from the engine, for destroy, touch and exists.
unsafe fn bool_op(
    store: *const sessionkeeper_store,
    id: *const c_char,
    answer_out: *mut bool,
    required: bool,
    err: *mut *mut sessionkeeper_error,
    op: impl FnOnce(&BlockingStore, &str) -> sessionkeeper_core::Result<bool>,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract of the callers).
        let out = if required {
            Some(unsafe { Out::new(answer_out, "the answer's out-parameter", false) }?)
        } else {
            // SAFETY: as above.
            unsafe { Out::optional(answer_out, false) }
        };
        let store = store_ref(store)?;
        let id = id_arg(id)?;
        let answer = op(store, id)?;
        if let Some(out) = out {
            out.set(answer);
        }
        Ok(())
    })
}

/// Deletes a session (logout).
///
/// \param store The store, borrowed for the call.
/// \param id A NUL-terminated session id, borrowed for the call; a malformed
///        one is "no session".
/// \param[out] existed_out NULL, or receives whether a session was deleted.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_CONNECTION`,
///         `SESSIONKEEPER_TIMEOUT`, `SESSIONKEEPER_AUTH`;
///         `SESSIONKEEPER_NULL_ARGUMENT`; `SESSIONKEEPER_INVALID_UTF8`.
///
/// Thread safety: any thread; blocks until Redis answers or
/// `command_timeout` passes.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_destroy(
    store: *const sessionkeeper_store,
    id: *const c_char,
    existed_out: *mut bool,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    // SAFETY: forwarded contract.
    unsafe { bool_op(store, id, existed_out, false, err, |s, id| s.destroy(id)) }
}

/// Slides a session's expiry without reading it.
///
/// \param store The store, borrowed for the call.
/// \param id A NUL-terminated session id, borrowed for the call.
/// \param[out] alive_out NULL, or receives whether the session exists.
/// \param[out] err NULL, or receives an error on failure.
/// \return As `sessionkeeper_store_destroy()`.
///
/// Thread safety: any thread; blocks until Redis answers or
/// `command_timeout` passes.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_touch(
    store: *const sessionkeeper_store,
    id: *const c_char,
    alive_out: *mut bool,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    // SAFETY: forwarded contract.
    unsafe { bool_op(store, id, alive_out, false, err, |s, id| s.touch(id)) }
}

/// Whether a live session has this id. Does not slide its expiry.
///
/// \param store The store, borrowed for the call.
/// \param id A NUL-terminated session id, borrowed for the call.
/// \param[out] exists_out Receives the answer (false for a malformed id).
/// \param[out] err NULL, or receives an error on failure.
/// \return As `sessionkeeper_store_destroy()`.
///
/// Thread safety: any thread; blocks until Redis answers or
/// `command_timeout` passes.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_exists(
    store: *const sessionkeeper_store,
    id: *const c_char,
    exists_out: *mut bool,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    // SAFETY: forwarded contract.
    unsafe { bool_op(store, id, exists_out, true, err, |s, id| s.exists(id)) }
}

/// Moves a session to a new id and deletes the old one: call it at login,
/// against session fixation. Data, creation time and absolute deadline
/// carry over, and a session handle loaded under the old id stays valid for
/// saving under the new one.
///
/// \param store The store, borrowed for the call.
/// \param id The current NUL-terminated id, borrowed for the call.
/// \param[out] new_id_out Receives the new id, owned by the caller (free it
///        with `sessionkeeper_string_free()`), or NULL when there was no
///        session to renew.
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK`; `SESSIONKEEPER_CONNECTION`,
///         `SESSIONKEEPER_TIMEOUT`, `SESSIONKEEPER_AUTH`;
///         `SESSIONKEEPER_NULL_ARGUMENT`; `SESSIONKEEPER_INVALID_UTF8`. After
///         a failure the session is still under its old id or already under
///         a new one, never lost.
///
/// Thread safety: any thread; blocks for up to three round trips.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_renew(
    store: *const sessionkeeper_store,
    id: *const c_char,
    new_id_out: *mut *mut c_char,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(new_id_out, "new_id_out", ptr::null_mut()) }?;
        let store = store_ref(store)?;
        let id = id_arg(id)?;
        if let Some(new_id) = store.renew(id)? {
            out.set(c_string(&new_id, "the id")?);
        }
        Ok(())
    })
}

/// Reads the store's counters.
///
/// \param store The store, borrowed for the call.
/// \param[out] stats_out Receives the counters (zeroed on failure).
/// \param[out] err NULL, or receives an error on failure.
/// \return `SESSIONKEEPER_OK` or `SESSIONKEEPER_NULL_ARGUMENT`.
///
/// Thread safety: any thread. No I/O.
#[no_mangle]
pub unsafe extern "C" fn sessionkeeper_store_stats(
    store: *const sessionkeeper_store,
    stats_out: *mut sessionkeeper_stats,
    err: *mut *mut sessionkeeper_error,
) -> sessionkeeper_code {
    guard(err, || {
        // SAFETY: NULL or valid pointers (documented contract).
        let out = unsafe { Out::new(stats_out, "stats_out", sessionkeeper_stats::default()) }?;
        let s = store_ref(store)?.stats();
        let mut c = sessionkeeper_stats {
            loads: s.loads,
            hits: s.hits,
            misses: s.misses,
            saves: s.saves,
            skipped_saves: s.skipped_saves,
            gone_saves: s.gone_saves,
            merged_saves: s.merged_saves,
            creates: s.creates,
            destroys: s.destroys,
            keys_written: s.keys_written,
            keys_removed: s.keys_removed,
            bytes_read: s.bytes_read,
            bytes_written: s.bytes_written,
            invalid_ids: s.invalid_ids,
            round_trips: s.round_trips.count,
            latency_p50_us: s.round_trips.p50_us,
            latency_p90_us: s.round_trips.p90_us,
            latency_p99_us: s.round_trips.p99_us,
            latency_p999_us: s.round_trips.p999_us,
            latency_max_us: s.round_trips.max_us,
            ..Default::default()
        };
        for (name, n) in s.errors {
            let Some(kind) = ErrorKind::ALL.into_iter().find(|k| k.name() == name) else { continue };
            let slot = match code_of(kind) {
                sessionkeeper_code::SESSIONKEEPER_CONFIG => &mut c.errors_config,
                sessionkeeper_code::SESSIONKEEPER_CONNECTION => &mut c.errors_connection,
                sessionkeeper_code::SESSIONKEEPER_TIMEOUT => &mut c.errors_timeout,
                sessionkeeper_code::SESSIONKEEPER_AUTH => &mut c.errors_auth,
                sessionkeeper_code::SESSIONKEEPER_CODEC => &mut c.errors_codec,
                sessionkeeper_code::SESSIONKEEPER_TOO_LARGE => &mut c.errors_too_large,
                sessionkeeper_code::SESSIONKEEPER_INVALID_ID => &mut c.errors_invalid_id,
                _ => &mut c.errors_unexpected,
            };
            *slot += n;
        }
        out.set(c);
        Ok(())
    })
}
