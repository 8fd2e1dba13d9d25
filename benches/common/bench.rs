//! What the benches share: the typical event (an order fill with four properties, as the
//! README's figures and the peers' records carry it) and criterion's settings.

use std::time::Duration;

use criterion::Criterion;
use fasthog::{Event, Props, Static};

pub const NAME: &str = "order_filled";
pub const USER: &str = "2f1c8f5e-7a34-4a63-9d0b-0c5b8d1f2e3a";

/// The typical event.
#[inline(always)]
pub fn typical(user: &str, i: u64) -> Event<'_, impl Props + '_> {
    Event::new(NAME, user)
        .prop("qty", (i % 100) as i64)
        .prop("seq", i as i64)
        .prop("price", 101.25 + (i % 7) as f64)
        .prop("venue", Static("XNAS"))
}

/// Short warm-up and measurement, 30 samples: the benches' many cases stay within minutes.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}
