pub mod codec;
pub mod error;
pub mod id;
pub mod value;
pub use error::{Error, ErrorKind, Result};
