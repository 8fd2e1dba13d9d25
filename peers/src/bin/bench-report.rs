//! The one command: `cargo run --release -p fasthog-peers --bin bench-report` (or
//! `scripts/bench-report`). See `fasthog_peers::report`.

#[global_allocator]
static ALLOC: fasthog_peers::alloc::Counting = fasthog_peers::alloc::Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if fasthog_peers::report::child_role(&args) {
        return;
    }
    let options = match fasthog_peers::report::Options::parse(&args) {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            eprintln!("{}", fasthog_peers::report::USAGE);
            std::process::exit(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful numbers");
    }
    match fasthog_peers::report::run(&options) {
        Ok(path) => println!("{}", path.display()),
        Err(e) => {
            eprintln!("bench-report failed: {e}");
            std::process::exit(1);
        }
    }
}
