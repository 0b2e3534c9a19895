//! Signing a firm up, and the owner's roles-and-permissions grid.

use crate::aggregates::load_firm;
use crate::auth::{hash_password, start_session, Authorized, IsOwner, NewSession};
use crate::error::CommandError;
use crate::log::now;
use crate::read_back::ReadBack;
use crate::retry_once;
use crate::store::{Append, Metadata};
use crate::Commands;
use domain::firm::{self, FirmCommand};
use domain::member::{self, MemberCommand};
use domain::names::{Email, FirmName, FirmTimeZone, Password, PersonName};
use domain::{Actor, FirmId, MemberId, PermissionSet, Role};

/// A firm as its owner signs it up, every field parsed.
pub struct NewFirm {
    pub name: FirmName,
    pub time_zone: FirmTimeZone,
    pub owner: NewOwner,
}

/// The owner of a [`NewFirm`].
pub struct NewOwner {
    pub name: PersonName,
    /// Their login: unique across the service.
    pub email: Email,
    pub password: Password,
}

/// A firm just signed up.
pub struct Signup {
    pub firm_id: FirmId,
    pub owner_id: MemberId,
    /// The owner's first session.
    pub session: NewSession,
}

impl Commands {
    /// Creates a firm and its owner, signs the owner in, and reads both back (`read_back`, given
    /// the firm's and the owner's ids) in the command's own transaction.
    pub async fn sign_up<T, R: ReadBack<(FirmId, MemberId), T>>(
        &self,
        firm: NewFirm,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<(Signup, T), CommandError> {
        let NewFirm { name: firm_name, time_zone, owner: NewOwner { name, email, password } } = firm;
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
        let answer = read_back(tx.conn(), (firm_id, owner_id)).await?;
        self.log.commit(tx, &recorded).await?;
        tracing::info!(%firm_id, %owner_id, "firm signed up");
        Ok((Signup { firm_id, owner_id, session }, answer))
    }

    /// Gives `role` exactly `permissions` in the caller's firm (owner only), and reads the role
    /// back.
    pub async fn set_role_permissions<T, R: ReadBack<Role, T>>(
        &self,
        by: &Authorized<IsOwner>,
        role: Role,
        permissions: PermissionSet,
        request_id: Option<String>,
        read_back: R,
    ) -> Result<T, CommandError> {
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
            let answer = read_back(tx.conn(), role).await?;
            self.log.commit(tx, &recorded).await?;
            Ok::<_, CommandError>(answer)
        })
    }
}
