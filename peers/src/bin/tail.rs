//! The tail-latency harness alone, printing its tables:
//!
//! ```text
//! cargo run --release -p fasthog-peers --bin tail -- [--producers N] [--prebuilt] [--rounds N]
//!     [--burst N] [--no-pin] [--poll-us N] [--pace-ns N] [--props16]
//!     [--peers fasthog-client,ringbuf,...]
//! ```
//! See `fasthog_peers::tail` for how it measures.

use fasthog_peers::e2e::ReceiverChild;
use fasthog_peers::peers::Kind;
use fasthog_peers::tail::{self, Config, Mode};
use fasthog_peers::workload::Shape;

#[global_allocator]
static ALLOC: fasthog_peers::alloc::Counting = fasthog_peers::alloc::Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if fasthog_peers::report::child_role(&args) {
        return;
    }
    let mut cfg = Config {
        producers: 1,
        mode: Mode::CallSite,
        rounds: 300,
        burst: 512,
        kinds: Kind::ALL.to_vec(),
        receiver_url: None,
        pin: true,
        poll: None,
        shape: Shape::Typical,
        pace: std::time::Duration::from_nanos(500),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a.as_str() {
            "--producers" => cfg.producers = val().parse().unwrap_or_else(|_| usage("--producers N")),
            "--prebuilt" => cfg.mode = Mode::Prebuilt,
            "--props16" => cfg.shape = Shape::Props16,
            "--pace-ns" => {
                cfg.pace =
                    std::time::Duration::from_nanos(val().parse().unwrap_or_else(|_| usage("--pace-ns N")))
            }
            "--rounds" => cfg.rounds = val().parse().unwrap_or_else(|_| usage("--rounds N")),
            "--burst" => cfg.burst = val().parse().unwrap_or_else(|_| usage("--burst N")),
            "--no-pin" => cfg.pin = false,
            "--poll-us" => {
                cfg.poll = Some(std::time::Duration::from_micros(
                    val().parse().unwrap_or_else(|_| usage("--poll-us N")),
                ))
            }
            "--peers" => {
                cfg.kinds = val()
                    .split(',')
                    .map(|s| Kind::parse(s.trim()).unwrap_or_else(|| usage(&format!("unknown peer {s}"))))
                    .collect()
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let cpus = fasthog_peers::sys::nproc();
    let receiver = cfg
        .kinds
        .iter()
        .any(|k| k.needs_receiver())
        .then(|| ReceiverChild::start(cfg.pin.then_some(cpus - 1), 0).expect("start receiver"));
    cfg.receiver_url = receiver.as_ref().map(|r| r.url().to_string());
    let r = tail::run(&cfg);
    print!("{}", tail::table(&r));
    println!("(took {:.1} s)", r.elapsed.as_secs_f64());
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: tail [--producers N] [--prebuilt] [--rounds N] [--burst N] [--no-pin] [--poll-us N] [--pace-ns N] [--props16] [--peers a,b,...]");
    std::process::exit(2)
}
