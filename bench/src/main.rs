//! Sessionkeeper core benchmark: `Store::load` and `Store::save` against
//! `redis-benchmark` on the same Redis server, in the same run, interleaved
//! (ours, peer, ours, peer, ...) so that machine noise hits both sides.
//!
//! Run it through `make bench` (or `scripts/bench-core.sh` with
//! `SK_REDIS_URL` pointing at a private Redis). See bench/README.md.
//!
//! Knobs (environment): BENCH_SECS (measured seconds per run, default 2),
//! BENCH_WARMUP (seconds, default 0.5), BENCH_ROUNDS (default 3), BENCH_TASKS
//! (concurrent tasks and redis-benchmark clients, default 64), BENCH_ONLY
//! (comma-separated phase names, e.g. `load-c1,load-c64`), REDIS_BENCHMARK
//! (the peer binary, default `redis-benchmark`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessionkeeper_core::metrics::Latency;
use sessionkeeper_core::{generate_id, runtime, Map, SaveOutcome, SessionData, Store, Timestamp, Value};

// ---------------------------------------------------------------- settings

struct Settings {
    url: String,
    host: String,
    port: u16,
    secs: f64,
    warmup: f64,
    rounds: usize,
    tasks: usize,
    only: Option<Vec<String>>,
    peer_bin: String,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| die(&format!("{name}={v:?} is not valid"))),
        _ => default,
    }
}

fn die(msg: &str) -> ! {
    eprintln!("sessionkeeper-bench: {msg}");
    std::process::exit(2);
}

/// Host and port of a `redis://[user[:pass]@]host[:port][/db]` URL; the peer
/// tool needs them. Only plain standalone URLs make sense for this bench.
fn host_port(url: &str) -> (String, u16) {
    let rest = url.strip_prefix("redis://").unwrap_or_else(|| die("SK_REDIS_URL must be a plain redis:// URL"));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or_else(|_| die("bad port in SK_REDIS_URL"))),
        None => (authority.to_owned(), 6379),
    }
}

impl Settings {
    fn from_env() -> Settings {
        let url = std::env::var("SK_REDIS_URL")
            .unwrap_or_else(|_| die("SK_REDIS_URL is not set; run through scripts/bench-core.sh or `make bench`"));
        let (host, port) = host_port(&url);
        Settings {
            url,
            host,
            port,
            secs: env_or("BENCH_SECS", 2.0),
            warmup: env_or("BENCH_WARMUP", 0.5),
            rounds: env_or("BENCH_ROUNDS", 3),
            tasks: env_or("BENCH_TASKS", 64),
            only: std::env::var("BENCH_ONLY")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.split(',').map(|p| p.trim().to_owned()).collect()),
            peer_bin: std::env::var("REDIS_BENCHMARK").unwrap_or_else(|_| "redis-benchmark".into()),
        }
    }
}

// ----------------------------------------------------- a tiny RESP client
// Used only between measurements (INFO, SET of the peer's key), so the
// benchmark needs nothing but the core and libc.

#[allow(dead_code)] // the payloads are there for debugging output
enum Reply {
    Simple(String),
    Bulk(Option<Vec<u8>>),
    Int(i64),
    Error(String),
}

fn redis_command(s: &Settings, args: &[&[u8]]) -> Reply {
    let mut stream = TcpStream::connect((s.host.as_str(), s.port)).unwrap_or_else(|e| die(&format!("connect: {e}")));
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    stream.write_all(&req).unwrap_or_else(|e| die(&format!("write: {e}")));
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap_or_else(|e| die(&format!("read: {e}")));
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" => Reply::Simple(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(rest.parse().unwrap_or(0)),
        "$" => {
            let n: i64 = rest.parse().unwrap_or(-1);
            if n < 0 {
                return Reply::Bulk(None);
            }
            let mut buf = vec![0u8; n as usize + 2];
            std::io::Read::read_exact(&mut r, &mut buf).unwrap_or_else(|e| die(&format!("read: {e}")));
            buf.truncate(n as usize);
            Reply::Bulk(Some(buf))
        }
        _ => die(&format!("unexpected reply {line:?}")),
    }
}

fn expect_ok(reply: Reply, what: &str) {
    match reply {
        Reply::Error(e) => die(&format!("{what} failed: {e}")),
        Reply::Simple(_) | Reply::Int(_) | Reply::Bulk(_) => {}
    }
}

