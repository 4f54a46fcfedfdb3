//! Loads and saves for a caller that moves the bytes itself (sans I/O).
//!
//! Node's event loop reads and writes its sockets itself, many replies per
//! wake-up; sending its loads and saves to an engine thread costs two thread
//! hand-offs a call, most of a call's CPU (bench/node/README.md). Here the
//! engine prepares the command a load or a save sends, and turns the reply
//! back into the result: key naming, expiry rules, the record layout and the
//! merge stay in the core, only the bytes travel through the caller's socket.
//!
//! The same commands as the blocking callers' own sockets (`GETEX`, the
//! update script's `EVALSHA`), for the same topologies: standalone Redis over
//! TCP or a unix socket without TLS. The follow-up a load may need (an
//! expiry correction, deleting a session past its deadline or undecodable)
//! goes over the same connection, as a second command.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::backend::{scripts, GetMode, Record, Sliding, Updated};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Baseline, Loaded, PreparedSave, SaveOutcome, Store};

/// Where the caller connects, and what it sends first on every connection.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: Address,
    /// `AUTH` and `SELECT` commands; each must be answered by a status reply
    /// (any error reply fails the connection: `handshake_reply`).
    pub handshake: Vec<Vec<u8>>,
    pub connect_timeout: Duration,
    /// The longest a command may wait for its reply; the caller enforces it
    /// and fails the call with `timeout_error`.
    pub command_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// A reply of the types our commands produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Bulk(Vec<u8>),
    Status,
    Int(i64),
    Error(String),
}

/// The first complete reply in `buf` and how many bytes it took, or `None`
/// when more bytes are needed. A reply of another type (an array) is an
/// error: the connection is out of step and must be closed.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>> {
    let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    // An empty line has no type byte: the connection is out of step.
    let Some(line) = buf.get(1..line_end) else { return Err(malformed()) };
    let text = || String::from_utf8_lossy(line).into_owned();
    let after_line = line_end + 2;
    Ok(Some(match buf[0] {
        b'+' => (Reply::Status, after_line),
        b':' => (Reply::Int(text().parse().map_err(|_| malformed())?), after_line),
        b'-' => (Reply::Error(text()), after_line),
        b'$' => {
            let len: i64 = text().parse().map_err(|_| malformed())?;
            if len < 0 {
                (Reply::Nil, after_line)
            } else {
                let end = after_line.saturating_add(usize::try_from(len).map_err(|_| malformed())?);
                if buf.len() < end.saturating_add(2) {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(malformed());
                }
                (Reply::Bulk(buf[after_line..end].to_vec()), end + 2)
            }
        }
        _ => return Err(Error::unexpected("unexpected reply type from Redis")),
    }))
}

fn malformed() -> Error {
    Error::unexpected("malformed reply from Redis")
}

