//! `fasthog-receiver`: run a local PostHog-compatible receiver until killed.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use fasthog_receiver::{Fault, Receiver, ReceiverConfig, Store};

const USAGE: &str = "\
usage: fasthog-receiver [options]
  --port N            listen on 127.0.0.1:N (default: a free port)
  --jsonl FILE        append accepted events to FILE, one per line
  --count-only        validate and count only (for throughput runs)
  --fail LIST         answer the first requests with these faults, e.g. 503,503,429
                      (a status code, or drop, hang, delay:MS)
  --retry-after V     Retry-After header value for the --fail statuses
  --delay-ms N        wait N ms before handling every request
  --api-key KEY       accept only this api key (others get 401)
  --body-limit BYTES  largest request body as sent (default 20 MiB)
  -h, --help          print this help and exit
Values go after a space or an '=' (--port 8111, --port=8111).";

fn main() -> ExitCode {
    let (cfg, faults) = match parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(cfg, faults)) => (cfg, faults),
        Ok(Command::Help) => {
            println!("fasthog-receiver: a local PostHog-compatible /batch/ receiver\n\n{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fasthog-receiver: {e}\nrun `fasthog-receiver --help` for the options");
            return ExitCode::from(2);
        }
    };
    let receiver = match Receiver::start(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fasthog-receiver: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    receiver.push_faults(faults);
    println!("fasthog-receiver listening on {} (POST /batch/)", receiver.url());
    // Runs until killed (Ctrl-C): nothing is lost, as stores flush after every request.
    loop {
        std::thread::sleep(Duration::from_secs(2));
        println!("{}", receiver.stats());
    }
}

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    /// Print the usage and exit successfully.
    Help,
    /// Run with this config, queueing these faults.
    Run(ReceiverConfig, Vec<Fault>),
}

/// Parses the arguments (without the program name) with `lexopt`.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, lexopt::Error> {
    use lexopt::prelude::*;
    let mut cfg = ReceiverConfig::default();
    let mut fail: Vec<String> = Vec::new();
    let mut retry_after = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => cfg.addr.set_port(parser.value()?.parse()?),
            Long("jsonl") => cfg.store = Store::Jsonl(parser.value()?.into()),
            Long("count-only") => cfg.store = Store::CountOnly,
            Long("fail") => fail.extend(parser.value()?.string()?.split(',').map(|s| s.trim().to_string())),
            Long("retry-after") => retry_after = Some(parser.value()?.string()?),
            Long("delay-ms") => cfg.delay = Some(Duration::from_millis(parser.value()?.parse()?)),
            Long("api-key") => cfg.expected_api_key = Some(parser.value()?.string()?),
            Long("body-limit") => cfg.max_body_bytes = parser.value()?.parse()?,
            Short('h') | Long("help") => return Ok(Command::Help),
            _ => return Err(arg.unexpected()),
        }
    }
    let faults =
        fail.iter().filter(|s| !s.is_empty()).map(|s| fault(s, &retry_after)).collect::<Result<_, _>>()?;
    Ok(Command::Run(cfg, faults))
}

fn fault(s: &str, retry_after: &Option<String>) -> Result<Fault, String> {
    Ok(match s {
        "drop" => Fault::Drop,
        "hang" => Fault::Hang,
        _ => match s.strip_prefix("delay:") {
            Some(ms) => Fault::Delay(Duration::from_millis(number(ms)?)),
            None => Fault::Status { code: number(s)?, retry_after: retry_after.clone() },
        },
    })
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("--fail: not a status, drop, hang or delay:MS: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> impl Iterator<Item = OsString> + '_ {
        s.split_whitespace().map(OsString::from)
    }

    fn run(s: &str) -> (ReceiverConfig, Vec<Fault>) {
        match parse(args(s)).unwrap() {
            Command::Run(cfg, faults) => (cfg, faults),
            Command::Help => panic!("{s}: help"),
        }
    }

    #[test]
    fn parses_every_flag() {
        let (cfg, faults) = run("--port 8111 --count-only --fail 503,429,drop,hang,delay:5 --retry-after 2 \
             --delay-ms 7 --api-key phc_k --body-limit 1000");
        assert_eq!(cfg.addr.port(), 8111);
        assert_eq!(cfg.store, Store::CountOnly);
        assert_eq!(cfg.delay, Some(Duration::from_millis(7)));
        assert_eq!(cfg.expected_api_key.as_deref(), Some("phc_k"));
        assert_eq!(cfg.max_body_bytes, 1000);
        let retry = Some("2".to_string());
        assert_eq!(
            faults,
            vec![
                Fault::Status { code: 503, retry_after: retry.clone() },
                Fault::Status { code: 429, retry_after: retry },
                Fault::Drop,
                Fault::Hang,
                Fault::Delay(Duration::from_millis(5)),
            ]
        );
        let (cfg, faults) = run("--jsonl out.jsonl");
        assert_eq!(cfg.store, Store::Jsonl("out.jsonl".into()));
        assert!(faults.is_empty());
    }

    #[test]
    fn values_after_an_equals_sign() {
        let (cfg, faults) = run("--port=8111 --fail=503 --retry-after=3 --api-key=phc_k");
        assert_eq!(cfg.addr.port(), 8111);
        assert_eq!(cfg.expected_api_key.as_deref(), Some("phc_k"));
        assert_eq!(faults, vec![Fault::Status { code: 503, retry_after: Some("3".into()) }]);
    }

    #[test]
    fn help() {
        assert!(matches!(parse(args("--help")), Ok(Command::Help)));
        assert!(matches!(parse(args("--port 1 -h")), Ok(Command::Help)));
    }

    #[test]
    fn refuses_bad_arguments() {
        let err = |s| parse(args(s)).unwrap_err().to_string();
        assert_eq!(err("--verbose"), "invalid option '--verbose'");
        assert_eq!(err("--port"), "missing argument for option '--port'");
        assert!(err("--port x").contains("\"x\""), "{}", err("--port x"));
        assert!(err("--fail 503,oops").contains("oops"));
        assert!(err("--count-only=yes").contains("--count-only"));
        assert!(err("stray").contains("stray"));
    }
}
