//! The dashboard's side of the stack over HTTP, without the AWS stand-ins: the development
//! issuer's code flow as a browser and oidc-client-ts drive it (the tokens checked by the
//! platform's authenticator against the keys the stack serves), and the static files with the API
//! never shadowed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth::dev_issuer::code_flow::{CodeFlow, CodeFlowSettings, s256_challenge};
use auth::dev_issuer::{DevIssuer, SigningAlgorithm, TokenShape};
use auth::{AuthSettings, Authenticator, Principal, Role};
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};

use crate::{oidc, web};

/// reqwest here has no `form`/`query` features: the same encoding by hand.
trait FormBody {
    fn form_body<T: serde::Serialize + ?Sized>(self, form: &T) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        self.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
    }
}

fn with_query<T: serde::Serialize + ?Sized>(url: String, query: &T) -> String {
    format!("{url}?{}", serde_urlencoded::to_string(query).unwrap())
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Stack {
    base: String,
    http: reqwest::Client,
}

/// The issuer, a stand-in API (`GET /v1/ping`) and the dashboard from `web_dir`, served as
/// [`crate::spawn`] composes them.
async fn serve(web_dir: PathBuf) -> Stack {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = Arc::new(DevIssuer::generate(&base, SigningAlgorithm::Es256).unwrap());
    let shape = TokenShape::Oidc {
        audience: "platform-api".into(),
        roles_claim: "roles".into(),
    };
    let flow = Arc::new(CodeFlow::new(
        issuer.clone(),
        CodeFlowSettings::new("dashboard", &base, shape, "operators"),
    ));
    let api = platform::http::with_outer_layer(Router::new().route(
        "/v1/ping",
        get(|| async { axum::Json(json!({"pong": true})) }),
    ));
    let dashboard = web::Dashboard {
        web_dir,
        client_id: "dashboard".into(),
        access_token_lifetime: Duration::from_secs(900),
    };
    let router = web::compose(oidc::router(issuer, flow).merge(api), &dashboard, &base);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Stack { base, http }
}

fn built_dashboard() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("local-stack-web-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>dashboard</title>",
    )
    .unwrap();
    std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
    // A file where an API path is: the API must still answer there.
    std::fs::write(dir.join("v1/secret.txt"), "shadow").unwrap();
    dir
}

impl Stack {
    fn authorize_params(&self, redirect_uri: &str) -> Vec<(&'static str, String)> {
        vec![
            ("response_type", "code".into()),
            ("client_id", "dashboard".into()),
            ("redirect_uri", redirect_uri.into()),
            ("scope", "openid profile".into()),
            ("state", "st\"<1>".into()),
            ("code_challenge", s256_challenge(VERIFIER)),
            ("code_challenge_method", "S256".into()),
            ("nonce", "n-1".into()),
        ]
    }

    /// The login page, the form posted with `username`, and the code from the redirect.
    async fn sign_in(&self, username: &str) -> String {
        let redirect_uri = format!("{}/callback", self.base);
        let mut form = self.authorize_params(&redirect_uri);
        form.push(("username", username.into()));
        let response = self
            .http
            .post(format!("{}/oauth2/authorize", self.base))
            .form_body(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location =
            url::Url::parse(response.headers()[header::LOCATION].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(&format!("{redirect_uri}?")));
        let param = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("state").as_deref(), Some("st\"<1>"));
        param("code").unwrap()
    }

    async fn token(
        &self,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let response = self
            .http
            .post(format!("{}/oauth2/token", self.base))
            .form_body(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.json().await.unwrap(), headers)
    }

