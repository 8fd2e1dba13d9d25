//! Sampling at capture: rates hold within a stated statistical bound, a user's events are kept
//! or dropped together when sampling by distinct_id, per-name rules override the rate for all,
//! invalid settings are build errors, and the accounting identity counts `sampled`.
//!
//! The bound: with `n` independent captures kept with probability `p`, the kept count is
//! Binomial(n, p), of mean `n p` and standard deviation `sqrt(n p (1 - p))`. Every check
//! allows six standard deviations: a correct sampler fails one with probability about 2e-9.
//! (Each client is seeded from the OS, so every run draws anew.)
#![cfg(feature = "std")]

#[path = "common/delivery.rs"]
mod support;

use std::collections::HashMap;
use std::time::Duration;

use fasthog::recorder::Recorder;
use fasthog::{Captured, Client, Error, Event, FixedClock, Rate, Sampler, StaticQueue};
use support::assert_accounted;

const N: usize = 100_000;

/// A client over a recorder with room for every event this file captures.
fn client(configure: impl FnOnce(fasthog::Builder) -> fasthog::Builder) -> (Client, Recorder) {
    let recorder = Recorder::new();
    let builder = Client::builder("phc_sampling_test").memory(64 << 20).lanes(4);
    let client = configure(builder).build_with_transport(recorder.clone()).expect("valid settings");
    (client, recorder)
}

/// `|kept - n p| <= 6 sqrt(n p (1 - p))`, with the numbers in the message.
#[track_caller]
fn assert_binomial(kept: usize, n: usize, p: f64) {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    let off = (kept as f64 - mean).abs();
    assert!(off <= 6.0 * sd, "kept {kept} of {n} at rate {p}: {off:.0} from {mean:.0}, over 6 sd ({sd:.1})");
}

fn count(outcomes: impl IntoIterator<Item = Captured>) -> HashMap<Captured, usize> {
    let mut by = HashMap::new();
    for o in outcomes {
        *by.entry(o).or_insert(0) += 1;
    }
    by
}

#[test]
fn random_sampling_keeps_each_rate_within_six_standard_deviations() {
    for p in [0.01, 0.1, 0.5, 0.9] {
        let (client, recorder) = client(|b| b.sample_all(p));
        let by = count((0..N).map(|i| client.capture(&Event::new("tick", "user-1").prop("i", i))));
        let sampled = by.get(&Captured::Sampled).copied().unwrap_or(0);
        assert_eq!(by.get(&Captured::Queued).copied().unwrap_or(0) + sampled, N, "rate {p}: {by:?}");
        assert_binomial(N - sampled, N, p);
        let stats = client.shutdown(Duration::from_secs(10)).unwrap();
        assert_accounted(&stats);
        assert_eq!((stats.sampled, stats.sent), (sampled as u64, (N - sampled) as u64), "{stats:?}");
        assert_eq!(recorder.events().len(), N - sampled, "the recorder got what was kept");
    }
}

#[test]
fn a_rate_of_one_keeps_every_event() {
    let (client, _recorder) = client(|b| b.sample_all(1.0).sample("tick", 1.0));
    assert!((0..1000).all(|_| client.capture(&Event::new("tick", "u")) == Captured::Queued));
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!((stats.sampled, stats.sent), (0, 1000));
}

