//! Loads and saves over a socket the event loop drives (`lib/wire.js`).
//!
//! On a standalone Redis, `lib/wire.js` opens a `net.Socket` per store and
//! sends `load` and `save` over it: the engine prepares each command and
//! turns each reply into the result (`sessionkeeper_core::wire`), this
//! object keeps the calls in flight in the order they were sent, and
//! JavaScript moves the bytes. A reply settles its Promise right in the
//! socket's `data` callback, many replies per wake-up, with no thread
//! hand-off (the engine-thread path costs two per call: bench/node).
//!
//! JavaScript's part: after `load`/`save`, write `take()`; give every chunk
//! read to `feed`, then write `take()`; on `close`, call `closed`; when
//! `overdueMs()` reaches 0, call `timedOut()` and destroy the socket.

use std::collections::VecDeque;
use std::ptr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::{ClassInstance, Unknown};
use napi::{sys, Env, JsValue};
use napi_derive::napi;
use sessionkeeper_core::wire::{self, Begin, Finish, Reply};
use sessionkeeper_core::{self as engine};

use crate::convert::{Reader, Writer, R};
use crate::error::{rejected, throw_conversion};
use crate::settle::Pending;
use crate::store::{adopt, loaded_js, outcome_js, save_args, working_copy, Store};

enum Call {
    /// `AUTH`/`SELECT`: an error reply fails the connection.
    Handshake,
    /// `CLIENT SETNAME`: only a label for `CLIENT LIST`, so a server that
    /// refuses it (an ACL) changes nothing.
    Name,
    Load(wire::Load),
    /// `shared`: the caller's Baseline, updated in place by the reply (it is
    /// changed only when the save succeeds, as `adopt` would).
    Save { call: wire::Save, shared: Arc<Mutex<engine::Baseline>> },
}

struct InFlight {
    call: Call,
    /// `None` for the handshake.
    pending: Option<Pending>,
    sent: Instant,
}

/// One connection's calls in flight, and the bytes between it and the socket.
#[napi]
pub struct Wire {
    /// Read, not yet a complete reply.
    input: Vec<u8>,
    /// To be written (`take`).
    output: Vec<u8>,
    in_flight: VecDeque<InFlight>,
    command_timeout: Duration,
    /// After `fail`/`timedOut`/a bad reply: takes no more calls.
    closed: bool,
}

/// Where `lib/wire.js` connects: `{ host, port }` or `{ path }`, with
/// `connectTimeoutMs` and `commandTimeoutMs`; `null` when this store's
/// loads and saves cannot go over such a socket.
#[napi]
pub fn wire_target<'env>(env: &'env Env, store: ClassInstance<'env, Store>) -> napi::Result<Unknown<'env>> {
    let raw = env.raw();
    let built = (|| -> R<sys::napi_value> {
        let w = Writer::new(raw);
        let Some(target) = store.engine().wire_target() else { return w.null() };
        let mut out = w.object()?;
        match &target.address {
            wire::Address::Tcp { host, port } => {
                let v = w.string(host)?;
                w.set(&mut out, "host", v)?;
                let v = w.number(f64::from(*port))?;
                w.set(&mut out, "port", v)?;
            }
            wire::Address::Unix(path) => {
                let v = w.string(&path.to_string_lossy())?;
                w.set(&mut out, "path", v)?;
            }
        }
        let v = w.number(target.connect_timeout.as_millis() as f64)?;
        w.set(&mut out, "connectTimeoutMs", v)?;
        let v = w.number(target.command_timeout.as_millis() as f64)?;
        w.set(&mut out, "commandTimeoutMs", v)?;
        Ok(out)
    })();
    let v = built.map_err(|f| throw_conversion(raw, f))?;
    // SAFETY: created in this env just now.
    Ok(unsafe { Unknown::from_raw_unchecked(raw, v) })
}

#[napi]
impl Wire {
    /// A connection to `store`'s Redis, its handshake (and `CLIENT SETNAME
    /// name`, with a name) already queued in `take()`; throws when the store
    /// has no wire target.
    #[napi(constructor)]
    pub fn new(store: ClassInstance<'_, Store>, name: Option<String>) -> napi::Result<Self> {
        let Some(target) = store.engine().wire_target() else {
            return Err(napi::Error::from_reason("sessionkeeper: this store's calls cannot go over an event-loop socket"));
        };
        let mut wire = Wire {
            input: Vec::with_capacity(4096),
            output: Vec::new(),
            in_flight: VecDeque::new(),
            command_timeout: target.command_timeout,
            closed: false,
        };
        for command in &target.handshake {
            wire.send(command, Call::Handshake, None);
        }
        if let Some(name) = name {
            wire.send(&wire::client_setname(&name), Call::Name, None);
        }
        Ok(wire)
    }

