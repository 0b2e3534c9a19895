//! API key commands: create (the secret is shown once), edit allowed domains, revoke.

use crate::aggregates::load_api_key;
use crate::auth::SignedInMember;
use crate::error::CommandError;
use crate::log::now;
use crate::retry_once;
use crate::store::Append;
use crate::Commands;
use domain::api_key::{self, ApiKeyCommand};
use domain::events::RevocationReason;
use domain::expiry::parse_expiry;
use domain::names::KeyName;
use domain::{AllowedDomains, ApiKeyId, ApiKeySecret, FieldError, FieldErrors, Permission, Scopes};
use serde::Deserialize;

/// `POST /v1/api-keys`, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// The label.
    pub name: Option<String>,
    /// At least one scope.
    pub scopes: Option<Vec<String>>,
    /// `YYYY-MM-DD` or RFC 3339; absent or null for a key that never expires.
    pub expires_at: Option<String>,
    /// Hostnames; each string may hold several, split on commas and newlines.
    pub allowed_domains: Option<Vec<String>>,
}

/// `PUT /v1/api-keys/{id}/allowed-domains`, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedDomainsRequest {
    /// The new list; empty allows any domain.
    pub allowed_domains: Option<Vec<String>>,
}

/// A key just created. The secret is here and nowhere else, ever.
pub struct CreatedApiKey {
    /// The key's id.
    pub id: ApiKeyId,
    /// The full secret, for the create response only.
    pub secret: ApiKeySecret,
}

/// Parses an allowed-domains list, recording each bad entry against `allowed_domains`.
fn parse_domains(errors: &mut FieldErrors, raw: Option<Vec<String>>) -> Option<AllowedDomains> {
    match AllowedDomains::parse(&raw.unwrap_or_default()) {
        Ok(domains) => Some(domains),
        Err(bad) => {
            errors.0.extend(
                bad.into_iter().map(|e| FieldError { field: "allowed_domains".into(), message: e.to_string() }),
            );
            None
        }
    }
}

impl Commands {
    /// Creates a key for the caller, under the caller's own permissions.
    pub async fn create_api_key(
        &self,
        by: &SignedInMember,
        request: CreateApiKeyRequest,
        request_id: Option<String>,
    ) -> Result<CreatedApiKey, CommandError> {
        by.require(Permission::ApiKeys)?;
        let at = now();
        let mut errors = FieldErrors::new();
        let name = match request.name.as_deref() {
            Some(raw) => errors.check("name", KeyName::parse(raw)),
            None => {
                errors.push("name", "is required");
                None
            }
        };
        let scopes = errors.check("scopes", Scopes::parse(&request.scopes.unwrap_or_default()));
        let expires_at = match request.expires_at.as_deref() {
            None => Some(None),
            Some(raw) => errors.check("expires_at", parse_expiry(raw, by.time_zone, at)).map(Some),
        };
        let allowed_domains = parse_domains(&mut errors, request.allowed_domains);
        if let Some(scopes) = scopes {
            let beyond = scopes.as_set().difference(by.permissions);
            if !beyond.is_empty() {
                errors.push("scopes", api_key::ApiKeyError::ExceedsCreator(beyond).to_string());
            }
        }
        let (Some(name), Some(scopes), Some(expires_at), Some(allowed_domains), true) =
            (name, scopes, expires_at, allowed_domains, errors.is_empty())
        else {
            return Err(errors.into());
        };
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
                created_by: by.member_id,
                creator_permissions: by.permissions,
            },
            at,
        )?;
        let metadata = by.metadata(request_id, at);
        let mut tx = self.log.begin(by.firm_id).await?;
        let recorded = self
            .log
            .append(&mut tx, &metadata, &[Append { stream_id: id.as_uuid(), expected_version: 0, events }])
            .await?;
        self.log.commit(tx, &recorded).await?;
        tracing::info!(api_key_id = %id, preview = secret.preview().as_str(), firm_id = %by.firm_id, "API key created");
        Ok(CreatedApiKey { id, secret })
    }

    /// Replaces an Active key's allowed domains.
    pub async fn update_allowed_domains(
        &self,
        by: &SignedInMember,
        id: ApiKeyId,
        request: AllowedDomainsRequest,
        request_id: Option<String>,
    ) -> Result<(), CommandError> {
        by.require(Permission::ApiKeys)?;
        let mut errors = FieldErrors::new();
        if request.allowed_domains.is_none() {
            errors.push("allowed_domains", "is required; send [] to allow any domain");
        }
        let domains = parse_domains(&mut errors, request.allowed_domains);
        let (Some(domains), true) = (domains, errors.is_empty()) else { return Err(errors.into()) };
        self.change_api_key(by, id, ApiKeyCommand::UpdateDomains { allowed_domains: domains }, request_id).await
    }

    /// Revokes an Active key, for good.
    pub async fn revoke_api_key(
        &self,
        by: &SignedInMember,
        id: ApiKeyId,
        request_id: Option<String>,
    ) -> Result<(), CommandError> {
        by.require(Permission::ApiKeys)?;
        self.change_api_key(by, id, ApiKeyCommand::Revoke { reason: RevocationReason::RevokedByMember }, request_id)
            .await?;
        tracing::info!(api_key_id = %id, firm_id = %by.firm_id, "API key revoked");
        Ok(())
    }

    async fn change_api_key(
        &self,
        by: &SignedInMember,
        id: ApiKeyId,
        command: ApiKeyCommand,
        request_id: Option<String>,
    ) -> Result<(), CommandError> {
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
            self.log.commit(tx, &recorded).await?;
            Ok::<_, CommandError>(())
        })
    }
}
