//! The `std` client's errors. None of their texts contains the API key.

// A `std`-only module: the crate-wide `no_std` hygiene lints (prefer `core`/`alloc` paths)
// do not apply here.
#![allow(clippy::std_instead_of_alloc, clippy::std_instead_of_core)]

use core::fmt;
use std::string::String;

/// Why building, flushing or shutting down a [`crate::Client`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The builder was given no API key. (With no key at all, [`crate::Client::from_env`]
    /// makes a disabled client instead.)
    MissingApiKey,
    /// The API key is empty or only whitespace.
    EmptyApiKey,
    /// The key starts with `phx_`: a personal API key, which capture refuses (HTTP 401). Use
    /// the project API key (`phc_...`).
    PersonalApiKey,
    /// The key is longer than PostHog's 64 bytes.
    ApiKeyTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The key has a non-ASCII or NUL byte.
    ApiKeyNotAscii,
    /// The host is not an `http://` or `https://` base URL: no host part, whitespace, or a
    /// `?query` or `#fragment` (batches go to `{host}/batch/`, which a query would swallow).
    InvalidHost {
        /// The host as given.
        host: String,
    },
    /// A setting is out of range.
    InvalidSetting {
        /// Which setting.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The flusher thread could not be started.
    Spawn(std::io::Error),
    /// `flush` timed out before every earlier event was delivered or failed.
    FlushTimeout,
    /// `shutdown` timed out before the flusher stopped; some events are still pending.
    ShutdownTimeout,
    /// The flusher thread panicked (a bug, or a custom transport's): nothing more is sent.
    /// Events it had not delivered are counted `failed` at shutdown, which returns at once.
    FlusherPanicked,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingApiKey => f.write_str("no PostHog API key given"),
            Error::EmptyApiKey => f.write_str("the PostHog API key is empty"),
            Error::PersonalApiKey => f.write_str(
                "the PostHog API key is a personal key (phx_...); capture needs the project API key (phc_...)",
            ),
            Error::ApiKeyTooLong { len } => {
                write!(f, "the PostHog API key is {len} bytes long; PostHog accepts at most 64")
            }
            Error::ApiKeyNotAscii => f.write_str("the PostHog API key has a non-ASCII or NUL byte"),
            Error::InvalidHost { host } => {
                write!(f, "PostHog host {host:?} is not an http(s) base URL (without ?query or #fragment)")
            }
            Error::InvalidSetting { name, expected } => write!(f, "setting {name} must be {expected}"),
            Error::Spawn(e) => write!(f, "could not start the flusher thread: {e}"),
            Error::FlushTimeout => f.write_str("flush timed out"),
            Error::ShutdownTimeout => f.write_str("shutdown timed out; some events are still pending"),
            Error::FlusherPanicked => f.write_str("the flusher thread panicked; undelivered events are counted failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// Checks a project API key against PostHog's rules (trimmed: non-empty, at most 64 bytes,
/// ASCII without NUL, not a personal `phx_` key).
pub fn validate_api_key(key: &str) -> Result<&str, Error> {
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::EmptyApiKey);
    }
    if !key.bytes().all(|b| b.is_ascii() && b != 0) {
        return Err(Error::ApiKeyNotAscii);
    }
    if key.len() > 64 {
        return Err(Error::ApiKeyTooLong { len: key.len() });
    }
    if key.starts_with("phx_") {
        return Err(Error::PersonalApiKey);
    }
    Ok(key)
}

/// Checks that a host is an `http://` or `https://` URL with a host part, no whitespace, and
/// no query or fragment.
pub fn validate_host(host: &str) -> Result<&str, Error> {
    let rest = host.strip_prefix("https://").or_else(|| host.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#') =>
        {
            Ok(host)
        }
        _ => Err(Error::InvalidHost { host: host.into() }),
    }
}
