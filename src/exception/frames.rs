//! With `std`: raw stack frames from a [`Backtrace`], and the panic hook.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;
use std::backtrace::{Backtrace, BacktraceStatus};

use super::{member, Event};
use crate::entry::EntryWriter;
use crate::Client;

/// One frame as read from a backtrace's text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Frame<'t> {
    function: &'t str,
    filename: Option<&'t str>,
    lineno: Option<u64>,
    colno: Option<u64>,
}

/// Reads the frames of std's `Backtrace` `Display` text, innermost first as printed:
///
/// ```text
///    3: app::handler
///              at ./src/main.rs:10:5
/// ```
///
/// A symbol line without an index is a function inlined into the frame above: its own frame.
fn parse(text: &str) -> Vec<Frame<'_>> {
    let mut frames: Vec<Frame<'_>> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(at) = line.strip_prefix("at ") {
            if let Some(frame) = frames.last_mut() {
                let mut parts = at.rsplitn(3, ':');
                let (col, row, file) = (parts.next(), parts.next(), parts.next());
                match (file, row.and_then(|r| r.parse().ok()), col.and_then(|c| c.parse().ok())) {
                    (Some(file), Some(row), Some(col)) => {
                        frame.filename = Some(file);
                        frame.lineno = Some(row);
                        frame.colno = Some(col);
                    }
                    _ => frame.filename = Some(at),
                }
            }
            continue;
        }
        let function = match line.split_once(": ") {
            Some((index, f)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => f,
            _ if !frames.is_empty() && !line.is_empty() => line,
            _ => continue,
        };
        frames.push(Frame { function, ..Frame::default() });
    }
    frames
}

/// In-app unless the standard library's or a registry crate's (posthog-rs's default rule).
fn in_app(frame: &Frame<'_>) -> bool {
    let lib_fn = ["std::", "core::", "alloc::", "<std::", "<core::", "<alloc::", "__rust"]
        .iter()
        .any(|p| frame.function.starts_with(p));
    let lib_file = frame.filename.is_some_and(|f| {
        f.starts_with("/rustc/") || f.contains("/.cargo/registry/") || f.contains("/rustlib/")
    });
    !lib_fn && !lib_file
}

/// Writes `stacktrace: {type: "raw", frames: [...]}` into the open item, oldest call first
/// (Sentry's and posthog-python's order; the crash site last), at most [`super::MAX_FRAMES`]
/// frames nearest the crash. Nothing when the backtrace was not captured.
pub(super) fn write_stacktrace(w: &mut EntryWriter<'_>, bt: &Backtrace) {
    if bt.status() != BacktraceStatus::Captured {
        return;
    }
    let text = bt.to_string();
    let frames = parse(&text);
    let frames = &frames[..frames.len().min(super::MAX_FRAMES)];
    member(w, "stacktrace", |w| {
        if !w.begin(true) {
            return w.null();
        }
        member(w, "type", |w| w.str("raw"));
        member(w, "frames", |w| {
            if !w.begin(false) {
                return w.null();
            }
            for frame in frames.iter().rev() {
                let at = w.mark();
                let ok = write_frame(w, frame);
                w.end_member(at, ok);
            }
            w.end();
            true
        });
        w.end();
        true
    });
}

fn write_frame(w: &mut EntryWriter<'_>, frame: &Frame<'_>) -> bool {
    if !w.begin(true) {
        return w.null();
    }
    member(w, "platform", |w| w.str("rust"));
    member(w, "lang", |w| w.str("rust"));
    member(w, "function", |w| w.str(frame.function));
    if let Some(file) = frame.filename {
        member(w, "filename", |w| w.str(file));
    }
    if let Some(line) = frame.lineno {
        member(w, "lineno", |w| w.u64(line));
    }
    if let Some(col) = frame.colno {
        member(w, "colno", |w| w.u64(col));
    }
    member(w, "in_app", |w| w.bool(in_app(frame)));
    member(w, "resolved", |w| w.bool(true));
    member(w, "synthetic", |w| w.bool(false));
    w.end();
    true
}

/// How long the panic hook waits for its `$exception` to be delivered.
pub const PANIC_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Installs a process-wide panic hook that captures each panic through `client` as an
/// unhandled `$exception` (type `"Panic"`, `mechanism: {type: "panic", handled: false}`, level
/// `"error"`, as in posthog-rs), with `$exception_panic_file`, `_line`, `_column` and `$exception_panic_thread`,
/// and raw frames when `std::backtrace::Backtrace::capture()` has any (`RUST_BACKTRACE`;
/// without, message and location are still sent). The event is personless, its distinct_id a
/// UUID made for this process. The hook then flushes for at most [`PANIC_FLUSH_TIMEOUT`] and
/// runs the hook installed before it (which prints the panic message).
///
/// The hook allocates (the message, the thread name, the backtrace): a panic is not the hot
/// path. A panic on the client's flusher thread is not captured (its flush could not finish).
pub fn install_panic_hook(client: &Client) {
    let client = client.clone();
    let distinct_id = process_id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(alloc::boxed::Box::new(move |info| {
        let message = info.payload_as_str().filter(|m| !m.is_empty()).unwrap_or("panic occurred");
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("<unnamed>").to_string();
        let on_flusher = thread == "fasthog-flusher";
        if !on_flusher {
            let bt = Backtrace::capture();
            let (file, line, column) =
                info.location().map_or(("", 0, 0), |l| (l.file(), l.line(), l.column()));
            let event = Event::panic(message, &distinct_id)
                .backtrace(&bt)
                .personless()
                .prop_if(!file.is_empty(), "$exception_panic_file", file)
                .prop_if(!file.is_empty(), "$exception_panic_line", line)
                .prop_if(!file.is_empty(), "$exception_panic_column", column)
                .prop("$exception_panic_thread", thread.as_str());
            let _ = client.capture(&event);
            let _ = client.flush(PANIC_FLUSH_TIMEOUT);
        }
        previous(info);
    }));
}

/// A UUIDv7 for this process, as text.
fn process_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32);
    let b = crate::UuidV7::new(seed).next(now.as_millis() as u64);
    let hex = |r: core::ops::Range<usize>| b[r].iter().map(|x| alloc::format!("{x:02x}")).collect::<String>();
    alloc::format!("{}-{}-{}-{}-{}", hex(0..4), hex(4..6), hex(6..8), hex(8..10), hex(10..16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_std_backtrace_text() {
        let text = "   0: app::inner\n             at ./src/main.rs:10:5\n      app::inlined\n             at ./src/lib.rs:3:1\n   1: std::rt::lang_start\n             at /rustc/abc/library/std/src/rt.rs:165:17\n   2: main\n";
        let f = parse(text);
        assert_eq!(f.len(), 4);
        assert_eq!(
            f[0],
            Frame {
                function: "app::inner",
                filename: Some("./src/main.rs"),
                lineno: Some(10),
                colno: Some(5)
            }
        );
        assert_eq!(f[1].function, "app::inlined");
        assert_eq!(f[2].filename, Some("/rustc/abc/library/std/src/rt.rs"));
        assert!(in_app(&f[0]) && !in_app(&f[2]));
        assert_eq!(f[3], Frame { function: "main", ..Frame::default() });
        assert!(parse("disabled backtrace").is_empty());
    }
}