    async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        let redirect_uri = format!("{}/callback", self.base);
        let (status, body, headers) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &redirect_uri),
                ("client_id", "dashboard"),
                ("code_verifier", verifier),
            ])
            .await;
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        (status, body)
    }

    fn authenticator(&self) -> Authenticator {
        let mut settings = AuthSettings::new(self.base.clone(), vec!["platform-api".into()]);
        settings.role_claim = "roles".into();
        Authenticator::new(settings)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn discovery_names_the_code_flow_endpoints() {
    let stack = serve(built_dashboard()).await;
    let doc: Value = stack
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let base = &stack.base;
    assert_eq!(doc["issuer"], *base);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/oauth2/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth2/token"));
    assert_eq!(doc["end_session_endpoint"], format!("{base}/oauth2/logout"));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
}

#[tokio::test]
async fn the_login_page_asks_for_a_username_only() {
    let stack = serve(built_dashboard()).await;
    let response = stack
        .http
        .get(with_query(
            format!("{}/oauth2/authorize", stack.base),
            &stack.authorize_params(&format!("{}/callback", stack.base)),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"<label for="username">Username</label>"#));
    assert!(page.contains(r#"<input id="username" name="username" type="text""#));
    assert!(page.contains(r#"<button type="submit">Sign in</button>"#));
    assert!(!page.contains("password\""), "no password field");
    assert!(page.contains("no password"));
    // The client's state goes back in a hidden field, escaped.
    assert!(page.contains(r#"name="state" value="st&quot;&lt;1&gt;""#));
    assert!(!page.contains("st\"<1>"));
}

#[tokio::test]
async fn a_signed_in_client_and_desk_get_tokens_the_platform_accepts() {
    let stack = serve(built_dashboard()).await;
    let authenticator = stack.authenticator();
    for (username, role) in [("alice", Role::Client), ("desk-7", Role::Operator)] {
        let code = stack.sign_in(username).await;
        let (status, tokens) = stack.exchange(&code, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        assert_eq!(tokens["scope"], "openid profile");
        assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());
        let caller = authenticator
            .verify_token(tokens["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(
            caller,
            Principal {
                subject: username.into(),
                role
            }
        );

        // Renewal, as the dashboard does before the access token expires.
        let (status, renewed, _) = stack
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", "dashboard"),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{renewed}");
        let caller = authenticator
            .verify_token(renewed["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(caller.subject, username);
        assert_eq!(caller.role, role);
    }
}

#[tokio::test]
async fn the_token_endpoint_refuses_with_oauth_errors() {
    let stack = serve(built_dashboard()).await;
    let code = stack.sign_in("alice").await;
    let (status, body) = stack
        .exchange(&code, "a-wrong-verifier-that-is-long-enough-0000000000")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = stack.exchange(&code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the code was spent by the first attempt"
    );
    let json_body = stack
        .http
        .post(format!("{}/oauth2/token", stack.base))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    let body: Value = json_body.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn foreign_redirects_get_a_page_not_a_redirect() {
    let stack = serve(built_dashboard()).await;
    let mut params = stack.authorize_params("https://evil.example/callback");
    let response = stack
        .http
        .get(with_query(
            format!("{}/oauth2/authorize", stack.base),
            &params,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::LOCATION).is_none());
    // Posting the form directly is checked the same way.
    params.push(("username", "alice".into()));
    let response = stack
        .http
        .post(format!("{}/oauth2/authorize", stack.base))
        .form_body(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::LOCATION).is_none());

    let out = stack
        .get("/oauth2/logout?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(out.status(), StatusCode::BAD_REQUEST);
    let back = format!("{}/", stack.base);
    let out = stack
        .http
        .get(with_query(
            format!("{}/oauth2/logout", stack.base),
            &[("post_logout_redirect_uri", back.as_str())],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::FOUND);
    assert_eq!(out.headers()[header::LOCATION], back.as_str());
}

#[tokio::test]
async fn the_dashboard_is_served_with_its_routes_and_security_headers() {
    let stack = serve(built_dashboard()).await;
    for path in ["/", "/accounts/01J/destinations"] {
        let response = stack.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("<title>dashboard</title>")
        );
    }
    let script = stack.get("/assets/app.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.text().await.unwrap(), "console.log(1)");
    assert_eq!(
        stack.get("/assets/missing.js").await.status(),
        StatusCode::NOT_FOUND,
        "a missing asset is not index.html"
    );

    let config: Value = stack.get("/config.json").await.json().await.unwrap();
    assert_eq!(
        config,
        json!({"issuer": stack.base, "clientId": "dashboard", "scope": "openid profile", "apiBase": ""})
    );
}

#[tokio::test]
async fn api_paths_are_never_the_dashboard() {
    let stack = serve(built_dashboard()).await;
    let ping: Value = stack.get("/v1/ping").await.json().await.unwrap();
    assert_eq!(ping, json!({"pong": true}));
    for path in [
        "/v1/no-such-route",
        "/v1/secret.txt",
        "/v1",
        "/.well-known/nothing",
        "/oauth2/nothing",
    ] {
        let response = stack.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        assert!(body["error"]["requestId"].is_string(), "{path}");
    }
}

#[tokio::test]
async fn without_a_build_the_root_says_how_to_build() {
    let missing = std::env::temp_dir().join(format!("local-stack-no-web-{}", ulid::Ulid::new()));
    let stack = serve(missing).await;
    let response = stack.get("/").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("npm --prefix web run build")
    );
    // The API and the issuer work without it.
    assert_eq!(stack.get("/v1/ping").await.status(), StatusCode::OK);
    assert_eq!(stack.get("/config.json").await.status(), StatusCode::OK);
}
