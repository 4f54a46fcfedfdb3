//! Running an engine call with the GVL released.
//!
//! Every Redis wait goes through `without_gvl`, so other Ruby threads run
//! while this one waits on the network. Ruby wakes a waiting thread through
//! the unblocking function for `Thread#raise`, `Thread#kill`,
//! `Timeout.timeout`, Ctrl-C, and also for signals whose handlers raise
//! nothing (SIGCHLD, a `trap`). The unblocking function trips the call's
//! `Interrupt`; the thread takes the GVL back and lets Ruby run what is
//! pending. If that raised, the engine call is abandoned (dropped: its reply
//! is discarded by the connection) and the exception propagates; otherwise
//! the thread releases the GVL again and resumes waiting on the same,
//! still-running call, so a stray signal never repeats or fails an operation.
//!
//! Loads and saves go through `without_gvl_blocking` instead: the core reads
//! their reply on this thread (no runtime hand-offs) and the interrupt shuts
//! that read down; after a wake-up that raised nothing the call is made again
//! (a load changes nothing but the expiry; a save sends the same keys with
//! the same values, merged into whatever the session holds).
//!
//! One exception: a main thread that is the process's only Ruby thread (a
//! script, a single-threaded server such as Unicorn) gets no unblocking
//! function. For that case Ruby would otherwise start a helper Ruby thread on
//! every call, to run the function outside its signal handler (see
//! `rb_nogvl` in thread.c), which cost ~40 µs of CPU and ~100 µs of wall time
//! per call here, more than the Redis round trip. Nothing can `Thread#raise`
//! into a thread that is alone, so only signals are affected: their handlers
//! (Ctrl-C's `Interrupt`, a trap) run as soon as the call returns, which
//! `command_timeout` / `connect_timeout` bound.
//!
//! Rules for the work, which runs without the GVL: it must not touch a Ruby
//! object or call Ruby in any way (callers convert and own every input
//! first), and a panic inside it is caught there, never unwound through
//! Ruby's C frames.

use std::ffi::c_void;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;

use magnus::rb_sys::AsRawValue;
use magnus::{Error, Ruby};
use sessionkeeper_core::runtime::{block_on_interruptible, Interrupt};
use sessionkeeper_core::{Error as CoreError, ErrorKind, Result as CoreResult};

/// One stretch of waiting without the GVL.
struct Stretch<'a, 'f, F: Future> {
    work: Pin<&'f mut F>,
    interrupt: &'a Interrupt,
    /// `None` after the stretch: Ruby woke us before the work finished.
    out: Option<std::thread::Result<F::Output>>,
}

unsafe extern "C" fn run<F: Future>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `Stretch` that `without_gvl` passed in; it
    // outlives this call, and nothing else touches it until this returns.
    let stretch = unsafe { &mut *(data as *mut Stretch<'_, '_, F>) };
    let interrupt = stretch.interrupt;
    let work = stretch.work.as_mut();
    let mut done = None;
    let waited = catch_unwind(AssertUnwindSafe(|| {
        // Polls the caller's future through a borrow, so an interrupted
        // stretch leaves it in place to be resumed.
        block_on_interruptible(
            async {
                done = Some(work.await);
                Ok(())
            },
            interrupt,
        )
    }));
    stretch.out = match waited {
        Ok(Ok(())) => done.map(Ok),
        Ok(Err(_interrupted)) => None,
        Err(panic) => Some(Err(panic)),
    };
    std::ptr::null_mut()
}

/// Ruby's unblocking function: called on another thread, with the GVL, while
/// `run` is blocked. Only flips the interrupt; touches nothing of Ruby's.
unsafe extern "C" fn unblock(data: *mut c_void) {
    // SAFETY: `data` is the `Interrupt` borrowed by `without_gvl`, alive for
    // the whole blocking region in which Ruby may call this.
    let interrupt = unsafe { &*(data as *const Interrupt) };
    interrupt.interrupt();
}

/// Whether this is the main thread and the only living Ruby thread: the case
/// in which Ruby would start a helper thread per call for an unblocking
/// function (see the module docs).
fn lone_main_thread() -> bool {
    // SAFETY: called with the GVL held (from a method Ruby called); both
    // functions only read the VM's thread bookkeeping.
    unsafe { rb_sys::rb_thread_alone() != 0 && rb_sys::rb_thread_current() == rb_sys::rb_thread_main() }
}

