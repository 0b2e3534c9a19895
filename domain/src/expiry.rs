//! A key's expiry, as typed on the create form: a date or a full time, always in the future.

use crate::names::FirmTimeZone;
use crate::{to_millis, Timestamp};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// Why an expiry was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    /// Neither a date nor an RFC 3339 time.
    #[error("must be a date like 2027-03-01 or a time like 2027-03-01T09:00:00Z")]
    Unreadable,
    /// Now or earlier.
    #[error("must be in the future")]
    NotInFuture,
}

/// Parses an expiry: a bare `YYYY-MM-DD` is 00:00 of that date in the firm's time zone (the
/// instant the key stops working); anything else must be a full RFC 3339 time. Either way it
/// must be later than `now`.
pub fn parse_expiry(raw: &str, zone: FirmTimeZone, now: Timestamp) -> Result<Timestamp, ExpiryError> {
    let raw = raw.trim();
    let at = if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        start_of_day(date, zone).ok_or(ExpiryError::Unreadable)?
    } else {
        DateTime::parse_from_rfc3339(raw).map_err(|_| ExpiryError::Unreadable)?.with_timezone(&Utc)
    };
    let at = to_millis(at);
    if at <= now {
        return Err(ExpiryError::NotInFuture);
    }
    Ok(at)
}

/// The first instant of `date` in `zone`. Where a zone skips midnight (a daylight-saving jump
/// at 00:00), the day starts at the first minute that exists.
fn start_of_day(date: NaiveDate, zone: FirmTimeZone) -> Option<Timestamp> {
    let tz = zone.tz();
    (0..=24 * 60).find_map(|minute| {
        let local = date.and_hms_opt(0, 0, 0)? + chrono::TimeDelta::minutes(minute);
        tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-27T15:45:18.123Z".parse().expect("valid")
    }

    #[test]
    fn a_bare_date_is_midnight_in_the_firms_time_zone() {
        let zone = FirmTimeZone::parse("America/New_York").expect("zone");
        let at = parse_expiry("2027-03-01", zone, now()).expect("valid");
        assert_eq!(crate::format_time(&at), "2027-03-01T05:00:00.000Z");
    }

    #[test]
    fn a_bare_date_in_utc_is_midnight_utc() {
        let at = parse_expiry("2027-03-01", FirmTimeZone::default(), now()).expect("valid");
        assert_eq!(crate::format_time(&at), "2027-03-01T00:00:00.000Z");
    }

    #[test]
    fn a_full_time_keeps_its_instant() {
        let at = parse_expiry("2027-03-01T09:30:00+01:00", FirmTimeZone::default(), now()).expect("valid");
        assert_eq!(crate::format_time(&at), "2027-03-01T08:30:00.000Z");
    }

    #[test]
    fn a_date_that_has_already_begun_is_in_the_past() {
        assert_eq!(parse_expiry("2026-11-27", FirmTimeZone::default(), now()), Err(ExpiryError::NotInFuture));
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_at_the_first_minute_that_exists() {
        // Chile moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let zone = FirmTimeZone::parse("America/Santiago").expect("zone");
        let at = parse_expiry("2022-09-11", zone, "2020-01-01T00:00:00Z".parse().expect("valid")).expect("valid");
        assert_eq!(crate::format_time(&at), "2022-09-11T04:00:00.000Z");
    }

    #[test]
    fn nonsense_is_unreadable() {
        assert_eq!(parse_expiry("next tuesday", FirmTimeZone::default(), now()), Err(ExpiryError::Unreadable));
        assert_eq!(parse_expiry("2027-02-30", FirmTimeZone::default(), now()), Err(ExpiryError::Unreadable));
    }
}
