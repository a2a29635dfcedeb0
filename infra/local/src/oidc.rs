//! The development issuer over HTTP, on the stack's own origin (its issuer URL):
//!
//! - `GET /.well-known/openid-configuration` and `GET /.well-known/jwks.json`;
//! - the authorization code flow with PKCE ([`auth::dev_issuer::code_flow`]): `GET
//!   /oauth2/authorize` answers a login page (a `Username` field and a `Sign in` button, no
//!   password), `POST /oauth2/authorize` redirects to the client with a one-time code,
//!   `POST /oauth2/token` exchanges it (and refresh tokens), `GET /oauth2/logout` sends the browser
//!   back.
//!
//! A refused authorization request answers a 400 page and never redirects: its redirect URI is
//! not trusted yet. The token endpoint answers RFC 6749 §5.2 JSON errors.

use std::sync::Arc;

use auth::dev_issuer::DevIssuer;
use auth::dev_issuer::code_flow::{
    Authorization, AuthorizeError, AuthorizeRequest, CodeFlow, TokenRequest,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use serde::Deserialize;
use serde_json::json;

/// The issuer's routes.
pub fn router(issuer: Arc<DevIssuer>, flow: Arc<CodeFlow>) -> Router {
    let issuer_routes = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(
                |State(i): State<Arc<DevIssuer>>| async move { axum::Json(i.discovery_document()) },
            ),
        )
        .route(
            "/.well-known/jwks.json",
            get(|State(i): State<Arc<DevIssuer>>| async move { axum::Json(i.jwks()) }),
        )
        .with_state(issuer);
    let flow_routes = Router::new()
        .route("/oauth2/authorize", get(authorize_page).post(sign_in))
        .route("/oauth2/token", axum::routing::post(token))
        .route("/oauth2/logout", get(logout))
        .with_state(flow);
    issuer_routes.merge(flow_routes)
}

/// Content-Security-Policy of the issuer's pages: nothing loads, the form posts to this origin
/// only (and the redirect after it stays there too), no framing (clickjacking a sign-in).
const PAGE_CSP: &str =
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn authorize_page(
    State(flow): State<Arc<CodeFlow>>,
    query: Result<Query<AuthorizeRequest>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(request)) = query else {
        return error_page("The sign-in request is malformed (a parameter is repeated?).");
    };
    match flow.check_authorize(&request) {
        Ok(authorization) => login_page(StatusCode::OK, &authorization, None, ""),
        Err(error) => refused(&error),
    }
}

/// The login form's fields: the authorization request again, and the username.
#[derive(Deserialize)]
struct LoginForm {
    #[serde(flatten)]
    request: AuthorizeRequest,
    #[serde(default)]
    username: String,
}

async fn sign_in(State(flow): State<Arc<CodeFlow>>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return error_page("The sign-in form is malformed.");
    };
    // The hidden fields came back from the browser: checked again, as on the way in.
    let authorization = match flow.check_authorize(&form.request) {
        Ok(authorization) => authorization,
        Err(error) => return refused(&error),
    };
    match flow.sign_in(&authorization, &form.username) {
        Ok(location) => {
            tracing::info!(client_id = %authorization.client_id, "development issuer: signed in");
            (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
            )
                .into_response()
        }
        Err(error) => login_page(
            StatusCode::BAD_REQUEST,
            &authorization,
            Some(&error.to_string()),
            &form.username,
        ),
    }
}

async fn token(State(flow): State<Arc<CodeFlow>>, headers: HeaderMap, body: Bytes) -> Response {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let request = if form_encoded {
        serde_urlencoded::from_bytes::<TokenRequest>(&body).ok()
    } else {
        None
    };
    let Some(request) = request else {
        return token_json(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "invalid_request",
                "error_description": "the body must be application/x-www-form-urlencoded, each parameter once",
            }),
        );
    };
    match flow.token(&request) {
        Ok(tokens) => token_json(StatusCode::OK, json!(tokens)),
        Err(error) => {
            tracing::info!(error = error.error, "development issuer: token refused");
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            token_json(status, json!(error))
        }
    }
}

/// RFC 6749 §5.1: token responses are never cached.
fn token_json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(body),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LogoutQuery {
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn logout(
    State(flow): State<Arc<CodeFlow>>,
    query: Result<Query<LogoutQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_page("The sign-out request is malformed.");
    };
    match flow.logout_redirect(
        query.post_logout_redirect_uri.as_deref(),
        query.state.as_deref(),
    ) {
        Ok(Some(location)) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Ok(None) => page(
            StatusCode::OK,
            "Signed out",
            "<h1>Signed out</h1>\n<p>The development issuer keeps no session: the next sign-in asks for a username again.</p>",
        ),
        Err(error) => refused(&error),
    }
}

fn refused(error: &AuthorizeError) -> Response {
    error_page(&format!("The sign-in request was refused: {error}."))
}

fn error_page(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Sign-in refused",
        &format!(
            "<h1>Sign-in refused</h1>\n<p role=\"alert\">{}</p>",
            text(message)
        ),
    )
}

fn login_page(
    status: StatusCode,
    authorization: &Authorization,
    error: Option<&str>,
    username: &str,
) -> Response {
    let hidden: String = authorization
        .parameters()
        .into_iter()
        .map(|(name, value)| {
            format!(
                "    <input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                attr(&value)
            )
        })
        .collect();
    let (alert, described) = match error {
        Some(message) => (
            format!(
                "<p id=\"username-error\" role=\"alert\">{}</p>\n",
                text(message)
            ),
            " aria-invalid=\"true\" aria-describedby=\"username-error\"",
        ),
        None => (String::new(), ""),
    };
    let body = format!(
        r#"<h1>Sign in</h1>
<p>Development issuer of the local stack: there is no password. Any username signs in as the client of that name; a username starting with <code>desk-</code> signs in as a trading-desk operator.</p>
{alert}<form method="post" action="/oauth2/authorize">
{hidden}    <p>
      <label for="username">Username</label>
      <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="{value}"{described}>
    </p>
    <button type="submit">Sign in</button>
</form>"#,
        value = attr(username),
    );
    page(status, "Sign in", &body)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} · development issuer</title>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        text(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
