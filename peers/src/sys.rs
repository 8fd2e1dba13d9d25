//! Machine facts, CPU pinning, memory and CPU-time readings (Linux).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Pins the calling thread to these CPUs (ignored where the call fails: a container may
/// forbid it). Threads it spawns later inherit the set.
pub fn pin(cpus: &[usize]) -> bool {
    // SAFETY: `set` is a plain bit set, zeroed then filled with CPU numbers below
    // CPU_SETSIZE; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// CPUs online, as `nproc` says (falls back to `available_parallelism`).
pub fn nproc() -> usize {
    Command::new("nproc")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A `/proc/self/status` field in kB (`VmRSS`, `VmHWM`).
pub fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory now, in kB.
pub fn rss_kb() -> u64 {
    status_kb("VmRSS")
}

/// User + system CPU time of this process so far, in µs.
pub fn cpu_us() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// CPU time (user + system) so far of this process's live threads, in µs, summed by role:
/// (fasthog's flusher thread, its `fasthog-sender` threads, the calling thread). From
/// /proc/self/task/*/stat, in clock ticks (10 ms each, usually); threads that already exited
/// are not in it. Reading /proc allocates.
pub fn thread_cpu_us() -> (u64, u64, u64) {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let me = std::fs::read_link("/proc/thread-self").ok();
    let (mut flusher, mut senders, mut this) = (0, 0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return (0, 0, 0) };
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is the first, utime and stime the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        let us = (ticks(11) + ticks(12)) * 1_000_000 / hz;
        let is_me = me.as_ref().is_some_and(|m| m.file_name() == dir.file_name());
        match comm.trim() {
            _ if is_me => this += us,
            "fasthog-flusher" => flusher += us,
            "fasthog-sender" => senders += us,
            _ => {}
        }
    }
    (flusher, senders, this)
}

/// Facts about the machine for the report.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// `nproc`.
    pub nproc: usize,
    /// `cpu MHz`, cache size, flags of note.
    pub cpu_detail: String,
    /// Kernel release.
    pub kernel: String,
    /// Current clock source.
    pub clocksource: String,
    /// `rustc -V`, if found.
    pub rustc: String,
    /// Memory total.
    pub mem_total: String,
    /// Hypervisor, if any (from the cpu flags).
    pub virtualized: bool,
}

impl Machine {
    /// Reads the facts.
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let flags = field("flags");
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        let tsc: Vec<&str> =
            ["constant_tsc", "nonstop_tsc", "tsc_known_freq"].into_iter().filter(|f| has(f)).collect();
        let cpu_detail = format!(
            "family {} model {} stepping {}, {} MHz, cache {}, TSC flags: {}",
            field("cpu family"),
            field("model\t"),
            field("stepping"),
            field("cpu MHz"),
            field("cache size"),
            if tsc.is_empty() { "none".to_string() } else { tsc.join(" ") }
        );
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let mem_total = meminfo
            .lines()
            .next()
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let rustc = Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu_model: field("model name"),
            nproc: nproc(),
            cpu_detail,
            kernel: read("/proc/sys/kernel/osrelease"),
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            rustc,
            mem_total,
            virtualized: has("hypervisor"),
        }
    }
}

/// `/proc/loadavg`'s first three numbers.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// True when quanta's `raw()` reads the TSC (rather than falling back to the OS clock): its
/// raw values then track `rdtsc` closely.
pub fn quanta_uses_tsc(clock: &quanta::Clock) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86_64.
        let tsc = unsafe { core::arch::x86_64::_rdtsc() };
        let raw = clock.raw();
        raw >= tsc && raw - tsc < 1_000_000_000
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = clock;
        false
    }
}

/// Now as `YYYY-MM-DD HH:MM:SS UTC` (fasthog's own RFC 3339 formatter, reshaped).
pub fn utc_now() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut text = [0u8; fasthog::json::RFC3339_LEN];
    fasthog::json::format_rfc3339(nanos, &mut text);
    let text = String::from_utf8_lossy(&text);
    format!("{} {} UTC", &text[..10], &text[11..19])
}