    fn send(&mut self, command: &[u8], call: Call, pending: Option<Pending>) {
        self.output.extend_from_slice(command);
        self.in_flight.push_back(InFlight { call, pending, sent: Instant::now() });
    }

    /// `store.load(id)` over this connection; `undefined` when it cannot go
    /// over it (a `withIdleTtl` handle, or the connection closed): call
    /// `store.load`.
    #[napi]
    pub fn load<'env>(&mut self, env: &'env Env, store: ClassInstance<'env, Store>, id: Unknown<'env>) -> napi::Result<Unknown<'env>> {
        if self.closed {
            return undefined(env);
        }
        let id = match Reader::new(env.raw()).and_then(|r| r.string_arg(id.raw(), "id")) {
            Ok(id) => id,
            Err(f) => return rejected(env, f).map(|p| p.to_unknown()),
        };
        let Some(begin) = store.engine().wire_load(&id) else { return undefined(env) };
        let (pending, promise) = Pending::new(env)?;
        match begin {
            Begin::Done(out) => pending.settle_now(env.raw(), out, loaded_js),
            Begin::Send(call) => {
                let command = call.command().to_vec();
                self.send(&command, Call::Load(call), Some(pending));
            }
        }
        // SAFETY: created in this env just now.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    /// `store.save(id, baseline, data, ttlMs)` over this connection;
    /// `undefined` when it cannot go over it: call `store.save`.
    #[napi]
    pub fn save<'env>(
        &mut self,
        env: &'env Env,
        store: ClassInstance<'env, Store>,
        id: Unknown<'env>,
        baseline: Unknown<'env>,
        data: Unknown<'env>,
        ttl_ms: Unknown<'env>,
    ) -> napi::Result<Unknown<'env>> {
        if self.closed {
            return undefined(env);
        }
        let (id, shared, data, ttl) = match save_args(env, id, baseline, data, ttl_ms) {
            Ok(a) => a,
            Err(f) => return rejected(env, f).map(|p| p.to_unknown()),
        };
        let handle = store.handle(ttl);
        let begin = handle.wire_save(&id, &shared.lock().unwrap_or_else(PoisonError::into_inner), &data);
        let Some(begin) = begin else { return undefined(env) };
        let (pending, promise) = Pending::new(env)?;
        match begin {
            Begin::Done(out) => pending.settle_now(env.raw(), out, outcome_js),
            Begin::Send(call) => {
                let command = call.command().to_vec();
                self.send(&command, Call::Save { call, shared }, Some(pending));
            }
        }
        // SAFETY: created in this env just now.
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), promise) })
    }

    /// The bytes to write now, or `null`.
    #[napi]
    pub fn take<'env>(&mut self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        if self.output.is_empty() {
            return null(env);
        }
        let raw = env.raw();
        let mut data = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        // SAFETY: copies `output` into a new Buffer of this env.
        let status = unsafe { sys::napi_create_buffer_copy(raw, self.output.len(), self.output.as_ptr().cast(), &mut data, &mut buffer) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason("sessionkeeper: cannot create a Buffer"));
        }
        self.output.clear();
        // SAFETY: created in this env just now.
        Ok(unsafe { Unknown::from_raw_unchecked(raw, buffer) })
    }

    /// Bytes read from the socket: settles every call whose reply is
    /// complete. Returns `null`, or a string when the connection must be
    /// closed (a handshake refused, a reply out of step); its calls have
    /// failed then. Write `take()` afterwards (a call may need another
    /// command).
    #[napi]
    pub fn feed<'env>(&mut self, env: &'env Env, chunk: Unknown<'env>) -> napi::Result<Unknown<'env>> {
        let raw = env.raw();
        let mut data = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: `chunk` is a Buffer from the socket (checked by the call).
        let status = unsafe { sys::napi_get_buffer_info(raw, chunk.raw(), &mut data, &mut len) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason("sessionkeeper: feed takes a Buffer"));
        }
        // SAFETY: the Buffer's bytes, alive during this call.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        // The common case: whole replies in one chunk, nothing buffered.
        let mut owned = std::mem::take(&mut self.input);
        let mut input: &[u8] = if owned.is_empty() {
            bytes
        } else {
            owned.extend_from_slice(bytes);
            &owned
        };
        let mut trouble = None;
        while !input.is_empty() {
            match wire::parse(input) {
                Ok(Some((reply, used))) => {
                    input = &input[used..];
                    if let Err(e) = self.reply(raw, reply) {
                        trouble = Some(e);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    trouble = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = trouble {
            let message = e.message().to_owned();
            self.fail_all(raw, e);
            let w = Writer::new(raw);
            let v = w.string(&message).map_err(|f| throw_conversion(raw, f))?;
            // SAFETY: created in this env just now.
            return Ok(unsafe { Unknown::from_raw_unchecked(raw, v) });
        }
        let rest = input.to_vec();
        owned.clear();
        self.input = if rest.is_empty() { owned } else { rest };
        null(env)
    }

    /// The reply to the oldest call in flight. `Err`: the connection must close.
    fn reply(&mut self, env: sys::napi_env, reply: Reply) -> engine::Result<()> {
        let Some(InFlight { call, pending, .. }) = self.in_flight.pop_front() else {
            return Err(engine::Error::new(engine::ErrorKind::Unexpected, "a reply from Redis nobody asked for"));
        };
        match call {
            Call::Handshake => wire::handshake_reply(reply),
            Call::Name => Ok(()),
            Call::Load(call) => {
                let Some(pending) = pending else { return Ok(()) };
                match call.finish(reply) {
                    Finish::Done(out) => pending.settle_now(env, out, loaded_js),
                    Finish::Again(call) => {
                        let command = call.command().to_vec();
                        self.send(&command, Call::Load(call), Some(pending));
                    }
                }
                Ok(())
            }
            Call::Save { call, shared } => {
                let Some(pending) = pending else { return Ok(()) };
                let finished = call.finish(reply, &mut shared.lock().unwrap_or_else(PoisonError::into_inner));
                match finished {
                    Finish::Done(out) => pending.settle_now(env, out, outcome_js),
                    Finish::Again(call) => {
                        let command = call.command().to_vec();
                        self.send(&command, Call::Save { call, shared }, Some(pending));
                    }
                }
                Ok(())
            }
        }
    }

    fn fail_all(&mut self, env: sys::napi_env, e: engine::Error) {
        self.closed = true;
        self.output.clear();
        self.input.clear();
        for InFlight { call, pending, .. } in std::mem::take(&mut self.in_flight) {
            let Some(pending) = pending else { continue };
            let e = e.clone();
            match call {
                Call::Handshake | Call::Name => {}
                Call::Load(call) => pending.settle_now(env, Err::<(), _>(call.fail(e)), |w, ()| w.null()),
                Call::Save { call, .. } => pending.settle_now(env, Err::<(), _>(call.fail(e)), |w, ()| w.null()),
            }
        }
    }

    /// The socket closed: every call in flight runs again, once, on the
    /// engine's own connection, which gives its result or its error (a
    /// socket Redis closed while idle must not fail the call just written
    /// to it; a load or a save may safely run twice).
    #[napi]
    pub fn closed(&mut self) {
        self.closed = true;
        self.output.clear();
        self.input.clear();
        for InFlight { call, pending, .. } in std::mem::take(&mut self.in_flight) {
            let Some(pending) = pending else { continue };
            match call {
                Call::Handshake | Call::Name => {}
                Call::Load(call) => {
                    engine::runtime::spawn(async move { pending.settle(call.retry().await, loaded_js) });
                }
                Call::Save { call, shared } => {
                    let mut working = working_copy(&shared);
                    engine::runtime::spawn(async move {
                        let out = call.retry(&mut working).await;
                        if let Ok(outcome) = &out {
                            adopt(outcome, &shared, working);
                        }
                        pending.settle(out, outcome_js);
                    });
                }
            }
        }
    }

    /// The oldest call waited `commandTimeoutMs`: every call in flight fails
    /// with a temporary `SESSIONKEEPER_TIMEOUT` error. Destroy the socket.
    #[napi]
    pub fn timed_out(&mut self, env: &Env) {
        let e = wire::timeout_error(self.command_timeout);
        self.fail_all(env.raw(), e);
    }

    /// Milliseconds until the oldest call in flight is overdue (0: it is),
    /// or -1 when none is in flight.
    #[napi]
    pub fn overdue_ms(&self) -> f64 {
        match self.in_flight.front() {
            None => -1.0,
            Some(oldest) => (self.command_timeout.saturating_sub(oldest.sent.elapsed()).as_secs_f64() * 1000.0).ceil(),
        }
    }

    /// Calls in flight.
    #[napi(getter)]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.len() as u32
    }
}

fn undefined(env: &Env) -> napi::Result<Unknown<'_>> {
    let mut v = ptr::null_mut();
    // SAFETY: plain Node-API call on the current env.
    unsafe { sys::napi_get_undefined(env.raw(), &mut v) };
    // SAFETY: a value of this env.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
}

fn null(env: &Env) -> napi::Result<Unknown<'_>> {
    let mut v = ptr::null_mut();
    // SAFETY: plain Node-API call on the current env.
    unsafe { sys::napi_get_null(env.raw(), &mut v) };
    // SAFETY: a value of this env.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
}