/// The arguments of the first command matching `name` that the server sees
/// while `trigger` runs (MONITOR), e.g. the exact GETEX of a load.
fn capture_command(s: &Settings, name: &str, trigger: impl FnOnce()) -> Vec<String> {
    let mut stream = TcpStream::connect((s.host.as_str(), s.port)).unwrap_or_else(|e| die(&format!("connect: {e}")));
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    stream.write_all(b"*1\r\n$7\r\nMONITOR\r\n").unwrap_or_else(|e| die(&format!("write: {e}")));
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).unwrap_or_else(|e| die(&format!("MONITOR: {e}")));
    trigger();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            die(&format!("MONITOR saw no {name}"));
        }
        // +1700000000.123456 [0 127.0.0.1:51234] "EVALSHA" "…" "1" "key" "1800000"
        let Some((_, args)) = line.trim_end().split_once("] ") else { continue };
        let args = unquote_monitor_args(args);
        if args.first().is_some_and(|a| a.eq_ignore_ascii_case(name)) {
            return args;
        }
    }
}

fn unquote_monitor_args(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = Vec::<u8>::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => arg.push(b'\n'),
                    Some('r') => arg.push(b'\r'),
                    Some('t') => arg.push(b'\t'),
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        arg.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
                    }
                    Some(other) => arg.extend_from_slice(other.to_string().as_bytes()),
                    None => {}
                },
                other => arg.extend_from_slice(other.to_string().as_bytes()),
            }
        }
        out.push(String::from_utf8_lossy(&arg).into_owned());
    }
    out
}

/// What the server says about itself: CPU time, per-command call counts,
/// network bytes. Deltas of two snapshots attribute them to one run.
#[derive(Clone, Default)]
struct ServerSnap {
    cpu: f64,
    net_in: u64,
    net_out: u64,
    /// command name -> (calls, usec)
    cmds: BTreeMap<String, (u64, u64)>,
}

fn server_snap(s: &Settings) -> ServerSnap {
    let Reply::Bulk(Some(text)) = redis_command(s, &[b"INFO", b"everything"]) else { die("INFO failed") };
    let text = String::from_utf8_lossy(&text);
    let mut snap = ServerSnap::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        match k {
            "used_cpu_user" | "used_cpu_sys" => snap.cpu += v.parse::<f64>().unwrap_or(0.0),
            "total_net_input_bytes" => snap.net_in = v.parse().unwrap_or(0),
            "total_net_output_bytes" => snap.net_out = v.parse().unwrap_or(0),
            _ => {
                if let Some(name) = k.strip_prefix("cmdstat_") {
                    let field = |f: &str| {
                        v.split(',').find_map(|kv| kv.strip_prefix(f)).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
                    };
                    snap.cmds.insert(name.to_owned(), (field("calls="), field("usec=")));
                }
            }
        }
    }
    snap
}

#[derive(Clone, Default)]
struct ServerDelta {
    cpu: f64,
    net_in: u64,
    net_out: u64,
    cmds: BTreeMap<String, (u64, u64)>,
}

fn server_delta(a: &ServerSnap, b: &ServerSnap) -> ServerDelta {
    let mut cmds = BTreeMap::new();
    for (name, &(calls, usec)) in &b.cmds {
        let (c0, u0) = a.cmds.get(name).copied().unwrap_or((0, 0));
        // Our own INFO calls are not part of what is measured.
        if calls > c0 && name != "info" {
            cmds.insert(name.clone(), (calls - c0, usec.saturating_sub(u0)));
        }
    }
    ServerDelta { cpu: b.cpu - a.cpu, net_in: b.net_in - a.net_in, net_out: b.net_out - a.net_out, cmds }
}

// ----------------------------------------------------------- CPU of us

/// CPU seconds (user, sys) and context switches of this process (all its
/// threads) or of its waited-for children.
#[derive(Clone, Copy, Default)]
struct Usage {
    user: f64,
    sys: f64,
    /// Voluntary context switches: a thread went to sleep waiting (futex,
    /// epoll). Each hand-off between threads costs one.
    csw: f64,
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, o: Usage) -> Usage {
        Usage { user: self.user - o.user, sys: self.sys - o.sys, csw: self.csw - o.csw }
    }
}

