//! `fasthog-receiver`: run a local PostHog-compatible receiver until killed.

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
  --body-limit BYTES  largest request body as sent (default 20 MiB)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, faults) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("{msg}\n{USAGE}");
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

/// Parses the command line into a config and the faults to queue.
fn parse(args: &[String]) -> Result<(ReceiverConfig, Vec<Fault>), String> {
    let mut cfg = ReceiverConfig::default();
    let mut fail: Vec<String> = Vec::new();
    let mut retry_after = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => cfg.addr.set_port(number(value()?)?),
            "--jsonl" => cfg.store = Store::Jsonl(value()?.into()),
            "--count-only" => cfg.store = Store::CountOnly,
            "--fail" => fail.extend(value()?.split(',').map(|s| s.trim().to_string())),
            "--retry-after" => retry_after = Some(value()?.clone()),
            "--delay-ms" => cfg.delay = Some(Duration::from_millis(number(value()?)?)),
            "--api-key" => cfg.expected_api_key = Some(value()?.clone()),
            "--body-limit" => cfg.max_body_bytes = number(value()?)?,
            "-h" | "--help" => return Err("fasthog-receiver: a local PostHog receiver".into()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let faults =
        fail.iter().filter(|s| !s.is_empty()).map(|s| fault(s, &retry_after)).collect::<Result<_, _>>()?;
    Ok((cfg, faults))
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
    s.parse().map_err(|_| format!("not a number: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_every_flag() {
        let (cfg, faults) = parse(&args(
            "--port 8111 --count-only --fail 503,429,drop,hang,delay:5 --retry-after 2 \
             --delay-ms 7 --api-key phc_k --body-limit 1000",
        ))
        .unwrap();
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
        let (cfg, faults) = parse(&args("--jsonl out.jsonl")).unwrap();
        assert_eq!(cfg.store, Store::Jsonl("out.jsonl".into()));
        assert!(faults.is_empty());
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(parse(&args("--port")).is_err());
        assert!(parse(&args("--port x")).is_err());
        assert!(parse(&args("--fail 503,oops")).is_err());
        assert!(parse(&args("--verbose")).is_err());
    }
}
