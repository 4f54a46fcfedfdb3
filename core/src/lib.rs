//! Sessionkeeper's engine: web sessions in Redis (standalone, TLS, Cluster,
//! Sentinel) or in process memory, with one data layout and one encoding
//! shared by the Ruby, Python, Node and C bindings.
//!
//! Each session is one Redis string holding a map with one field per
//! top-level key: a load is one `GETEX`, a save sends only the keys that
//! changed (merged on the server), so two requests changing different keys
//! both survive. See `docs/data-layout.md`.

// The README's example compiles (`cargo test --doc`, run by scripts/test-core.sh).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;

pub(crate) mod backend;
pub mod blocking;
pub mod codec;
pub mod config;
pub mod cookie;
pub mod error;
pub mod id;
pub mod metrics;
mod own_saves;
mod own_windows;
pub mod runtime;
pub mod store;
pub mod value;
pub mod wire;

pub use blocking::BlockingStore;
pub use codec::Codec;
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use id::{generate_id, is_valid_id, storage_key};
pub use metrics::Stats;
pub use store::{is_valid_handle, Baseline, LegacyKey, LegacyValue, Loaded, Meta, SaveOutcome, Store};
pub use value::{Map, SessionData, Timestamp, Value};