impl Usage {
    fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

fn rusage(who: libc::c_int) -> Usage {
    // SAFETY: getrusage fills the struct we own; all-zero is a valid rusage.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage { user: tv(u.ru_utime), sys: tv(u.ru_stime), csw: u.ru_nvcsw as f64 }
}

// ------------------------------------------------------------- sessions

/// A realistic small session: what a Rails/Django/Express app keeps after login.
fn session(i: usize) -> SessionData {
    let mut flash = Map::new();
    flash.insert("notice".into(), Value::from("Signed in successfully."));
    let mut data = SessionData::new();
    data.insert("user_id".into(), Value::Int(4_200_000 + i as i64));
    data.insert("_csrf_token".into(), Value::Str(generate_id().expect("random id")));
    data.insert("flash".into(), Value::Map(flash));
    data.insert("last_seen".into(), Value::Timestamp(Timestamp::new(1_795_000_000, 123_456_000).unwrap()));
    data.insert("locale".into(), Value::from("en-GB"));
    data
}

fn open_store(s: &Settings) -> Store {
    Store::from_url_and_options(&s.url, [("key_prefix", "skbench:")]).unwrap_or_else(|e| die(&format!("open: {e:?}")))
}

// ------------------------------------------------------------- one run

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Load,
    Save,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// `BlockingStore` calls from this thread: how Python and C call the core
    /// (loads on the thread's own socket, other calls through the runtime).
    BlockOn,
    /// `n` tasks spawned on the core runtime, each looping: how Node's calls
    /// (and a many-threaded app server) reach it.
    Tasks(usize),
}

#[derive(Clone, Default)]
struct Run {
    ops: u64,
    secs: f64,
    /// Our process (all its threads), or the redis-benchmark child.
    client: Usage,
    server: ServerDelta,
    /// Ops counted exactly between the two server snapshots (for per-op
    /// command counts); may differ from `ops` for concurrent runs.
    exact_ops: u64,
    exact_server: ServerDelta,
    /// Our: the core's own stats() round-trip percentiles; peer: its CSV.
    lat: Latency,
    peer_p50_us: f64,
    peer_p99_us: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn client_us_per_op(&self) -> f64 {
        self.client.cpu() * 1e6 / self.ops as f64
    }
    fn client_sys_share(&self) -> f64 {
        self.client.sys / self.client.cpu().max(1e-9)
    }
    fn client_csw_per_op(&self) -> f64 {
        self.client.csw / self.ops as f64
    }
    fn server_us_per_op(&self) -> f64 {
        self.server.cpu * 1e6 / self.ops as f64
    }
}

fn check_saved(out: sessionkeeper_core::Result<SaveOutcome>) {
    match out {
        Ok(SaveOutcome::Saved { written: 1, removed: 0 }) => {}
        other => die(&format!("unexpected save outcome {other:?}")),
    }
}

fn bump(data: &mut SessionData, n: u64) {
    let ts = Timestamp::new(1_795_000_000 + (n / 1_000_000_000) as i64, (n % 1_000_000_000) as u32).unwrap();
    data.insert("last_seen".into(), Value::Timestamp(ts));
}

/// One task's loop: `op` on its own session until `stop`.
async fn worker(store: Store, id: String, op: Op, counter: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    match op {
        Op::Load => {
            while !stop.load(Relaxed) {
                match store.load(&id).await {
                    Ok(Some(_)) => {}
                    other => die(&format!("load failed: {:?}", other.map(|o| o.is_some()))),
                }
                counter.fetch_add(1, Relaxed);
            }
        }
        Op::Save => {
            let loaded = store.load(&id).await.ok().flatten().unwrap_or_else(|| die("session vanished"));
            let (mut data, mut baseline) = (loaded.data, loaded.baseline);
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                n += 1;
                bump(&mut data, n);
                check_saved(store.save(&id, &mut baseline, &data).await);
                counter.fetch_add(1, Relaxed);
            }
        }
    }
}

