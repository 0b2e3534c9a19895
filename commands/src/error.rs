//! Why a command failed. The HTTP layer maps each variant to one status and `code`.

use crate::store::StoreError;
use domain::api_key::ApiKeyError;
use domain::firm::FirmError;
use domain::member::MemberError;
use domain::FieldErrors;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Field values were invalid; every failing field is listed.
    #[error(transparent)]
    Validation(#[from] FieldErrors),
    /// No such thing in the caller's firm.
    #[error("not found")]
    NotFound,
    /// The caller's role lacks what the command needs.
    #[error("permission denied")]
    PermissionDenied,
    /// The email belongs to a member already.
    #[error("that email address is already in use")]
    EmailTaken,
    /// The key is revoked or expired.
    #[error("the API key is {0}; only an Active key can be changed")]
    ApiKeyNotActive(&'static str),
    /// The key was rolled already and its grace period has not ended.
    #[error("the API key has been rolled already and is in its grace period")]
    ApiKeyAlreadyRolled,
    /// The owner's role permissions cannot change.
    #[error("the owner role always has every permission and cannot be changed")]
    OwnerRoleFixed,
    /// The owner cannot be removed.
    #[error("the owner cannot be removed from the firm")]
    OwnerCannotBeRemoved,
    /// The member has been removed.
    #[error("the member has been removed")]
    MemberNotActive,
    /// Wrong email or password.
    #[error("the email or password is wrong")]
    InvalidLogin,
    /// Too many failed sign-ins for the account or from the address: try again after `retry_after`.
    #[error("too many failed attempts; try again later")]
    TooManyAttempts { retry_after: std::time::Duration },
    /// An unknown, used or expired invitation.
    #[error("the invitation is not valid: it may have expired or been used")]
    InvalidInvitation,
    /// Another writer changed the same thing at the same moment, twice.
    #[error("the resource was changed by another request at the same time; try again")]
    Conflict,
    /// Postgres could not be reached in time.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug or a corrupted store. Logged with its cause; never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for CommandError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                CommandError::Unavailable(error)
            }
            sqlx::Error::Database(db) if db.constraint() == Some("members_email") => CommandError::EmailTaken,
            _ => CommandError::Internal(Box::new(error)),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(_) => CommandError::Conflict,
            StoreError::Database(e) => e.into(),
            StoreError::Corrupt { .. } => CommandError::Internal(Box::new(error)),
        }
    }
}

impl From<ApiKeyError> for CommandError {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::NotFound => CommandError::NotFound,
            ApiKeyError::NotActive(status) => CommandError::ApiKeyNotActive(status),
            ApiKeyError::ExceedsCreator(_) => {
                CommandError::Validation(FieldErrors::single("scopes", error.to_string()))
            }
            ApiKeyError::AlreadyRolled => CommandError::ApiKeyAlreadyRolled,
            // A sweeper's race with another node or a member: the state moved under it.
            ApiKeyError::AlreadyExists | ApiKeyError::NotYetExpired | ApiKeyError::GraceNotEnded => {
                CommandError::Conflict
            }
        }
    }
}

impl From<MemberError> for CommandError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::NotFound => CommandError::NotFound,
            MemberError::Removed => CommandError::MemberNotActive,
            MemberError::OwnerRoleNotGiven => CommandError::Validation(FieldErrors::single("role", error.to_string())),
            MemberError::OwnerRoleCannotChange => CommandError::OwnerRoleFixed,
            MemberError::OwnerCannotBeRemoved => CommandError::OwnerCannotBeRemoved,
            MemberError::AlreadyJoined => CommandError::InvalidInvitation,
            MemberError::AlreadyExists => CommandError::Conflict,
        }
    }
}

impl From<FirmError> for CommandError {
    fn from(error: FirmError) -> Self {
        match error {
            FirmError::NotFound => CommandError::NotFound,
            FirmError::OwnerRoleFixed(_) => CommandError::OwnerRoleFixed,
            FirmError::AlreadyExists => CommandError::Conflict,
        }
    }
}
