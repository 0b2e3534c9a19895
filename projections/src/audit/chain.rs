//! The hash chain of a firm's entries: the canonical JSON an entry is hashed in, the chain
//! head kept apart from the entries, and the walk that verifies a chain.

use super::*;
use domain::FirmId;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The canonical JSON of a value: UTF-8, no whitespace, object keys sorted by their UTF-8 bytes
/// (at every depth), array order kept, strings escaped as JSON requires and no more (`"` and `\`
/// and the control characters U+0000–U+001F: `\b \f \n \r \t` by name, the others as `\u00xx`;
/// everything else, `/` and non-ASCII included, written as itself), integers in plain decimal.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // null, booleans and numbers have exactly one compact form.
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `hex(SHA-256(previous_hash ‖ canonical))`, both as UTF-8 bytes.
pub fn chain_hash(previous_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(previous_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// The last entry of a firm's chain, as its head row keeps it: its sequence and hash. A chain
/// whose newest entries were deleted goes on from the head, so the gap shows.
pub(super) async fn chain_head(conn: &mut PgConnection, firm: Uuid) -> Result<(i64, String), sqlx::Error> {
    let head: Option<(i64, String)> = sqlx::query_as("SELECT sequence, hash FROM audit_chain_heads WHERE firm_id = $1")
        .bind(firm)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(head.unwrap_or((0, GENESIS_HASH.to_owned())))
}

/// A firm's chain head as it is now (sequence 0 and the genesis hash before its first entry).
pub async fn head(pool: &PgPool, firm: FirmId) -> Result<ChainHead, sqlx::Error> {
    let (sequence, hash) = chain_head(&mut *pool.acquire().await?, firm.as_uuid()).await?;
    Ok(ChainHead { sequence, hash })
}

/// The newest entry a firm's chain should end with, kept apart from the entries.
#[derive(Debug)]
pub struct ChainHead {
    pub sequence: i64,
    pub hash: String,
}

/// What walking a firm's chain found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AuditVerification)]
pub struct Verification {
    /// True when every entry is intact and in place.
    pub ok: bool,
    /// How many entries the firm's log holds.
    pub entries: i64,
    /// The first sequence at which the chain breaks: an entry whose fields no longer give its
    /// hash, whose `previous_hash` is not the hash before it, or that is missing (the newest
    /// ones too: the chain head, kept apart from the entries, still names them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken_sequence: Option<i64>,
}

/// Walks `firm`'s chain from the first entry and names the first broken one.
pub async fn verify(pool: &PgPool, firm: FirmId) -> Result<Verification, sqlx::Error> {
    // The head first: entries appended while the walk runs only lie beyond it.
    let head = head(pool, firm).await?;
    let up_to = last_sequence(pool, firm).await?;
    let mut head_seen = head.sequence == 0;
    let mut expected_sequence = 1;
    let mut previous_hash = GENESIS_HASH.to_owned();
    let mut broken = None;
    let mut after = 0;
    'walk: loop {
        let entries = batch(pool, firm, &AuditFilter::default(), after, up_to, BATCH).await?;
        let Some(last) = entries.last() else { break };
        after = last.sequence;
        for entry in &entries {
            if entry.sequence != expected_sequence
                || entry.previous_hash != previous_hash
                || entry.hash != entry.expected_hash()
            {
                broken = Some(expected_sequence);
                break 'walk;
            }
            if entry.sequence == head.sequence {
                head_seen = entry.hash == head.hash;
            }
            previous_hash.clone_from(&entry.hash);
            expected_sequence += 1;
        }
    }
    // Whole as far as it goes: does it reach its head? Entries deleted from the end leave a
    // chain that hashes, and show only here.
    if broken.is_none() && !head_seen {
        broken = Some(expected_sequence);
    }
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE firm_id = $1")
        .bind(firm.as_uuid())
        .fetch_one(pool)
        .await?;
    Ok(Verification { ok: broken.is_none(), entries, first_broken_sequence: broken })
}
