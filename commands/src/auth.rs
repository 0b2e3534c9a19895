//! People's credentials: password hashes, sessions and invitations. None of them is an event:
//! a password hash or a token hash never enters the log, and so never the audit log.

use crate::error::CommandError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use domain::names::{FirmTimeZone, Password};
use domain::secret::{BearerToken, TokenKind};
use domain::{FirmId, Grid, MemberId, Permission, PermissionSet, Role, Timestamp};
use sqlx::{PgConnection, PgPool};
use std::sync::OnceLock;

/// A member signed in with a session token, as of this request.
#[derive(Clone, Debug)]
pub struct SignedInMember {
    pub member_id: MemberId,
    pub name: String,
    pub firm_id: FirmId,
    /// The firm's time zone (for expiry dates).
    pub time_zone: FirmTimeZone,
    pub role: Role,
    /// What their role may do now, in their firm's grid.
    pub permissions: PermissionSet,
}

impl SignedInMember {
    /// Refuses the request unless the member's role holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), CommandError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(CommandError::PermissionDenied)
        }
    }

    /// The proof that this member meets `R`, or `permission_denied`: the one check of what a
    /// command asks of its member (commands take the proof and check nothing themselves).
    pub fn authorize<R: Requirement>(self) -> Result<Authorized<R>, CommandError> {
        R::check(&self)?;
        Ok(Authorized { member: self, requirement: std::marker::PhantomData })
    }

    /// The metadata of events this member causes now, for request `request_id`.
    pub fn metadata(&self, request_id: Option<String>, occurred_at: Timestamp) -> crate::store::Metadata {
        crate::store::Metadata {
            firm_id: self.firm_id,
            actor: domain::Actor::Member(self.member_id),
            request_id,
            occurred_at,
        }
    }
}

/// What a command asks of the member who gives it (a marker type per rule).
pub trait Requirement: Send + Sync {
    /// `permission_denied` unless `member` meets it.
    fn check(member: &SignedInMember) -> Result<(), CommandError>;
}

/// Holds the `api_keys` permission: the API keys page.
pub struct ManagesApiKeys;
impl Requirement for ManagesApiKeys {
    fn check(member: &SignedInMember) -> Result<(), CommandError> {
        member.require(Permission::ApiKeys)
    }
}

/// Holds the `members` permission: inviting and removing members.
pub struct ManagesMembers;
impl Requirement for ManagesMembers {
    fn check(member: &SignedInMember) -> Result<(), CommandError> {
        member.require(Permission::Members)
    }
}

/// Holds the `audit_log` permission: reading and exporting the audit log.
pub struct ReadsAuditLog;
impl Requirement for ReadsAuditLog {
    fn check(member: &SignedInMember) -> Result<(), CommandError> {
        member.require(Permission::AuditLog)
    }
}

/// Is the firm's owner: members' roles and the roles-and-permissions grid.
pub struct IsOwner;
impl Requirement for IsOwner {
    fn check(member: &SignedInMember) -> Result<(), CommandError> {
        if member.role == Role::Owner {
            Ok(())
        } else {
            Err(CommandError::PermissionDenied)
        }
    }
}

/// A member who meets `R`, as of this request. Only [`SignedInMember::authorize`] makes one, so
/// holding one is the proof, and a command that takes it cannot be given without the check.
pub struct Authorized<R> {
    member: SignedInMember,
    requirement: std::marker::PhantomData<R>,
}

impl<R> std::ops::Deref for Authorized<R> {
    type Target = SignedInMember;
    fn deref(&self) -> &SignedInMember {
        &self.member
    }
}

/// A session just started: the token is shown to the member once.
pub struct NewSession {
    /// The bearer token (`esqs_…`).
    pub token: BearerToken,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Hashes a password with argon2 (default parameters), off the async threads.
pub async fn hash_password(password: Password) -> Result<String, CommandError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CommandError::Internal(format!("password hashing failed: {e}").into()))
    })
    .await
    .map_err(|e| CommandError::Internal(format!("password hashing task failed: {e}").into()))?
}

/// Checks a password against a stored hash, off the async threads. With no stored hash (no such
/// member) it checks against a fixed one, so a wrong email takes as long as a wrong password.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool, CommandError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let matches = PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        known && matches
    })
    .await
    .map_err(|e| CommandError::Internal(format!("password check task failed: {e}").into()))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(b"not anyone's password", &salt)
            .map(|h| h.to_string())
            // Hashing a constant with a fresh salt and default parameters cannot fail; if it
            // somehow did, verification against "" fails too, which is the safe answer.
            .unwrap_or_default()
    })
}

/// Starts a session for `member`, inside the caller's transaction.
pub async fn start_session(
    conn: &mut PgConnection,
    member: MemberId,
    firm: FirmId,
    now: Timestamp,
    ttl: chrono::TimeDelta,
) -> Result<NewSession, CommandError> {
    let token = BearerToken::generate(TokenKind::Session);
    let expires_at = now + ttl;
    sqlx::query(
        "INSERT INTO sessions (token_hash, member_id, firm_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.hash().as_slice())
    .bind(member.as_uuid())
    .bind(firm.as_uuid())
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(NewSession { token, expires_at })
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    member_id: uuid::Uuid,
    name: String,
    firm_id: uuid::Uuid,
    time_zone: String,
    role: String,
    permissions: Option<Vec<String>>,
}

/// The member behind a session token, if the token is live and the member active.
pub async fn authenticate(
    pool: &PgPool,
    token: &BearerToken,
    now: Timestamp,
) -> Result<Option<SignedInMember>, CommandError> {
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT m.id AS member_id, m.name, m.firm_id, f.time_zone, m.role, rp.permissions
         FROM sessions s
         JOIN members m ON m.id = s.member_id AND m.status = 'active'
         JOIN firms f ON f.id = m.firm_id
         LEFT JOIN role_permissions rp ON rp.firm_id = m.firm_id AND rp.role = m.role
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(token.hash().as_slice())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some(SessionRow { member_id, name, firm_id, time_zone, role, permissions }) = row else { return Ok(None) };
    let role = Role::parse(&role).map_err(|e| CommandError::Internal(Box::new(e)))?;
    let permissions = match role {
        Role::Owner => Grid::default().permissions(Role::Owner),
        _ => PermissionSet::parse(&permissions.unwrap_or_default()).map_err(|_| {
            CommandError::Internal(format!("role_permissions of firm {firm_id} holds an unknown permission").into())
        })?,
    };
    Ok(Some(SignedInMember {
        member_id: MemberId::from_uuid(member_id),
        name,
        firm_id: FirmId::from_uuid(firm_id),
        time_zone: FirmTimeZone::parse(&time_zone).unwrap_or_default(),
        role,
        permissions,
    }))
}

/// Ends one session at once.
pub async fn end_session(pool: &PgPool, token: &BearerToken) -> Result<(), CommandError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token.hash().as_slice()).execute(pool).await?;
    Ok(())
}

/// Ends every session of a member, inside the caller's transaction.
pub async fn end_sessions_of(conn: &mut PgConnection, member: MemberId) -> Result<(), CommandError> {
    sqlx::query("DELETE FROM sessions WHERE member_id = $1").bind(member.as_uuid()).execute(conn).await?;
    Ok(())
}