/// One blocking region: `func(data)` runs without the GVL, `unblock` (unless
/// this is a lone main thread) trips `interrupt`. `Err` carries the exception
/// Ruby raised for its pending interrupts before or after the region.
fn region(
    ruby: &Ruby,
    func: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    data: *mut c_void,
    interrupt: &Interrupt,
) -> Result<(), Error> {
    let (ubf, ubf_arg): (Option<unsafe extern "C" fn(*mut c_void)>, *mut c_void) = if lone_main_thread() {
        (None, std::ptr::null_mut())
    } else {
        (Some(unblock), interrupt as *const Interrupt as *mut c_void)
    };
    // rb_thread_call_without_gvl runs pending interrupts before and after
    // the blocking region, and raises their exceptions with a longjmp.
    // `protect` turns that into an `Err` here, so the longjmp never skips
    // a Rust frame that owns anything (the closure holds raw pointers).
    magnus::rb_sys::protect(|| {
        // SAFETY: the caller pairs `func` with the value behind `data`, and
        // `unblock` (when given) gets the `Interrupt` behind `ubf_arg`; both
        // live on the caller's frame until this returns. `func` touches no
        // Ruby object.
        unsafe {
            rb_sys::rb_thread_call_without_gvl(Some(func), data, ubf, ubf_arg);
        }
        ruby.qnil().as_raw()
    })
    .map(|_| ())
}

fn panic_error(ruby: &Ruby, panic: Box<dyn std::any::Any + Send>) -> Error {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    let e = CoreError::new(ErrorKind::Unexpected, format!("internal error: {what}"));
    crate::error::to_ruby(ruby, e)
}

/// Runs the engine future `work` to completion with the GVL released and
/// maps its error with `error::to_ruby`. Returns the exception instead when
/// Ruby raised one while the call waited (`Thread#raise`, `Timeout`, Ctrl-C).
pub fn without_gvl<F, T>(ruby: &Ruby, work: F) -> Result<T, Error>
where
    F: Future<Output = CoreResult<T>>,
{
    let mut work = std::pin::pin!(work);
    loop {
        let interrupt = Interrupt::new();
        let mut stretch = Stretch { work: work.as_mut(), interrupt: &interrupt, out: None };
        let stretch_ptr = &mut stretch as *mut Stretch<'_, '_, F> as *mut c_void;
        let protected = region(ruby, run::<F>, stretch_ptr, &interrupt);
        let out = stretch.out.take();
        protected?;
        match out {
            Some(Ok(Ok(value))) => return Ok(value),
            Some(Ok(Err(e))) => return Err(crate::error::to_ruby(ruby, e)),
            Some(Err(panic)) => return Err(panic_error(ruby, panic)),
            // Woken, and what Ruby ran raised nothing: keep waiting.
            None => continue,
        }
    }
}

/// A synchronous engine call that takes the `Interrupt` itself (the core's
/// `*_blocking_interruptible` calls, which read their reply on this thread).
struct BlockingStretch<'a, F, T> {
    work: &'a mut F,
    interrupt: &'a Interrupt,
    out: Option<std::thread::Result<CoreResult<T>>>,
}

unsafe extern "C" fn run_blocking<F, T>(data: *mut c_void) -> *mut c_void
where
    F: FnMut(&Interrupt) -> CoreResult<T>,
{
    // SAFETY: `data` is the `BlockingStretch` that `without_gvl_blocking`
    // passed in; it outlives this call, and nothing else touches it meanwhile.
    let stretch = unsafe { &mut *(data as *mut BlockingStretch<'_, F, T>) };
    let interrupt = stretch.interrupt;
    let work = &mut *stretch.work;
    stretch.out = Some(catch_unwind(AssertUnwindSafe(|| work(interrupt))));
    std::ptr::null_mut()
}

/// `without_gvl` for a synchronous engine call that can be cut short through
/// its `Interrupt` (it then fails with a temporary Timeout error). When Ruby
/// woke us and what it ran raised nothing (a signal whose handler raises
/// nothing), the call is made again: only calls that may be repeated (a
/// load, a save) may come here.
pub fn without_gvl_blocking<F, T>(ruby: &Ruby, mut work: F) -> Result<T, Error>
where
    F: FnMut(&Interrupt) -> CoreResult<T>,
{
    loop {
        let interrupt = Interrupt::new();
        let mut stretch = BlockingStretch { work: &mut work, interrupt: &interrupt, out: None };
        let stretch_ptr = &mut stretch as *mut BlockingStretch<'_, F, T> as *mut c_void;
        let protected = region(ruby, run_blocking::<F, T>, stretch_ptr, &interrupt);
        let out = stretch.out.take();
        protected?;
        match out {
            Some(Ok(Ok(value))) => return Ok(value),
            Some(Ok(Err(e))) if interrupt.is_interrupted() && e.kind() == ErrorKind::Timeout => continue,
            Some(Ok(Err(e))) => return Err(crate::error::to_ruby(ruby, e)),
            Some(Err(panic)) => return Err(panic_error(ruby, panic)),
            None => {
                let e = CoreError::new(ErrorKind::Unexpected, "internal error: the blocking call did not run");
                return Err(crate::error::to_ruby(ruby, e));
            }
        }
    }
}
