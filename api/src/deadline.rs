//! The request deadline: every request answers within it, even when Postgres answers nothing
//! (a frozen server keeps its sockets open, so no connection error ever comes).
//!
//! A request still running at the deadline is abandoned and answered `503
//! service_unavailable` with `Retry-After`, unless it is a command that has sent its COMMIT
//! (`commands::log::COMMITTING`): that one may have committed, and a committed command is never
//! answered with an error, so it is waited for.

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The middleware: runs the request under the state's deadline.
pub async fn deadline(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    within(state.request_deadline, next.run(request)).await
}

/// Runs `work` (a request being served) until `limit`; see the module's doc.
pub async fn within(limit: Duration, work: impl Future<Output = Response>) -> Response {
    let committing = Arc::new(AtomicBool::new(false));
    let work = commands::log::COMMITTING.scope(committing.clone(), work);
    tokio::pin!(work);
    tokio::select! {
        response = &mut work => response,
        _ = tokio::time::sleep(limit) => {
            if committing.load(Ordering::SeqCst) {
                tracing::warn!(limit_ms = limit.as_millis() as u64, "a committing command outlived the request deadline; waiting for it");
                work.await
            } else {
                tracing::warn!(limit_ms = limit.as_millis() as u64, "request abandoned at its deadline");
                ApiError::Unavailable.into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    async fn served_after(delay: Duration, commits: bool) -> Response {
        if commits {
            commands::log::COMMITTING.with(|committing| committing.store(true, Ordering::SeqCst));
        }
        tokio::time::sleep(delay).await;
        StatusCode::OK.into_response()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_still_running_at_the_deadline_is_answered_503_with_retry_after() {
        let response = within(Duration::from_secs(2), served_after(Duration::from_secs(30), false)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(axum::http::header::RETRY_AFTER));
    }

    #[tokio::test(start_paused = true)]
    async fn a_command_that_sent_its_commit_is_waited_for_past_the_deadline() {
        let started = tokio::time::Instant::now();
        let response = within(Duration::from_secs(2), served_after(Duration::from_secs(30), true)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_within_the_deadline_is_answered_as_served() {
        let response = within(Duration::from_secs(2), served_after(Duration::from_millis(10), false)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}