fn ours(s: &Settings, op: Op, mode: Mode, ids: &[String]) -> Run {
    // A store per run: its own connection and its own stats().
    let store = open_store(s);
    let warm = Duration::from_secs_f64(s.warmup);
    let dur = Duration::from_secs_f64(s.secs);
    let mut run = Run::default();
    match mode {
        Mode::BlockOn => {
            let id = &ids[0];
            let blocking = sessionkeeper_core::BlockingStore::new(store.clone());
            let loaded = blocking.load(id).ok().flatten().unwrap_or_else(|| die("session vanished"));
            let (mut data, mut baseline) = (loaded.data, loaded.baseline);
            let mut n = 0u64;
            let mut one = |n: &mut u64| match op {
                Op::Load => {
                    if !matches!(blocking.load(id), Ok(Some(_))) {
                        die("load failed");
                    }
                }
                Op::Save => {
                    *n += 1;
                    bump(&mut data, *n);
                    check_saved(blocking.save(id, &mut baseline, &data));
                }
            };
            let t = Instant::now();
            while t.elapsed() < warm {
                one(&mut n);
            }
            // Nothing is in flight between two blocking calls, so the counts
            // between these snapshots are exact.
            let before = server_snap(s);
            let stats_before = store.stats().round_trips.count;
            let cpu0 = rusage(libc::RUSAGE_SELF);
            let t0 = Instant::now();
            let mut ops = 0u64;
            while t0.elapsed() < dur {
                one(&mut n);
                ops += 1;
            }
            run.secs = t0.elapsed().as_secs_f64();
            run.client = rusage(libc::RUSAGE_SELF) - cpu0;
            let after = server_snap(s);
            run.ops = ops;
            run.server = server_delta(&before, &after);
            run.exact_ops = ops;
            run.exact_server = run.server.clone();
            assert_eq!(store.stats().round_trips.count - stats_before, ops);
        }
        Mode::Tasks(n) => {
            let counter = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let before_all = server_snap(s);
            let handles: Vec<_> = (0..n)
                .map(|i| runtime::spawn(worker(store.clone(), ids[i % ids.len()].clone(), op, counter.clone(), stop.clone())))
                .collect();
            std::thread::sleep(warm);
            let before = server_snap(s);
            let c0 = counter.load(Relaxed);
            let cpu0 = rusage(libc::RUSAGE_SELF);
            let t0 = Instant::now();
            std::thread::sleep(dur);
            let c1 = counter.load(Relaxed);
            run.secs = t0.elapsed().as_secs_f64();
            run.client = rusage(libc::RUSAGE_SELF) - cpu0;
            let after = server_snap(s);
            stop.store(true, Relaxed);
            for h in handles {
                runtime::block_on(h).unwrap_or_else(|e| die(&format!("task failed: {e}")));
            }
            let after_all = server_snap(s);
            run.ops = c1 - c0;
            run.server = server_delta(&before, &after);
            // Saves begin with one load per task (for the baseline).
            let extra_loads = if op == Op::Save { n as u64 } else { 0 };
            run.exact_ops = counter.load(Relaxed) + extra_loads;
            run.exact_server = server_delta(&before_all, &after_all);
        }
    }
    run.lat = store.stats().round_trips;
    run
}

// ------------------------------------------------------------ the peer

