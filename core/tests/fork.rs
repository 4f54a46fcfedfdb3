//! A process that used the store and then forks (Puma, Gunicorn, Unicorn
//! preloading the app) must have a working store in the child, and the
//! parent must keep working. The naive design hangs in the child.

mod common;

use std::time::{Duration, Instant};

use common::{data, Target};
use sessionkeeper_core::runtime::block_on;
use sessionkeeper_core::Value;

/// Forks; the child runs `child` and exits 0 on success, 1 on failure. The
/// parent waits at most `limit` (a hang guard: a hanging child is killed and
/// reported), then returns the child's exit status.
fn in_child(limit: Duration, child: impl FnOnce() -> bool) -> Result<i32, String> {
    // SAFETY: fork in a test process. The child only calls the engine (which
    // rebuilds its runtime), then _exit, never returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(false);
        // SAFETY: _exit skips atexit handlers and destructors that belong to
        // the parent's copy of the state.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: waiting on our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return Ok(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 });
        }
        if Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err("the child hung".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn child_works_after_the_parent_used_the_store(t: Target) {
    let Some(store) = t.store(&[]) else { return };
    // The parent creates the runtime and a connection, and keeps them busy.
    let (id, _) = block_on(store.create(&data(&[("from", "parent".into())]))).unwrap();
    assert!(block_on(store.load(&id)).unwrap().is_some());

    let child_store = store.clone();
    let child_id = id.clone();
    let status = in_child(Duration::from_secs(20), move || {
        let mut loaded = match block_on(child_store.load(&child_id)) {
            Ok(Some(l)) => l,
            _ => return false,
        };
        if loaded.data.get("from") != Some(&Value::Str("parent".into())) {
            return false;
        }
        loaded.data.insert("child".into(), true.into());
        block_on(child_store.save(&child_id, &mut loaded.baseline, &loaded.data)).is_ok()
    });
    assert_eq!(status, Ok(0), "the child could not use the store");
    // The parent still works, and sees the child's write (except in memory://,
    // where the child wrote to its own copy of the process).
    let after = block_on(store.load(&id)).unwrap().unwrap();
    if t != Target::Memory {
        assert_eq!(after.data.get("child"), Some(&Value::Bool(true)));
    }
    // A second generation: the child of a child.
    let s = store.clone();
    let status = in_child(Duration::from_secs(20), move || {
        let inner = s.clone();
        matches!(
            in_child(Duration::from_secs(10), move || block_on(inner.create(&data(&[]))).is_ok()),
            Ok(0)
        )
    });
    assert_eq!(status, Ok(0));
}

#[test]
fn memory() {
    child_works_after_the_parent_used_the_store(Target::Memory)
}

#[test]
fn standalone() {
    child_works_after_the_parent_used_the_store(Target::Standalone)
}

#[test]
fn cluster() {
    child_works_after_the_parent_used_the_store(Target::Cluster)
}

#[test]
fn sentinel() {
    child_works_after_the_parent_used_the_store(Target::Sentinel)
}

/// Blocking callers' loads read pooled sockets of their own: a child must
/// never read or write the parent's. Parent and child load different
/// sessions at the same time; a shared socket would cross their replies.
#[test]
fn standalone_blocking_loads_never_share_a_socket_with_the_parent() {
    use sessionkeeper_core::BlockingStore;
    let Some(store) = Target::Standalone.store(&[]) else { return };
    let blocking = BlockingStore::new(store.clone());
    let (parent_id, _) = block_on(store.create(&data(&[("who", "parent".into())]))).unwrap();
    let (child_id, _) = block_on(store.create(&data(&[("who", "child".into())]))).unwrap();
    assert!(blocking.load(&parent_id).unwrap().is_some()); // a pooled socket now exists

    let in_child_store = blocking.clone();
    let child = std::thread::spawn(move || {
        in_child(Duration::from_secs(30), move || {
            (0..300).all(|_| {
                matches!(in_child_store.load(&child_id), Ok(Some(l)) if l.data.get("who") == Some(&Value::Str("child".into())))
            })
        })
    });
    for _ in 0..300 {
        let l = blocking.load(&parent_id).unwrap().unwrap();
        assert_eq!(l.data.get("who"), Some(&Value::Str("parent".into())));
    }
    assert_eq!(child.join().unwrap(), Ok(0), "the child's loads failed or read the parent's replies");
}
