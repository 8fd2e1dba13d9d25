//! What the receiver keeps: counts, the request log, the uuid set and the stored events.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufWriter, Write};

use serde_json::Value;

use crate::{ReceiverStats, RequestRecord, Store};

/// Where accepted events go, opened.
enum Sink {
    Memory(Vec<Value>),
    Jsonl(BufWriter<File>),
    CountOnly,
}

/// Everything behind the receiver's one state lock.
pub(crate) struct State {
    stats: ReceiverStats,
    uuids: HashSet<u128, BuildHasherDefault<UuidHasher>>,
    sink: Sink,
    records: Vec<RequestRecord>,
}

/// Events of one accepted request, prepared outside the lock.
pub(crate) enum Prepared {
    Values(Vec<Value>),
    Lines(Vec<u8>),
    Count,
}

impl State {
    pub fn open(store: &Store) -> io::Result<State> {
        let sink = match store {
            Store::Memory => Sink::Memory(Vec::new()),
            Store::Jsonl(path) => {
                Sink::Jsonl(BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?))
            }
            Store::CountOnly => Sink::CountOnly,
        };
        Ok(State { stats: ReceiverStats::default(), uuids: HashSet::default(), sink, records: Vec::new() })
    }

    /// Turns accepted JSON into what this store keeps. Costly, so done before locking.
    pub fn prepare(store: &Store, json: &[u8]) -> Prepared {
        match store {
            Store::Memory => Prepared::Values(crate::capture::events_to_store(json)),
            Store::Jsonl(_) => {
                let mut lines = Vec::new();
                for event in crate::capture::events_to_store(json) {
                    // Writing a `Value` into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut lines, &event);
                    lines.push(b'\n');
                }
                Prepared::Lines(lines)
            }
            Store::CountOnly => Prepared::Count,
        }
    }

    /// Stores one request's events and counts them as accepted.
    pub fn store(&mut self, prepared: Prepared, events: usize, uuids: &[u128]) -> io::Result<()> {
        match (&mut self.sink, prepared) {
            (Sink::Memory(all), Prepared::Values(values)) => all.extend(values),
            (Sink::Jsonl(file), Prepared::Lines(lines)) => {
                file.write_all(&lines)?;
                // Readers of the file see each request whole as soon as it is answered.
                file.flush()?;
            }
            _ => {}
        }
        self.stats.events_accepted += events as u64;
        self.uuids.extend(uuids.iter().copied());
        self.stats.unique_uuids = self.uuids.len() as u64;
        Ok(())
    }

    /// Counts a finished request and logs it.
    pub fn record(&mut self, record: RequestRecord, bytes: u64) {
        self.stats.requests += 1;
        *self.stats.by_status.entry(record.status).or_default() += 1;
        self.stats.gzip_requests += u64::from(record.gzip);
        self.stats.bytes_received += bytes;
        self.records.push(record);
    }

    pub fn stats(&self) -> &ReceiverStats {
        &self.stats
    }

    pub fn events(&self) -> &[Value] {
        match &self.sink {
            Sink::Memory(all) => all,
            _ => &[],
        }
    }

    pub fn records(&self) -> &[RequestRecord] {
        &self.records
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Jsonl(file) => file.flush(),
            _ => Ok(()),
        }
    }
}

/// Hashes a UUID by folding its halves and multiplying (as FxHash does): UUIDs are already
/// random, so SipHash's strength is wasted on the hot path of counting mode.
#[derive(Default)]
pub(crate) struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64 ^ (n >> 64) as u64);
    }
}
