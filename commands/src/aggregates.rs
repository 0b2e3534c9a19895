//! Loading an aggregate: its stream folded into state, with the version decided against.

use crate::error::CommandError;
use crate::store::{load_stream, RecordedEvent};
use domain::api_key::{self, ApiKey};
use domain::firm::{self, Firm};
use domain::member::{self, Member};
use domain::{ApiKeyId, FirmId, MemberId};
use sqlx::PgConnection;

/// An aggregate's state and the version of its stream.
pub struct Loaded<S> {
    /// The folded state (`None` for a stream with no events).
    pub state: Option<S>,
    /// The stream's version (0 when empty).
    pub version: i32,
}

async fn load<S>(
    conn: &mut PgConnection,
    firm: Option<FirmId>,
    stream: uuid::Uuid,
    fold: impl Fn(Option<S>, &RecordedEvent) -> Option<S>,
) -> Result<Loaded<S>, CommandError> {
    let events = load_stream(conn, stream).await?;
    // Another firm's stream is answered exactly as a missing one.
    if let (Some(firm), Some(first)) = (firm, events.first()) {
        if first.metadata.firm_id != firm {
            return Ok(Loaded { state: None, version: 0 });
        }
    }
    let version = events.last().map_or(0, |e| e.version);
    let state = events.iter().fold(None, fold);
    Ok(Loaded { state, version })
}

/// A firm.
pub async fn load_firm(conn: &mut PgConnection, id: FirmId) -> Result<Loaded<Firm>, CommandError> {
    load(conn, Some(id), id.as_uuid(), |s, e| firm::evolve(s, &e.event)).await
}

/// A member of `firm` (another firm's member loads as missing).
pub async fn load_member(conn: &mut PgConnection, firm: FirmId, id: MemberId) -> Result<Loaded<Member>, CommandError> {
    load(conn, Some(firm), id.as_uuid(), |s, e| member::evolve(s, &e.event, e.metadata.occurred_at)).await
}

/// An API key of `firm` (another firm's key loads as missing).
pub async fn load_api_key(conn: &mut PgConnection, firm: FirmId, id: ApiKeyId) -> Result<Loaded<ApiKey>, CommandError> {
    load(conn, Some(firm), id.as_uuid(), |s, e| api_key::evolve(s, &e.event, e.metadata.occurred_at, e.member_actor()))
        .await
}
