//! One error type for the whole engine. Every binding maps `ErrorKind` to its own
//! exception tree in a single place, so the kinds here are the public contract.

use std::fmt;

/// What went wrong, coarse enough that a web adapter can pick a reaction
/// (fail open, fresh session, configuration bug) without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The URL or an option is wrong. Fix the configuration.
    Config,
    /// Redis could not be reached, or the connection broke.
    Connection,
    /// Redis did not answer within `command_timeout` (or `connect_timeout`).
    Timeout,
    /// Redis refused the credentials or the ACL user may not run a command.
    Auth,
    /// A stored value could not be decoded, or a value cannot be encoded.
    Codec,
    /// The encoded session is larger than `max_size`.
    TooLarge,
    /// A session id that is not a valid public id was used for a write.
    InvalidId,
    /// Anything else: a bug or a Redis reply we do not understand.
    Unexpected,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Config,
        ErrorKind::Connection,
        ErrorKind::Timeout,
        ErrorKind::Auth,
        ErrorKind::Codec,
        ErrorKind::TooLarge,
        ErrorKind::InvalidId,
        ErrorKind::Unexpected,
    ];

    /// Stable lowercase name, used in metrics and in binding error codes
    /// (`SESSIONKEEPER_<NAME uppercased>`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::Codec => "codec",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::InvalidId => "invalid_id",
            ErrorKind::Unexpected => "unexpected",
        }
    }

    /// The exception class name the Ruby and Python bindings use for this
    /// kind (under `Sessionkeeper::` and `sessionkeeper.`).
    pub fn class_name(self) -> &'static str {
        match self {
            ErrorKind::Config => "ConfigError",
            ErrorKind::Connection => "ConnectionError",
            ErrorKind::Timeout => "TimeoutError",
            ErrorKind::Auth => "AuthError",
            ErrorKind::Codec => "CodecError",
            ErrorKind::TooLarge => "TooLargeError",
            ErrorKind::InvalidId => "InvalidIdError",
            ErrorKind::Unexpected => "UnexpectedError",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An engine error. The message never contains a password or session payload:
/// it may end up in a log line or an HTTP error page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    temporary: bool,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A permanent error: retrying the same call will fail the same way.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, temporary: false, message: message.into() }
    }

    /// A temporary error: the same call may succeed later (Redis restarting,
    /// failing over, or overloaded).
    pub fn temporary(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, temporary: true, message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn codec(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Codec, message)
    }

    pub(crate) fn unexpected(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unexpected, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// Error replies for conditions that pass: a failover or a restart (`READONLY`,
/// `LOADING`, `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`, `MOVED`, `ASK`), too few
/// replicas for a write under `min-replicas-to-write` (`NOREPLICAS`: even a
/// load's `GETEX` is refused), out of memory under `noeviction` (`OOM`),
/// snapshots failing (`MISCONF`), a script running too long (`BUSY`). They
/// are temporary connection errors, so fail-open adapters treat them as
/// Redis being down rather than answering an error.
const PASSING_CONDITIONS: &[&str] =
    &["READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK", "NOREPLICAS", "OOM", "MISCONF", "BUSY"];

/// The error for a server's error reply with this code (its first word).
/// Server error texts name the command, never its arguments.
pub(crate) fn server_error(code: &str, text: &str) -> Error {
    match code {
        "NOAUTH" | "WRONGPASS" | "NOPERM" => Error::new(ErrorKind::Auth, format!("Redis refused the credentials or the command ({text})")),
        _ if PASSING_CONDITIONS.contains(&code) => {
            Error::temporary(ErrorKind::Connection, format!("Redis cannot serve the command for now ({text})"))
        }
        _ => Error::unexpected(format!("unexpected Redis reply ({text})")),
    }
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        use redis::{ErrorKind as RK, ServerErrorKind as SK};
        // redis-rs error texts carry the command and server detail but never the
        // arguments, so they are safe to pass on.
        let text = err.to_string();
        if err.is_timeout() {
            return Error::temporary(ErrorKind::Timeout, format!("Redis did not answer in time ({text})"));
        }
        if err.is_connection_refusal() || err.is_connection_dropped() || err.is_io_error() {
            return Error::temporary(ErrorKind::Connection, format!("cannot reach Redis ({text})"));
        }
        if let Some(code) = err.code() {
            if PASSING_CONDITIONS.contains(&code) {
                return server_error(code, &text);
            }
        }
        match err.kind() {
            RK::AuthenticationFailed | RK::Server(SK::NoPerm) => {
                Error::new(ErrorKind::Auth, format!("Redis refused the credentials or the command ({text})"))
            }
            RK::InvalidClientConfig => Error::config(format!("invalid Redis configuration ({text})")),
            RK::Server(SK::ReadOnly | SK::TryAgain | SK::ClusterDown | SK::MasterDown | SK::BusyLoading | SK::Moved | SK::Ask)
            | RK::ClusterConnectionNotFound
            | RK::MasterNameNotFoundBySentinel
            | RK::NoValidReplicasFoundBySentinel => {
                Error::temporary(ErrorKind::Connection, format!("Redis is failing over or loading ({text})"))
            }
            _ => Error::unexpected(format!("unexpected Redis reply ({text})")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind() {
        let e = Error::temporary(ErrorKind::Timeout, "slow");
        assert_eq!(e.to_string(), "timeout error: slow");
        assert!(e.is_temporary());
        assert!(!Error::config("x").is_temporary());
    }

    #[test]
    fn kind_indexes_are_dense() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
