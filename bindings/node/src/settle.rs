//! Settling Promises from engine threads.
//!
//! A call's work finishes on an engine thread; its Promise can only be
//! settled on the JavaScript thread that made it. napi-rs' own machinery
//! (`spawn_future_with_callback`) awaits the work from a second tokio
//! runtime and creates a threadsafe function per call: three thread
//! hand-offs and most of a call's CPU. Here each JavaScript thread has ONE
//! threadsafe function that carries every completion back, and the engine
//! thread that finished the work posts to it directly.
//!
//! The threadsafe function keeps the event loop alive only while calls are
//! in flight (an idle store must not keep `node` from exiting, a pending
//! call must). When the environment is torn down (process exit, a worker
//! thread terminated) late completions are dropped: the finalizer empties
//! the channel's slot under the same lock that every post takes, so nothing
//! posts to a freed threadsafe function.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::{sys, Env};
use sessionkeeper_core::{self as engine, ErrorKind};

use crate::convert::{Writer, R};
use crate::error::{conversion_error, engine_error};

type Promise<'env> = napi::Result<PromiseRaw<'env, Unknown<'env>>>;

/// Runs on the JavaScript thread with its env.
type Completion = Box<dyn FnOnce(sys::napi_env) + Send>;

/// The threadsafe function of one JavaScript thread, shared with the engine
/// threads that post to it.
struct Channel {
    /// `None` once the environment is torn down.
    tsfn: Mutex<Option<Tsfn>>,
}

#[derive(Clone, Copy)]
struct Tsfn(sys::napi_threadsafe_function);
// SAFETY: napi_call_threadsafe_function is the one call made from other
// threads, and it is thread-safe by definition; the rest happen on the
// JavaScript thread.
unsafe impl Send for Tsfn {}

