//! A key's rate limit: at most `limit` requests in each window of `window_seconds`.
//!
//! Windows are fixed and aligned on the Unix epoch (a 60-second window runs from one whole
//! minute to the next), so every node knows where each window begins and ends from its clock
//! alone, a client is told exactly when its quota comes back, and counts from different nodes
//! add up per window without any exchange about when it started.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most requests a limit may allow per window.
pub const MAX_LIMIT: u32 = 1_000_000;

/// The longest window a limit may count over: one hour, in seconds.
pub const MAX_WINDOW_SECONDS: u32 = 3600;

/// At most `limit` requests per fixed window of `window_seconds`, both checked to be in range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawRateLimit")]
pub struct RateLimit {
    limit: u32,
    window_seconds: u32,
}

/// A rate limit as stored in an event, checked again when read ([`RateLimit`]'s `try_from`).
#[derive(Deserialize)]
struct RawRateLimit {
    limit: i64,
    window_seconds: i64,
}

impl TryFrom<RawRateLimit> for RateLimit {
    type Error = RateLimitError;

    fn try_from(raw: RawRateLimit) -> Result<Self, Self::Error> {
        let limit = RateLimit::parse_limit(raw.limit)?;
        let window_seconds = RateLimit::parse_window_seconds(raw.window_seconds)?;
        Ok(RateLimit { limit, window_seconds })
    }
}

/// Why a rate limit was refused; each names the one field it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    #[error("must be a whole number of requests from 1 to 1000000")]
    Limit,
    #[error("must be a whole number of seconds from 1 to 3600 (1 hour)")]
    WindowSeconds,
}

impl RateLimit {
    /// A limit of `limit` requests (1 ..= [`MAX_LIMIT`]) per `window_seconds` (1 ..=
    /// [`MAX_WINDOW_SECONDS`]).
    pub fn new(limit: i64, window_seconds: i64) -> Result<RateLimit, RateLimitError> {
        Ok(RateLimit { limit: Self::parse_limit(limit)?, window_seconds: Self::parse_window_seconds(window_seconds)? })
    }

    /// The request count part of a limit, on its own (a request names each field's error).
    pub fn parse_limit(limit: i64) -> Result<u32, RateLimitError> {
        u32::try_from(limit).ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or(RateLimitError::Limit)
    }

    /// The window part of a limit, on its own.
    pub fn parse_window_seconds(seconds: i64) -> Result<u32, RateLimitError> {
        u32::try_from(seconds)
            .ok()
            .filter(|s| (1..=MAX_WINDOW_SECONDS).contains(s))
            .ok_or(RateLimitError::WindowSeconds)
    }

    /// Requests allowed per window.
    pub const fn limit(self) -> u32 {
        self.limit
    }

    pub const fn window_seconds(self) -> u32 {
        self.window_seconds
    }

    /// The window that `now` falls in.
    pub fn window_at(self, now: Timestamp) -> Window {
        let length_ms = i64::from(self.window_seconds) * 1000;
        let index = now.timestamp_millis().div_euclid(length_ms);
        Window { index, ends_at_ms: (index + 1) * length_ms }
    }
}

impl fmt::Display for RateLimit {
    /// The limit as the API keys page says it: "100 per minute", "5 per 30 seconds".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = match self.window_seconds {
            1 => "second".to_owned(),
            60 => "minute".to_owned(),
            3600 => "hour".to_owned(),
            seconds if seconds % 60 == 0 => format!("{} minutes", seconds / 60),
            seconds => format!("{seconds} seconds"),
        };
        write!(f, "{} per {per}", self.limit)
    }
}

/// One fixed window of a rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Which window since the epoch, counted in the limit's own window length: the same on
    /// every node for the same instant.
    pub index: i64,
    /// When it ends and the quota comes back, in milliseconds since the epoch.
    pub ends_at_ms: i64,
}

impl Window {
    /// Whole seconds from `now` until the window ends, rounded up and at least 1: what
    /// `Retry-After` and the `RateLimit` field's `t` say (waiting that long always lands in a
    /// new window).
    pub fn seconds_left(self, now: Timestamp) -> u64 {
        let left_ms = (self.ends_at_ms - now.timestamp_millis()).max(1);
        u64::try_from((left_ms + 999) / 1000).unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("valid time")
    }

