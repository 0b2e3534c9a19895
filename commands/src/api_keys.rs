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
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// The label: trimmed, 1 to 100 characters, no control characters.
    #[schema(required = true, schema_with = key_name_schema)]
    pub name: Option<String>,
    /// At least one scope; duplicates are folded. None beyond the creator's own role.
    #[schema(required = true, schema_with = domain::schema::scopes_request)]
    pub scopes: Option<Vec<String>>,
    /// `YYYY-MM-DD` (00:00 of that date in the firm's time zone) or an RFC 3339 time; it must
    /// be in the future. Absent or null for a key that never expires.
    #[schema(schema_with = expiry_schema)]
    pub expires_at: Option<String>,
    /// Hostnames; each string may hold several, split on commas and newlines. Absent, null or
    /// empty allows any domain.
    #[schema(schema_with = domains_request_schema)]
    pub allowed_domains: Option<Vec<String>>,
}

/// `PUT /v1/api-keys/{id}/allowed-domains`, as sent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowedDomainsRequest {
    /// The new list; empty allows any domain.
    #[schema(required = true, schema_with = domains_update_schema)]
    pub allowed_domains: Option<Vec<String>>,
}

fn key_name_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::single_line(KeyName::MAX_CHARS).examples(["Intake sync"])
}

/// A key's expiry as sent: a future date or time, or null.
fn expiry_schema() -> utoipa::openapi::schema::OneOfBuilder {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let string =
        |format| ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)));
    OneOfBuilder::new()
        .item(string(KnownFormat::Date))
        .item(string(KnownFormat::DateTime))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .examples(["2027-03-01"])
}

/// An allowed-domains list as sent (normalized on the way in).
fn domains_update_schema() -> utoipa::openapi::schema::ArrayBuilder {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String))
        .examples([serde_json::json!(["app.example.com", "*.example.com"])])
}

/// An allowed-domains list as sent, or null (any domain).
fn domains_request_schema() -> utoipa::openapi::schema::ArrayBuilder {
    use utoipa::openapi::schema::{SchemaType, Type};
    domains_update_schema().schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
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
        let (created, ()) = self.create_api_key_then(by, request, request_id, nothing_to_read).await?;
        Ok(created)
    }

    /// [`Commands::create_api_key`], reading the new key back (`read_back`) in the command's own
    /// transaction: see [`ReadBack`].
    pub async fn create_api_key_then<T, R: ReadBack<T>>(
        &self,
        by: &SignedInMember,
        request: CreateApiKeyRequest,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<(CreatedApiKey, T), CommandError> {
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
        let answer = read_back(tx.conn(), id).await?;
        self.log.commit(tx, &recorded).await?;
        tracing::info!(api_key_id = %id, preview = secret.preview().as_str(), firm_id = %by.firm_id, "API key created");
        Ok((CreatedApiKey { id, secret }, answer))
    }

    /// Replaces an Active key's allowed domains.
    pub async fn update_allowed_domains(
        &self,
        by: &SignedInMember,
        id: ApiKeyId,
        request: AllowedDomainsRequest,
        request_id: Option<String>,
    ) -> Result<(), CommandError> {
        self.update_allowed_domains_then(by, id, request, request_id, nothing_to_read).await
    }

    /// [`Commands::update_allowed_domains`], reading the key back in the command's own
    /// transaction: see [`ReadBack`].
    pub async fn update_allowed_domains_then<T, R: ReadBack<T>>(
        &self,
        by: &SignedInMember,
        id: ApiKeyId,
        request: AllowedDomainsRequest,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        by.require(Permission::ApiKeys)?;
        let mut errors = FieldErrors::new();
        if request.allowed_domains.is_none() {
            errors.push("allowed_domains", "is required; send [] to allow any domain");
        }
        let domains = parse_domains(&mut errors, request.allowed_domains);
        let (Some(domains), true) = (domains, errors.is_empty()) else { return Err(errors.into()) };
        self.change_api_key(by, id, ApiKeyCommand::UpdateDomains { allowed_domains: domains }, request_id, read_back)
            .await
    }

    /// Revokes an Active key, for good.
    pub async fn revoke_api_key(
        &self,
        by: &SignedInMember,
        id: ApiKeyId,
        request_id: Option<String>,
    ) -> Result<(), CommandError> {
        self.revoke_api_key_then(by, id, request_id, nothing_to_read).await
    }

    /// [`Commands::revoke_api_key`], reading the key back in the command's own transaction: see
    /// [`ReadBack`].
    pub async fn revoke_api_key_then<T, R: ReadBack<T>>(
        &self,
        by: &SignedInMember,
        id: ApiKeyId,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        by.require(Permission::ApiKeys)?;
        let command = ApiKeyCommand::Revoke { reason: RevocationReason::RevokedByMember };
        let answer = self.change_api_key(by, id, command, request_id, read_back).await?;
        tracing::info!(api_key_id = %id, firm_id = %by.firm_id, "API key revoked");
        Ok(answer)
    }

    async fn change_api_key<T, R: ReadBack<T>>(
        &self,
        by: &SignedInMember,
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

/// What a command's answer shows, read inside the command's own transaction, after its events
/// are applied to the read models and before the commit. Read after the commit instead, a
/// failure (Postgres gone that instant) would answer 503 for a change that was made: a created
/// key whose secret nobody saw, a revoke reported as failed that happened.
pub trait ReadBack<T>:
    for<'c> Fn(&'c mut sqlx::PgConnection, ApiKeyId) -> futures::future::BoxFuture<'c, Result<T, sqlx::Error>> + Send + Sync
{
}

impl<T, F> ReadBack<T> for F where
    F: for<'c> Fn(&'c mut sqlx::PgConnection, ApiKeyId) -> futures::future::BoxFuture<'c, Result<T, sqlx::Error>>
        + Send
        + Sync
{
}

/// Gives a closure the [`ReadBack`] signature (a closure's higher-ranked signature is only
/// inferred from a bound it is passed to directly).
pub fn read_back<T, F>(read: F) -> F
where
    F: for<'c> Fn(&'c mut sqlx::PgConnection, ApiKeyId) -> futures::future::BoxFuture<'c, Result<T, sqlx::Error>>
        + Send
        + Sync,
{
    read
}

/// The read-back of a caller that needs nothing but the command's own result.
fn nothing_to_read(_: &mut sqlx::PgConnection, _: ApiKeyId) -> futures::future::BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async { Ok(()) })
}
