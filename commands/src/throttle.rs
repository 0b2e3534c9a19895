//! Sign-in throttling: failed attempts to sign in (a password, an invitation token) are counted
//! per account and per client address in Postgres, so every node sees the same counts and they
//! survive a restart. Past a limit, attempts wait: answered `429 too_many_attempts` without the
//! password being checked, for a delay that doubles with each further failure up to a ceiling.
//! Nothing locks an account for good (that would hand anyone a way to shut a member out); a
//! success clears the account's count, and a counter nobody fails for a whole window resets.

use crate::error::CommandError;
use domain::Timestamp;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::net::IpAddr;
use std::time::Duration;

/// When sign-in attempts start to wait. Defaults: 5 failures for an account, more than 50 from
/// one address, counted until 15 minutes pass without one; delays from 1 s doubling to 15 min.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInLimits {
    /// Failures of one account after which its attempts wait.
    pub account_failures: u32,
    /// Failures from one client address beyond which its attempts wait.
    pub address_failures: u32,
    /// How long a run of failures is remembered after the last of them.
    pub window: Duration,
    /// The first delay; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits {
            account_failures: 5,
            address_failures: 50,
            window: Duration::from_secs(15 * 60),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
        }
    }
}

/// What failed sign-ins are counted against.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    /// The email as typed (trimmed, lower case), whether or not it is a member's.
    Account(&'a str),
    /// An invitation token as typed, whether or not one was ever issued.
    Invitation(&'a str),
    /// The client's address.
    Address(IpAddr),
}

impl Subject<'_> {
    /// The key of the subject's counter: a digest, so the table holds no email or address.
    fn key(&self) -> Vec<u8> {
        let text = match self {
            Subject::Account(email) => format!("account:{email}"),
            Subject::Invitation(token) => format!("invitation:{token}"),
            Subject::Address(ip) => format!("address:{ip}"),
        };
        Sha256::digest(text.as_bytes()).to_vec()
    }

    /// How many failures the subject may have before its attempts wait.
    fn allowance(&self, limits: &SignInLimits) -> u32 {
        match self {
            // "After 5 failures": the fifth already makes the next attempt wait.
            Subject::Account(_) | Subject::Invitation(_) => limits.account_failures.saturating_sub(1),
            // "More than 50 failures".
            Subject::Address(_) => limits.address_failures,
        }
    }
}

/// The delay after `failures` failures, for a subject allowed `allowance` before waiting.
pub fn delay_after(limits: &SignInLimits, allowance: u32, failures: u32) -> Option<Duration> {
    let beyond = failures.checked_sub(allowance + 1)?;
    let doubled = limits.first_delay.saturating_mul(2u32.saturating_pow(beyond.min(31)));
    Some(doubled.min(limits.max_delay))
}

/// Refuses the attempt while any of `subjects` waits, with how long is left.
pub async fn check(conn: &mut PgConnection, subjects: &[Subject<'_>], now: Timestamp) -> Result<(), CommandError> {
    let keys: Vec<Vec<u8>> = subjects.iter().map(Subject::key).collect();
    let until: Option<Timestamp> = sqlx::query_scalar(
        "SELECT max(blocked_until) FROM sign_in_failures WHERE subject = ANY($1) AND blocked_until > $2",
    )
    .bind(&keys)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    match until {
        Some(until) => Err(CommandError::TooManyAttempts { retry_after: (until - now).to_std().unwrap_or_default() }),
        None => Ok(()),
    }
}

/// Counts one failure against each of `subjects`; returns each one's count after it, in order.
/// A counter whose last failure is a whole window old starts again from one.
pub async fn record_failure(
    conn: &mut PgConnection,
    limits: &SignInLimits,
    subjects: &[Subject<'_>],
    now: Timestamp,
) -> Result<Vec<u32>, CommandError> {
    let window = chrono::TimeDelta::from_std(limits.window).unwrap_or(chrono::TimeDelta::MAX);
    let mut counts = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO sign_in_failures AS f (subject, failures, last_failure_at) VALUES ($1, 1, $2)
             ON CONFLICT (subject) DO UPDATE SET
                 failures = CASE WHEN f.last_failure_at <= $3 THEN 1 ELSE f.failures + 1 END,
                 last_failure_at = $2
             RETURNING failures",
        )
        .bind(subject.key())
        .bind(now)
        .bind(now - window)
        .fetch_one(&mut *conn)
        .await?;
        let failures = u32::try_from(failures).unwrap_or(u32::MAX);
        let blocked_until = delay_after(limits, subject.allowance(limits), failures)
            .and_then(|delay| chrono::TimeDelta::from_std(delay).ok())
            .map(|delay| now + delay);
        sqlx::query("UPDATE sign_in_failures SET blocked_until = $2 WHERE subject = $1")
            .bind(subject.key())
            .bind(blocked_until)
            .execute(&mut *conn)
            .await?;
        counts.push(failures);
    }
    Ok(counts)
}

/// True when `failures` is the one that makes an account's attempts start to wait: the moment
/// the firm's audit log records it.
pub fn starts_waiting(limits: &SignInLimits, failures: u32) -> bool {
    failures == limits.account_failures
}

/// Forgets an account's failures after a successful sign-in.
pub async fn clear(conn: &mut PgConnection, subject: Subject<'_>) -> Result<(), CommandError> {
    sqlx::query("DELETE FROM sign_in_failures WHERE subject = $1").bind(subject.key()).execute(&mut *conn).await?;
    Ok(())
}

/// Drops the counters nobody has failed for a whole window (they would start again from one).
pub async fn sweep(conn: &mut PgConnection, limits: &SignInLimits, now: Timestamp) -> Result<u64, CommandError> {
    let window = chrono::TimeDelta::from_std(limits.window).unwrap_or(chrono::TimeDelta::MAX);
    let done = sqlx::query("DELETE FROM sign_in_failures WHERE last_failure_at <= $1")
        .bind(now - window)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_waits_from_its_fifth_failure_and_the_delay_doubles_to_a_ceiling() {
        let limits = SignInLimits::default();
        let allowance = Subject::Account("a@b.test").allowance(&limits);
        assert_eq!(delay_after(&limits, allowance, 4), None);
        assert_eq!(delay_after(&limits, allowance, 5), Some(Duration::from_secs(1)));
        assert_eq!(delay_after(&limits, allowance, 6), Some(Duration::from_secs(2)));
        assert_eq!(delay_after(&limits, allowance, 9), Some(Duration::from_secs(16)));
        assert_eq!(delay_after(&limits, allowance, 40), Some(Duration::from_secs(15 * 60)));
        assert_eq!(delay_after(&limits, allowance, u32::MAX), Some(Duration::from_secs(15 * 60)));
    }

    #[test]
    fn an_address_waits_only_beyond_fifty_failures() {
        let limits = SignInLimits::default();
        let allowance = Subject::Address("127.0.0.1".parse().expect("an address")).allowance(&limits);
        assert_eq!(delay_after(&limits, allowance, 50), None);
        assert_eq!(delay_after(&limits, allowance, 51), Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_counter_keys_hold_neither_the_email_nor_the_address() {
        let key = Subject::Account("olivia@acme.test").key();
        assert_eq!(key.len(), 32);
        assert!(!String::from_utf8_lossy(&key).contains("olivia"));
    }
}
