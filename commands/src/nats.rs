//! Names and set-up of what this deployment keeps in NATS, all derived from one prefix so that
//! deployments and test runs can share a server without seeing each other.

use async_nats::jetstream;
use std::time::Duration;

/// The names of a deployment's JetStream stream, subjects and KV bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsNames {
    prefix: String,
}

/// A prefix that cannot name NATS things.
#[derive(Debug, thiserror::Error)]
#[error("ESQASE_NATS_PREFIX must be 1 to 64 letters, digits, '-' or '_', not '{0}'")]
pub struct BadPrefix(String);

impl NatsNames {
    /// Checks the prefix: it is part of subject, stream and bucket names.
    pub fn new(prefix: &str) -> Result<Self, BadPrefix> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(NatsNames { prefix: prefix.to_owned() })
        } else {
            Err(BadPrefix(prefix.to_owned()))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The JetStream stream holding the event feed.
    pub fn stream(&self) -> String {
        format!("{}_events", self.prefix)
    }

    /// Every subject of the event feed.
    pub fn all_subjects(&self) -> String {
        format!("{}.*.*.*", self.prefix)
    }

    /// One event's subject: `<prefix>.<firm_id>.<stream kind>.<event type>`.
    pub fn subject(&self, firm: domain::FirmId, kind: domain::StreamKind, event_type: &str) -> String {
        format!("{}.{}.{}.{}", self.prefix, firm, kind.as_str(), event_type)
    }

    /// Every subject of the cluster's own messages (heartbeats, commits): core NATS only,
    /// under a first token of their own so that no stream of the feed ever captures them.
    pub fn cluster_subjects(&self) -> String {
        format!("{}_cluster.>", self.prefix)
    }

    /// A cluster message of `kind` (`hb`, `commit`, `bye`) from `node`.
    pub fn cluster_subject(&self, kind: &str, node: uuid::Uuid) -> String {
        format!("{}_cluster.{kind}.{}", self.prefix, node.simple())
    }

    /// Where `node` hears replies to its commit messages (`.<commit number>` is appended).
    pub fn cluster_replies(&self, node: uuid::Uuid) -> String {
        format!("{}_cluster_reply.{}", self.prefix, node.simple())
    }

    /// The key-value bucket of the rate limits' counts, shared by every node.
    pub fn rate_limit_bucket(&self) -> String {
        format!("{}_rate_limits", self.prefix)
    }
}

/// Deletes what a deployment keeps in JetStream, its feed's stream and its rate-limit bucket:
/// for the tests and benchmarks that clean up after themselves. Either may never have been made
/// (a node that never reached NATS, no limited key used); every other failure is returned.
pub async fn delete_all(js: &jetstream::Context, names: &NatsNames) -> Result<(), async_nats::Error> {
    let not_found = |error: &dyn std::fmt::Display| error.to_string().contains("not found");
    if let Err(error) = js.delete_stream(names.stream()).await {
        if !not_found(&error) {
            return Err(error.into());
        }
    }
    if let Err(error) = js.delete_key_value(names.rate_limit_bucket()).await {
        if !not_found(&error) {
            return Err(error.into());
        }
    }
    Ok(())
}

/// How long JetStream remembers message ids for de-duplication: a relay that restarts within
/// this window after publishing but before saving its checkpoint adds no duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Creates (or finds) the feed's stream.
pub async fn ensure_stream(
    js: &jetstream::Context,
    names: &NatsNames,
) -> Result<jetstream::stream::Stream, async_nats::Error> {
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: names.stream(),
            subjects: vec![names.all_subjects()],
            duplicate_window: DUPLICATE_WINDOW,
            // The stream is a fast path, not the truth: Postgres keeps every event.
            max_age: Duration::from_secs(7 * 24 * 3600),
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    Ok(stream)
}

/// Header names of the feed's messages.
pub mod headers {
    /// The event's place in the feed (`tx_id:position`).
    pub const POSITION: &str = "Esqase-Position";
    /// The place of the event the relay published just before it: a follower whose own place
    /// differs has missed something and reads it from Postgres.
    pub const PREVIOUS: &str = "Esqase-Previous";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_with_a_dot_or_a_wildcard_is_refused() {
        assert!(NatsNames::new("esqase").is_ok());
        assert!(NatsNames::new("test_run-42").is_ok());
        assert!(NatsNames::new("a.b").is_err());
        assert!(NatsNames::new("a*").is_err());
        assert!(NatsNames::new("").is_err());
    }

    #[test]
    fn no_cluster_message_falls_under_the_feeds_subjects() {
        let names = NatsNames::new("esqase").expect("valid");
        let node = uuid::Uuid::now_v7();
        let feed_root = format!("{}.", names.prefix());
        for subject in [names.cluster_subject("hb", node), format!("{}.7", names.cluster_replies(node))] {
            assert!(!subject.starts_with(&feed_root), "{subject} would be captured by {}", names.all_subjects());
        }
    }

    #[test]
    fn subjects_name_the_firm_the_stream_kind_and_the_event() {
        let names = NatsNames::new("esqase").expect("valid");
        let firm = domain::FirmId::from_uuid(uuid::Uuid::nil());
        assert_eq!(
            names.subject(firm, domain::StreamKind::ApiKey, "ApiKeyRevoked"),
            "esqase.00000000-0000-0000-0000-000000000000.api_key.ApiKeyRevoked"
        );
    }
}
