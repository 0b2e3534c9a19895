//! Operations: liveness, readiness, Prometheus metrics and the OpenAPI document.

use crate::app::AppState;
use crate::response::json;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// `GET /healthz`: the process is up.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(schema_with = ok_schema)]
    status: &'static str,
}

fn ok_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum(["ok"])
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Up.", body = Health))
)]
async fn healthz() -> Response {
    json(StatusCode::OK, &Health { status: "ok" })
}

/// `GET /readyz`: whether this node can serve, and what it found.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    #[schema(schema_with = ready_schema)]
    status: &'static str,
    /// Postgres answered.
    postgres: bool,
    /// NATS is connected.
    nats: bool,
    /// The relay from the event log to JetStream.
    relay: RelayReadiness,
    /// Each projection, by name.
    projections: BTreeMap<&'static str, ProjectionReadiness>,
}

fn ready_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum(["ready", "not_ready"])
}

/// The relay's part of [`Ready`].
#[derive(Serialize, ToSchema)]
pub struct RelayReadiness {
    /// This node leads the relay.
    leader: bool,
    /// The relay has published every event (always true on a node that does not lead it).
    caught_up: bool,
}

/// A projection's part of [`Ready`].
#[derive(Serialize, ToSchema)]
pub struct ProjectionReadiness {
    /// It has applied the feed up to its head.
    caught_up: bool,
}

/// Serves the OpenAPI 3.1 document of every route.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi",
    tag = "operations",
    responses((status = 200, description = "This document.", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Response {
    let mut response = crate::openapi::document_json().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
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

/// Whether this node can serve: Postgres and NATS reachable, the relay and projections caught up.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "Not ready; `Retry-After` says when to ask again.", body = Ready,
            headers(("Retry-After" = String, description = "Seconds to wait before asking again."))),
    )
)]
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ready = Readiness::check(&state).await;
    // The relay's lag counts only on the node that leads it; a follower's checkpoint is stale.
    let relay_caught_up = !state.relay.leader.load(Ordering::Relaxed) || ready.relay_lag.is_some_and(|lag| lag == 0);
    let verification_caught_up = state.verification_status.caught_up.load(Ordering::Relaxed);
    let ok = ready.postgres && ready.nats && relay_caught_up && verification_caught_up;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut response = json(
        status,
        &Ready {
            status: if ok { "ready" } else { "not_ready" },
            postgres: ready.postgres,
            nats: ready.nats,
            relay: RelayReadiness { leader: state.relay.leader.load(Ordering::Relaxed), caught_up: relay_caught_up },
            projections: BTreeMap::from([(
                projections::verification::NAME,
                ProjectionReadiness { caught_up: verification_caught_up },
            )]),
        },
    );
    if !ok {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Prometheus metrics of this node.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Prometheus text exposition format.",
        content_type = "text/plain; version=0.0.4",
        body = String
    ))
)]
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
        "esqase_barrier_confirmed_total",
        "Commits that every live node confirmed having applied.",
        "counter",
        state.cluster.confirmed.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        "esqase_barrier_outwaited_total",
        "Commits that waited out the other nodes' leases instead (a node did not confirm in time).",
        "counter",
        state.cluster.outwaited.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        "esqase_verification_trusted",
        "1 while this node answers key verification from memory, 0 while it asks Postgres.",
        "gauge",
        u8::from(state.trusted_verification().is_some()).to_string(),
    );
    let (keys, key_bytes) = state.verification.read().map(|v| (v.key_count(), v.key_heap_bytes())).unwrap_or_default();
    gauge("esqase_verification_keys", "API keys held in this node's verification state.", "gauge", keys.to_string());
    gauge(
        "esqase_verification_key_bytes",
        "Heap held for API keys in this node's verification state (records, indexes, names).",
        "gauge",
        key_bytes.to_string(),
    );
    let limiter = &state.rate_limiter;
    gauge(
        "esqase_rate_limited_total",
        "Requests this node refused because their key had used its rate limit.",
        "counter",
        limiter.refused.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        "esqase_rate_limit_reservations_total",
        "Quota this node reserved from the rate limits' shared counts (one NATS compare-and-set each).",
        "counter",
        limiter.reservations.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        "esqase_rate_limit_fallbacks_total",
        "Windows in which this node counted its own share of a key's limit (the shared count was unreachable).",
        "counter",
        limiter.fallbacks.load(Ordering::Relaxed).to_string(),
    );
    gauge(
        "esqase_rate_limit_keys",
        "Limited keys with a quota on this node.",
        "gauge",
        limiter.keys_held().to_string(),
    );
    gauge("esqase_postgres_up", "1 when Postgres answered.", "gauge", u8::from(ready.postgres).to_string());
    gauge("esqase_nats_up", "1 when NATS is connected.", "gauge", u8::from(ready.nats).to_string());
    let mut response = out.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}
