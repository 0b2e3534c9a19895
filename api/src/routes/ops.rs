//! Operations: liveness, readiness and Prometheus metrics.

use crate::app::{json, AppState};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The routes of this area.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn healthz() -> Response {
    json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// What `/readyz` found.
struct Readiness {
    postgres: bool,
    nats: bool,
    relay_lag: Option<i64>,
    /// Feed events the verification projection has not applied (approximate: by global sequence).
    verification_lag: Option<i64>,
}

impl Readiness {
    async fn check(state: &AppState) -> Readiness {
        let head = commands::store::feed_head(state.pool()).await;
        let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
        let relay_lag = head
            .as_ref()
            .ok()
            .map(|head| (head.position - state.relay.checkpoint_position.load(Ordering::Relaxed)).max(0));
        let verification_lag = head
            .as_ref()
            .ok()
            .map(|head| (head.position - state.verification_status.checkpoint_position.load(Ordering::Relaxed)).max(0));
        Readiness { postgres: head.is_ok(), nats, relay_lag, verification_lag }
    }
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ready = Readiness::check(&state).await;
    // The relay's lag counts only on the node that leads it; a follower's checkpoint is stale.
    let relay_caught_up = !state.relay.leader.load(Ordering::Relaxed) || ready.relay_lag.is_some_and(|lag| lag == 0);
    let verification_caught_up = state.verification_status.caught_up.load(Ordering::Relaxed);
    let ok = ready.postgres && ready.nats && relay_caught_up && verification_caught_up;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut response = json(
        status,
        &json!({
            "status": if ok { "ready" } else { "not_ready" },
            "postgres": ready.postgres,
            "nats": ready.nats,
            "relay": { "leader": state.relay.leader.load(Ordering::Relaxed), "caught_up": relay_caught_up },
            "projections": { projections::verification::NAME: { "caught_up": verification_caught_up } },
        }),
    );
    if !ok {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let ready = Readiness::check(&state).await;
    let mut out = String::new();
    // `value` may start with a label set: `{projection="verification"} 3`.
    let mut gauge = |name: &str, help: &str, kind: &str, value: String| {
        let separator = if value.starts_with('{') { "" } else { " " };
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{separator}{value}\n");
    };
    gauge(
        "esqase_events_appended_total",
        "Events appended by this process.",
        "counter",
        state.commands.log.appended().to_string(),
    );
    gauge(
        "esqase_relay_published_total",
        "Events this process has published to JetStream.",
        "counter",
        state.relay.published.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        "esqase_relay_leader",
        "1 while this process leads the relay.",
        "gauge",
        u8::from(state.relay.leader.load(Ordering::Relaxed)).to_string(),
    );
    if let Some(lag) = ready.relay_lag.filter(|_| state.relay.leader.load(Ordering::Relaxed)) {
        gauge("esqase_relay_lag_events", "Feed events not yet published (leader only).", "gauge", lag.to_string());
    }
    if let Some(lag) = ready.verification_lag {
        gauge(
            "esqase_projection_lag_events",
            "Feed events a projection has not applied yet (approximate).",
            "gauge",
            format!("{{projection=\"{}\"}} {lag}", projections::verification::NAME),
        );
    }
    gauge(
        "esqase_verification_keys",
        "API keys held in this node's verification state.",
        "gauge",
        state.verification.read().map(|v| v.key_count()).unwrap_or_default().to_string(),
    );
    gauge("esqase_postgres_up", "1 when Postgres answered.", "gauge", u8::from(ready.postgres).to_string());
    gauge("esqase_nats_up", "1 when NATS is connected.", "gauge", u8::from(ready.nats).to_string());
    let mut response = out.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}
