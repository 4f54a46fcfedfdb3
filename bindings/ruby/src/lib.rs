//! Ruby extension for Sessionkeeper. Ruby loads it as
//! `sessionkeeper/sessionkeeper_ruby.so` from `lib/sessionkeeper.rb`, after
//! `lib/sessionkeeper/errors.rb` has defined the exception classes that
//! `error.rs` looks up.
//!
//! The binding only converts values (`convert.rs`), releases the GVL around
//! every Redis wait (`nogvl.rs`), maps errors (`error.rs`) and registers the
//! native classes (`store.rs`); every session rule lives in the core.

mod convert;
mod cookie;
mod error;
mod nogvl;
mod store;

use magnus::{Error, Ruby};

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    store::init(ruby)?;
    cookie::init(ruby)
}