/// A RESP array of bulk strings.
pub(crate) fn encode(args: &[&[u8]]) -> Vec<u8> {
    use std::io::Write;
    // Written in place: a command has a header per argument, and `format!`
    // cost an allocation apiece. Writing to a Vec cannot fail.
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    let _ = write!(out, "*{}\r\n", args.len());
    for arg in args {
        let _ = write!(out, "${}\r\n", arg.len());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The error of an error reply, by its code (as `From<redis::RedisError>`).
pub(crate) fn server_error(text: &str) -> Error {
    crate::error::server_error(text.split_whitespace().next().unwrap_or(""), text)
}

/// What a handshake command's reply means: `Err` fails the connection.
pub fn handshake_reply(reply: Reply) -> Result<()> {
    match reply {
        Reply::Error(e) => Err(server_error(&e)),
        _ => Ok(()),
    }
}

/// The error for a call whose reply did not come within `command_timeout`.
pub fn timeout_error(limit: Duration) -> Error {
    Error::temporary(ErrorKind::Timeout, format!("Redis did not answer within command_timeout ({limit:?})"))
}

/// `CLIENT SETNAME name`: names a connection in `CLIENT LIST`. Spaces are
/// not allowed in a name; they become `-`.
pub fn client_setname(name: &str) -> Vec<u8> {
    encode(&[b"CLIENT", b"SETNAME", name.replace(' ', "-").as_bytes()])
}

/// `GETEX key PX idle_ms`, or `GET key` when `idle_ms` is 0.
pub(crate) fn get_command(key: &str, idle_ms: u64) -> Vec<u8> {
    if idle_ms > 0 {
        encode(&[b"GETEX", key.as_bytes(), b"PX", idle_ms.to_string().as_bytes()])
    } else {
        encode(&[b"GET", key.as_bytes()])
    }
}

/// The server takes no writes for now (`NOREPLICAS` under
/// `min-replicas-to-write`), which refuses even a load's `GETEX`: the load is
/// read with a plain `GET` instead (`Sliding::read_only`).
pub(crate) fn refuses_writes(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(e) if e.split_whitespace().next().is_some_and(refuses_writes_code))
}

/// `refuses_writes` by the error reply's code (redis-rs gives it apart).
pub(crate) fn refuses_writes_code(code: &str) -> bool {
    code == "NOREPLICAS"
}

/// A `GET`/`GETEX` reply: the stored string, or `None` for a missing key or
/// one holding another type (a hash, list, ... under our key name is no
/// session).
pub(crate) fn get_reply(reply: Reply) -> Result<Option<Vec<u8>>> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Bulk(bytes) => Ok(Some(bytes)),
        Reply::Error(e) if e.starts_with("WRONGTYPE") => Ok(None),
        Reply::Error(e) => Err(server_error(&e)),
        Reply::Status | Reply::Int(_) => Err(Error::unexpected("unexpected reply to GETEX")),
    }
}

/// `EVALSHA sha 1 key args...`, or with `code`, `EVAL code 1 key args...`.
pub(crate) fn script_command(sha: &str, code: Option<&str>, key: &str, args: &[Vec<u8>]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(4 + args.len());
    match code {
        Some(code) => parts.extend([b"EVAL".as_slice(), code.as_bytes()]),
        None => parts.extend([b"EVALSHA".as_slice(), sha.as_bytes()]),
    }
    parts.extend([b"1".as_slice(), key.as_bytes()]);
    parts.extend(args.iter().map(Vec::as_slice));
    encode(&parts)
}

/// `DEL key`.
fn del_command(key: &str) -> Vec<u8> {
    encode(&[b"DEL", key.as_bytes()])
}

/// `PEXPIREAT key at`, or `PERSIST key` for no expiry.
fn expiry_command(key: &str, at: Option<i64>) -> Vec<u8> {
    match at {
        Some(at) => encode(&[b"PEXPIREAT", key.as_bytes(), at.to_string().as_bytes()]),
        None => encode(&[b"PERSIST", key.as_bytes()]),
    }
}

/// The reply of a `DEL`, `PEXPIREAT` or `PERSIST` (an integer).
fn follow_up_reply(reply: Reply) -> Result<()> {
    match reply {
        Reply::Int(_) => Ok(()),
        Reply::Error(e) => Err(server_error(&e)),
        _ => Err(Error::unexpected("unexpected reply to a load's follow-up")),
    }
}

/// Whether a script reply says the server does not have the script yet.
pub(crate) fn is_noscript(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(e) if e.starts_with("NOSCRIPT"))
}

/// A reply of a script that returns an integer.
pub(crate) fn script_reply(reply: Reply) -> Result<i64> {
    match reply {
        Reply::Int(n) => Ok(n),
        Reply::Error(e) => Err(server_error(&e)),
        _ => Err(Error::unexpected("unexpected reply from a script")),
    }
}

/// A call's start: send `C`'s command, or its result without any I/O (an
/// invalid id, a session with nothing changed).
pub enum Begin<C, T> {
    Send(C),
    Done(Result<T>),
}

/// What a reply leads to.
pub enum Finish<C, T> {
    Done(Result<T>),
    /// Send `C`'s (new) command and feed its reply to `C` again.
    Again(C),
}

/// A load in flight on the caller's connection.
pub struct Load {
    store: Store,
    key: String,
    expiry: crate::backend::Expiry,
    command: Vec<u8>,
    /// When the current command was sent (each is timed as a round trip).
    started: Instant,
    /// The load's number (`Store::start_load`), taken when its `GET` was
    /// queued: saves queued after it are saves it sees.
    loaded_at: u64,
    step: LoadStep,
}

