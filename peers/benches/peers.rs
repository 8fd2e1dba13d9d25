//! Single-thread capture cost of fasthog and each peer, with a consumer draining on the other
//! core, all in one criterion group:
//!
//! ```text
//! cargo bench -p fasthog-peers --bench peers             # the full run (a few minutes)
//! cargo bench -p fasthog-peers --bench peers -- --test   # each bench once (CI smoke test)
//! ```
//!
//! Each iteration builds the event and captures it (the cost of a call site): the typical
//! event in `peers_build+capture`, 16 properties in `peers_build+capture_16props`; the
//! `prebuilt` group captures a typical event built beforehand. Ring and queue peers push a
//! compact record of the same values (128 and 384 bytes, see `fasthog_peers::workload`). The bench thread runs on CPU 0; the
//! drain threads, fasthog's flusher, posthog-rs's worker and the receiver (in this process)
//! were started on the last CPU. Captures are timed in chunks of 512; after each chunk the
//! bench waits (untimed) until the consumer has taken everything, so no queue ever refuses a
//! capture. A sample times at most 16 384 captures and reports their mean as its per-call time,
//! which bounds the wall time of the two clients that deliver over HTTP.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use fasthog_peers::peers::{setup, Capture, Drainer, Kind, Params, Setup, Visit};
use fasthog_peers::sys;
use fasthog_peers::workload::{user_id, Props16, Typical, Workload};
use fasthog_receiver::{Receiver, ReceiverConfig, Store};

/// Captures per timed chunk; queues hold twice this.
const CHUNK: u64 = 512;
/// Timed captures per sample at most.
const CAP: u64 = 16_384;

struct Register<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    prebuilt: bool,
    cpus: usize,
}

impl Visit for Register<'_, '_> {
    fn visit<P: Capture + 'static>(&mut self, s: Setup<P>) {
        let Setup { kind, mut producers, drainer } = s;
        let mut p = producers.pop().expect("one producer");
        let user = user_id(0);
        // Everything the setup spawned runs on the last CPU; measure on CPU 0.
        sys::pin(&[0]);
        let mut sent = 0u64;
        let settle = |sent: u64| match &drainer {
            Drainer::Spinner(sp) => {
                assert!(sp.wait_consumed(sent, Duration::from_secs(30)), "{} consumer stalled", kind.name());
            }
            Drainer::External { settle, .. } => settle(),
        };
        if let Drainer::Spinner(sp) = &drainer {
            sp.activate();
        }
        let prebuilt = self.prebuilt;
        let mut refused = 0u64;
        self.group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                let n = iters.min(CAP);
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < n {
                    let m = CHUNK.min(n - done);
                    let elapsed = if prebuilt {
                        let events: Vec<_> = (done..done + m).map(|i| p.build(&user, i)).collect();
                        let start = Instant::now();
                        for ev in events {
                            refused += u64::from(!p.capture(black_box(ev)));
                        }
                        start.elapsed()
                    } else {
                        let start = Instant::now();
                        for i in done..done + m {
                            let ev = p.build(black_box(&user), i);
                            refused += u64::from(!p.capture(ev));
                        }
                        start.elapsed()
                    };
                    total += elapsed;
                    sent += m;
                    settle(sent);
                    done += m;
                }
                total.mul_f64(iters as f64 / n as f64)
            })
        });
        let lost = match &drainer {
            Drainer::External { lost, .. } => lost(),
            Drainer::Spinner(_) => 0,
        };
        assert_eq!(refused + lost, 0, "{}: captures refused or dropped", kind.name());
        drop(p);
        drop(drainer);
        sys::pin(&[self.cpus - 1]);
    }
}

fn run<W: Workload>(c: &mut Criterion, name: &str, prebuilt: bool) {
    let cpus = sys::nproc().max(1);
    sys::pin(&[cpus - 1]);
    let receiver = Receiver::start(ReceiverConfig { store: Store::CountOnly, ..Default::default() })
        .expect("start receiver");
    let params = Params {
        producers: 1,
        capacity: (CHUNK * 2) as usize,
        receiver_url: Some(receiver.url()),
        poll: None,
    };
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    for kind in Kind::ALL {
        setup::<W>(kind, &params, &mut Register { group: &mut group, prebuilt, cpus });
    }
    group.finish();
    sys::pin(&(0..cpus).collect::<Vec<_>>());
}

fn call_site(c: &mut Criterion) {
    run::<Typical>(c, "peers_build+capture", false);
}

fn call_site_16(c: &mut Criterion) {
    run::<Props16>(c, "peers_build+capture_16props", false);
}

fn prebuilt(c: &mut Criterion) {
    run::<Typical>(c, "peers_capture_prebuilt", true);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = call_site, call_site_16, prebuilt
}
criterion_main!(benches);
