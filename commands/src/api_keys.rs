//! API key commands: create (the secret is shown once), edit allowed domains, revoke, roll.

use crate::aggregates::load_api_key;
use crate::auth::{Authorized, ManagesApiKeys};
use crate::error::CommandError;
use crate::log::now;
use crate::read_back::ReadBack;
use crate::retry_once;
use crate::store::Append;
use crate::Commands;
use domain::api_key::{self, ApiKeyCommand, GracePeriod};
use domain::events::RevocationReason;
use domain::names::KeyName;
use domain::{AllowedDomains, ApiKeyId, ApiKeySecret, RateLimit, Scopes, Timestamp};

/// A key as its creator asked for it, every field parsed. The scopes are checked against the
/// creator's permissions by the command ([`domain::api_key::decide`]).
pub struct NewApiKey {
    pub name: KeyName,
    pub scopes: Scopes,
    /// `None` for a key that never expires; a future instant (the parse of `expires_at` sees to it).
    pub expires_at: Option<Timestamp>,
    /// Empty allows any domain.
    pub allowed_domains: AllowedDomains,
    /// `None` for a key without a rate limit.
    pub rate_limit: Option<RateLimit>,
}

/// A key just created. The secret is here and nowhere else, ever.
pub struct CreatedApiKey {
    pub id: ApiKeyId,
    /// The full secret, for the create response only.
    pub secret: ApiKeySecret,
}

impl Commands {
    /// Creates a key for the caller, under the caller's own permissions, and reads it back
    /// (`read_back`) in the command's own transaction.
    pub async fn create_api_key<T, R: ReadBack<ApiKeyId, T>>(
        &self,
        by: &Authorized<ManagesApiKeys>,
        key: NewApiKey,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<(CreatedApiKey, T), CommandError> {
        let at = now();
        let NewApiKey { name, scopes, expires_at, allowed_domains, rate_limit } = key;
        let id = ApiKeyId::new();
        let secret = ApiKeySecret::generate();
        let events = api_key::decide(
            None,
            ApiKeyCommand::Create {
                name,
                key_hash: secret.hash(),
                preview: secret.preview(),
                scopes,
                expires_at,
                allowed_domains,
                rate_limit,
                created_by: by.member_id,
                creator_permissions: by.permissions,
                replaces: None,
            },
            at,
        )?;
        let metadata = by.metadata(request_id, at);
        let mut tx = self.log.begin(by.firm_id).await?;
        let recorded = self
            .log
            .append(&mut tx, &metadata, &[Append { stream_id: id.as_uuid(), expected_version: 0, events }])
            .await?;
        let answer = read_back(tx.conn(), id).await?;
        self.log.commit(tx, &recorded).await?;
        tracing::info!(api_key_id = %id, preview = secret.preview().as_str(), firm_id = %by.firm_id, "API key created");
        Ok((CreatedApiKey { id, secret }, answer))
    }

    /// Replaces an Active key's allowed domains, and reads the key back.
    pub async fn update_allowed_domains<T, R: ReadBack<ApiKeyId, T>>(
        &self,
        by: &Authorized<ManagesApiKeys>,
        id: ApiKeyId,
        allowed_domains: AllowedDomains,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        self.change_api_key(by, id, ApiKeyCommand::UpdateDomains { allowed_domains }, request_id, read_back).await
    }

    /// Sets, changes or removes (`None`) an Active key's rate limit, and reads the key back.
    pub async fn update_rate_limit<T, R: ReadBack<ApiKeyId, T>>(
        &self,
        by: &Authorized<ManagesApiKeys>,
        id: ApiKeyId,
        rate_limit: Option<RateLimit>,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        self.change_api_key(by, id, ApiKeyCommand::UpdateRateLimit { rate_limit }, request_id, read_back).await
    }

    /// Revokes an Active key, for good, and reads it back.
    pub async fn revoke_api_key<T, R: ReadBack<ApiKeyId, T>>(
        &self,
        by: &Authorized<ManagesApiKeys>,
        id: ApiKeyId,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        let command = ApiKeyCommand::Revoke { reason: RevocationReason::RevokedByMember };
        let answer = self.change_api_key(by, id, command, request_id, read_back).await?;
        tracing::info!(api_key_id = %id, firm_id = %by.firm_id, "API key revoked");
        Ok(answer)
    }

    /// Rolls an Active key: creates its successor (same name, scopes, allowed domains and
    /// expiry, created by the roller under the roller's ceiling) and lets the old key work for
    /// `grace` more, in one transaction. Reads back the new key, then the old one, in it.
    pub async fn roll_api_key<T, R: ReadBack<ApiKeyId, T>>(
        &self,
        by: &Authorized<ManagesApiKeys>,
        id: ApiKeyId,
        grace: GracePeriod,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<(CreatedApiKey, T, T), CommandError> {
        let new_id = ApiKeyId::new();
        let secret = ApiKeySecret::generate();
        let (new_key, old_key) = retry_once!(async {
            let mut tx = self.log.begin(by.firm_id).await?;
            let old = load_api_key(tx.conn(), by.firm_id, id).await?;
            let at = now();
            // The old key's state decides first: a key that cannot be rolled is a 409 whatever
            // the roller's ceiling.
            let rolled = api_key::decide(
                old.state.as_ref(),
                ApiKeyCommand::Roll { replaced_by: new_id, replaced_by_preview: secret.preview(), grace },
                at,
            )?;
            let old_state = old.state.as_ref().ok_or(CommandError::NotFound)?;
            let successor = old_state.successor(secret.hash(), secret.preview(), by.member_id, by.permissions, id);
            let created = api_key::decide(None, successor, at)?;
            let metadata = by.metadata(request_id.clone(), at);
            let recorded = self
                .log
                .append(
                    &mut tx,
                    &metadata,
                    &[
                        Append { stream_id: new_id.as_uuid(), expected_version: 0, events: created },
                        Append { stream_id: id.as_uuid(), expected_version: old.version, events: rolled },
                    ],
                )
                .await?;
            let new_key = read_back(tx.conn(), new_id).await?;
            let old_key = read_back(tx.conn(), id).await?;
            self.log.commit(tx, &recorded).await?;
            Ok::<_, CommandError>((new_key, old_key))
        })?;
        tracing::info!(
            api_key_id = %id, replaced_by = %new_id, preview = secret.preview().as_str(), firm_id = %by.firm_id,
            grace_seconds = grace.seconds(), "API key rolled"
        );
        Ok((CreatedApiKey { id: new_id, secret }, new_key, old_key))
    }

    async fn change_api_key<T, R: ReadBack<ApiKeyId, T>>(
        &self,
        by: &Authorized<ManagesApiKeys>,
        id: ApiKeyId,
        command: ApiKeyCommand,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        retry_once!(async {
            let mut tx = self.log.begin(by.firm_id).await?;
            let key = load_api_key(tx.conn(), by.firm_id, id).await?;
            let at = now();
            let events = api_key::decide(key.state.as_ref(), command.clone(), at)?;
            let metadata = by.metadata(request_id.clone(), at);
            let recorded = self
                .log
                .append(
                    &mut tx,
                    &metadata,
                    &[Append { stream_id: id.as_uuid(), expected_version: key.version, events }],
                )
                .await?;
            let answer = read_back(tx.conn(), id).await?;
            self.log.commit(tx, &recorded).await?;
            Ok::<_, CommandError>(answer)
        })
    }
}