/// Which command of a load is in flight.
enum LoadStep {
    Get,
    /// A plain `GET`: the server refused the `GETEX` (`refuses_writes`).
    ReadOnly,
    /// `PEXPIREAT`/`PERSIST`: the expiry the `GETEX` set is not the one the
    /// rules give (the session has its own window, or its deadline falls
    /// inside the window).
    Correct(Record),
    /// `DEL`: past its deadline (`None`: no session), or undecodable (the
    /// error to report).
    Delete(Option<Error>),
}

/// A save in flight on the caller's connection.
pub struct Save {
    store: Store,
    save: PreparedSave,
    args: Vec<Vec<u8>>,
    command: Vec<u8>,
    /// Sent as `EVAL` after the server answered `NOSCRIPT`.
    with_code: bool,
    started: Instant,
}

impl Store {
    /// Where a caller doing its own I/O connects for `wire_load` and
    /// `wire_save`; `None` when this store's loads and saves cannot go over
    /// such a connection (TLS, Sentinel, Cluster, the memory backend).
    pub fn wire_target(&self) -> Option<Target> {
        self.backend().ok()?.wire_target()
    }

    /// `load` over the caller's connection: send the command of `Send`'s
    /// `Load` and give `Load::finish` its reply. `None` when this handle's
    /// loads cannot go over it (no `wire_target`, or a handle from
    /// `with_idle_ttl`, whose window a load script stores): call `load`.
    pub fn wire_load(&self, id: &str) -> Option<Begin<Load, Option<Loaded>>> {
        let expiry = self.expiry();
        if expiry.explicit || !self.blocking_uses_own_socket() {
            return None;
        }
        let Some(key) = self.key(id) else { return Some(Begin::Done(self.count_load(None, Ok(None)))) };
        let expiry = self.plain_load_expiry(&key);
        let command = get_command(&key, expiry.getex_ms);
        let loaded_at = self.start_load();
        Some(Begin::Send(Load { store: self.clone(), key, expiry, command, started: Instant::now(), loaded_at, step: LoadStep::Get }))
    }

    /// `save` over the caller's connection (see `wire_load`); `Done` when
    /// nothing changed (nothing to send) or the id or data is invalid.
    /// `None` when there is no `wire_target`: call `save`.
    pub fn wire_save(&self, id: &str, baseline: &Baseline, data: &crate::SessionData) -> Option<Begin<Save, SaveOutcome>> {
        if !self.blocking_uses_own_socket() {
            return None;
        }
        let save = match self.prepare_save(id, baseline, data) {
            Err(e) => return Some(Begin::Done(Err(e))),
            Ok(Err(unchanged)) => return Some(Begin::Done(Ok(unchanged))),
            Ok(Ok(save)) => save,
        };
        let args = save.update_args();
        let command = script_command(scripts::SCRIPTS.update.get_hash(), None, save.key(), &args);
        Some(Begin::Send(Save { store: self.clone(), save, args, command, with_code: false, started: Instant::now() }))
    }
}

impl Load {
    pub fn command(&self) -> &[u8] {
        &self.command
    }

    /// The load's result from its reply, as `Store::load` gives it, or its
    /// follow-up command.
    pub fn finish(mut self, reply: Reply) -> Finish<Load, Option<Loaded>> {
        let store = self.store.clone();
        match std::mem::replace(&mut self.step, LoadStep::Get) {
            LoadStep::Get if refuses_writes(&reply) => self.then(|key| get_command(key, 0), LoadStep::ReadOnly),
            step @ (LoadStep::Get | LoadStep::ReadOnly) => {
                let mode = if matches!(step, LoadStep::ReadOnly) { GetMode::ReadOnly } else { GetMode::Sliding };
                let sliding = get_reply(reply).and_then(|bytes| mode.sliding(bytes, self.expiry));
                let sliding = store.timed(self.started, sliding);
                match sliding {
                    Ok(Sliding::Missing) => Finish::Done(store.count_load(Some(&self.key), Ok(None))),
                    Ok(Sliding::PastDeadline) => self.then(del_command, LoadStep::Delete(None)),
                    Ok(Sliding::Found { record, correction: Some(at) }) => {
                        self.then(|key| expiry_command(key, at), LoadStep::Correct(record))
                    }
                    Ok(Sliding::Found { record, correction: None }) => self.decode(record),
                    Err(e) if e.kind() == ErrorKind::Codec => self.then(del_command, LoadStep::Delete(Some(e))),
                    Err(e) => Finish::Done(store.count_load(Some(&self.key), Err(e))),
                }
            }
            LoadStep::Correct(record) => match store.timed(self.started, follow_up_reply(reply)) {
                Ok(()) => self.decode(record),
                Err(e) => Finish::Done(store.count_load(Some(&self.key), Err(e))),
            },
            LoadStep::Delete(undecodable) => {
                let deleted = store.timed(self.started, follow_up_reply(reply));
                Finish::Done(store.count_load(Some(&self.key), match undecodable {
                    None => deleted.map(|()| None),
                    // As `Store::load`: the session is gone either way, the
                    // error says whether removing it worked.
                    Some(e) => {
                        let what = if deleted.is_ok() { "it was removed" } else { "removing it failed too" };
                        store.count_error(Err(Error::codec(format!("{}; {what}", e.message()))))
                    }
                }))
            }
        }
    }

