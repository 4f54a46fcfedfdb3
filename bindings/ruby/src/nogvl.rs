//! Running an engine call with the GVL released.
//!
//! Every Redis wait goes through `without_gvl`, so other Ruby threads run
//! while this one waits on the network. Ruby may interrupt the wait
//! (`Thread#raise`, `Thread#kill`, `Timeout.timeout`, Ctrl-C): it then calls
//! the unblocking function from another thread, which trips the call's
//! `Interrupt`, and the engine call returns early with a temporary timeout.
//!
//! Rules for the closure, which runs without the GVL: it must not touch a
//! Ruby object or call Ruby in any way (callers convert and own every input
//! first), and a panic inside it is caught there, never unwound through
//! Ruby's C frames.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::rb_sys::AsRawValue;
use magnus::{Error, Ruby};
use sessionkeeper_core::runtime::{block_on_interruptible, Interrupt};
use sessionkeeper_core::{Error as CoreError, ErrorKind, Result as CoreResult};

struct Call<'a, F, T> {
    work: Option<F>,
    interrupt: &'a Interrupt,
    out: Option<std::thread::Result<CoreResult<T>>>,
}

unsafe extern "C" fn run<F, T>(data: *mut c_void) -> *mut c_void
where
    F: std::future::Future<Output = CoreResult<T>>,
{
    // SAFETY: `data` is the `Call` that `without_gvl` passed in; it outlives
    // this call, and nothing else touches it until this returns.
    let call = unsafe { &mut *(data as *mut Call<'_, F, T>) };
    if let Some(work) = call.work.take() {
        let interrupt = call.interrupt;
        call.out = Some(catch_unwind(AssertUnwindSafe(|| block_on_interruptible(work, interrupt))));
    }
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

/// Runs the engine future `work` to completion with the GVL released, then
/// maps its error with `error::to_ruby`.
///
/// If Ruby has an interrupt pending when the call ends (the `Thread#raise`
/// that cut it short), that exception is returned instead, after `work` and
/// everything it borrowed have been dropped normally.
pub fn without_gvl<F, T>(ruby: &Ruby, work: F) -> Result<T, Error>
where
    F: std::future::Future<Output = CoreResult<T>>,
{
    let interrupt = Interrupt::new();
    let mut call = Call { work: Some(work), interrupt: &interrupt, out: None };
    let call_ptr = &mut call as *mut Call<'_, F, T> as *mut c_void;
    let interrupt_ptr = &interrupt as *const Interrupt as *mut c_void;
    // rb_thread_call_without_gvl checks for pending interrupts before and
    // after the blocking region and raises them with a longjmp. `protect`
    // turns that into an `Err` here, so the longjmp never skips a Rust frame
    // that owns anything (the closure below only holds raw pointers).
    let protected = magnus::rb_sys::protect(|| {
        // SAFETY: `run::<F, T>` matches the `Call` behind `call_ptr`, and
        // `unblock` the `Interrupt` behind `interrupt_ptr`; both live on this
        // stack frame until the call returns. `run` touches no Ruby object.
        unsafe {
            rb_sys::rb_thread_call_without_gvl(Some(run::<F, T>), call_ptr, Some(unblock), interrupt_ptr);
        }
        ruby.qnil().as_raw()
    });
    let out = call.out.take();
    drop(call);
    if let Err(pending) = protected {
        return Err(pending);
    }
    match out {
        Some(Ok(Ok(value))) => Ok(value),
        Some(Ok(Err(e))) => Err(crate::error::to_ruby(ruby, e)),
        Some(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(crate::error::to_ruby(ruby, CoreError::new(ErrorKind::Unexpected, format!("internal error: {what}"))))
        }
        // Ruby skipped the blocking region without raising: treat it like an
        // interrupted call.
        None => Err(crate::error::to_ruby(
            ruby,
            CoreError::temporary(ErrorKind::Timeout, "the call was interrupted before it started"),
        )),
    }
}
