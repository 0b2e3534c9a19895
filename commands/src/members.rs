//! Members: invitations, logging in and out, role changes and removal.

use crate::aggregates::{load_api_key, load_member};
use crate::auth::{
    end_sessions_of, hash_password, start_session, verify_password, Authorized, IsOwner, ManagesMembers, NewSession,
};
use crate::error::CommandError;
use crate::log::now;
use crate::read_back::ReadBack;
use crate::retry_once;
use crate::store::{Append, Metadata};
use crate::throttle::{self, Subject};
use crate::Commands;
use domain::api_key::{self, ApiKeyCommand};
use domain::events::RevocationReason;
use domain::member::{self, MemberCommand};
use domain::names::{Email, Password, PersonName};
use domain::secret::{BearerToken, TokenKind};
use domain::{Actor, FirmId, MemberId, Role};
use std::net::IpAddr;

/// How long an invitation stays valid.
pub const INVITATION_TTL: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Someone to invite, every field parsed. The owner role cannot be given
/// ([`domain::member::decide`] refuses it).
pub struct NewInvitation {
    pub name: PersonName,
    /// Their login: unique across the service.
    pub email: Email,
    pub role: Role,
}

/// An invitation just made: the token is shown once.
pub struct Invitation {
    pub member_id: MemberId,
    /// The token (`esqi_…`).
    pub token: BearerToken,
}

/// A login as typed. The email is not parsed: one that could never be stored belongs to
/// nobody, and answers like an unknown one after the same password work.
pub struct Login {
    pub email: String,
    pub password: String,
}

/// An invitation being accepted: its token and the password the member chose.
pub struct InvitationAcceptance {
    pub token: BearerToken,
    pub password: Password,
}

/// A member signed in.
pub struct SignIn {
    pub member_id: MemberId,
    pub session: NewSession,
}

