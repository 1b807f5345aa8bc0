//! The web UI: static assets embedded in the binary.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

const INDEX: &str = include_str!("ui/index.html");
const APP: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/style.css");

/// Headers every UI asset carries: no framing by other sites, scripts from here only.
fn secured(body: &'static str, kind: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, kind)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(super) async fn index() -> Response {
    secured(INDEX, "text/html; charset=utf-8")
}

pub(super) async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => secured(APP, "text/javascript; charset=utf-8"),
        "style.css" => secured(STYLE, "text/css; charset=utf-8"),
        _ => ApiError::new(StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
