//! The Node.js addon of Sessionkeeper: a Promise-based `Store` over the
//! engine. The npm package in `node/` loads it and adds the express-session
//! adapter in JavaScript.
//!
//! - `store.rs`: the `Store` and `Baseline` classes, module functions.
//! - `cookie.rs`: shared mode's signed cookie (`sign`, `unsign`).
//! - `convert.rs`: JavaScript values to and from the engine's `Value`.
//! - `error.rs`: every error object JavaScript sees.
//! - `settle.rs`: Promises settled from engine threads.
//! - `wire.rs`: loads and saves over a socket the event loop drives.

mod convert;
mod cookie;
mod error;
mod settle;
mod store;
mod wire;
