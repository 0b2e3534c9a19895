//! Signing a firm up, and the owner's roles-and-permissions grid.

use crate::aggregates::load_firm;
use crate::auth::{hash_password, start_session, NewSession, SignedInMember};
use crate::error::CommandError;
use crate::log::now;
use crate::retry_once;
use crate::store::{Append, Metadata};
use crate::Commands;
use domain::firm::{self, FirmCommand};
use domain::member::{self, MemberCommand};
use domain::names::{Email, FirmName, FirmTimeZone, Password, PersonName};
use domain::{Actor, FieldErrors, FirmId, MemberId, PermissionSet, Role};
use serde::Deserialize;

/// `POST /v1/firms`, as sent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The firm's name.
    #[schema(required = true, schema_with = firm_name_schema)]
    pub firm_name: Option<String>,
    /// An IANA time zone; `UTC` when absent or null. An unknown zone is a 422.
    #[schema(examples("America/New_York"))]
    pub time_zone: Option<String>,
    /// The owner.
    #[schema(required = true, value_type = OwnerRequest)]
    pub owner: Option<OwnerRequest>,
}

/// The owner part of a signup.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerRequest {
    /// Their name.
    #[schema(required = true, schema_with = person_name_schema)]
    pub name: Option<String>,
    /// Their login: unique across the service, compared without case.
    #[schema(required = true, schema_with = domain::schema::email)]
    pub email: Option<String>,
    /// 12 to 1024 characters, not trimmed.
    #[schema(required = true, schema_with = password_schema)]
    pub password: Option<String>,
}

fn firm_name_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::single_line(FirmName::MAX_CHARS).examples(["Acme Law"])
}

/// The schema of a person's name.
pub fn person_name_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::single_line(PersonName::MAX_CHARS).examples(["Olivia Owner"])
}

/// The schema of a password as typed.
pub fn password_schema() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(Password::MIN_CHARS))
        .max_length(Some(Password::MAX_CHARS))
}

impl std::fmt::Debug for OwnerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerRequest").field("name", &self.name).field("email", &self.email).finish_non_exhaustive()
    }
}

/// A firm just signed up.
pub struct Signup {
    /// The firm.
    pub firm_id: FirmId,
    /// Its owner.
    pub owner_id: MemberId,
    /// The owner's first session.
    pub session: NewSession,
}

/// Parses a required text field, recording "is required" when absent.
pub(crate) fn required<T, E: std::fmt::Display>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    match value {
        Some(raw) => errors.check(field, parse(raw)),
        None => {
            errors.push(field, "is required");
            None
        }
    }
}

impl Commands {
    /// Creates a firm and its owner, and signs the owner in.
    pub async fn sign_up(&self, request: SignupRequest, request_id: Option<String>) -> Result<Signup, CommandError> {
        let mut errors = FieldErrors::new();
        let firm_name = required(&mut errors, "firm_name", request.firm_name.as_deref(), FirmName::parse);
        let time_zone = match request.time_zone.as_deref() {
            None => Some(FirmTimeZone::default()),
            Some(raw) => errors.check("time_zone", FirmTimeZone::parse(raw)),
        };
        let owner = request.owner.unwrap_or_default();
        let name = required(&mut errors, "owner.name", owner.name.as_deref(), PersonName::parse);
        let email = required(&mut errors, "owner.email", owner.email.as_deref(), Email::parse);
        let password = required(&mut errors, "owner.password", owner.password.as_deref(), Password::parse);
        let (Some(firm_name), Some(time_zone), Some(name), Some(email), Some(password)) =
            (firm_name, time_zone, name, email, password)
        else {
            return Err(errors.into());
        };
        let password_hash = hash_password(password).await?;
        let firm_id = FirmId::new();
        let owner_id = MemberId::new();
        let at = now();
        let metadata = Metadata { firm_id, actor: Actor::Member(owner_id), request_id, occurred_at: at };
        let firm_events = firm::decide(None, FirmCommand::Create { name: firm_name, time_zone })?;
        let owner_events = member::decide(None, MemberCommand::RegisterOwner { name, email })?;
        let mut tx = self.log.begin(firm_id).await?;
        let recorded = self
            .log
            .append(
                &mut tx,
                &metadata,
                &[
                    Append { stream_id: firm_id.as_uuid(), expected_version: 0, events: firm_events },
                    Append { stream_id: owner_id.as_uuid(), expected_version: 0, events: owner_events },
                ],
            )
            .await?;
        sqlx::query("INSERT INTO member_passwords (member_id, password_hash) VALUES ($1, $2)")
            .bind(owner_id.as_uuid())
            .bind(&password_hash)
            .execute(tx.conn())
            .await?;
        let session = start_session(tx.conn(), owner_id, firm_id, at, self.session_ttl).await?;
        self.log.commit(tx, &recorded).await?;
        tracing::info!(%firm_id, %owner_id, "firm signed up");
        Ok(Signup { firm_id, owner_id, session })
    }

    /// Gives `role` exactly `permissions` in the caller's firm (owner only).
    pub async fn set_role_permissions(
        &self,
        by: &SignedInMember,
        role: &str,
        permissions: Option<Vec<String>>,
        request_id: Option<String>,
    ) -> Result<Role, CommandError> {
        by.require_owner()?;
        let role = Role::parse(role).map_err(|_| CommandError::NotFound)?;
        let permissions = match permissions {
            None => return Err(FieldErrors::single("permissions", "is required").into()),
            Some(names) => PermissionSet::parse(&names).map_err(|unknown| {
                FieldErrors(
                    unknown
                        .into_iter()
                        .map(|e| domain::FieldError { field: "permissions".into(), message: e.to_string() })
                        .collect(),
                )
            })?,
        };
        if role == Role::Owner {
            return Err(CommandError::OwnerRoleFixed);
        }
        retry_once!(async {
            let mut tx = self.log.begin(by.firm_id).await?;
            let firm = load_firm(tx.conn(), by.firm_id).await?;
            let events = firm::decide(firm.state.as_ref(), FirmCommand::ChangeRolePermissions { role, permissions })?;
            let metadata = by.metadata(request_id.clone(), now());
            let recorded = self
                .log
                .append(
                    &mut tx,
                    &metadata,
                    &[Append { stream_id: by.firm_id.as_uuid(), expected_version: firm.version, events }],
                )
                .await?;
            self.log.commit(tx, &recorded).await?;
            Ok::<_, CommandError>(())
        })?;
        Ok(role)
    }
}
