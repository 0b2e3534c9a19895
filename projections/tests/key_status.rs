//! The SQL statement of a key's status (`views::key_status_is`) answers as the domain's
//! (`KeyStatus::at`) for every recorded lifecycle, every position of the expiry and of a
//! roll's grace end (before, at and after `now`, and before, at and after each other).

use chrono::{DateTime, TimeDelta, Utc};
use domain::api_key::KeyStatus;
use projections::views::key_status_is;

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[tokio::test]
async fn the_sql_status_of_a_key_is_the_domain_status_at_every_instant() {
    // Only expressions over literal rows: no table, so the shared database is enough.
    let pool = sqlx::PgPool::connect(&database_url()).await.expect("Postgres is reachable");
    let now: DateTime<Utc> = "2026-12-03T12:00:00.000Z".parse().expect("a time");
    let expiries = [
        None,
        Some(now - TimeDelta::days(1)),
        Some(now - TimeDelta::microseconds(1)),
        Some(now),
        Some(now + TimeDelta::microseconds(1)),
        Some(now + TimeDelta::days(1)),
    ];
    // The same instants serve as grace ends, so every order of the two is met, ties included.
    let grace_ends = expiries;
    let statuses = [KeyStatus::Active, KeyStatus::Revoked, KeyStatus::Expired];
    for recorded in statuses {
        for expires_at in expiries {
            for grace_ends_at in grace_ends {
                let expected = KeyStatus::at(recorded, expires_at, grace_ends_at, now);
                for asked in statuses {
                    let predicate = key_status_is(asked, "k", "$2");
                    let answer: Option<bool> = sqlx::query_scalar(&format!(
                        "SELECT {predicate} FROM (SELECT $1::text AS lifecycle, $3::timestamptz AS expires_at,
                                                         $4::timestamptz AS grace_ends_at) k"
                    ))
                    .bind(recorded.as_str())
                    .bind(now)
                    .bind(expires_at)
                    .bind(grace_ends_at)
                    .fetch_one(&pool)
                    .await
                    .expect("the predicate is valid SQL");
                    assert_eq!(
                        answer,
                        Some(expected == asked),
                        "recorded {recorded:?}, expiry {expires_at:?}, grace end {grace_ends_at:?}, asked {asked:?}"
                    );
                }
            }
        }
    }
}
