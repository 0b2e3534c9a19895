//! Keys a secret scanner reported found in public: each matching Active key is revoked at once
//! (reason `leaked`, actor `system`), through the same commit and barrier as a member's revoke,
//! so every node refuses it before the report is answered.

use crate::aggregates::load_api_key;
use crate::error::CommandError;
use crate::log::now;
use crate::retry_once;
use crate::store::{Append, Metadata};
use crate::Commands;
use domain::api_key::{self, ApiKeyCommand, ApiKeyError};
use domain::events::RevocationDetails;
use domain::secret_scanning::{Finding, Label};
use domain::{Actor, ApiKeyId, FirmId, KeyHash};
use std::collections::HashMap;

impl Commands {
    /// Answers each finding, in order: a key of ours is a true positive (revoked now if it was
    /// Active; already revoked or expired changes nothing), anything else a false positive.
    /// Returns once every revocation is seen by every node. The same report twice revokes once
    /// and answers the same.
    pub async fn revoke_reported_keys(
        &self,
        findings: &[Finding],
        request_id: Option<String>,
    ) -> Result<Vec<Label>, CommandError> {
        let owners = self.owners_of(findings).await?;
        let mut labels = Vec::with_capacity(findings.len());
        for finding in findings {
            let owner = finding.secret.as_ref().ok().and_then(|secret| owners.get(&secret.hash()));
            let Some(&(firm, key)) = owner else {
                labels.push(Label::FalsePositive);
                continue;
            };
            self.revoke_leaked_key(firm, key, &finding.details, request_id.clone()).await?;
            labels.push(Label::TruePositive);
        }
        Ok(labels)
    }

    /// The firm and id of every well-formed finding that is one of our keys, in one query.
    async fn owners_of(&self, findings: &[Finding]) -> Result<HashMap<KeyHash, (FirmId, ApiKeyId)>, CommandError> {
        let hashes: Vec<KeyHash> = findings.iter().filter_map(|f| f.secret.as_ref().ok()).map(|s| s.hash()).collect();
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let mut conn = self.log.pool.acquire().await?;
        let keys = self.log.read_models().keys_with_hashes(&mut conn, &hashes).await?;
        Ok(keys.into_iter().map(|(hash, firm, id)| (hash, (firm, id))).collect())
    }

    /// Revokes one reported key if it is Active; a key already revoked or expired is left as it is.
    async fn revoke_leaked_key(
        &self,
        firm: FirmId,
        id: ApiKeyId,
        details: &RevocationDetails,
        request_id: Option<String>,
    ) -> Result<(), CommandError> {
        retry_once!(async {
            let mut tx = self.log.begin(firm).await?;
            let key = load_api_key(tx.conn(), firm, id).await?;
            let at = now();
            let command = ApiKeyCommand::RevokeLeaked { details: details.clone() };
            let events = match api_key::decide(key.state.as_ref(), command, at) {
                Ok(events) => events,
                // Revoked or expired already (by a member, the sweeper, or this same report sent
                // before): nothing to record, and the transaction ends unwritten.
                Err(ApiKeyError::NotActive(_)) => return Ok(()),
                Err(other) => return Err(other.into()),
            };
            let metadata =
                Metadata { firm_id: firm, actor: Actor::System, request_id: request_id.clone(), occurred_at: at };
            let recorded = self
                .log
                .append(
                    &mut tx,
                    &metadata,
                    &[Append { stream_id: id.as_uuid(), expected_version: key.version, events }],
                )
                .await?;
            self.log.commit(tx, &recorded).await?;
            tracing::warn!(api_key_id = %id, firm_id = %firm, source = details.source.as_deref(), "API key revoked: a secret scanner reported it leaked");
            Ok::<_, CommandError>(())
        })
    }
}