    /// Sends `command(key)` next.
    fn then(mut self, command: impl FnOnce(&str) -> Vec<u8>, step: LoadStep) -> Finish<Load, Option<Loaded>> {
        self.command = command(&self.key);
        self.step = step;
        self.started = Instant::now();
        Finish::Again(self)
    }

    fn decode(self, record: Record) -> Finish<Load, Option<Loaded>> {
        match self.store.decode_fetched(Ok(Some(record)), self.loaded_at) {
            Err(e) if e.kind() == ErrorKind::Codec => self.then(del_command, LoadStep::Delete(Some(e))),
            other => Finish::Done(self.store.count_load(Some(&self.key), other)),
        }
    }

    /// The load again, on the engine's own connection: for a call whose
    /// connection closed before its reply came (a load changes nothing but
    /// the expiry, so running it twice is harmless).
    pub async fn retry(self) -> Result<Option<Loaded>> {
        let loaded = self.store.load_key(&self.key, Some(self.expiry)).await;
        self.store.count_load(Some(&self.key), loaded)
    }

    /// The call failed before its reply came (`timeout_error`, a malformed
    /// reply, a refused handshake): counted, and handed back.
    pub fn fail(self, e: Error) -> Error {
        let failed = self.store.count_load(Some(&self.key), self.store.timed(self.started, Err(e)));
        failed.err().unwrap_or_else(|| Error::unexpected("a failed load succeeded"))
    }
}

impl Save {
    pub fn command(&self) -> &[u8] {
        &self.command
    }

    /// The save's outcome from its reply, as `Store::save` gives it; on
    /// `Saved`, `baseline` (the one `wire_save` was given, or its copy) now
    /// describes the stored state.
    pub fn finish(mut self, reply: Reply, baseline: &mut Baseline) -> Finish<Save, SaveOutcome> {
        if !self.with_code && is_noscript(&reply) {
            let script = &scripts::SCRIPTS;
            self.command = script_command(script.update.get_hash(), Some(&script.update_code), self.save.key(), &self.args);
            self.with_code = true;
            return Finish::Again(self);
        }
        let Save { store, save, started, .. } = self;
        Finish::Done(
            store
                .timed(started, script_reply(reply))
                .map(|n| store.finish_save(baseline, save, Updated::from_script(n))),
        )
    }

    /// The save again, on the engine's own connection (see `Load::retry`):
    /// whether the first one landed is unknown, and saving twice is safe
    /// (the same keys get the same values; a swap whose record changed
    /// merges instead).
    pub async fn retry(self, baseline: &mut Baseline) -> Result<SaveOutcome> {
        self.store.send_save(baseline, self.save).await
    }