impl Commands {
    /// Invites someone into the caller's firm, and reads the new member back.
    pub async fn invite_member<T, R: ReadBack<MemberId, T>>(
        &self,
        by: &Authorized<ManagesMembers>,
        invitation: NewInvitation,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<(Invitation, T), CommandError> {
        let NewInvitation { name, email, role } = invitation;
        let member_id = MemberId::new();
        let at = now();
        let events = member::decide(None, MemberCommand::Invite { name, email, role })?;
        let metadata = by.metadata(request_id, at);
        let mut tx = self.log.begin(by.firm_id).await?;
        let recorded = self
            .log
            .append(&mut tx, &metadata, &[Append { stream_id: member_id.as_uuid(), expected_version: 0, events }])
            .await?;
        let token = BearerToken::generate(TokenKind::Invitation);
        sqlx::query("INSERT INTO invitations (token_hash, member_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token.hash().as_slice())
            .bind(member_id.as_uuid())
            .bind(at + INVITATION_TTL)
            .execute(tx.conn())
            .await?;
        let answer = read_back(tx.conn(), member_id).await?;
        self.log.commit(tx, &recorded).await?;
        Ok((Invitation { member_id, token }, answer))
    }

    /// Accepts an invitation: sets the password, signs the member in, and reads them back. A
    /// wrong token counts as a failed sign-in (see [`crate::throttle`]) for the token and for
    /// `client`, the address it came from.
    pub async fn accept_invitation<T, R: ReadBack<MemberId, T>>(
        &self,
        acceptance: InvitationAcceptance,
        client: Option<IpAddr>,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<(SignIn, T), CommandError> {
        let typed = acceptance.token.expose().to_owned();
        let subjects = sign_in_subjects(Subject::Invitation(&typed), client);
        throttle::check(&mut *self.log.pool.acquire().await?, &subjects, now()).await?;
        match self.accept_unthrottled(acceptance, request_id, read_back).await {
            Err(CommandError::InvalidInvitation) => {
                let mut tx = self.log.pool.begin().await?;
                throttle::record_failure(&mut tx, &self.sign_in_limits, &subjects, now()).await?;
                tx.commit().await?;
                Err(CommandError::InvalidInvitation)
            }
            Ok(accepted) => {
                throttle::clear(&mut *self.log.pool.acquire().await?, subjects[0]).await?;
                Ok(accepted)
            }
            Err(other) => Err(other),
        }
    }

    async fn accept_unthrottled<T, R: ReadBack<MemberId, T>>(
        &self,
        acceptance: InvitationAcceptance,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<(SignIn, T), CommandError> {
        let InvitationAcceptance { token, password } = acceptance;
        let password_hash = hash_password(password).await?;
        let at = now();
        let found: Option<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
            "SELECT i.member_id, m.firm_id FROM invitations i JOIN members m ON m.id = i.member_id
             WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > $2",
        )
        .bind(token.hash().as_slice())
        .bind(at)
        .fetch_optional(&self.log.pool)
        .await?;
        let (member_id, firm_id) = found.ok_or(CommandError::InvalidInvitation)?;
        let (member_id, firm_id) = (MemberId::from_uuid(member_id), FirmId::from_uuid(firm_id));
        let mut tx = self.log.begin(firm_id).await?;
        // Claim the invitation under the firm's lock: of two concurrent accepts, one wins.
        let claimed = sqlx::query(
            "UPDATE invitations SET accepted_at = $2 WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
        )
        .bind(token.hash().as_slice())
        .bind(at)
        .execute(tx.conn())
        .await?;
        if claimed.rows_affected() != 1 {
            return Err(CommandError::InvalidInvitation);
        }
        let loaded = load_member(tx.conn(), firm_id, member_id).await?;
        let events = member::decide(loaded.state.as_ref(), MemberCommand::AcceptInvitation).map_err(|e| match e {
            member::MemberError::Removed => CommandError::InvalidInvitation,
            other => other.into(),
        })?;
        let metadata = Metadata { firm_id, actor: Actor::Member(member_id), request_id, occurred_at: at };
        let recorded = self
            .log
            .append(
                &mut tx,
                &metadata,
                &[Append { stream_id: member_id.as_uuid(), expected_version: loaded.version, events }],
            )
            .await?;
        sqlx::query("INSERT INTO member_passwords (member_id, password_hash) VALUES ($1, $2)")
            .bind(member_id.as_uuid())
            .bind(&password_hash)
            .execute(tx.conn())
            .await?;
        let session = start_session(tx.conn(), member_id, firm_id, at, self.session_ttl).await?;
        let answer = read_back(tx.conn(), member_id).await?;
        self.log.commit(tx, &recorded).await?;
        Ok((SignIn { member_id, session }, answer))
    }

    /// Logs a member in, and reads them back. A wrong email and a wrong password answer the
    /// same, in about the same time.
    ///
    /// Failures are counted for the email (a member's or not) and for `client`, the address the
    /// attempt came from; past the limits attempts wait (see [`crate::throttle`]), and the right
    /// password does not get through while they do.
    pub async fn log_in<T, R: ReadBack<MemberId, T>>(
        &self,
        login: Login,
        client: Option<IpAddr>,
        read_back: R,
    ) -> Result<(SignIn, T), CommandError> {
        let Login { email, password } = login;
        let email = email.trim().to_lowercase();
        let subjects = sign_in_subjects(Subject::Account(&email), client);
        throttle::check(&mut *self.log.pool.acquire().await?, &subjects, now()).await?;
        // Every stored email passed `Email::parse`; one that does not (a control character,
        // say, which Postgres text cannot even hold) belongs to nobody: the same answer, after
        // the same password work, as an unknown one.
        let found: Option<(uuid::Uuid, uuid::Uuid, String)> = match Email::parse(&email) {
            Ok(email) => {
                sqlx::query_as(
                    "SELECT m.id, m.firm_id, p.password_hash FROM members m
                     JOIN member_passwords p ON p.member_id = m.id
                     WHERE m.email = $1 AND m.status = 'active'",
                )
                .bind(email.as_str())
                .fetch_optional(&self.log.pool)
                .await?
            }
            Err(_) => None,
        };
        let stored = found.as_ref().map(|(_, _, hash)| hash.clone());
        let member = found.map(|(member, firm, _)| (MemberId::from_uuid(member), FirmId::from_uuid(firm)));
        let right = verify_password(password, stored).await?;
        let Some((member_id, firm_id)) = member.filter(|_| right) else {
            self.record_failed_sign_in(&subjects, member).await?;
            return Err(CommandError::InvalidLogin);
        };
        let mut tx = self.log.pool.begin().await?;
        throttle::clear(&mut tx, subjects[0]).await?;
        let session = start_session(&mut tx, member_id, firm_id, now(), self.session_ttl).await?;
        let answer = read_back(&mut tx, member_id).await?;
        tx.commit().await?;
        Ok((SignIn { member_id, session }, answer))
    }

    /// Counts a failed login; when it makes a member's account start to wait, their firm's
    /// audit log records it (in the same transaction, under the firm's lock).
    async fn record_failed_sign_in(
        &self,
        subjects: &[Subject<'_>],
        member: Option<(MemberId, FirmId)>,
    ) -> Result<(), CommandError> {
        let at = now();
        let Some((member_id, firm_id)) = member else {
            let mut tx = self.log.pool.begin().await?;
            throttle::record_failure(&mut tx, &self.sign_in_limits, subjects, at).await?;
            tx.commit().await?;
            return Ok(());
        };
        let mut tx = self.log.begin(firm_id).await?;
        let counts = throttle::record_failure(tx.conn(), &self.sign_in_limits, subjects, at).await?;
        let mut recorded = Vec::new();
        if let Some(&failures) = counts.first().filter(|&&n| throttle::starts_waiting(&self.sign_in_limits, n)) {
            let loaded = load_member(tx.conn(), firm_id, member_id).await?;
            let events = member::decide(loaded.state.as_ref(), MemberCommand::RecordSignInThrottled { failures })?;
            let metadata = Metadata { firm_id, actor: Actor::System, request_id: None, occurred_at: at };
            recorded = self
                .log
                .append(
                    &mut tx,
                    &metadata,
                    &[Append { stream_id: member_id.as_uuid(), expected_version: loaded.version, events }],
                )
                .await?;
            tracing::warn!(%member_id, %firm_id, failures, "sign-in to a member's account now waits after failed attempts");
        }
        self.log.commit(tx, &recorded).await?;
        Ok(())
    }

    /// Changes a member's role (owner only; the owner's own role is fixed), and reads the member
    /// back.
    pub async fn change_member_role<T, R: ReadBack<MemberId, T>>(
        &self,
        by: &Authorized<IsOwner>,
        member_id: MemberId,
        role: Role,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        retry_once!(async {
            let mut tx = self.log.begin(by.firm_id).await?;
            let loaded = load_member(tx.conn(), by.firm_id, member_id).await?;
            let events = member::decide(loaded.state.as_ref(), MemberCommand::ChangeRole { role })?;
            let metadata = by.metadata(request_id.clone(), now());
            let recorded = self
                .log
                .append(
                    &mut tx,
                    &metadata,
                    &[Append { stream_id: member_id.as_uuid(), expected_version: loaded.version, events }],
                )
                .await?;
            let answer = read_back(tx.conn(), member_id).await?;
            self.log.commit(tx, &recorded).await?;
            Ok::<_, CommandError>(answer)
        })
    }

    /// Removes a member: their sessions end and every Active key they created is revoked, at
    /// once. Reads the member back.
    pub async fn remove_member<T, R: ReadBack<MemberId, T>>(
        &self,
        by: &Authorized<ManagesMembers>,
        member_id: MemberId,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
        retry_once!(async {
            let mut tx = self.log.begin(by.firm_id).await?;
            let loaded = load_member(tx.conn(), by.firm_id, member_id).await?;
            let events = member::decide(loaded.state.as_ref(), MemberCommand::Remove)?;
            let at = now();
            let mut appends = vec![Append { stream_id: member_id.as_uuid(), expected_version: loaded.version, events }];
            let keys = self.log.read_models().active_keys_created_by(tx.conn(), member_id, at).await?;
            for key_id in keys {
                let key = load_api_key(tx.conn(), by.firm_id, key_id).await?;
                // The events decide (a key that expired since the read is not revoked).
                if let Ok(events) = api_key::decide(
                    key.state.as_ref(),
                    ApiKeyCommand::Revoke { reason: RevocationReason::CreatorRemoved },
                    at,
                ) {
                    appends.push(Append { stream_id: key_id.as_uuid(), expected_version: key.version, events });
                }
            }
            let metadata = by.metadata(request_id.clone(), at);
            let recorded = self.log.append(&mut tx, &metadata, &appends).await?;
            end_sessions_of(tx.conn(), member_id).await?;
            let answer = read_back(tx.conn(), member_id).await?;
            self.log.commit(tx, &recorded).await?;
            Ok::<_, CommandError>(answer)
        })
    }
}

/// What a sign-in attempt counts against: the account (or token) typed, and the client address
/// when it is known.
fn sign_in_subjects(typed: Subject<'_>, client: Option<IpAddr>) -> Vec<Subject<'_>> {
    std::iter::once(typed).chain(client.map(Subject::Address)).collect()
}
