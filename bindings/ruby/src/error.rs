//! The one place where engine errors become Ruby exceptions.
//!
//! The classes are defined in Ruby (`lib/sessionkeeper/errors.rb`), so they
//! can carry docs and `temporary?`, and are looked up here by name when an
//! error is raised; errors are rare, so the constant lookup is not cached.

use magnus::prelude::*;
use magnus::{Error, ExceptionClass, RModule, Ruby};
use sessionkeeper_core::{Error as CoreError, ErrorKind};

fn lookup(ruby: &Ruby, name: &str) -> Result<ExceptionClass, Error> {
    let module: RModule = ruby.class_object().const_get("Sessionkeeper")?;
    module.const_get(name)
}

/// Builds the Ruby exception for an engine error: `Sessionkeeper::<Kind>Error`
/// with the engine's message and its `temporary?` flag.
pub fn to_ruby(ruby: &Ruby, err: CoreError) -> Error {
    raise(ruby, err.kind(), err.message(), err.is_temporary())
}

/// A `Sessionkeeper::<Kind>Error` raised by the binding itself (a value that
/// cannot be converted, a baseline used by two threads at once).
pub fn raise(ruby: &Ruby, kind: ErrorKind, message: &str, temporary: bool) -> Error {
    let class = match lookup(ruby, kind.class_name()) {
        Ok(class) => class,
        // errors.rb is required before the extension, so this only happens
        // when someone loads the .so by hand.
        Err(_) => return Error::new(ruby.exception_runtime_error(), format!("{} error: {message}", kind.name())),
    };
    match class.new_instance((message, temporary)) {
        Ok(exception) => exception.into(),
        Err(e) => e,
    }
}

pub fn codec(ruby: &Ruby, message: String) -> Error {
    raise(ruby, ErrorKind::Codec, &message, false)
}