    /// See `Load::fail`. Whether the save landed is unknown; saving again is
    /// safe (the same keys get the same values).
    pub fn fail(self, e: Error) -> Error {
        self.store.timed(self.started, Err::<(), _>(e)).err().unwrap_or_else(|| Error::unexpected("a failed save succeeded"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_replies_only() {
        assert!(parse(b"$3\r\nab").unwrap().is_none());
        assert!(parse(b"$3\r\nabc\r").unwrap().is_none());
        assert_eq!(parse(b"$3\r\nabc\r\n+OK\r\n").unwrap(), Some((Reply::Bulk(b"abc".to_vec()), 9)));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Reply::Nil, 5)));
        assert!(matches!(parse(b"-WRONGTYPE x\r\n").unwrap(), Some((Reply::Error(e), 14)) if e.starts_with("WRONGTYPE")));
        assert_eq!(parse(b"+OK\r\n:1").unwrap(), Some((Reply::Status, 5)));
        assert_eq!(parse(b":12\r\n").unwrap(), Some((Reply::Int(12), 5)));
        assert!(parse(b"*1\r\n").is_err());
        assert!(parse(b"$x\r\n").is_err());
        // Out of step: no type byte, or a bulk string longer than it said.
        assert!(parse(b"\r\n+OK\r\n").is_err());
        assert!(parse(b"$3\r\nabcd\r\n").is_err());
    }

    /// The socket may cut a reply anywhere: every prefix is "need more",
    /// never a wrong reply or an error.
    #[test]
    fn a_reply_cut_anywhere_waits_for_the_rest() {
        let replies: [(&[u8], Reply); 5] = [
            (b"$5\r\nab\r\nc\r\n", Reply::Bulk(b"ab\r\nc".to_vec())),
            (b"$0\r\n\r\n", Reply::Bulk(Vec::new())),
            (b"$-1\r\n", Reply::Nil),
            (b":-17\r\n", Reply::Int(-17)),
            (b"-ERR x\r\n", Reply::Error("ERR x".into())),
        ];
        for (bytes, reply) in replies {
            for cut in 0..bytes.len() {
                assert_eq!(parse(&bytes[..cut]).unwrap(), None, "{:?} cut at {cut}", String::from_utf8_lossy(bytes));
            }
            assert_eq!(parse(bytes).unwrap(), Some((reply, bytes.len())));
        }
    }

    #[test]
    fn server_errors_map_to_kinds() {
        assert_eq!(server_error("WRONGPASS invalid username-password pair").kind(), ErrorKind::Auth);
        assert_eq!(server_error("NOPERM this user has no permissions to run the 'getex' command").kind(), ErrorKind::Auth);
        assert!(server_error("LOADING Redis is loading").is_temporary());
        assert_eq!(server_error("ERR whatever").kind(), ErrorKind::Unexpected);
        for passing in ["NOREPLICAS Not enough good replicas to write.", "OOM command not allowed", "BUSY Redis is busy", "MISCONF x"] {
            assert!(server_error(passing).is_temporary(), "{passing}");
            assert_eq!(server_error(passing).kind(), ErrorKind::Connection, "{passing}");
        }
    }

    /// A load of a valid id on a store whose Redis is never contacted: the
    /// replies are fed by hand.
    fn load_on(options: &[(&str, &str)]) -> Load {
        let store = Store::from_url_and_options("redis://127.0.0.1:1", options.iter().copied()).unwrap();
        match store.wire_load(&"a".repeat(43)) {
            Some(Begin::Send(load)) => load,
            _ => panic!("a standalone store's load goes over the wire"),
        }
    }

    fn record(fields: &[(&str, &[u8])]) -> Vec<u8> {
        crate::backend::layout::encode_record(fields.iter().map(|(k, v)| (*k, *v)))
    }

    fn follow_up(finish: Finish<Load, Option<Loaded>>) -> Load {
        match finish {
            Finish::Again(load) => load,
            Finish::Done(out) => panic!("expected a follow-up, got {:?}", out.map(|l| l.map(|l| l.data))),
        }
    }

    fn done(finish: Finish<Load, Option<Loaded>>) -> Result<Option<Loaded>> {
        match finish {
            Finish::Done(out) => out,
            Finish::Again(load) => panic!("expected a result, got {:?}", String::from_utf8_lossy(load.command())),
        }
    }

    #[test]
    fn a_load_is_one_getex_and_its_reply() {
        let load = load_on(&[("idle_ttl", "60")]);
        assert!(load.command().starts_with(b"*4\r\n$5\r\nGETEX\r\n"));
        assert!(done(load.finish(Reply::Nil)).unwrap().is_none());
        let codec = b"msgpack".as_slice();
        let bytes = record(&[("m:codec", codec), ("m:created", b"1000"), ("a:n", b"\x01")]);
        let loaded = done(load_on(&[("idle_ttl", "60")]).finish(Reply::Bulk(bytes))).unwrap().unwrap();
        assert_eq!(loaded.data.get("n"), Some(&crate::Value::Int(1)));
    }