#[test]
fn random_draws_are_independent_of_the_thread() {
    // Four threads on their own lanes: each lane's draws follow its own counter.
    let (client, _recorder) = client(|b| b.sample_all(0.25));
    let per_thread = N / 4;
    let sampled: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let client = client.clone();
                s.spawn(move || {
                    (0..per_thread)
                        .filter(|i| {
                            client.capture(&Event::new("tick", "u").prop("i", t * per_thread + i))
                                == Captured::Sampled
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for s in &sampled {
        assert_binomial(per_thread - s, per_thread, 0.25);
    }
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_accounted(&stats);
    assert_eq!(stats.sampled, sampled.iter().sum::<usize>() as u64);
}

/// Which of `users` a client sampling by distinct_id at `p` keeps, from 20 events each.
fn kept_users(users: &[String], p: f64) -> Vec<bool> {
    let (client, recorder) = client(|b| b.sample_all(p).sample_by_distinct_id(true));
    let kept: Vec<bool> = users
        .iter()
        .map(|user| {
            let outcomes: Vec<Captured> =
                (0..20).map(|i| client.capture(&Event::new("funnel_step", user).prop("step", i))).collect();
            let first = outcomes[0];
            assert!(outcomes.iter().all(|o| *o == first), "{user}: a funnel split: {outcomes:?}");
            first == Captured::Queued
        })
        .collect();
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_accounted(&stats);
    let sent_users: std::collections::HashSet<String> =
        recorder.events().iter().map(|e| e.distinct_id()).collect();
    for (user, kept) in users.iter().zip(&kept) {
        assert_eq!(sent_users.contains(user), *kept, "{user}");
    }
    kept
}

#[test]
fn sampling_by_distinct_id_keeps_or_drops_a_user_whole_and_the_same_way_every_time() {
    let users: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
    let first = kept_users(&users, 0.3);
    assert_binomial(first.iter().filter(|k| **k).count(), users.len(), 0.3);
    // Another client (another random seed): the very same users.
    assert_eq!(kept_users(&users, 0.3), first);
    // And what a sampler built anywhere else says: the decision depends on the id alone.
    let elsewhere = Sampler::new().all(rate(0.3)).by_distinct_id(true).seed(12345);
    let predicted: Vec<bool> = users.iter().map(|u| elsewhere.keeps("funnel_step", u, 3, 99)).collect();
    assert_eq!(predicted, first);
    // A higher rate keeps a superset: a user kept at 30% is kept at 60%.
    let wider = kept_users(&users, 0.6);
    assert!(first.iter().zip(&wider).all(|(a, b)| !a || *b));
    assert_binomial(wider.iter().filter(|k| **k).count(), users.len(), 0.6);
}

#[test]
fn a_per_name_rule_overrides_the_rate_for_all() {
    let (client, _recorder) =
        client(|b| b.sample_all(0.05).sample("checkout", 1.0).sample("page_scrolled", 0.5));
    let mut sampled = HashMap::new();
    for name in ["checkout", "page_scrolled", "other"] {
        let n = (0..N / 10).filter(|_| client.capture(&Event::new(name, "u")) == Captured::Sampled).count();
        sampled.insert(name, n);
    }
    assert_eq!(sampled["checkout"], 0, "a rate of 1 keeps every checkout");
    assert_binomial(N / 10 - sampled["page_scrolled"], N / 10, 0.5);
    assert_binomial(N / 10 - sampled["other"], N / 10, 0.05);
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_accounted(&stats);
    assert_eq!(stats.sampled, sampled.values().sum::<usize>() as u64);
}

#[test]
fn only_named_events_are_sampled_without_a_rate_for_all() {
    let (client, recorder) = client(|b| b.sample("noisy", 0.2));
    let quiet = (0..1000).filter(|_| client.capture(&Event::new("quiet", "u")) == Captured::Queued).count();
    let noisy = (0..N / 10).filter(|_| client.capture(&Event::new("noisy", "u")) == Captured::Queued).count();
    assert_eq!(quiet, 1000);
    assert_binomial(noisy, N / 10, 0.2);
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_accounted(&stats);
    assert_eq!(recorder.names().iter().filter(|n| *n == "quiet").count(), 1000);
}

#[test]
fn invalid_sampling_settings_are_build_errors() {
    let build = |b: fasthog::Builder| b.build_with_transport(Recorder::new()).map(|_| ());
    let setting = |r: Result<(), Error>| match r {
        Err(Error::InvalidSetting { name, expected }) => (name, expected),
        other => panic!("expected InvalidSetting, got {other:?}"),
    };
    for bad in [0.0, -0.5, 1.000_001, 2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let b = Client::builder("phc_x");
        assert_eq!(setting(build(b.clone().sample_all(bad))), ("sample_all", "a rate in (0, 1]"), "{bad}");
        assert_eq!(setting(build(b.sample("e", bad))), ("sample", "a rate in (0, 1]"), "{bad}");
    }
    let b = || Client::builder("phc_x");
    assert_eq!(setting(build(b().sample("", 0.5))).0, "sample");
    assert_eq!(setting(build(b().sample("x".repeat(65), 0.5))).0, "sample");
    let seventeen = (0..17).fold(b(), |b, i| b.sample(format!("e{i}"), 0.5));
    assert_eq!(setting(build(seventeen)), ("sample", "at most 16 per-name rules"));
    // The edges that are valid: a 64-byte name, 16 rules, the smallest positive rate, 1.
    let sixteen = (0..15).fold(b().sample("x".repeat(64), 1e-300), |b, i| b.sample(format!("e{i}"), 1.0));
    assert!(build(sixteen.sample("e0", 0.5)).is_ok(), "a second rule for a name replaces the first");
}

#[test]
fn invalid_events_are_rejected_whatever_the_rate() {
    let (client, _recorder) = client(|b| b.sample_all(1e-9));
    assert_eq!(client.capture(&Event::new("", "u")), Captured::Rejected);
    assert_eq!(client.capture(&Event::new("e", " ")), Captured::Rejected);
    let stats = client.shutdown(Duration::from_secs(10)).unwrap();
    assert_eq!((stats.rejected, stats.sampled), (2, 0));
}

const fn rate(share: f64) -> Rate {
    match Rate::new(share) {
        Ok(r) => r,
        Err(_) => panic!("invalid rate"),
    }
}

static SAMPLER: Sampler = match Sampler::new().event("noisy", rate(0.1)) {
    Ok(s) => s.seed(7),
    Err(_) => panic!("invalid sampler"),
};

#[test]
fn the_no_std_core_samples_with_a_const_sampler_and_counts_in_the_lane() {
    static QUEUE: StaticQueue<1, 8, 4096> = StaticQueue::new();
    let clock = FixedClock(1_700_000_000_000_000_000);
    let mut lane = StaticQueue::producer(&QUEUE).unwrap();
    let mut by = HashMap::new();
    let mut consumer = fasthog::ring::try_consumer(&QUEUE).unwrap();
    for _ in 0..N / 10 {
        *by.entry(lane.capture_sampled(&Event::new("noisy", "device-7"), &clock, &SAMPLER)).or_insert(0) += 1;
        consumer.drain(|_| true);
    }
    assert_eq!(lane.capture_sampled(&Event::new("boot", "device-7"), &clock, &SAMPLER), Captured::Queued);
    assert_eq!(lane.capture_sampled(&Event::new("", "device-7"), &clock, &SAMPLER), Captured::Rejected);
    assert_eq!(QUEUE.capture_shared_sampled(&Event::new("boot", "d"), &clock, &SAMPLER), Captured::Queued);
    let sampled = by[&Captured::Sampled];
    assert_binomial(N / 10 - sampled, N / 10, 0.1);
    let totals = fasthog::ring::HasLanes::lanes(&QUEUE).totals();
    assert_eq!(totals.sampled, sampled);
    let stats = QUEUE.stats();
    assert_eq!((stats.sampled, stats.rejected), (sampled as u64, 1));
    assert_eq!(stats.captured, (N / 10 + 3) as u64);
    assert_eq!(stats.captured, stats.outcomes() + stats.pending);
}

#[test]
fn a_seeded_sampler_repeats_its_draws() {
    // The draw depends only on (seed, lane, the lane's capture count): two queues with the same
    // seed sample the same captures.
    let run = || {
        let queue = fasthog::HeapQueue::with_blocks(1, 8, 4096);
        let mut lane = fasthog::HeapQueue::producer(&queue).unwrap();
        let mut consumer = fasthog::ring::try_consumer(&queue).unwrap();
        let clock = FixedClock(0);
        (0..1000)
            .map(|_| {
                let o = lane.capture_sampled(&Event::new("noisy", "d"), &clock, &SAMPLER);
                consumer.drain(|_| true);
                o
            })
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(run(), first);
    assert!(first.contains(&Captured::Sampled) && first.contains(&Captured::Queued));
}

#[test]
fn ids_that_are_the_same_once_cut_are_sampled_the_same() {
    // PostHog keeps 200 characters of a distinct_id: ids that differ only past them are one
    // user, and sampling by distinct_id must treat them as one.
    let sampler = Sampler::new().all(rate(0.5)).by_distinct_id(true);
    let queue = fasthog::HeapQueue::with_blocks(1, 8, 4096);
    let mut lane = fasthog::HeapQueue::producer(&queue).unwrap();
    let mut consumer = fasthog::ring::try_consumer(&queue).unwrap();
    let clock = FixedClock(0);
    let mut outcomes = Vec::new();
    for i in 0..200 {
        let prefix = format!("{i:0>200}");
        let [a, b] = [format!("{prefix}-device-a"), format!("{prefix}-device-b")];
        let pair = [&a, &b].map(|id| lane.capture_sampled(&Event::new("e", id), &clock, &sampler));
        consumer.drain(|_| true);
        assert_eq!(pair[0], pair[1], "user {i}");
        assert_eq!(sampler.keeps("e", &a, 0, 0), pair[0] == Captured::Queued, "keeps() agrees with capture");
        outcomes.push(pair[0]);
    }
    assert_binomial(outcomes.iter().filter(|o| **o == Captured::Queued).count(), 200, 0.5);
}

#[test]
fn the_smallest_positive_rates_keep_a_share_not_nothing() {
    // Below 2^-53 the threshold rounded to 0 and such a rate kept nothing.
    for share in [1e-17, 1e-300, f64::MIN_POSITIVE, 5e-324] {
        let rate = Rate::new(share).expect("a positive rate");
        assert_eq!(rate.share(), 1.0 / (1u64 << 53) as f64, "{share}");
    }
    assert_eq!(Rate::new(0.5).unwrap().share(), 0.5);
    assert_eq!(Rate::new(1.0).unwrap(), Rate::ALL);
}
