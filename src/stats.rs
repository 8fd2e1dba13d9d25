//! Accounting: every captured event ends in exactly one of `sent`, `failed`, `dropped`,
//! `rejected`, `sampled`, `filtered`; until then it is `pending`.

use crate::sync::{AtomicUsize, Ordering};

/// Counters written by the consumer (the flusher). Producers keep theirs in their lanes, so
/// the capture path touches no shared counter.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) sent: AtomicUsize,
    pub(crate) failed: AtomicUsize,
    pub(crate) dropped: AtomicUsize,
    pub(crate) rejected: AtomicUsize,
    pub(crate) retried: AtomicUsize,
    pub(crate) truncated: AtomicUsize,
    pub(crate) props_dropped: AtomicUsize,
    pub(crate) non_finite: AtomicUsize,
    pub(crate) filtered: AtomicUsize,
    pub(crate) redacted: AtomicUsize,
    pub(crate) filter_panics: AtomicUsize,
}

impl Counters {
    /// Zeroed counters.
    #[cfg(not(fasthog_loom))]
    pub const fn new() -> Self {
        Counters {
            sent: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            retried: AtomicUsize::new(0),
            truncated: AtomicUsize::new(0),
            props_dropped: AtomicUsize::new(0),
            non_finite: AtomicUsize::new(0),
            filtered: AtomicUsize::new(0),
            redacted: AtomicUsize::new(0),
            filter_panics: AtomicUsize::new(0),
        }
    }

    #[inline]
    pub(crate) fn add(counter: &AtomicUsize, n: usize) {
        if n != 0 {
            counter.fetch_add(n, Ordering::Release);
        }
    }

    /// A snapshot, given the producers' totals read *after* these counters (see
    /// [`crate::ring::Lanes::totals`]): then no outcome is counted whose capture is not.
    pub(crate) fn snapshot(&self, lanes: impl FnOnce() -> crate::ring::LaneTotals) -> Snapshot {
        let sent = self.sent.load(Ordering::Acquire) as u64;
        let failed = self.failed.load(Ordering::Acquire) as u64;
        let dropped = self.dropped.load(Ordering::Acquire) as u64;
        let rejected = self.rejected.load(Ordering::Acquire) as u64;
        let retried = self.retried.load(Ordering::Acquire) as u64;
        let truncated = self.truncated.load(Ordering::Acquire) as u64;
        let props_dropped = self.props_dropped.load(Ordering::Acquire) as u64;
        let non_finite = self.non_finite.load(Ordering::Acquire) as u64;
        let filtered = self.filtered.load(Ordering::Acquire) as u64;
        let redacted = self.redacted.load(Ordering::Acquire) as u64;
        let filter_panics = self.filter_panics.load(Ordering::Acquire) as u64;
        let lanes = lanes();
        let dropped = dropped + lanes.dropped as u64;
        let rejected = rejected + lanes.rejected as u64;
        // A sampled-out event is counted once, in its lane, as both its capture and its
        // outcome: no ordering to keep between the two.
        let sampled = lanes.sampled as u64;
        let captured = lanes.pushed as u64 + lanes.dropped as u64 + lanes.rejected as u64 + sampled;
        let mut s = Snapshot {
            captured,
            sent,
            failed,
            dropped,
            rejected,
            sampled,
            filtered,
            pending: 0,
            retried,
            truncated,
            props_dropped,
            non_finite,
            redacted,
            filter_panics,
        };
        s.pending = captured.saturating_sub(s.outcomes());
        s
    }
}

/// Counters at one moment. `captured == sent + failed + dropped + rejected + sampled +
/// filtered + pending` (that is, `captured == outcomes() + pending`), and after a shutdown
/// `pending == 0`. (Counters wrap at `usize::MAX` on 32-bit targets.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Events given to capture.
    pub captured: u64,
    /// Events the server accepted (HTTP 2xx).
    pub sent: u64,
    /// Events given up on: a final HTTP error, retries exhausted, or still unconfirmed at a
    /// shutdown deadline.
    pub failed: u64,
    /// Events dropped for lack of room: a full lane at capture. (The flusher stops taking from
    /// the lanes while its pending batches are full, as when PostHog backs us off, so the lanes
    /// fill and capture reports `Dropped` itself.)
    pub dropped: u64,
    /// Invalid events: empty or whitespace-only name or distinct_id, or an encoding over the
    /// per-event byte limit.
    pub rejected: u64,
    /// Events left out by sampling at capture (see [`crate::Sampler`]).
    pub sampled: u64,
    /// Events the before-send filter dropped (see [`crate::filter`]), those it panicked on
    /// included.
    pub filtered: u64,
    /// Events captured and not yet in one of the outcomes above.
    pub pending: u64,
    /// HTTP attempts that were retries (not events).
    pub retried: u64,
    /// Strings cut to fit an event record (events still sent).
    pub truncated: u64,
    /// Property entries dropped because an event record was full (events still sent).
    pub props_dropped: u64,
    /// NaN or infinite floats sent as `null` (events still sent).
    pub non_finite: u64,
    /// Properties the before-send filter removed (events still sent).
    pub redacted: u64,
    /// Calls of the before-send filter that panicked (each event dropped, counted `filtered`).
    pub filter_panics: u64,
}

impl Snapshot {
    /// Events with an outcome: `sent + failed + dropped + rejected + sampled + filtered`. The
    /// rest of `captured` is `pending`.
    pub const fn outcomes(&self) -> u64 {
        self.sent + self.failed + self.dropped + self.rejected + self.sampled + self.filtered
    }
}