    #[test]
    fn a_getex_refused_for_now_is_read_with_a_plain_get_and_no_follow_up() {
        let refused = Reply::Error("NOREPLICAS Not enough good replicas to write.".into());
        let get = follow_up(load_on(&[("idle_ttl", "60")]).finish(refused.clone()));
        assert!(get.command().starts_with(b"*2\r\n$3\r\nGET\r\n"), "{:?}", String::from_utf8_lossy(get.command()));
        // Its own window differs from the store's: a sliding load would correct
        // the expiry; a read-only one cannot, and does not try.
        let bytes = record(&[("m:codec", b"msgpack"), ("m:created", b"1000"), ("m:idle", b"5000"), ("a:n", b"\x01")]);
        let loaded = done(get.finish(Reply::Bulk(bytes))).unwrap().unwrap();
        assert_eq!(loaded.data.get("n"), Some(&crate::Value::Int(1)));
        // Past its deadline: no session, and no DEL it could not do.
        let get = follow_up(load_on(&[("idle_ttl", "60")]).finish(refused));
        let bytes = record(&[("m:codec", b"msgpack"), ("m:created", b"1000"), ("m:deadline", b"2000")]);
        assert!(done(get.finish(Reply::Bulk(bytes))).unwrap().is_none());
    }

    #[test]
    fn follow_ups_go_over_the_same_connection() {
        // The session's own window differs from the store's: corrected.
        let bytes = record(&[("m:codec", b"msgpack"), ("m:created", b"1000"), ("m:idle", b"5000")]);
        let load = follow_up(load_on(&[("idle_ttl", "60")]).finish(Reply::Bulk(bytes)));
        assert!(load.command().starts_with(b"*3\r\n$9\r\nPEXPIREAT\r\n"));
        assert!(done(load.finish(Reply::Int(1))).unwrap().is_some());
        // Past its deadline: deleted, and no session.
        let bytes = record(&[("m:codec", b"msgpack"), ("m:created", b"1000"), ("m:deadline", b"2000")]);
        let load = follow_up(load_on(&[]).finish(Reply::Bulk(bytes)));
        assert!(load.command().starts_with(b"*2\r\n$3\r\nDEL\r\n"));
        assert!(done(load.finish(Reply::Int(1))).unwrap().is_none());
        // Undecodable: deleted, and a Codec error that says so.
        let load = follow_up(load_on(&[]).finish(Reply::Bulk(b"SKv1\xc1".to_vec())));
        assert!(load.command().starts_with(b"*2\r\n$3\r\nDEL\r\n"));
        let e = done(load.finish(Reply::Int(1))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Codec);
        assert!(e.message().ends_with("it was removed"), "{}", e.message());
        // A follow-up Redis refuses fails the load.
        let bytes = record(&[("m:codec", b"msgpack"), ("m:created", b"1000"), ("m:idle", b"5000")]);
        let load = follow_up(load_on(&[("idle_ttl", "60")]).finish(Reply::Bulk(bytes)));
        assert!(done(load.finish(Reply::Error("READONLY replica".into()))).unwrap_err().is_temporary());
    }

    #[test]
    fn a_save_answered_noscript_sends_the_script_itself() {
        let store = Store::from_url_and_options("redis://127.0.0.1:1", [("idle_ttl", "60")]).unwrap();
        let mut baseline = Baseline::empty(store.config().codec);
        let mut data = crate::SessionData::new();
        data.insert("n".into(), crate::Value::Int(1));
        let Some(Begin::Send(save)) = store.wire_save(&"a".repeat(43), &baseline, &data) else { panic!("a save to send") };
        assert!(save.command().starts_with(b"*"));
        assert!(save.command().windows(7).any(|w| w == b"EVALSHA"));
        let save = match save.finish(Reply::Error("NOSCRIPT No matching script".into()), &mut baseline) {
            Finish::Again(save) => save,
            Finish::Done(_) => panic!("NOSCRIPT is answered with EVAL"),
        };
        assert!(save.command().windows(6).any(|w| w == b"\r\nEVAL"));
        match save.finish(Reply::Int(1), &mut baseline) {
            Finish::Done(Ok(SaveOutcome::Saved { written: 1, removed: 0 })) => {}
            _ => panic!("saved"),
        }
        // Nothing changed since: nothing to send.
        assert!(matches!(store.wire_save(&"a".repeat(43), &baseline, &data), Some(Begin::Done(Ok(SaveOutcome::Unchanged)))));
    }

