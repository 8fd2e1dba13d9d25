//! The command line as a user meets it: help on stdout with success, a bad flag on stderr
//! with exit code 2.

use std::process::Command;

fn receiver(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fasthog-receiver")).args(args).output().expect("the binary runs")
}

#[test]
fn help_goes_to_stdout_and_succeeds() {
    for flag in ["--help", "-h"] {
        let out = receiver(&[flag]);
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("usage: fasthog-receiver") && stdout.contains("--port N"), "{stdout}");
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = receiver(&["--verbose"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid option '--verbose'") && stderr.contains("--help"), "{stderr}");
}

#[test]
fn bad_value_is_a_usage_error() {
    let out = receiver(&["--port=eighty"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("eighty"));
}
