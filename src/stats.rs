//! Accounting: every captured event ends in exactly one of `sent`, `failed`, `dropped`,
//! `rejected`; until then it is `pending`.

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
        let lanes = lanes();
        let dropped = dropped + lanes.dropped as u64;
        let rejected = rejected + lanes.rejected as u64;
        let captured = lanes.pushed as u64 + lanes.dropped as u64 + lanes.rejected as u64;
        Snapshot {
            captured,
            sent,
            failed,
            dropped,
            rejected,
            pending: captured.saturating_sub(sent + failed + dropped + rejected),
            retried,
            truncated,
            props_dropped,
            non_finite,
        }
    }
}

/// Counters at one moment. `captured == sent + failed + dropped + rejected + pending`, and
/// after a shutdown `pending == 0`. (Counters wrap at `usize::MAX` on 32-bit targets.)
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
}