/// What redis-benchmark runs: one of its tests (`-t get -d SIZE`), or a
/// literal command (the exact GETEX a load sends, captured with MONITOR).
enum PeerCmd<'a> {
    Test(&'a str, usize),
    Literal(&'a [String]),
}

fn peer(s: &Settings, cmd: PeerCmd<'_>, clients: usize, requests: u64) -> Run {
    let before = server_snap(s);
    let cpu0 = rusage(libc::RUSAGE_CHILDREN);
    let t0 = Instant::now();
    let mut command = Command::new(&s.peer_bin);
    command.args(["-h", &s.host, "-p", &s.port.to_string()]);
    command.args(["-c", &clients.to_string(), "-n", &requests.to_string(), "--csv"]);
    match cmd {
        PeerCmd::Test(test, size) => command.args(["-d", &size.to_string(), "-t", test]),
        PeerCmd::Literal(args) => command.args(args),
    };
    let out = command
        .output()
        .unwrap_or_else(|e| die(&format!("cannot run {}: {e}", s.peer_bin)));
    let wall = t0.elapsed().as_secs_f64();
    let client = rusage(libc::RUSAGE_CHILDREN) - cpu0;
    let after = server_snap(s);
    if !out.status.success() {
        die(&format!("{} failed: {}", s.peer_bin, String::from_utf8_lossy(&out.stderr)));
    }
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The result row is the one whose second field is a number (not the header).
    let row = stdout
        .lines()
        .map(|l| l.split("\",\"").map(|f| f.trim_matches('"').to_owned()).collect::<Vec<_>>())
        .find(|f| f.get(1).is_some_and(|x| x.parse::<f64>().is_ok()))
        .unwrap_or_else(|| die(&format!("no result row in redis-benchmark output: {stdout}")));
    let num = |i: usize| row.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
    let rps = num(1);
    let server = server_delta(&before, &after);
    Run {
        ops: requests,
        // The tool's own rate (it excludes its start-up); wall time is close.
        secs: if rps > 0.0 { requests as f64 / rps } else { wall },
        client,
        exact_ops: requests,
        exact_server: server.clone(),
        server,
        lat: Latency::default(),
        peer_p50_us: num(4) * 1000.0,
        peer_p99_us: num(6) * 1000.0,
    }
}

// ------------------------------------------------------------ reporting

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The run whose rate is the median one (its latencies and CPU are shown).
fn median_run(runs: &[Run]) -> &Run {
    let mut idx: Vec<usize> = (0..runs.len()).collect();
    idx.sort_by(|&a, &b| runs[a].rate().total_cmp(&runs[b].rate()));
    &runs[idx[(idx.len() - 1) / 2]]
}

struct Pair {
    name: &'static str,
    what: String,
    op: Op,
    mode: Mode,
    peer_test: &'static str,
    peer_clients: usize,
    /// The target ratio, when there is one.
    target: Option<f64>,
    ours: Vec<Run>,
    peer: Vec<Run>,
    /// Loads only: redis-benchmark sending the very GETEX a load sends,
    /// which splits the gap into server-side and client-side cost.
    same: Vec<Run>,
}

fn main() {
    let s = Settings::from_env();
    let rounds = s.rounds.max(1);
    let tasks = s.tasks.max(1);

    // Sessions: one per task, so concurrent tasks act like distinct users.
    let setup = open_store(&s);
    let ids: Vec<String> = (0..tasks)
        .map(|i| runtime::block_on(setup.create(&session(i))).unwrap_or_else(|e| die(&format!("create: {e:?}"))).0)
        .collect();
    // The first load of the run (connects).
    let loaded = runtime::block_on(setup.load(&ids[0])).ok().flatten().unwrap_or_else(|| die("load after create failed"));
    let key = sessionkeeper_core::storage_key(&setup.config().key_prefix, &ids[0]).unwrap_or_default();
    let record_bytes = match redis_command(&s, &[b"STRLEN", key.as_bytes()]) {
        Reply::Int(n) => n as usize,
        _ => die("STRLEN of the stored record failed"),
    };
    let msgpack_bytes = sessionkeeper_core::codec::encode_map(&loaded.data).map(|b| b.len()).unwrap_or(0);
    // The peer's GET reads a value as big as the whole stored record.
    let size = record_bytes.max(1);
    expect_ok(redis_command(&s, &[b"SET", b"key:__rand_int__", &vec![b'x'; size]]), "SET of the peer's key");
    expect_ok(redis_command(&s, &[b"DEL", b"myhash"]), "DEL of the peer's hash");
    // The exact command one load sends, for the same-command peer.
    let load_cmd = capture_command(&s, "GETEX", || {
        if !matches!(runtime::block_on(setup.load(&ids[0])), Ok(Some(_))) {
            die("load failed");
        }
    });
    let version = match redis_command(&s, &[b"INFO", b"server"]) {
        Reply::Bulk(Some(t)) => String::from_utf8_lossy(&t)
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:").map(str::to_owned))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));

    println!("sessionkeeper-bench: {} (redis {version}), {rounds} rounds x {}s (+{}s warm-up), {tasks} tasks", s.url, s.secs, s.warmup);
    println!(
        "session: 5 keys, {record_bytes} bytes stored per record (fields + values; whole map as one MessagePack: {msgpack_bytes} bytes); \
         peer GET value and HSET value: -d {size}"
    );
    println!("core runtime: {workers} worker threads (available_parallelism clamped to 1..4); cpus: {}", num_cpus());
    println!();

    let mut pairs = vec![
        Pair {
            name: "load-c1",
            what: "load, 1 caller (BlockingStore)".into(),
            op: Op::Load,
            mode: Mode::BlockOn,
            peer_test: "get",
            peer_clients: 1,
            target: Some(0.9),
            ours: vec![],
            peer: vec![],
            same: vec![],
        },
        Pair {
            name: "load-task1",
            what: "load, 1 task on the runtime".into(),
            op: Op::Load,
            mode: Mode::Tasks(1),
            peer_test: "get",
            peer_clients: 1,
            target: Some(0.9),
            ours: vec![],
            peer: vec![],
            same: vec![],
        },
        Pair {
            name: "load-c64",
            what: format!("load, {tasks} tasks"),
            op: Op::Load,
            mode: Mode::Tasks(tasks),
            peer_test: "get",
            peer_clients: tasks,
            target: Some(0.8),
            ours: vec![],
            peer: vec![],
            same: vec![],
        },
        Pair {
            name: "save-c1",
            what: "save 1 key, 1 caller (BlockingStore)".into(),
            op: Op::Save,
            mode: Mode::BlockOn,
            peer_test: "hset",
            peer_clients: 1,
            target: None,
            ours: vec![],
            peer: vec![],
            same: vec![],
        },
        Pair {
            name: "save-c64",
            what: format!("save 1 key, {tasks} tasks"),
            op: Op::Save,
            mode: Mode::Tasks(tasks),
            peer_test: "hset",
            peer_clients: tasks,
            target: None,
            ours: vec![],
            peer: vec![],
            same: vec![],
        },
    ];
    if let Some(only) = &s.only {
        pairs.retain(|p| only.iter().any(|o| o == p.name));
        if pairs.is_empty() {
            die("BENCH_ONLY matched no phase (load-c1, load-task1, load-c64, save-c1, save-c64)");
        }
    }

    for round in 1..=rounds {
        for p in pairs.iter_mut() {
            let o = ours(&s, p.op, p.mode, &ids);
            let requests = ((o.rate() * s.secs) as u64).clamp(20_000, 20_000_000);
            let q = peer(&s, PeerCmd::Test(p.peer_test, size), p.peer_clients, requests);
            if p.op == Op::Load {
                p.same.push(peer(&s, PeerCmd::Literal(&load_cmd), p.peer_clients, requests));
            }
            eprintln!(
                "round {round} {:<11} ours {:>7.0} ops/s (cpu/op {:>5.1} µs here, {:>5.1} server) | {:>4} -c {:<3} {:>7.0} ops/s (cpu/op {:>5.1} µs there, {:>5.1} server) | ratio {:.3}",
                p.name,
                o.rate(),
                o.client_us_per_op(),
                o.server_us_per_op(),
                p.peer_test.to_uppercase(),
                p.peer_clients,
                q.rate(),
                q.client_us_per_op(),
                q.server_us_per_op(),
                o.rate() / q.rate()
            );
            p.ours.push(o);
            p.peer.push(q);
        }
    }

    println!("## Throughput (median of {rounds} interleaved rounds)\n");
    println!("| phase | ours ops/s | peer | peer ops/s | ratio | per-round ratios | target | met |");
    println!("|---|---:|---|---:|---:|---|---:|---|");
    for p in &pairs {
        let ours_m = median(p.ours.iter().map(Run::rate).collect());
        let peer_m = median(p.peer.iter().map(Run::rate).collect());
        let ratio = ours_m / peer_m;
        let per_round: Vec<String> = p.ours.iter().zip(&p.peer).map(|(o, q)| format!("{:.2}", o.rate() / q.rate())).collect();
        let (target, met) = match p.target {
            Some(t) => (format!("≥ {t:.1}×"), if ratio >= t { "yes" } else { "**no**" }.to_owned()),
            None => ("—".into(), "(reference)".into()),
        };
        println!(
            "| {} | {:.0} | `redis-benchmark -c {} -t {}` | {:.0} | {:.2}× | {} | {} | {} |",
            p.what,
            ours_m,
            p.peer_clients,
            p.peer_test,
            peer_m,
            ratio,
            per_round.join(" "),
            target,
            met
        );
    }

    let loads: Vec<&Pair> = pairs.iter().filter(|p| !p.same.is_empty()).collect();
    if !loads.is_empty() {
        println!("\n## Where the load gap comes from\n");
        println!("`same command` is redis-benchmark sending the exact command a load sends (a `GETEX`, captured with MONITOR):");
        println!("the server does the same work as for ours, the client is redis-benchmark's C loop. So `same/GET` is the");
        println!("server-side cost of the load command against a plain GET, and `ours/same` is the cost of our client side");
        println!("(runtime hand-offs, RESP parsing, decoding into the value model, change-detection baseline).\n");
        println!("| phase | GET ops/s | same command ops/s | ours ops/s | same/GET | ours/same | ours/GET | same command: client / server CPU µs/op, p50/p99 µs |");
        println!("|---|---:|---:|---:|---:|---:|---:|---|");
        for p in &loads {
            let get = median(p.peer.iter().map(Run::rate).collect());
            let same = median(p.same.iter().map(Run::rate).collect());
            let ours = median(p.ours.iter().map(Run::rate).collect());
            let m = median_run(&p.same);
            println!(
                "| {} | {:.0} | {:.0} | {:.0} | {:.2}× | {:.2}× | {:.2}× | {:.1} / {:.1}, {:.0}/{:.0} |",
                p.what,
                get,
                same,
                ours,
                same / get,
                ours / same,
                ours / get,
                m.client_us_per_op(),
                m.server_us_per_op(),
                m.peer_p50_us,
                m.peer_p99_us
            );
        }
    }

    println!("\n## Cost per operation (median run)\n");
    println!("CPU is user+sys µs per op (sys share in brackets); csw = voluntary context switches per op of the client process.\n");
    println!("| phase | ours: client CPU | ours: csw | ours: server CPU | peer: client CPU | peer: csw | peer: server CPU | ours latency p50/p90/p99/p99.9 µs (core stats()) | peer latency p50/p99 µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|---|");
    for p in &pairs {
        let o = median_run(&p.ours);
        let q = median_run(&p.peer);
        println!(
            "| {} | {:.1} ({:.0}% sys) | {:.2} | {:.1} | {:.1} ({:.0}% sys) | {:.2} | {:.1} | {}/{}/{}/{} | {:.0}/{:.0} |",
            p.what,
            o.client_us_per_op(),
            o.client_sys_share() * 100.0,
            o.client_csw_per_op(),
            o.server_us_per_op(),
            q.client_us_per_op(),
            q.client_sys_share() * 100.0,
            q.client_csw_per_op(),
            q.server_us_per_op(),
            o.lat.p50_us,
            o.lat.p90_us,
            o.lat.p99_us,
            o.lat.p999_us,
            q.peer_p50_us,
            q.peer_p99_us
        );
    }

    println!("\n## Redis commands per operation (INFO commandstats delta / ops; `info` excluded)\n");
    for p in &pairs {
        let o = &p.ours[0];
        let q = &p.peer[0];
        let describe = |r: &Run| -> String {
            let ops = r.exact_ops.max(1) as f64;
            let cmds: Vec<String> = r
                .exact_server
                .cmds
                .iter()
                .map(|(name, (calls, usec))| {
                    format!("{name} {:.3} ({:.1} µs server each)", *calls as f64 / ops, *usec as f64 / (*calls).max(1) as f64)
                })
                .collect();
            format!(
                "{}; {:.0} B in / {:.0} B out per op",
                cmds.join(", "),
                r.exact_server.net_in as f64 / ops,
                r.exact_server.net_out as f64 / ops
            )
        };
        println!("- {} ({} ops): {}", p.what, o.exact_ops, describe(o));
        println!("  - peer `-t {} -c {}` ({} ops): {}", p.peer_test, p.peer_clients, q.exact_ops, describe(q));
    }
    // The headline check: one GETEX, nothing else sent by the client, per load.
    if let Some(p) = pairs.iter().find(|p| p.op == Op::Load) {
        let o = &p.ours[0];
        let getex = o.exact_server.cmds.get("getex").map_or(0, |c| c.0);
        let all: u64 = o.exact_server.cmds.values().map(|c| c.0).sum();
        println!(
            "\nround trips per load: {:.3} GETEX and {:.3} commands in all per load ({getex} GETEX, {all} commands for {} loads)",
            getex as f64 / o.exact_ops.max(1) as f64,
            all as f64 / o.exact_ops.max(1) as f64,
            o.exact_ops
        );
    }
    // Progress went to stderr; make sure it is not interleaved with the table.
    std::io::stdout().flush().ok();
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}
