//! Counters and a latency histogram per store, cheap enough for every call
//! (relaxed atomics, no locks).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::error::ErrorKind;

/// Log-linear buckets: 8 per power of two, so a reported percentile is
/// within 12.5% of the true value. 320 buckets reach past 2^40 µs.
const SUB_BITS: u32 = 3;
const SUBS: u64 = 1 << SUB_BITS;
const BUCKETS: usize = 320;

pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS],
}

fn bucket_of(micros: u64) -> usize {
    if micros < SUBS {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros() as u64; // >= SUB_BITS
    let sub = (micros >> (exp - SUB_BITS as u64)) & (SUBS - 1);
    (SUBS + (exp - SUB_BITS as u64) * SUBS + sub).min(BUCKETS as u64 - 1) as usize
}

/// The upper bound of a bucket, in microseconds.
fn bucket_upper(index: usize) -> u64 {
    let i = index as u64;
    if i < SUBS {
        return i;
    }
    let exp = (i - SUBS) / SUBS + SUB_BITS as u64;
    let sub = (i - SUBS) % SUBS;
    ((SUBS + sub + 1) << (exp - SUB_BITS as u64)) - 1
}

impl Histogram {
    fn new() -> Self {
        Histogram { counts: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    fn record(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(micros)].fetch_add(1, Relaxed);
    }

    fn percentiles(&self) -> Latency {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let at = |q: f64| -> u64 {
            if total == 0 {
                return 0;
            }
            let rank = ((total as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return bucket_upper(i);
                }
            }
            bucket_upper(BUCKETS - 1)
        };
        Latency { count: total, p50_us: at(0.5), p90_us: at(0.9), p99_us: at(0.99), p999_us: at(0.999), max_us: at(1.0) }
    }
}

/// Round-trip latency percentiles, in microseconds (bucket upper bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// A snapshot of a store's counters since it was opened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    pub loads: u64,
    pub hits: u64,
    pub misses: u64,
    pub saves: u64,
    /// Saves that found nothing changed and sent nothing.
    pub skipped_saves: u64,
    /// Saves that found the session destroyed or expired (not re-created).
    pub gone_saves: u64,
    /// Saves that found the session changed by another save since their
    /// load (one not of this process, or not yet known to it) and merged
    /// their changes into it on the server: a measure of contention.
    pub merged_saves: u64,
    pub creates: u64,
    pub destroys: u64,
    /// Top-level keys written and removed by saves and creates.
    pub keys_written: u64,
    pub keys_removed: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Ids refused without contacting Redis.
    pub invalid_ids: u64,
    /// Errors by kind name (`ErrorKind::name`), every kind listed.
    pub errors: Vec<(&'static str, u64)>,
    pub round_trips: Latency,
}

impl Stats {
    /// Every counter with its snake_case name, so bindings expose new
    /// counters without listing them again.
    pub fn counters(&self) -> [(&'static str, u64); 14] {
        [
            ("loads", self.loads),
            ("hits", self.hits),
            ("misses", self.misses),
            ("saves", self.saves),
            ("skipped_saves", self.skipped_saves),
            ("gone_saves", self.gone_saves),
            ("merged_saves", self.merged_saves),
            ("creates", self.creates),
            ("destroys", self.destroys),
            ("keys_written", self.keys_written),
            ("keys_removed", self.keys_removed),
            ("bytes_read", self.bytes_read),
            ("bytes_written", self.bytes_written),
            ("invalid_ids", self.invalid_ids),
        ]
    }
}

pub(crate) struct Metrics {
    pub loads: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub saves: AtomicU64,
    pub skipped_saves: AtomicU64,
    pub gone_saves: AtomicU64,
    pub merged_saves: AtomicU64,
    pub creates: AtomicU64,
    pub destroys: AtomicU64,
    pub keys_written: AtomicU64,
    pub keys_removed: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub invalid_ids: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    latency: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let z = || AtomicU64::new(0);
        Metrics {
            loads: z(),
            hits: z(),
            misses: z(),
            saves: z(),
            skipped_saves: z(),
            gone_saves: z(),
            merged_saves: z(),
            creates: z(),
            destroys: z(),
            keys_written: z(),
            keys_removed: z(),
            bytes_read: z(),
            bytes_written: z(),
            invalid_ids: z(),
            errors: std::array::from_fn(|_| z()),
            latency: Histogram::new(),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn round_trip(&self, d: Duration) {
        self.latency.record(d);
    }

    pub fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        Stats {
            loads: g(&self.loads),
            hits: g(&self.hits),
            misses: g(&self.misses),
            saves: g(&self.saves),
            skipped_saves: g(&self.skipped_saves),
            gone_saves: g(&self.gone_saves),
            merged_saves: g(&self.merged_saves),
            creates: g(&self.creates),
            destroys: g(&self.destroys),
            keys_written: g(&self.keys_written),
            keys_removed: g(&self.keys_removed),
            bytes_read: g(&self.bytes_read),
            bytes_written: g(&self.bytes_written),
            invalid_ids: g(&self.invalid_ids),
            errors: ErrorKind::ALL.iter().map(|k| (k.name(), g(&self.errors[k.index()]))).collect(),
            round_trips: self.latency.percentiles(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values() {
        for v in [0u64, 1, 7, 8, 9, 15, 16, 100, 1000, 12345, 1 << 30] {
            let b = bucket_of(v);
            assert!(bucket_upper(b) >= v, "{v} -> bucket {b} upper {}", bucket_upper(b));
            if b > 0 {
                assert!(bucket_upper(b - 1) < v, "{v} not above previous bucket");
            }
            assert!(bucket_upper(b) as f64 <= (v as f64) * 1.125 + 1.0);
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p = h.percentiles();
        assert_eq!(p.count, 1000);
        assert!((500..=563).contains(&p.p50_us), "{p:?}");
        assert!((990..=1125).contains(&p.p99_us), "{p:?}");
        assert!(p.max_us >= 1000);
    }
}