/// Per JavaScript thread: its channel and how many calls are in flight.
struct Local {
    env: sys::napi_env,
    channel: Arc<Channel>,
    in_flight: usize,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

impl Channel {
    fn post(&self, completion: Completion) {
        let tsfn = self.tsfn.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(Tsfn(tsfn)) = *tsfn else { return };
        let data = Box::into_raw(Box::new(completion));
        // SAFETY: the lock keeps the finalizer (which clears the slot) from
        // running while we post; nonblocking never waits (the queue is
        // unbounded), so holding the lock cannot deadlock the JS thread.
        let status = unsafe { sys::napi_call_threadsafe_function(tsfn, data.cast(), sys::ThreadsafeFunctionCallMode::nonblocking) };
        if status != sys::Status::napi_ok {
            // Closing: the environment is going away; nobody awaits this.
            // SAFETY: not handed over, so still ours.
            drop(unsafe { Box::from_raw(data) });
        }
    }
}

unsafe extern "C" fn call_js(env: sys::napi_env, _js: sys::napi_value, _ctx: *mut c_void, data: *mut c_void) {
    // SAFETY: every `data` is a `Completion` boxed by `Channel::post`.
    let completion = unsafe { Box::from_raw(data.cast::<Completion>()) };
    if env.is_null() {
        return; // torn down: drop it
    }
    finished_one(env);
    completion(env);
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Arc<Channel>` leaked into the threadsafe function.
    let channel = unsafe { Arc::from_raw(data.cast::<Channel>()) };
    *channel.tsfn.lock().unwrap_or_else(PoisonError::into_inner) = None;
    // try_with: at a thread's exit its locals may already be gone.
    let _ = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        if l.as_ref().is_some_and(|l| Arc::ptr_eq(&l.channel, &channel)) {
            *l = None;
        }
    });
}

/// This thread's channel, created on first use, with one more call in flight.
fn started_one(env: sys::napi_env) -> napi::Result<Arc<Channel>> {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        let local = match &mut *l {
            Some(local) if local.env == env => local,
            _ => l.insert(Local { env, channel: open(env)?, in_flight: 0 }),
        };
        let Some(tsfn) = *local.channel.tsfn.lock().unwrap_or_else(PoisonError::into_inner) else {
            return Err(napi::Error::new(napi::Status::Closing, "sessionkeeper: the environment is shutting down"));
        };
        if local.in_flight == 0 {
            // SAFETY: on the JavaScript thread that owns `tsfn`.
            unsafe { sys::napi_ref_threadsafe_function(env, tsfn.0) };
        }
        local.in_flight += 1;
        Ok(local.channel.clone())
    })
}

fn finished_one(env: sys::napi_env) {
    let _ = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let Some(local) = l.as_mut().filter(|local| local.env == env) else { return };
        local.in_flight = local.in_flight.saturating_sub(1);
        if local.in_flight == 0 {
            if let Some(tsfn) = *local.channel.tsfn.lock().unwrap_or_else(PoisonError::into_inner) {
                // SAFETY: on the JavaScript thread that owns `tsfn`.
                unsafe { sys::napi_unref_threadsafe_function(env, tsfn.0) };
            }
        }
    });
}

fn open(env: sys::napi_env) -> napi::Result<Arc<Channel>> {
    let channel = Arc::new(Channel { tsfn: Mutex::new(None) });
    let mut name = ptr::null_mut();
    let mut tsfn = ptr::null_mut();
    let context = Arc::into_raw(channel.clone()) as *mut c_void;
    // SAFETY: plain Node-API calls on the current env; `context` is handed to
    // the threadsafe function, which gives it back to `finalize` exactly once.
    let status = unsafe {
        let label = "sessionkeeper";
        sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name);
        sys::napi_create_threadsafe_function(
            env,
            ptr::null_mut(),
            ptr::null_mut(),
            name,
            0,
            1,
            context,
            Some(finalize),
            ptr::null_mut(),
            Some(call_js),
            &mut tsfn,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: not handed over.
        drop(unsafe { Arc::from_raw(context as *const Channel) });
        return Err(napi::Error::new(napi::Status::GenericFailure, "sessionkeeper: cannot create its threadsafe function"));
    }
    // SAFETY: as above; idle until a call is in flight.
    unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    *channel.tsfn.lock().unwrap_or_else(PoisonError::into_inner) = Some(Tsfn(tsfn));
    Ok(channel)
}

/// A Promise waiting for an engine thread; settle it from any thread. One
/// dropped unsettled (its task was cancelled) rejects rather than hang.
pub struct Pending {
    deferred: Deferred,
    channel: Arc<Channel>,
    settled: bool,
}

struct Deferred(sys::napi_deferred);
// SAFETY: only used (resolved or rejected) on the JavaScript thread, via the
// channel; engine threads merely carry it.
unsafe impl Send for Deferred {}

impl Pending {
    /// A new Promise on this JavaScript thread and what settles it.
    pub fn new(env: &Env) -> napi::Result<(Pending, sys::napi_value)> {
        let raw = env.raw();
        let channel = started_one(raw)?;
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        // SAFETY: plain Node-API call on the current env.
        let status = unsafe { sys::napi_create_promise(raw, &mut deferred, &mut promise) };
        if status != sys::Status::napi_ok {
            finished_one(raw);
            return Err(napi::Error::new(napi::Status::GenericFailure, "sessionkeeper: cannot create a Promise"));
        }
        Ok((Pending { deferred: Deferred(deferred), channel, settled: false }, promise))
    }

    /// Settles the Promise with `out`, converted by `done` on the JavaScript
    /// thread; an engine error rejects with its `Error` (`code`, `temporary`).
    pub fn settle<T, D>(mut self, out: engine::Result<T>, done: D)
    where
        T: Send + 'static,
        D: FnOnce(&Writer, T) -> R<sys::napi_value> + Send + 'static,
    {
        self.settled = true;
        let deferred = Deferred(self.deferred.0);
        self.channel.post(Box::new(move |env| settle_deferred(env, deferred, out, done)));
    }

    /// `settle` for a result ready on the JavaScript thread itself (the
    /// event-loop socket's replies, wire.rs): no hand-off.
    pub fn settle_now<T, D>(mut self, env: sys::napi_env, out: engine::Result<T>, done: D)
    where
        D: FnOnce(&Writer, T) -> R<sys::napi_value>,
    {
        self.settled = true;
        finished_one(env);
        settle_deferred(env, Deferred(self.deferred.0), out, done);
    }
}

/// Resolves `deferred` with `done`'s conversion of `out`, or rejects it with
/// the error; on the JavaScript thread that created it, once.
fn settle_deferred<T, D>(env: sys::napi_env, deferred: Deferred, out: engine::Result<T>, done: D)
where
    D: FnOnce(&Writer, T) -> R<sys::napi_value>,
{
    let settled = match out {
        Ok(v) => done(&Writer::new(env), v).map(|value| (true, value)),
        Err(e) => engine_error(env, &e).map(|err| (false, err)),
    };
    let (ok, value) = match settled {
        Ok(s) => s,
        Err(f) => match conversion_error(env, f) {
            Ok(err) => (false, err),
            Err(_) => return, // the environment is failing; nothing can be built
        },
    };
    // SAFETY: on the JavaScript thread that created `deferred`, once.
    unsafe {
        if ok {
            sys::napi_resolve_deferred(env, deferred.0, value);
        } else {
            sys::napi_reject_deferred(env, deferred.0, value);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.settled {
            let this = Pending { deferred: Deferred(self.deferred.0), channel: self.channel.clone(), settled: false };
            self.settled = true;
            let e = engine::Error::new(ErrorKind::Unexpected, "the engine dropped the call before it finished");
            this.settle::<(), _>(Err(e), |w, ()| w.null());
        }
    }
}

/// Runs `fut` on the engine runtime and settles the returned Promise from
/// there with `done`'s conversion of its output.
pub fn spawn<'env, T, F, D>(env: &'env Env, fut: F, done: D) -> Promise<'env>
where
    T: Send + 'static,
    F: std::future::Future<Output = engine::Result<T>> + Send + 'static,
    D: FnOnce(&Writer, T) -> R<sys::napi_value> + Send + 'static,
{
    let (pending, promise) = Pending::new(env)?;
    engine::runtime::spawn(async move { pending.settle(fut.await, done) });
    Ok(PromiseRaw::new(env.raw(), promise))
}

/// Calls that may hold a blocking thread at once, process-wide. More go
/// through the runtime, whose multiplexed connection pipelines them; so a
/// stalled Redis holds at most this many threads and sockets, and no call
/// ever waits for a free thread (which would stretch `command_timeout`).
const MAX_BLOCKING: usize = 16;
static BLOCKING: AtomicUsize = AtomicUsize::new(0);

/// A slot among `MAX_BLOCKING`, given back when dropped (also on a panic).
struct BlockingSlot;

impl BlockingSlot {
    fn take() -> Option<BlockingSlot> {
        BLOCKING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_BLOCKING).then_some(n + 1))
            .ok()
            .map(|_| BlockingSlot)
    }
}

impl Drop for BlockingSlot {
    fn drop(&mut self) {
        BLOCKING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs one call and settles the returned Promise with `done`'s conversion
/// of its output. With `own_socket` (the store's blocking calls do their I/O
/// on a socket of the calling thread) and a free slot, `blocking(args)` runs
/// on one of the engine's blocking threads: one hand-off there, one back,
/// about half the CPU of the runtime path. Otherwise `asynchronous(args)`
/// runs on the runtime.
pub fn run<'env, A, T, B, F, Fut, D>(
    env: &'env Env,
    own_socket: bool,
    args: A,
    blocking: B,
    asynchronous: F,
    done: D,
) -> Promise<'env>
where
    A: Send + 'static,
    T: Send + 'static,
    B: FnOnce(A) -> engine::Result<T> + Send + 'static,
    F: FnOnce(A) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = engine::Result<T>> + Send + 'static,
    D: FnOnce(&Writer, T) -> R<sys::napi_value> + Send + 'static,
{
    let (pending, promise) = Pending::new(env)?;
    match own_socket.then(BlockingSlot::take).flatten() {
        Some(slot) => {
            engine::runtime::spawn_blocking(move || {
                let out = blocking(args);
                drop(slot);
                pending.settle(out, done);
            });
        }
        None => {
            engine::runtime::spawn(async move { pending.settle(asynchronous(args).await, done) });
        }
    }
    Ok(PromiseRaw::new(env.raw(), promise))
}
