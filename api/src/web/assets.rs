//! The pages' stylesheet, scripts and icon, embedded in the binary: no build step, no separate
//! server, nothing fetched from anywhere but this service.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Every asset: its file name under `/assets/`, its content type, and its bytes.
pub const ASSETS: [(&str, &str, &[u8]); 8] = [
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../assets/app.css")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/api.js")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/app.js")),
    ("login.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/login.js")),
    ("invitation.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/invitation.js")),
    ("keys.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/keys.js")),
    ("roles.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/roles.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../../assets/favicon.svg")),
];

/// `GET /assets/{file}`: an embedded asset, or the usual 404 problem.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return crate::error::ApiError::NotFound.into_response();
    };
    let mut response = (StatusCode::OK, *bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Names carry no version: a browser revalidates, so a new release is seen at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
