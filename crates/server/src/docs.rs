//! The API docs page, `/docs`: Swagger UI reading `/openapi.json`.
//!
//! The Swagger UI files are vendored (see `assets/swagger-ui/README.md`) and
//! embedded in the binary, so the page works without network access and the
//! build downloads nothing.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::IdPath;

/// Page loading the embedded assets with the generated description.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Tephra API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
  </script>
</body>
</html>
"##;

/// An embedded file: name, content type, bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

/// Every file served under `/docs/assets/`.
const ASSETS: &[Asset] = &[
    (
        "swagger-ui-bundle.js",
        "application/javascript; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "swagger-ui-bundle.js.LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/swagger-ui/LICENSE"),
    ),
    (
        "NOTICE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/swagger-ui/NOTICE"),
    ),
];

/// `GET /docs`.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /docs/assets/{file}`.
pub async fn asset(IdPath(file): IdPath) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => ApiError::NotFound {
            field: None,
            message: format!("no docs asset is named `{}`", file.escape_debug()),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_refers_only_to_embedded_assets() {
        for (name, _, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{name}");
        }
        for name in ["swagger-ui-bundle.js", "swagger-ui.css"] {
            assert!(PAGE.contains(&format!("/docs/assets/{name}")));
        }
        assert!(
            !PAGE.contains("http"),
            "the page must not load anything from elsewhere"
        );
    }
}
