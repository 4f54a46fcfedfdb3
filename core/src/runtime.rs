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

/// Runs `f` on the engine runtime's pool of blocking threads: for a caller
/// that must not block its own thread (Node's event loop) but whose work is
/// cheapest done blocking, on a socket of its own (`Store::load_blocking`).
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    handle().spawn_blocking(f)
}

/// Lets another thread cut a blocking call short: Ruby's unblocking function
/// (`Thread#raise`, `Timeout`, Ctrl-C) and Python's signal handling call
/// `interrupt()` while the waiting thread is inside `block_on_interruptible`.
#[derive(Clone, Default)]
pub struct Interrupt {
    inner: Arc<InterruptState>,
}

#[derive(Default)]
struct InterruptState {
    interrupted: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
    /// The socket a blocking read is waiting on (a load on the caller's own
    /// socket): shut down to wake that read.
    armed: Mutex<Option<std::os::fd::RawFd>>,
}

impl Interrupt {
    pub fn new() -> Self {
        Interrupt::default()
    }

    /// Safe to call from any thread, any number of times, before or during
    /// the call; a call that has not started yet returns at once.
    pub fn interrupt(&self) {
        self.inner.interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.notify.notify_waiters();
        let armed = self.inner.armed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fd) = *armed {
            // SAFETY: `fd` stays open while armed: `disarm` takes this lock
            // before the socket may be closed or reused. shutdown(2) only
            // ends the connection; the blocked read returns and the socket is
            // dropped, never pooled again.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }

    /// Registers the socket a blocking read is about to wait on. `false`
    /// when already interrupted: do not start the read.
    pub(crate) fn arm(&self, fd: std::os::fd::RawFd) -> bool {
        let mut armed = self.inner.armed.lock().unwrap_or_else(|p| p.into_inner());
        *armed = Some(fd);
        !self.is_interrupted()
    }

    pub(crate) fn disarm(&self) {
        *self.inner.armed.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub(crate) fn interrupted_error() -> crate::Error {
        crate::Error::temporary(crate::ErrorKind::Timeout, "the call was interrupted")
    }

    pub fn is_interrupted(&self) -> bool {
        self.inner.interrupted.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn interrupted(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Registers before checking the flag, so an interrupt between the
            // check and the await is not missed.
            notified.as_mut().enable();
            if self.is_interrupted() {
                return;
            }
            notified.await;
        }
    }
}

/// `block_on` that returns early with a temporary `Timeout` error when
/// `interrupt` fires. The abandoned command's reply is discarded by the
/// connection; the connection stays usable.
pub fn block_on_interruptible<T>(
    fut: impl Future<Output = crate::Result<T>>,
    interrupt: &Interrupt,
) -> crate::Result<T> {
    block_on(async {
        tokio::select! {
            biased;
            _ = interrupt.interrupted() => Err(Interrupt::interrupted_error()),
            out = fut => out,
        }
    })
}

/// `block_on_interruptible` with an interrupt, `block_on` without.
pub(crate) fn block_on_unless_interrupted<T>(
    fut: impl Future<Output = crate::Result<T>>,
    interrupt: Option<&Interrupt>,
) -> crate::Result<T> {
    match interrupt {
        Some(interrupt) => block_on_interruptible(fut, interrupt),
        None => block_on(fut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn interrupt_cuts_a_blocking_call_short() {
        let interrupt = Interrupt::new();
        let remote = interrupt.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            remote.interrupt();
        });
        let started = Instant::now();
        let out: crate::Result<()> = block_on_interruptible(
            async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            },
            &interrupt,
        );
        t.join().unwrap();
        assert_eq!(out.unwrap_err().kind(), crate::ErrorKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(10));
        // Already interrupted: returns at once.
        let out: crate::Result<()> = block_on_interruptible(std::future::pending(), &interrupt);
        assert!(out.is_err());
    }
}
