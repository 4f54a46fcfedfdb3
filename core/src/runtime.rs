//! The process's one tokio runtime, and the per-process slot that makes it
//! (and every store's connections) safe across `fork()`.
//!
//! A forked child inherits the parent's runtime structs but none of its
//! threads, and shares its epoll instance and sockets. Using them hangs;
//! dropping them would deregister the parent's sockets from the shared epoll.
//! So a child builds new ones on first use and leaks the inherited ones.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// A value that belongs to one process: read in a forked child, it is
/// rebuilt, and the parent's copy is leaked, never dropped.
pub(crate) struct PerProcess<T> {
    slot: Mutex<Option<(u32, Arc<T>)>>,
}

impl<T> PerProcess<T> {
    pub const fn new() -> Self {
        PerProcess { slot: Mutex::new(None) }
    }

    pub fn with(value: T) -> Self {
        PerProcess { slot: Mutex::new(Some((std::process::id(), Arc::new(value)))) }
    }

    /// The current process's value, built by `init` on first use (or first
    /// use after a fork). `init` runs outside the lock: a fork while another
    /// thread held it would leave the child's copy locked forever.
    pub fn get_or_try_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let pid = std::process::id();
        {
            let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some((owner, value)) if *owner == pid => return Ok(value.clone()),
                Some(_) => {
                    if let Some((_, inherited)) = slot.take() {
                        std::mem::forget(inherited);
                    }
                }
                None => {}
            }
        }
        let fresh = Arc::new(init()?);
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            // Another thread won the race; ours was never used, so dropping
            // it is safe.
            Some((owner, value)) if *owner == pid => Ok(value.clone()),
            _ => {
                *slot = Some((pid, fresh.clone()));
                Ok(fresh)
            }
        }
    }
}

static RUNTIME: PerProcess<Runtime> = PerProcess::new();

fn build_runtime() -> std::io::Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("sessionkeeper")
        .enable_all()
        .build()
}

/// The runtime of this process, created on first use.
pub fn handle() -> Handle {
    match RUNTIME.get_or_try_init(build_runtime) {
        Ok(rt) => rt.handle().clone(),
        // Failing to start two threads means the process is out of
        // resources; there is nothing sensible to return instead.
        Err(e) => panic!("sessionkeeper: cannot start its runtime: {e}"),
    }
}

/// Runs `fut` to completion on the engine runtime, blocking the calling
/// thread (which must not itself be a tokio runtime thread). Ruby, Python and
/// C call the engine through this, with their interpreter lock released.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    handle().block_on(fut)
}

/// Spawns `fut` on the engine runtime. Node awaits the handle from its own
/// runtime, so every connection lives on this one.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle().spawn(fut)
}