    #[test]
    fn a_limit_is_1_to_a_million_requests_per_1_second_to_1_hour() {
        assert!(RateLimit::new(1, 1).is_ok());
        assert!(RateLimit::new(1_000_000, 3600).is_ok());
        assert_eq!(RateLimit::new(0, 60), Err(RateLimitError::Limit));
        assert_eq!(RateLimit::new(1_000_001, 60), Err(RateLimitError::Limit));
        assert_eq!(RateLimit::new(10, 0), Err(RateLimitError::WindowSeconds));
        assert_eq!(RateLimit::new(10, 3601), Err(RateLimitError::WindowSeconds));
        assert_eq!(RateLimit::new(-5, 60), Err(RateLimitError::Limit));
        assert_eq!(RateLimit::new(i64::MAX, 60), Err(RateLimitError::Limit));
    }

    #[test]
    fn windows_are_aligned_on_the_epoch_and_the_same_for_every_instant_inside_one() {
        let limit = RateLimit::new(100, 60).expect("valid");
        let start = limit.window_at(t("2026-12-07T10:15:00Z"));
        assert_eq!(start, limit.window_at(t("2026-12-07T10:15:59.999Z")));
        assert_ne!(start, limit.window_at(t("2026-12-07T10:16:00Z")));
        assert_eq!(start.ends_at_ms, t("2026-12-07T10:16:00Z").timestamp_millis());
    }

    #[test]
    fn retry_after_is_whole_seconds_until_the_window_ends_and_never_zero() {
        let limit = RateLimit::new(100, 60).expect("valid");
        let now = t("2026-12-07T10:15:30.200Z");
        assert_eq!(limit.window_at(now).seconds_left(now), 30);
        let last = t("2026-12-07T10:15:59.999Z");
        assert_eq!(limit.window_at(last).seconds_left(last), 1);
        let first = t("2026-12-07T10:15:00Z");
        assert_eq!(limit.window_at(first).seconds_left(first), 60);
    }

    #[test]
    fn the_page_says_a_limit_in_words() {
        let said = |l, s| RateLimit::new(l, s).expect("valid").to_string();
        assert_eq!(said(100, 60), "100 per minute");
        assert_eq!(said(5, 1), "5 per second");
        assert_eq!(said(1000, 3600), "1000 per hour");
        assert_eq!(said(5, 30), "5 per 30 seconds");
        assert_eq!(said(5, 600), "5 per 10 minutes");
    }

    #[test]
    fn a_stored_limit_out_of_range_is_refused_when_read() {
        let read = |json: &str| serde_json::from_str::<RateLimit>(json);
        assert_eq!(read(r#"{"limit":5,"window_seconds":60}"#).ok(), RateLimit::new(5, 60).ok());
        assert!(read(r#"{"limit":0,"window_seconds":60}"#).is_err());
        assert!(read(r#"{"limit":5,"window_seconds":7200}"#).is_err());
    }

    proptest! {
        #[test]
        fn every_limit_in_range_parses_and_round_trips_through_json(limit in 1i64..=1_000_000, window in 1i64..=3600) {
            let parsed = RateLimit::new(limit, window).expect("in range");
            prop_assert_eq!((i64::from(parsed.limit()), i64::from(parsed.window_seconds())), (limit, window));
            let json = serde_json::to_string(&parsed).expect("serializes");
            prop_assert_eq!(serde_json::from_str::<RateLimit>(&json).expect("reads back"), parsed);
        }

        #[test]
        fn every_value_out_of_range_is_refused(limit in any::<i64>(), window in any::<i64>()) {
            let ok = (1..=1_000_000).contains(&limit) && (1..=3600).contains(&window);
            prop_assert_eq!(RateLimit::new(limit, window).is_ok(), ok);
        }

        #[test]
        fn an_instant_lies_in_its_window_and_the_wait_reaches_the_next(
            millis in 0i64..4_000_000_000_000, window in 1i64..=3600,
        ) {
            let limit = RateLimit::new(1, window).expect("valid");
            let now = chrono::DateTime::from_timestamp_millis(millis).expect("in range");
            let current = limit.window_at(now);
            prop_assert!(current.ends_at_ms > millis && current.ends_at_ms - millis <= window * 1000);
            let wait = current.seconds_left(now);
            let after = now + chrono::TimeDelta::seconds(i64::try_from(wait).expect("small"));
            prop_assert!(limit.window_at(after).index > current.index);
        }
    }
}