    #[test]
    fn a_save_queued_after_a_load_of_its_session_chains_onto_the_last_own_save() {
        // Loads and saves are ordered by when they are queued, not answered:
        // a load queued before a save cannot have seen it, so once the
        // session is contended (a save merged) a later save of that load's
        // baseline swaps against the record the queued save will write.
        let store = Store::from_url_and_options("redis://127.0.0.1:1", [("idle_ttl", "60")]).unwrap();
        let id = "a".repeat(43);
        let loaded = |bytes: &[u8]| {
            let load = match store.wire_load(&id) {
                Some(Begin::Send(load)) => load,
                _ => panic!("a load to send"),
            };
            let reply = Reply::Bulk(bytes.to_vec());
            move || done(load.finish(reply)).unwrap().unwrap()
        };
        let save = |l: &mut Loaded, name: &str| {
            l.data.insert(name.into(), crate::Value::Int(1));
            match store.wire_save(&id, &l.baseline, &l.data) {
                Some(Begin::Send(save)) => save,
                _ => panic!("a save to send"),
            }
        };
        let finish = |save: Save, reply: i64, l: &mut Loaded| match save.finish(Reply::Int(reply), &mut l.baseline) {
            Finish::Done(Ok(SaveOutcome::Saved { .. })) => {}
            _ => panic!("saved"),
        };
        let r0 = record(&[("m:codec", b"msgpack"), ("m:created", b"1000")]);
        let (a, b) = (loaded(&r0), loaded(&r0));
        let (mut a, mut b) = (a(), b());
        let first = save(&mut a, "a");
        assert_eq!(first.args[1], r0, "a swap against the record as loaded");
        finish(first, 2, &mut a);
        let second = save(&mut b, "b");
        assert_eq!(second.args[1], r0, "not yet contended: nothing remembered");
        finish(second, 1, &mut b);

        // Queued: load x, load y; y saves, then x does; both answered late.
        let r1 = record(&[("m:codec", b"msgpack"), ("m:created", b"1000"), ("a:a", b"\x01"), ("a:b", b"\x01")]);
        let (x, y) = (loaded(&r1), loaded(&r1));
        let (mut x, mut y) = (x(), y());
        let by_y = save(&mut y, "y");
        assert_eq!(by_y.args[1], r1);
        let by_x = save(&mut x, "x");
        assert_eq!(by_x.args[1], by_y.args[2], "x's load came before y's save");
        let chained = by_x.args[2].clone();
        let merged = loaded(&chained)();
        for name in ["a", "b", "x", "y"] {
            assert!(merged.data.contains_key(name), "{name} missing from the chained record");
        }
        finish(by_y, 2, &mut y);
        finish(by_x, 2, &mut x);
        // A load queued after both saw them: its save swaps against what it read.
        let mut z = loaded(&chained)();
        let by_z = save(&mut z, "z");
        assert_eq!(by_z.args[1], chained);
    }

    #[test]
    fn commands_are_resp_arrays() {
        assert_eq!(get_command("k", 0), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(get_command("k", 90), b"*4\r\n$5\r\nGETEX\r\n$1\r\nk\r\n$2\r\nPX\r\n$2\r\n90\r\n");
        assert_eq!(script_command("s", None, "k", &[b"a".to_vec()]), b"*5\r\n$7\r\nEVALSHA\r\n$1\r\ns\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\na\r\n");
        assert!(script_command("s", Some("return 1"), "k", &[]).starts_with(b"*4\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n"));
        let long = vec![b'x'; 1234];
        assert_eq!(encode(&[b"SET", b"", &long]), [b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$1234\r\n".as_slice(), &long, b"\r\n"].concat());
    }
}
