//! The dashboard on the stack's origin, as CloudFront serves it in AWS: the built single-page app
//! (`web/dist`) at `/` with a fallback to `index.html` for the app's own paths, `/config.json`
//! telling it which issuer and client to sign in with, and the security headers of the
//! deployment's response headers policy.
//!
//! API paths are never shadowed: `/v1/...`, `/.well-known/...`, `/oauth2/...`, `/openapi.json`
//! and `/config.json` that no route serves answer the API's JSON 404, not `index.html`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// The dashboard's client id at the development issuer.
pub use auth::dev_issuer::code_flow::DEFAULT_CLIENT_ID;
/// The scopes the dashboard asks for.
pub const SCOPE: &str = "openid profile";

/// What the stack serves for the dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The built app (`index.html` and its assets).
    pub web_dir: PathBuf,
    /// The client id the dashboard signs in with.
    pub client_id: String,
    /// Lifetime of the development issuer's access tokens (short, so renewal is exercised).
    pub access_token_lifetime: Duration,
}

impl Dashboard {
    /// From the environment: `PLATFORM_WEB_DIR` (default [`default_web_dir`]),
    /// `DASHBOARD_CLIENT_ID` (default `dashboard`), `DEV_ACCESS_TOKEN_SECONDS` (default 900).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Dashboard {
            web_dir: var("PLATFORM_WEB_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(default_web_dir),
            client_id: var("DASHBOARD_CLIENT_ID").unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned()),
            access_token_lifetime: Duration::from_secs(
                var("DEV_ACCESS_TOKEN_SECONDS")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(15 * 60),
            ),
        }
    }
}

/// `<repository root>/web/dist`. The stack is only ever built from the repository, so the root
/// is where this crate's manifest was, two levels up (`infra/local`); a binary run from anywhere
/// (`cargo xtask dev`, tests, `local-stack` from another directory) finds the same files.
pub fn default_web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist")
}

/// `stack` (every route the stack serves) with the dashboard and `/config.json`; anything else
/// under an API prefix answers the API's 404.
pub fn compose(stack: Router, dashboard: &Dashboard, base_url: &str) -> Router {
    let config = serde_json::json!({
        "issuer": base_url,
        "clientId": dashboard.client_id,
        "scope": SCOPE,
        "apiBase": "",
    });
    let site = Arc::new(Site {
        index: dashboard.web_dir.join("index.html"),
        dir: dashboard.web_dir.clone(),
        csp: HeaderValue::from_str(&content_security_policy(base_url))
            .expect("a URL is a valid header value"),
    });
    let config_route = Router::new().route(
        "/config.json",
        get(move || {
            let config = config.clone();
            async move { ([(header::CACHE_CONTROL, "no-store")], axum::Json(config)) }
        }),
    );
    stack
        .merge(config_route)
        .fallback(move |request: Request| serve_site(site.clone(), request))
}

/// Paths that belong to the API or the issuer, never to the app.
pub fn is_api_path(path: &str) -> bool {
    path == "/v1"
        || path.starts_with("/v1/")
        || path.starts_with("/.well-known/")
        || path.starts_with("/oauth2/")
        || path == "/openapi.json"
        || path == "/config.json"
}

struct Site {
    dir: PathBuf,
    index: PathBuf,
    csp: HeaderValue,
}

/// The Content-Security-Policy of the app: its own files only; it talks to the API and the
/// issuer (discovery, token endpoint) with fetch; no framing.
pub fn content_security_policy(issuer: &str) -> String {
    let issuer_origin = url::Url::parse(issuer)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self' {issuer_origin}; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
    )
}

async fn serve_site(site: Arc<Site>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if is_api_path(&path) {
        // The functions' own outer layer: the platform's JSON 404 with a request id.
        return platform::http::with_outer_layer(Router::new())
            .oneshot(request)
            .await
            .into_response();
    }
    let mut response = if !site.index.is_file() {
        not_built(&site.dir)
    } else {
        // The app routes in the browser: a path that is not a file gets index.html, except one
        // that looks like a file (a missing asset is a 404, not HTML parsed as a script).
        let looks_like_file = path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'));
        let serve = ServeDir::new(&site.dir);
        let result = if looks_like_file {
            serve.oneshot(request).await
        } else {
            serve
                .fallback(ServeFile::new(&site.index))
                .oneshot(request)
                .await
        };
        match result {
            Ok(response) => response.into_response(),
            Err(error) => {
                tracing::error!(%error, "serving the dashboard");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    };
    let headers = response.headers_mut();
    for (name, value) in security_headers(&site.csp) {
        headers.insert(name, value);
    }
    if path == "/" || path.ends_with("/index.html") || !path.contains('.') {
        // index.html names the current build's hashed assets: always revalidated.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

/// The headers on every dashboard response (the deployment's response headers policy sets the
/// same ones).
pub fn security_headers(csp: &HeaderValue) -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (header::CONTENT_SECURITY_POLICY, csp.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // The sign-in callback's URL carries the code: never sent on as a Referer.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

fn not_built(dir: &Path) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Dashboard not built</title>\n</head>\n<body>\n<main>\n<h1>Dashboard not built</h1>\n<p>The local stack serves the dashboard from <code>{}</code>, which has no <code>index.html</code>. Build it with <code>npm --prefix web run build</code> (or set <code>PLATFORM_WEB_DIR</code>) and reload. The API is at <code>/v1/</code> as usual.</p>\n</main>\n</body>\n</html>\n",
        html_escape::encode_text(&dir.display().to_string())
    );
    (StatusCode::NOT_FOUND, Html(html)).into_response()
}
