//! The web dashboard, `/dashboard`, and the news-feed demo page, `/demo`.
//!
//! Both are hand-written HTML, CSS and JavaScript modules (no framework, no
//! build step) plus the vendored uPlot chart library (see
//! `assets/vendor/uplot/README.md`), all embedded in the binary: the pages work
//! without network access and the build downloads nothing. The pages
//! themselves stay open, like `/docs`; the API calls they make carry the API
//! key the user enters when the server asks for one.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::IdPath;

/// The dashboard's HTML shell; its pages are hash routes drawn by `dashboard.js`.
const DASHBOARD_PAGE: &str = include_str!("../assets/dashboard/index.html");

/// The demo reader page.
const DEMO_PAGE: &str = include_str!("../assets/dashboard/demo.html");

/// Our own files change with every release while their names stay: browsers
/// must revalidate them, or an upgraded server would run yesterday's script.
const REVALIDATE: &str = "no-cache";

/// Vendored files change only when the vendored version does.
const CACHE_A_DAY: &str = "public, max-age=86400";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// An embedded file: name, content type, cache policy, bytes.
type Asset = (&'static str, &'static str, &'static str, &'static [u8]);

/// Every file served under `/dashboard/assets/`.
const ASSETS: &[Asset] = &[
    (
        "api.js",
        JS,
        REVALIDATE,
        include_bytes!("../assets/dashboard/api.js"),
    ),
    (
        "dashboard.js",
        JS,
        REVALIDATE,
        include_bytes!("../assets/dashboard/dashboard.js"),
    ),
    (
        "dashboard.css",
        CSS,
        REVALIDATE,
        include_bytes!("../assets/dashboard/dashboard.css"),
    ),
    (
        "demo.js",
        JS,
        REVALIDATE,
        include_bytes!("../assets/dashboard/demo.js"),
    ),
    (
        "demo.css",
        CSS,
        REVALIDATE,
        include_bytes!("../assets/dashboard/demo.css"),
    ),
    (
        "uPlot.iife.min.js",
        JS,
        CACHE_A_DAY,
        include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        CSS,
        CACHE_A_DAY,
        include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    ),
    (
        "uPlot.LICENSE",
        TEXT,
        CACHE_A_DAY,
        include_bytes!("../assets/vendor/uplot/LICENSE"),
    ),
];

/// An HTML page that browsers revalidate, so an upgrade shows at once.
fn html(page: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, REVALIDATE),
        ],
        page,
    )
        .into_response()
}

/// `GET /dashboard`: the shell every dashboard page is drawn in, so that the
/// operator sees traffic, experiments and models without another service.
pub async fn page() -> Response {
    html(DASHBOARD_PAGE)
}

/// `GET /demo`: a news portal for one reader, so that a demo shows the feed
/// learning from the clicks it sends.
pub async fn demo() -> Response {
    html(DEMO_PAGE)
}

/// `GET /dashboard/assets/{file}`: the scripts, styles and vendored chart
/// library of both pages, from the binary, so no build step or CDN is needed.
pub async fn asset(IdPath(file): IdPath) -> Response {
    match ASSETS.iter().find(|(name, ..)| *name == file) {
        Some((_, content_type, cache, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, *cache),
            ],
            *bytes,
        )
            .into_response(),
        None => ApiError::NotFound {
            field: None,
            message: format!("no dashboard asset is named `{}`", file.escape_debug()),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/dashboard/assets/...` reference in `text`.
    fn references(text: &str) -> Vec<&str> {
        text.split("/dashboard/assets/")
            .skip(1)
            .map(|rest| rest.split(['"', '\'', '`', ')']).next().unwrap_or(""))
            .collect()
    }

    #[test]
    fn pages_refer_only_to_embedded_assets() {
        for (name, _, _, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{name}");
        }
        for page in [DASHBOARD_PAGE, DEMO_PAGE] {
            let refs = references(page);
            assert!(!refs.is_empty());
            for name in refs {
                assert!(
                    ASSETS.iter().any(|(asset, ..)| *asset == name),
                    "`{name}` is not embedded"
                );
            }
            for attr in ["src=\"http", "href=\"http", "url(http"] {
                assert!(
                    !page.contains(attr),
                    "the pages must not load anything from elsewhere"
                );
            }
        }
    }

    #[test]
    fn module_imports_are_embedded() {
        for (name, _, _, bytes) in ASSETS.iter().filter(|(n, ..)| n.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).expect("UTF-8");
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit("from \"./")
                    .next()
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("");
                assert!(
                    ASSETS.iter().any(|(asset, ..)| *asset == target),
                    "{name} imports `{target}`, which is not embedded"
                );
            }
        }
    }
}
