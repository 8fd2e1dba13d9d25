//! The flusher thread's life as the client sees it: one notification that blocking and async
//! `flush`/`shutdown` callers wait on (no polling loop), raised when a flush completes and when
//! the thread exits, normally or by a panic.

use core::future::poll_fn;
use core::task::Poll;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use event_listener::{Event, Listener as _};

use crate::flusher::Control;

/// Shared by the client and its flusher thread.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Notified (all listeners) on every completed flush and when the thread exits.
    event: Event,
    /// The flusher thread has ended (its last act, after the flusher's own shutdown).
    exited: AtomicBool,
    /// It ended by a panic.
    panicked: AtomicBool,
}

impl Lifecycle {
    /// A thread about to start.
    pub(crate) fn new() -> Arc<Lifecycle> {
        Arc::new(Lifecycle::default())
    }

    /// No thread at all (a disabled client).
    pub(crate) fn none() -> Arc<Lifecycle> {
        let life = Lifecycle::default();
        life.exited.store(true, Ordering::Release);
        Arc::new(life)
    }

    pub(crate) fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    pub(crate) fn panicked(&self) -> bool {
        self.panicked.load(Ordering::Acquire)
    }

    /// Blocks until `done()` or `until` (`None`: no limit); returns `done()`.
    pub(crate) fn wait(&self, until: Option<Instant>, done: impl Fn() -> bool) -> bool {
        loop {
            if done() {
                return true;
            }
            // Listen, then check again: a notification between the check and the listen
            // would otherwise be missed.
            let listener = self.event.listen();
            if done() {
                return true;
            }
            match until {
                None => listener.wait(),
                Some(until) => {
                    if listener.wait_deadline(until).is_none() {
                        return done();
                    }
                }
            }
        }
    }

    /// [`Lifecycle::wait`] as a future: it parks no thread, so any executor (tokio, smol, ...)
    /// can await it. The time limit is an `async-io` timer, which runs on every runtime.
    pub(crate) async fn wait_async(&self, until: Option<Instant>, done: impl Fn() -> bool) -> bool {
        loop {
            if done() {
                return true;
            }
            let listener = self.event.listen();
            if done() {
                return true;
            }
            let timed_out = match until {
                None => {
                    listener.await;
                    false
                }
                Some(until) => {
                    futures_lite::future::or(
                        async {
                            listener.await;
                            false
                        },
                        async {
                            smol::Timer::at(until).await;
                            true
                        },
                    )
                    .await
                }
            };
            if timed_out {
                return done();
            }
        }
    }

    /// Runs beside the flusher on its thread and never completes: whenever the flusher is
    /// polled (it is polled again after every step that can complete a flush), notifies the
    /// waiters if a flush has completed since. The count is read when the relay is made, before
    /// the flusher's first poll: read in the first poll, it missed a flush the flusher completed
    /// in its own first poll (a `flush` right after `build` then waited its whole timeout).
    pub(crate) fn relay<'a>(&'a self, control: &'a Control) -> impl core::future::Future<Output = ()> + 'a {
        let mut last = control.flushes_completed();
        poll_fn(move |_| {
            let now = control.flushes_completed();
            if now != last {
                last = now;
                self.event.notify(usize::MAX);
            }
            Poll::<()>::Pending
        })
    }

    /// Marks the thread ended when dropped, by a return or by a panic's unwinding.
    pub(crate) fn exit_guard(self: &Arc<Self>) -> ExitGuard {
        ExitGuard(self.clone())
    }
}

/// See [`Lifecycle::exit_guard`].
pub(crate) struct ExitGuard(Arc<Lifecycle>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.panicked.store(true, Ordering::Release);
            log::error!(
                "fasthog: the flusher thread panicked; events not delivered are counted failed at shutdown"
            );
        }
        self.0.exited.store(true, Ordering::Release);
        self.0.event.notify(usize::MAX);
    }
}
